"""Summing table rows read ``L`` outputs at a time into a whole output vector.

A memory-backed bank reads, per cycle, one ``L``-entry chunk of a row from each of its ``P``
lanes; over ``G * B`` reads (``G`` table groups, ``B`` beats of ``L`` outputs) it has seen
every selected row of every table. :class:`RowAccumulator` adds each read's ``P`` chunks
into the right ``L`` of ``B * L`` accumulators and offers the finished vector on a stream.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layouts import vector_layout
from spikelut.hdl.params import tree_sum

__all__ = ["RowAccumulator"]


class RowAccumulator(wiring.Component):
    """Accumulates ``P`` row chunks of ``L`` entries per read into ``Y`` sums of ``width`` bits.

    Inputs, all for the read whose data is on ``i_rows`` this cycle: ``i_valid``;
    ``i_clear`` (a read of the first group: the accumulators start from zero); ``i_last``
    (the final read of a vector: the sums go out). ``i_rows``: ``P`` chunks of ``L`` signed
    ``table_width``-bit entries. ``stall`` is high while a finished vector waits on
    ``o_stream`` and the next final read must wait: the reader holds its read then.

    The accumulators rotate by one chunk per read, so the chunk being added to is always
    chunk 0 and no multiplexer selects it; after ``G * B`` reads they are back in order.
    ``o_stream``: ``vector_layout(width, Y)``.
    """

    def __init__(
        self, *, out_dim: int, lanes: int, beats: int, rows: int, table_width: int, width: int
    ):
        self._y, self._l, self._beats, self._width = out_dim, lanes, beats, width
        super().__init__(
            {
                "i_valid": In(1),
                "i_clear": In(1),
                "i_last": In(1),
                "i_rows": In(data.ArrayLayout(vector_layout(table_width, lanes), rows)),
                "stall": Out(1),
                "o_stream": Out(stream.Signature(vector_layout(width, out_dim))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        o = self.o_stream
        stall = self.i_valid & self.i_last & o.valid & ~o.ready
        m.d.comb += self.stall.eq(stall)
        chunk = vector_layout(self._width, self._l)
        chunks = [Signal(chunk, name=f"acc{b}") for b in range(self._beats)]
        head = Signal(chunk, name="acc_next")
        for c in range(self._l):
            rows = tree_sum(row[c] for row in self.i_rows)
            m.d.comb += head[c].eq(Mux(self.i_clear, 0, chunks[0][c]) + rows)
        rotated = [*chunks[1:], head]
        with m.If(self.i_valid & ~stall):
            m.d.sync += [dst.eq(src) for dst, src in zip(chunks, rotated, strict=True)]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(self.i_valid & self.i_last & ~stall):
            flat = Cat(r.as_value() for r in rotated)[: self._y * self._width]
            m.d.sync += [o.valid.eq(1), o.payload.eq(flat)]
        return m
