"""The read side of a memory-backed layer: its table memory and the sums its rows add into.

Both network cores read tables the same way: read ``s = g * B + b`` of a vector reads word
``(s << N_C) | j`` of each of the ``P`` lanes (``j`` the index of table ``g * P + p``), and the
data, a cycle later, adds into the accumulators. :class:`TableReader` is that path: a
:class:`~spikelut.hdl.storage.TableMemory` feeding a
:class:`~spikelut.hdl.accumulator.RowAccumulator`; the cores differ only in how they produce
the indices (all at once in :class:`~spikelut.hdl.bank.LUTBank`, a group at a time in the
serial core).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.accumulator import ChunkAccumulator, RowAccumulator
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.storage import TableMemory

__all__ = ["TableReader"]


class TableReader(wiring.Component):
    """The table memory of a memory-backed :class:`LayerParams` layer and its accumulators.

    Reading: ``rd_indices`` (the current group's ``P`` row indices, lane 0's in the low bits),
    ``rd_step`` (``g * B + b``) and ``rd_en``. The read's data arrives a cycle later, when the
    caller says what it was with ``s1_valid``, ``s1_clear`` (a read of group 0: start from
    zero) and ``s1_last`` (the final read of a vector); ``stall`` is high while a finished
    vector (or chunk) waits on ``o_stream`` and the next final read must be held. Writing:
    ``w_stream``, accepted while ``w_allow`` is high. ``o_stream``: ``params.out_layout``
    (the whole vector from a :class:`~spikelut.hdl.accumulator.RowAccumulator`, or chunks
    from a :class:`~spikelut.hdl.accumulator.ChunkAccumulator` for a chunked layer).
    """

    def __init__(self, params: LayerParams):
        self._p = params
        groups, beats, _ = params.geometry
        super().__init__(
            {
                "rd_indices": In(params.n_c * params.tables_per_cycle),
                "rd_step": In(range(groups * beats)),
                "rd_en": In(1),
                "s1_valid": In(1),
                "s1_clear": In(1),
                "s1_last": In(1),
                "stall": Out(1),
                "w_stream": In(params.write_signature),
                "w_allow": In(1),
                "o_stream": Out(stream.Signature(params.out_layout)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self._p
        groups, beats, _ = p.geometry
        m.submodules.memory = mem = TableMemory(
            storage=p.storage,
            tables=p.tables,
            table_width=p.table_width,
            tables_per_cycle=p.tables_per_cycle,
            lanes=p.lanes,
        )
        shape = dict(
            lanes=p.lanes,
            beats=beats,
            rows=p.tables_per_cycle,
            table_width=p.table_width,
            width=p.out_width,
        )
        if p.chunked:
            acc = ChunkAccumulator(groups=groups, **shape)
        else:
            acc = RowAccumulator(out_dim=p.out_dim, **shape)
        m.submodules.acc = acc
        wiring.connect(m, wiring.flipped(self.w_stream), mem.w_stream)
        wiring.connect(m, acc.o_stream, wiring.flipped(self.o_stream))
        m.d.comb += [
            mem.w_allow.eq(self.w_allow),
            mem.rd_indices.eq(self.rd_indices),
            mem.rd_step.eq(self.rd_step),
            mem.rd_en.eq(self.rd_en),
            acc.i_rows.eq(mem.rd_rows),
            acc.i_valid.eq(self.s1_valid),
            acc.i_clear.eq(self.s1_clear),
            acc.i_last.eq(self.s1_last),
            self.stall.eq(acc.stall),
        ]
        return m
