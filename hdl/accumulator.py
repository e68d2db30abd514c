"""Summing table rows read ``L`` outputs at a time into the output vector.

A memory-backed bank reads, per cycle, one ``L``-entry chunk of a row from each of its ``P``
lanes; over ``G * B`` reads (``G`` table groups, ``B`` beats of ``L`` outputs) it has seen
every selected row of every table. :class:`RowAccumulator` adds each read's ``P`` chunks
into the right ``L`` of ``B * L`` accumulators (registers) and offers the finished vector on
a stream. :class:`ChunkAccumulator` keeps the ``B`` chunks of accumulators in a memory and
streams each chunk out as soon as the last group's read completes it: no register holds the
whole vector, which a 256-logit language-model output could not afford on a small device.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layouts import chunk_layout, vector_layout
from spikelut.hdl.params import tree_sum

__all__ = ["ChunkAccumulator", "RowAccumulator"]


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


class ChunkAccumulator(wiring.Component):
    """Accumulates ``P`` row chunks of ``L`` entries per read into ``B`` chunks of ``L``
    ``width``-bit sums held in memory, streaming each chunk out when it is complete.

    Inputs as :class:`RowAccumulator`'s (``i_valid``, ``i_clear``, ``i_last``, ``i_rows``);
    reads arrive group by group, ``B`` beats each, ``G`` groups a vector. A read of the last
    group completes its chunk, which goes out on ``o_stream``
    (:func:`~spikelut.hdl.layouts.chunk_layout`, ``last`` on beat ``B - 1``) instead of back
    into memory; ``stall`` holds such a read while the previous chunk waits on ``o_stream``.

    The memory is read one cycle ahead, at the beat the next read will have (the beat
    counter's next value), with a read port transparent to the write port, so a chunk
    written this cycle is read back correctly the next (``B = 1``).
    """

    def __init__(
        self,
        *,
        groups: int,
        lanes: int,
        beats: int,
        rows: int,
        table_width: int,
        width: int,
    ):
        self._groups, self._l, self._beats, self._width = groups, lanes, beats, width
        super().__init__(
            {
                "i_valid": In(1),
                "i_clear": In(1),
                "i_last": In(1),
                "i_rows": In(data.ArrayLayout(vector_layout(table_width, lanes), rows)),
                "stall": Out(1),
                "o_stream": Out(stream.Signature(chunk_layout(width, lanes))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        o = self.o_stream
        chunk = vector_layout(self._width, self._l)
        m.submodules.mem = mem = memory.Memory(shape=chunk, depth=self._beats, init=[])
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=(wp,))
        beat = Signal(range(self._beats))
        group = Signal(range(self._groups))
        final = group == self._groups - 1
        stall = self.i_valid & final & o.valid & ~o.ready
        take = self.i_valid & ~stall
        last_beat = beat == self._beats - 1
        next_beat = Mux(take, Mux(last_beat, 0, beat + 1), beat)
        total = Signal(chunk)
        for c in range(self._l):
            rows = tree_sum(row[c] for row in self.i_rows)
            m.d.comb += total[c].eq(Mux(self.i_clear, 0, rp.data[c]) + rows)
        m.d.comb += [
            self.stall.eq(stall),
            rp.addr.eq(next_beat),
            rp.en.eq(1),
            wp.addr.eq(beat),
            wp.data.eq(total),
            wp.en.eq(take & ~final),
        ]
        with m.If(take):
            m.d.sync += beat.eq(next_beat)
            with m.If(self.i_last):
                m.d.sync += group.eq(0)
            with m.Elif(last_beat):
                m.d.sync += group.eq(group + 1)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(take & final):
            m.d.sync += [o.valid.eq(1), o.payload.values.eq(total), o.payload.last.eq(last_beat)]
        return m
