"""Input vectors from a request's payload bytes to the core, one beat of lanes at a time."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.hostlink.params import LinkParams

__all__ = ["VectorFeeder", "feed_control"]


def feed_control() -> wiring.Signature:
    """How the command executor drives a :class:`VectorFeeder` (the executor's side):
    ``start`` (a strobe) feeding ``count`` vectors; ``busy`` until the last beat is taken."""
    return wiring.Signature({"start": Out(1), "count": Out(16), "busy": In(1)})


class VectorFeeder(wiring.Component):
    """Turns payload bytes into input values, values into lanes, lanes into ``o_vector`` beats.

    ``control`` (:func:`feed_control`): ``start`` feeds ``count`` vectors read from the
    payload at the reader's position: ``i_byte`` is the byte there, ``advance`` moves to the
    next one. A value is ``value_bytes`` bytes, little-endian; a beat (``o_vector``) is
    ``lanes`` values, lane 0 the lowest index. While a beat waits on ``o_vector`` no byte is
    read. ``busy`` is high until the last beat has been taken.
    """

    def __init__(self, params: LinkParams):
        self._p = params
        self._max_beats = params.max_vectors * params.beats_per_vector
        super().__init__(
            {
                "control": In(feed_control()),
                "i_byte": In(8),
                "advance": Out(1),
                "o_vector": Out(
                    stream.Signature(data.ArrayLayout(signed(params.in_width), params.lanes))
                ),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p, o, ctl = self._p, self.o_vector, self.control
        width, vb, lanes = p.in_width, p.value_bytes, p.lanes
        feeding = Signal()
        byte_idx = Signal(range(vb + 1))
        lane_idx = Signal(range(lanes + 1))
        beats_fed = Signal(range(self._max_beats + 2))
        total_beats = Signal.like(beats_fed)
        value_sr = Signal(8 * vb)
        vec_sr = Signal(width * lanes)
        # value_sr with the byte at hand shifted in at the top: a whole value after its last
        assembled = Cat(value_sr, self.i_byte)[8:]
        m.d.comb += [o.payload.eq(vec_sr), ctl.busy.eq(feeding | o.valid)]

        with m.If(o.valid & o.ready):
            m.d.sync += [o.valid.eq(0), beats_fed.eq(beats_fed + 1)]
        with m.If(feeding & ~o.valid):
            m.d.comb += self.advance.eq(1)
            m.d.sync += value_sr.eq(assembled)
            with m.If(byte_idx == vb - 1):
                m.d.sync += [vec_sr.eq(Cat(vec_sr, assembled[:width])[width:]), byte_idx.eq(0)]
                with m.If(lane_idx == lanes - 1):
                    m.d.sync += [lane_idx.eq(0), o.valid.eq(1)]
                    with m.If(beats_fed + 1 == total_beats):
                        m.d.sync += feeding.eq(0)
                with m.Else():
                    m.d.sync += lane_idx.eq(lane_idx + 1)
            with m.Else():
                m.d.sync += byte_idx.eq(byte_idx + 1)
        with m.If(ctl.start):
            m.d.sync += [
                feeding.eq(1),
                byte_idx.eq(0),
                lane_idx.eq(0),
                beats_fed.eq(0),
                total_beats.eq(ctl.count * p.beats_per_vector),
            ]
        return m
