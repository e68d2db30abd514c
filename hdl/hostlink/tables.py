"""Table words from a LOAD_TABLES payload to the ``o_table`` write stream."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.hostlink.params import LinkParams

__all__ = ["TableWriter", "table_control", "table_write_layout"]


def table_control() -> wiring.Signature:
    """How the command executor drives a :class:`TableWriter` (the executor's side):
    ``start`` (a strobe) writing ``count`` words to ``layer`` from ``offset``; ``done`` in
    the cycle the last word is taken."""
    return wiring.Signature(
        {"start": Out(1), "layer": Out(8), "offset": Out(32), "count": Out(16), "done": In(1)}
    )


def table_write_layout(params: LinkParams) -> data.StructLayout:
    """One table write of the link: ``layer``, word ``addr``, word ``data``."""
    return data.StructLayout(
        {
            "layer": range(params.n_layers),
            "addr": params.table_addr_bits,
            "data": params.table_word_bits,
        }
    )


class TableWriter(wiring.Component):
    """Writes ``count`` table words read from the payload to ``layer`` from ``offset`` up.

    ``control`` (:func:`table_control`): ``start``, with ``count`` >= 1, begins at the
    reader's position: ``i_byte`` is the byte there, ``advance`` moves to the next one. A
    word is ``table_word_bytes`` bytes, little-endian, and goes out on ``o_table`` once whole.
    """

    def __init__(self, params: LinkParams):
        self._p = params
        super().__init__(
            {
                "control": In(table_control()),
                "i_byte": In(8),
                "advance": Out(1),
                "o_table": Out(stream.Signature(table_write_layout(params))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        wb = self._p.table_word_bytes
        o, ctl = self.o_table, self.control
        byte_idx = Signal(range(wb + 1))
        word = Signal(8 * wb)
        left = Signal(16)
        m.d.comb += o.payload.data.eq(word)
        with m.FSM():
            with m.State("IDLE"), m.If(ctl.start):
                m.d.sync += [
                    o.payload.layer.eq(ctl.layer),
                    o.payload.addr.eq(ctl.offset),
                    left.eq(ctl.count),
                    byte_idx.eq(0),
                ]
                m.next = "READ"
            with m.State("READ"):
                m.d.comb += self.advance.eq(1)
                m.d.sync += word.eq(Cat(word, self.i_byte)[8:])  # the first byte ends lowest
                with m.If(byte_idx == wb - 1):
                    m.d.sync += byte_idx.eq(0)
                    m.next = "WRITE"
                with m.Else():
                    m.d.sync += byte_idx.eq(byte_idx + 1)
            with m.State("WRITE"):
                m.d.comb += o.valid.eq(1)
                with m.If(o.ready):
                    m.d.sync += [o.payload.addr.eq(o.payload.addr + 1), left.eq(left - 1)]
                    with m.If(left == 1):
                        m.d.comb += ctl.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "READ"
        return m
