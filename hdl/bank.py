"""LUT synapse bank: sums one selected row per table into ``Y`` accumulators.

For the ``N_T`` indices of one input vector the bank computes ``y[c] = sum_i T[i, j_i, c]``
exactly (the output width comes from :class:`~spikelut.hdl.layer_params.LayerParams`, which
checked it against the tables). Storage kinds (:class:`~spikelut.hdl.storage.Storage`):

- ``LOGIC``: the tables are constant logic, every table is read at once, one inference per
  clock (one cycle of latency); no write port.
- ``LUTRAM``, ``BRAM`` and ``SPRAM``: ``P`` tables per cycle (``tables_per_cycle``), ``L``
  outputs of a row per beat (``lanes``): ``ceil(N_T/P) * ceil(Y/L)`` cycles per inference,
  consecutive inferences back to back, through a :class:`~spikelut.hdl.reader.TableReader`
  (memory layout in :mod:`spikelut.hdl.storage`). A write port
  ``w_stream`` (re)loads the tables at run time.

A residual layer's bank wraps its sums to the output width (two's complement): they are
exact again after the residual add brings the value into range.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.layouts import index_layout, vector_layout
from spikelut.hdl.params import tree_sum
from spikelut.hdl.reader import TableReader
from spikelut.hdl.storage import Storage

__all__ = ["LUTBank"]


class LUTBank(wiring.Component):
    """Sum of the selected rows of the ``N_T`` tables of a :class:`LayerParams` layer.

    Ports: ``i_stream`` ``index_layout(N_C, N_T)``; ``o_stream`` ``params.out_layout`` (the
    sums, or for a chunked layer their chunks); memory kinds also ``w_stream``
    (:func:`~spikelut.hdl.storage.write_layout`), accepted only while no inference is in
    flight. For SPRAM the tables give the shape only: contents are loaded through
    ``w_stream``.
    """

    def __init__(self, params: LayerParams):
        self._p = params
        ports = {
            "i_stream": In(stream.Signature(index_layout(params.n_c, params.n_tables))),
            "o_stream": Out(stream.Signature(params.out_layout)),
        }
        if params.storage != Storage.LOGIC:
            ports["w_stream"] = In(params.write_signature)
        super().__init__(ports)

    @property
    def params(self) -> LayerParams:
        """The layer the bank holds the tables of."""
        return self._p

    def elaborate(self, platform):
        if self._p.storage == Storage.LOGIC:
            return self._elaborate_logic()
        return self._elaborate_memory()

    def _elaborate_memory(self):
        m = Module()
        p = self._p
        i, o, w = self.i_stream, self.o_stream, self.w_stream
        n_c, p_ = p.n_c, p.tables_per_cycle
        groups, beats, _ = p.geometry
        steps = groups * beats

        busy = Signal()
        step = Signal(range(steps))  # g * B + b, the high part of every lane's address
        beat = Signal(range(beats))
        idx = Signal(groups * p_ * n_c)  # indices, shifted P tables at a time
        s1_valid = Signal()  # a read issued last cycle: its data is on the lane outputs
        s1_clear = Signal()  # ... of group 0: the accumulators start from zero
        s1_last = Signal()  # ... the final read of an inference
        last_step = step == steps - 1

        m.submodules.reader = reader = TableReader(p)
        wiring.connect(m, reader.o_stream, wiring.flipped(o))
        wiring.connect(m, wiring.flipped(w), reader.w_stream)
        # An idle bank issues an inference's first read in the cycle it takes the indices
        # (read straight from the payload); a bank that takes them with its previous
        # inference's last read issues the first read the next cycle (back to back). A
        # table write waits while indices are offered: the first read may be this cycle.
        # The read address follows the payload whenever the bank is idle (it matters only
        # when a read is enabled): selecting it by the take instead made YoWASP Yosys
        # assert in ABC_OPS_REINTEGRATE on ECP5.
        issue = busy & ~reader.stall
        start = i.valid & ~busy & ~reader.stall  # an idle take: read 0 now
        first_indices = i.payload.as_value()[: p_ * n_c]
        m.d.comb += [
            i.ready.eq(~reader.stall & (~busy | last_step)),
            reader.w_allow.eq(~busy & ~s1_valid & ~i.valid),
            reader.rd_indices.eq(Mux(busy, idx[: p_ * n_c], first_indices)),
            reader.rd_step.eq(Mux(busy, step, 0)),
            reader.rd_en.eq(issue | start),
            reader.s1_valid.eq(s1_valid),
            reader.s1_clear.eq(s1_clear),
            reader.s1_last.eq(s1_last),
        ]

        with m.If(issue):
            m.d.sync += step.eq(Mux(last_step, 0, step + 1))
            with m.If(beat == beats - 1):
                m.d.sync += [beat.eq(0), idx.eq(idx >> (p_ * n_c))]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
            with m.If(last_step):
                m.d.sync += busy.eq(0)
        with m.If(start):
            # read 0 is issued: the bank goes on from read 1 (if there is one)
            m.d.sync += [busy.eq(steps > 1), step.eq(1 % steps)]
            if beats > 1:
                m.d.sync += [beat.eq(1), idx.eq(i.payload)]
            else:
                m.d.sync += [beat.eq(0), idx.eq(i.payload.as_value() >> (p_ * n_c))]
        with m.Elif(i.valid & i.ready):
            m.d.sync += [busy.eq(1), step.eq(0), beat.eq(0), idx.eq(i.payload)]
        with m.If(~reader.stall):
            m.d.sync += [
                s1_valid.eq(issue | start),
                s1_clear.eq(start | (step < beats)),
                s1_last.eq(Mux(start, steps == 1, last_step)),
            ]
        return m

    def _elaborate_logic(self):
        m = Module()
        i, o = self.i_stream, self.o_stream
        tables = self._p.tables
        n_t, rows, y = tables.shape
        row_layout = vector_layout(self._p.table_width, y)
        sel = []
        for t in range(n_t):
            row = Signal(row_layout, name=f"row{t}")
            with m.Switch(i.payload[t]):
                for j in range(rows):
                    with m.Case(j):
                        m.d.comb += row.eq(row_layout.const(tables[t, j].tolist()))
            sel.append(row)
        total = [tree_sum(row[c] for row in sel) for c in range(y)]
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(i.valid & i.ready):
            m.d.sync += o.valid.eq(1)
            m.d.sync += [o.payload[c].eq(total[c]) for c in range(y)]
        return m
