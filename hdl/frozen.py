"""The frozen core: every table in logic, the whole network pipelined, one vector per clock.

A frozen layer is the parallel indexer (:class:`~spikelut.hdl.indexer.ParallelIndexer`:
``N_T * N_C`` comparators, registered) followed by a :class:`FrozenBank`: each table is a
constant function of its ``N_C`` index bits (one LUT4 per output bit for ``N_C <= 4`` on an
iCE40; every further index bit doubles the LUT4s of a bit and adds the multiplexers that
join them), read combinationally into a balanced adder tree per output column with a
register after every level. The rows are not registered themselves: a register fed by a
multiplexer of constants becomes, in Yosys, a flip-flop with a logic-driven sync reset, one
control set per row pattern, and nextpnr-ice40 found no legal placement for a 160-table
core of 5,021 cells so mapped (about 1,085 such flip-flops); read into the adders the same
core packs in 4,625 cells and places. The network ends with the
:class:`~spikelut.hdl.vector.Argmax`, pipelined the same way: a register after every level
of its comparator tree (:data:`~spikelut.hdl.layer_params.FROZEN_ARGMAX_LEVELS`), so no
stage of the core is deeper than a table and one adder, or one compare-and-select.

Every stage advances on one enable, computed once from the output side
(``~o_stream.valid | o_stream.ready``, :func:`_connect_in_lockstep`): with
``o_stream.ready`` high the core takes a new vector every clock. Its latency is
:func:`~spikelut.hdl.layer_params.frozen_latency`. There are no table write ports: the
tables are the gateware (a frozen core is not reloadable). No residual layers, no AER input.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Const, Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.indexer import IndexerKind, ParallelIndexer
from spikelut.hdl.layer import check_classifier_chain
from spikelut.hdl.layer_params import (
    FROZEN_ARGMAX_LEVELS,
    LayerParams,
    frozen_bank_stages,
    frozen_fan_in,
    frozen_latency,
    network_cycles,
)
from spikelut.hdl.layouts import index_layout, label_layout, vector_layout
from spikelut.hdl.params import signed_width
from spikelut.hdl.storage import Storage
from spikelut.hdl.vector import Argmax

__all__ = ["FrozenBank", "FrozenLayer", "FrozenNetwork", "check_frozen"]


def check_frozen(params: LayerParams, index: int = 0) -> None:
    """Raise ``ValueError`` when layer ``index`` cannot be a frozen layer: tables in memory,
    a residual add or the temporal indexer."""
    if params.storage != Storage.LOGIC:
        raise ValueError(
            f"layer {index}: the frozen core keeps its tables in logic, not "
            f"{params.storage.name.lower()}"
        )
    if params.residual:
        raise ValueError(f"layer {index} is residual; the frozen core has no residual add")
    if params.indexer != IndexerKind.PARALLEL:
        raise ValueError(f"layer {index}: the frozen core takes whole vectors, not AER events")


class FrozenBank(wiring.Component):
    """``y[c] = sum_i T[i, j_i, c]`` of a LOGIC-storage layer, pipelined: the rows looked up
    combinationally, then one register per adder-tree level (:func:`frozen_bank_stages` of
    :func:`frozen_fan_in` in all; a column of one table registers its row).

    Each output column has its own balanced tree over the tables whose column varies
    (:attr:`column_inputs`); the constant columns' sum is folded into the first varying
    table's row (a constant function of its index bits like the rest), so a
    constant column costs no adder; a column with fewer inputs than the widest passes its
    sum through delay registers to keep every column in step. Ports: ``i_stream``
    ``index_layout(N_C, N_T)``, ``o_stream`` ``vector_layout(out_width, Y)``. One vector per
    clock while ``o_stream.ready`` is high; every register is as wide as the exact range of
    the partial sum it holds. The registers advance when ``~o_stream.valid |
    o_stream.ready``; with ``lockstep`` when ``o_stream.ready`` (as
    :class:`~spikelut.hdl.indexer.ParallelIndexer`'s ``lockstep``).
    """

    def __init__(self, params: LayerParams, *, lockstep: bool = False):
        check_frozen(params)
        self._p = params
        self._lockstep = bool(lockstep)
        super().__init__(
            {
                "i_stream": In(stream.Signature(index_layout(params.n_c, params.n_tables))),
                "o_stream": Out(stream.Signature(params.out_layout)),
            }
        )

    @property
    def stages(self) -> int:
        """Register stages from an index to its sums."""
        return frozen_bank_stages(frozen_fan_in(self._p.tables))

    @property
    def column_inputs(self) -> tuple[tuple[int, ...], ...]:
        """Per output column, the tables its adder tree sums (those whose column varies)."""
        t = self._p.tables
        varies = t.min(axis=1) != t.max(axis=1)  # (N_T, Y)
        return tuple(tuple(np.flatnonzero(varies[:, c]).tolist()) for c in range(t.shape[2]))

    def elaborate(self, platform):
        m = Module()
        p = self._p
        i, o = self.i_stream, self.o_stream
        tables = p.tables
        n_t, rows, y = tables.shape
        inputs = self.column_inputs
        advance = Signal()
        m.d.comb += [
            advance.eq(o.ready if self._lockstep else ~o.valid | o.ready),
            i.ready.eq(advance),
        ]

        # the constant columns' sum, per output column, added to its first varying table
        lo, hi = tables.min(axis=1), tables.max(axis=1)  # (N_T, Y)
        const = [int(lo[:, c].sum() - lo[inputs[c], c].sum()) for c in range(y)]
        # per column, its tree's leaves (signal, lo, hi): the exact range of what each holds;
        # the rows combinational, registered only as sums (the module docstring says why)
        leaves = [[] for _ in range(y)]
        for t in range(n_t):
            rows_t = []  # (column, row, constant added)
            for c in range(y):
                if t not in inputs[c]:
                    continue
                k = const[c] if t == inputs[c][0] else 0
                a, b = int(lo[t, c]) + k, int(hi[t, c]) + k
                row = Signal(signed(signed_width(a, b)), name=f"row{t}_{c}")
                rows_t.append((c, row, k))
                leaves[c].append((row, a, b))
            if rows_t:
                with m.Switch(i.payload[t]):
                    for j in range(rows):
                        with m.Case(j):
                            m.d.comb += [r.eq(int(tables[t, j, c]) + k) for c, r, k in rows_t]
        valid = [i.valid]
        for level in range(1, self.stages + 1):
            for c in range(y):
                nodes, nxt = leaves[c], []
                for k in range(0, len(nodes), 2):
                    pair = nodes[k : k + 2]
                    a, b = sum(n[1] for n in pair), sum(n[2] for n in pair)
                    kind = "add" if len(pair) == 2 else "dly"
                    reg = Signal(
                        signed(signed_width(a, b)),
                        name=f"{kind}{level}_{k // 2}_{c}",
                        reset_less=True,
                    )
                    with m.If(advance):
                        m.d.sync += reg.eq(sum(n[0] for n in pair))
                    nxt.append((reg, a, b))
                leaves[c] = nxt
            v = Signal(name=f"valid{level}")
            with m.If(advance):
                m.d.sync += v.eq(valid[-1])
            valid.append(v)
        m.d.comb += o.valid.eq(valid[-1])
        for c in range(y):
            m.d.comb += o.payload[c].eq(leaves[c][0][0] if leaves[c] else Const(const[c]))
        return m


class FrozenLayer(wiring.Component):
    """One frozen layer: a :class:`~spikelut.hdl.indexer.ParallelIndexer` (``indexer``) into
    a :class:`FrozenBank` (``bank``). Ports: ``i_stream`` ``vector_layout(in_width, D)``,
    ``o_stream`` ``vector_layout(out_width, Y)``."""

    def __init__(self, params: LayerParams):
        check_frozen(params)
        self._p = params
        super().__init__(
            {
                "i_stream": In(stream.Signature(vector_layout(params.in_width, params.in_dim))),
                "o_stream": Out(stream.Signature(params.out_layout)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        stages = _frozen_stages(m, self._p, "")
        _connect_in_lockstep(
            m, stages, wiring.flipped(self.i_stream), wiring.flipped(self.o_stream)
        )
        return m


def _frozen_stages(m: Module, p: LayerParams, prefix: str) -> list[wiring.Component]:
    """Add a frozen layer's indexer and bank to ``m`` as ``{prefix}indexer`` and
    ``{prefix}bank``, both in lockstep; return them in stream order."""
    m.submodules[f"{prefix}indexer"] = idx = ParallelIndexer(
        anchors_a=p.anchors_a,
        anchors_b=p.anchors_b,
        in_dim=p.in_dim,
        in_width=p.in_width,
        in_shift=p.in_shift,
        lockstep=True,
    )
    m.submodules[f"{prefix}bank"] = bank = FrozenBank(p, lockstep=True)
    return [idx, bank]


def _connect_in_lockstep(m: Module, stages, i_stream, o_stream) -> None:
    """Chain ``stages`` (stream components built with ``lockstep``: each advances when its
    ``o_stream.ready`` is high) from ``i_stream`` to ``o_stream`` under one enable.

    The enable is ``go = ~last.valid | o_stream.ready``, computed once and given to the last
    stage as its ``ready``; a lockstep stage's ``i_stream.ready`` is its ``o_stream.ready``,
    so ``go`` reaches every stage by wire, and every register of the core has the same
    enable. Letting each stage fill its own bubbles instead (``~o.valid | o.ready`` per
    stage) chains one LUT level per stage between the output's ``ready`` and the first
    stage's register enables, each level fanning out to every register of its stage: that
    chain was the critical path of the large frozen cores (77.7 MHz against 107.9 in lockstep
    for 192 tables on the ECP5-85). ``go`` still lets a consumer wait for ``valid`` before
    raising ``ready``: with the last stage empty the core advances on its own.
    """
    wiring.connect(m, i_stream, stages[0].i_stream)
    for a, b in itertools.pairwise(stages):
        wiring.connect(m, a.o_stream, b.i_stream)
    last = stages[-1].o_stream
    m.d.comb += [
        last.ready.eq(~last.valid | o_stream.ready),
        o_stream.valid.eq(last.valid),
        o_stream.payload.eq(last.payload),
    ]


class FrozenNetwork(wiring.Component):
    """A chain of :class:`FrozenLayer` s, optionally followed by the argmax, bit-exact with
    :func:`spikelut.compiler.ir.golden.run_classifier`.

    ``layers``: checked :class:`LayerParams`, LOGIC storage, not residual, parallel indexer
    (:func:`check_frozen`); ``argmax``: end with the argmax. Ports as
    :class:`~spikelut.hdl.layer.Network`'s without any ``w{k}_stream``: ``i_stream`` (layer
    0's vector), ``o_stream`` (``label_layout(Y, out_width)`` with the argmax, else the last
    layer's vector).
    """

    def __init__(self, *, layers: Sequence[LayerParams], argmax: bool = True):
        check_classifier_chain(layers)
        for k, p in enumerate(layers):
            check_frozen(p, k)
        self._layers = tuple(layers)
        self._argmax = bool(argmax)
        first, last = self._layers[0], self._layers[-1]
        if self._argmax:
            out = label_layout(last.out_dim, last.out_width)
        else:
            out = vector_layout(last.out_width, last.out_dim)
        super().__init__(
            {
                "i_stream": In(stream.Signature(vector_layout(first.in_width, first.in_dim))),
                "o_stream": Out(stream.Signature(out)),
            }
        )

    @property
    def layers(self) -> tuple[LayerParams, ...]:
        """The layers' parameters, in order."""
        return self._layers

    @property
    def argmax(self) -> bool:
        """True when the network ends with the argmax."""
        return self._argmax

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive inputs at full rate: 1."""
        return network_cycles(self._layers)

    @property
    def latency(self) -> int:
        """Cycles from a vector offered to its result (:func:`frozen_latency`)."""
        return frozen_latency(self._layers, argmax=self._argmax)

    def elaborate(self, platform):
        m = Module()
        stages = []
        for k, p in enumerate(self._layers):
            stages += _frozen_stages(m, p, f"layer{k}_")
        if self._argmax:
            last = self._layers[-1]
            m.submodules.argmax = head = Argmax(
                dim=last.out_dim,
                width=last.out_width,
                levels_per_stage=FROZEN_ARGMAX_LEVELS,
                lockstep=True,
            )
            stages.append(head)
        _connect_in_lockstep(
            m, stages, wiring.flipped(self.i_stream), wiring.flipped(self.o_stream)
        )
        return m
