"""Stream plumbing: broadcasting one stream to two consumers."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Broadcast"]


class Broadcast(wiring.Component):
    """Copies every transfer of ``i_stream`` to ``a_stream`` and ``b_stream``.

    Each copy is offered independently (``valid`` never depends on a ``ready``); the input
    transfer completes in the cycle in which both copies have been taken. No added latency.
    """

    def __init__(self, *, shape):
        self._shape = shape
        super().__init__(
            {
                "i_stream": In(stream.Signature(shape)),
                "a_stream": Out(stream.Signature(shape)),
                "b_stream": Out(stream.Signature(shape)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        i, a, b = self.i_stream, self.a_stream, self.b_stream
        a_done = Signal()  # this copy was taken in an earlier cycle
        b_done = Signal()
        m.d.comb += [
            a.payload.eq(i.payload),
            b.payload.eq(i.payload),
            a.valid.eq(i.valid & ~a_done),
            b.valid.eq(i.valid & ~b_done),
            i.ready.eq((a_done | a.ready) & (b_done | b.ready)),
        ]
        with m.If(i.valid & i.ready):
            m.d.sync += [a_done.eq(0), b_done.eq(0)]
        with m.Else():
            m.d.sync += [
                a_done.eq(a_done | (a.valid & a.ready)),
                b_done.eq(b_done | (b.valid & b.ready)),
            ]
        return m
