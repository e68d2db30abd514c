"""The parameters of one integer LUT layer in hardware, checked once, and their geometry.

:class:`LayerParams` is what every network core (:class:`~spikelut.hdl.layer.Network`,
:class:`~spikelut.hdl.serial_core.SerialNetwork`) is built from. Its constructor checks
every value and raises ``ValueError`` naming the first bad one, so that a core built from
checked parameters cannot fail: callers validate before anything is elaborated.

Geometry of a memory-backed table bank reading ``P`` tables per cycle and ``L`` outputs per
beat (:func:`bank_geometry`): ``G = ceil(N_T / P)`` groups of tables, ``B = ceil(Y / L)``
beats per group, ``G * B * 2**N_C`` words per lane memory; one inference every ``G * B``
cycles. The serial core indexes a group with ``C`` comparators over ``K`` cycles
(:func:`serial_geometry`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from amaranth.lib import stream

from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layouts import chunk_layout, vector_layout
from spikelut.hdl.params import check_anchors, check_int, check_tables, signed_width, sum_range
from spikelut.hdl.spram import SPRAM_DEPTH
from spikelut.hdl.storage import Storage, write_layout
from spikelut.hdl.vector import argmax_stages

__all__ = [
    "FROZEN_ARGMAX_LEVELS",
    "MIN_COPY_DIM",
    "LayerParams",
    "attention_cycles",
    "bank_geometry",
    "check_serial",
    "frozen_bank_stages",
    "frozen_fan_in",
    "frozen_latency",
    "network_cycles",
    "serial_geometry",
]

# below this many inputs the serial core's D:1 operand multiplexers are cheaper than copies
MIN_COPY_DIM = 16


def bank_geometry(n_tables: int, n_c: int, out_dim: int, tables_per_cycle: int, lanes: int):
    """``(groups G, beats B, depth)`` of a memory-backed bank (see the module docstring)."""
    groups = -(-n_tables // tables_per_cycle)
    beats = -(-out_dim // lanes)
    return groups, beats, groups * beats << n_c


def attention_cycles(
    earlier: int, n_tables: int, out_dim: int, tables_per_cycle: int, lanes: int
) -> int:
    """The table-bandwidth floor of one attention head for one token with ``earlier``
    positions before it in its context: it reads ``earlier x N_T`` rows of ``Y`` entries,
    ``P`` tables a cycle and ``L`` entries a beat, so ``earlier * G * B`` cycles
    (``G = ceil(N_T / P)``, ``B = ceil(Y / L)``; heads with their own lanes read in
    parallel). Averaged over a full window of ``C`` tokens: ``(C - 1) / 2 * G * B``."""
    groups, beats, _ = bank_geometry(n_tables, 0, out_dim, tables_per_cycle, lanes)
    return earlier * groups * beats


def serial_geometry(n_tables: int, n_c: int, out_dim: int, tables_per_cycle: int, lanes: int):
    """``(groups G, beats B, comparators C, index cycles K)`` of a serial-core layer:
    ``C = ceil(P * N_C / B)`` comparisons per clock index a group of ``P`` tables in
    ``K = ceil(P * N_C / C) <= B`` cycles, so indexing keeps up with the table reads."""
    groups, beats, _ = bank_geometry(n_tables, n_c, out_dim, tables_per_cycle, lanes)
    pairs = tables_per_cycle * n_c
    comparators = -(-pairs // beats)
    return groups, beats, comparators, -(-pairs // comparators)


def _input_bounds(in_bounds, in_width: int, in_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-element ``(lo, hi)`` of a layer's input: ``in_bounds`` or the full signed range."""
    full_lo, full_hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    if in_bounds is None:
        lo, hi = full_lo, full_hi
    else:
        try:
            lo, hi = in_bounds
        except (TypeError, ValueError):
            raise ValueError(f"in_bounds must be a pair (lo, hi), not {in_bounds!r}") from None
    lo = np.broadcast_to(np.asarray(lo, np.int64), (in_dim,))
    hi = np.broadcast_to(np.asarray(hi, np.int64), (in_dim,))
    if (lo > hi).any() or lo.min() < full_lo or hi.max() > full_hi:
        raise ValueError(
            f"in_bounds {int(lo.min())}..{int(hi.max())} must be ordered and within the "
            f"{in_width}-bit input range"
        )
    return lo, hi


@dataclass(frozen=True, eq=False)
class LayerParams:
    """One integer LUT layer ``y = sum_i T[i, j_i] (+ x if residual)`` as hardware.

    ``anchors_a``, ``anchors_b``: (N_T, N_C) input indices; ``tables``: (N_T, 2**N_C, Y)
    integers of ``table_width`` signed bits; ``in_dim`` D; ``in_width`` and ``out_width``:
    signed widths of an input and an output value (``out_width`` checked against the exact
    bound of the sums); ``in_shift``: arithmetic right shift before the comparators;
    ``residual``: add the input (Y == D, parallel indexer); ``in_bounds``: ``(lo, hi)``,
    scalars or per-element arrays, the values the input can take (default: the full
    ``in_width`` range), which bound a residual layer's output; ``storage``;
    ``tables_per_cycle`` P and ``lanes`` L (default 1 and Y; LOGIC storage reads everything
    at once); ``indexer``; ``residual_depth``: vectors buffered for the residual add
    (default: the fewest that keep the layer at its full rate); ``operand_memory``: the
    serial core's input copies (None: its own choice, see
    :class:`~spikelut.hdl.serial_core.SerialLayer`); ``chunked``: the layer streams its
    sums out ``L`` at a time (:func:`~spikelut.hdl.layouts.chunk_layout`, ``B`` chunks per
    vector) from accumulators in memory, for wide outputs (a language model's logits) on
    small devices: memory tables, not residual, the last layer of a core.

    The constructor normalises the defaults and raises ``ValueError`` naming the first bad
    value; the arrays are stored as int64 copies.
    """

    anchors_a: np.ndarray
    anchors_b: np.ndarray
    tables: np.ndarray
    in_dim: int
    in_width: int
    table_width: int
    out_width: int
    in_shift: int = 0
    residual: bool = False
    in_bounds: tuple | None = None
    storage: Storage = Storage.BRAM
    tables_per_cycle: int | None = None
    lanes: int | None = None
    indexer: IndexerKind = IndexerKind.PARALLEL
    residual_depth: int | None = None
    operand_memory: bool | None = None
    chunked: bool = False

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        in_dim = check_int("in_dim", self.in_dim, 2)
        in_width = check_int("in_width", self.in_width, 1, 64)
        put("in_dim", in_dim)
        put("in_width", in_width)
        put("in_shift", check_int("in_shift", self.in_shift, 0, in_width - 1))
        a, b = check_anchors(self.anchors_a, self.anchors_b, in_dim)
        if a.ndim != 2:
            raise ValueError(f"anchors must have shape (N_T, N_C), not {a.shape!r}")
        table_width = check_int("table_width", self.table_width, 2, 32)
        tables = check_tables(self.tables, table_width)
        n_t, rows, y = tables.shape
        if a.shape != (n_t, rows.bit_length() - 1):
            raise ValueError(
                f"tables of shape {tables.shape!r} do not match anchors of shape {a.shape!r}"
            )
        put("anchors_a", a)
        put("anchors_b", b)
        put("tables", tables)
        put("table_width", table_width)
        out_width = check_int("out_width", self.out_width, 1, 64)
        put("out_width", out_width)
        put("residual", bool(self.residual))
        try:
            put("storage", Storage(self.storage))
        except ValueError:
            raise ValueError(f"storage must be a Storage, not {self.storage!r}") from None
        try:
            put("indexer", IndexerKind(self.indexer))
        except ValueError:
            raise ValueError(f"indexer must be an IndexerKind, not {self.indexer!r}") from None
        self._check_rate(n_t, y)
        self._check_widths(y)
        if self.residual_depth is None:
            # enough for the vectors in flight between the fork and the add at full rate
            depth = 3 if self.storage == Storage.LOGIC else {1: 5, 2: 3}.get(self.bank_cycles, 2)
            put("residual_depth", depth)
        put("residual_depth", check_int("residual_depth", self.residual_depth, 1, 64))
        if self.operand_memory is not None:
            put("operand_memory", bool(self.operand_memory))
        put("chunked", bool(self.chunked))
        if self.chunked and (self.storage == Storage.LOGIC or self.residual):
            raise ValueError("a chunked layer reads memory tables and is not residual")

    @property
    def out_layout(self):
        """The payload of the layer's output stream: its whole vector
        (``vector_layout(out_width, Y)``), or for a chunked layer one chunk
        (``chunk_layout(out_width, L)``)."""
        if self.chunked:
            return chunk_layout(self.out_width, self.lanes)
        return vector_layout(self.out_width, self.out_dim)

    def _check_rate(self, n_t: int, y: int) -> None:
        p, l_ = self.tables_per_cycle, self.lanes
        if self.storage == Storage.LOGIC:
            if (p is not None and p != n_t) or (l_ is not None and l_ != y):
                raise ValueError(
                    f"LOGIC storage reads every table at once: tables_per_cycle and lanes must be "
                    f"N_T={n_t} and Y={y}, not {p!r} and {l_!r}"
                )
            p, l_ = n_t, y
        else:
            p = check_int("tables_per_cycle", 1 if p is None else p, 1, n_t)
            l_ = check_int("lanes", y if l_ is None else l_, 1, y)
        object.__setattr__(self, "tables_per_cycle", p)
        object.__setattr__(self, "lanes", l_)
        if self.storage == Storage.SPRAM and self.depth > SPRAM_DEPTH:
            raise ValueError(
                f"SPRAM lanes hold {SPRAM_DEPTH} words, this bank needs {self.depth}; "
                "raise tables_per_cycle or lanes"
            )

    def _check_widths(self, y: int) -> None:
        lo, hi = sum_range(self.tables)
        if self.residual:
            if y != self.in_dim:
                raise ValueError(
                    f"a residual layer needs Y == D, not Y={y!r} and D={self.in_dim!r}"
                )
            if self.indexer != IndexerKind.PARALLEL:
                raise ValueError(
                    "a residual layer needs the parallel indexer (events carry no values)"
                )
            in_lo, in_hi = _input_bounds(self.in_bounds, self.in_width, self.in_dim)
            lo, hi = int((lo + in_lo).min()), int((hi + in_hi).max())
            what = "residual sums"
        else:
            lo, hi = int(lo.min()), int(hi.max())
            what = "table sums"
        need = signed_width(lo, hi)
        if self.out_width < need:
            raise ValueError(
                f"out_width={self.out_width!r} cannot hold the {what} {lo}..{hi}; "
                f"use at least {need}"
            )

    def replace(self, **changes) -> LayerParams:
        """A checked copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    @property
    def n_tables(self) -> int:
        """N_T."""
        return self.tables.shape[0]

    @property
    def n_c(self) -> int:
        """N_C, the width of a row index."""
        return self.tables.shape[1].bit_length() - 1

    @property
    def out_dim(self) -> int:
        """Y."""
        return self.tables.shape[2]

    @property
    def geometry(self) -> tuple[int, int, int]:
        """``(groups G, beats B, depth)`` of the table memory (:func:`bank_geometry`)."""
        return bank_geometry(
            self.n_tables, self.n_c, self.out_dim, self.tables_per_cycle, self.lanes
        )

    @property
    def depth(self) -> int:
        """Words per lane memory (memory storage)."""
        return self.geometry[2]

    @property
    def bank_cycles(self) -> int:
        """Cycles the tables take to be read for one vector: 1 in logic, else ``G * B``."""
        if self.storage == Storage.LOGIC:
            return 1
        groups, beats, _ = self.geometry
        return groups * beats

    @property
    def cycles_per_inference(self) -> int:
        """Cycles between vectors of the layer at full rate: the slower of its tables and
        its indexer (a temporal indexer takes one spike event per clock)."""
        index = self.in_dim if self.indexer == IndexerKind.TEMPORAL else 1
        return max(index, self.bank_cycles)

    @property
    def write_signature(self) -> stream.Signature:
        """The table write port's stream signature (memory storage): one lane word per
        transfer, :func:`~spikelut.hdl.storage.write_layout`."""
        return stream.Signature(
            write_layout(self.table_width, self.tables_per_cycle, self.lanes, self.depth)
        )

    @property
    def memory_bits(self) -> int:
        """Table bits stored in memory (P lanes of ``depth`` words of L entries; 0 in logic)."""
        if self.storage == Storage.LOGIC:
            return 0
        return self.tables_per_cycle * self.depth * self.lanes * self.table_width


def check_serial(params: LayerParams, index: int = 0) -> None:
    """Raise ``ValueError`` when layer ``index`` cannot be a serial-core layer: a residual
    layer, tables in logic, or input copies asked for where they cannot keep up."""
    if params.residual:
        raise ValueError(f"layer {index} is residual; the serial core has no residual add")
    if params.storage == Storage.LOGIC:
        raise ValueError(
            f"layer {index}: the serial core reads tables from memory; LOGIC storage is not one"
        )
    groups, _, _, slots = serial_geometry(
        params.n_tables, params.n_c, params.out_dim, params.tables_per_cycle, params.lanes
    )
    if params.operand_memory and params.in_dim + 1 > groups * slots:
        raise ValueError(
            f"layer {index}: operand_memory needs D + 1 <= G * K: copying the "
            f"{params.in_dim} inputs would outlast the {groups * slots} index cycles; lower "
            "tables_per_cycle or lanes, or read the operands through multiplexers"
        )


def network_cycles(layers) -> int:
    """Cycles between input vectors of a chain of layers at full rate: the slowest layer's
    (the serial core reads at the same rate as the bank: ``G * B``)."""
    return max(p.cycles_per_inference for p in layers)


def frozen_bank_stages(fan_in: int) -> int:
    """Register stages of a frozen (logic, pipelined) bank whose widest output column sums
    ``fan_in`` tables (:func:`frozen_fan_in`): one per level of the balanced adder tree, the
    rows read combinationally into the first, ``ceil(log2(fan_in))`` (1 for a fan-in of 0
    or 1: the row itself registered)."""
    return max(1, (fan_in - 1).bit_length())


def frozen_fan_in(tables: np.ndarray) -> int:
    """The most tables any output column of a frozen bank adds up: per column, the tables
    whose entries in it are not all equal (a constant column is folded into another table's
    row, or is the column's whole sum, and has no adder); ``tables`` (N_T, rows, Y)."""
    varies = tables.min(axis=1) != tables.max(axis=1)
    return int(varies.sum(axis=0).max(initial=0))


# The frozen core's argmax registers after every comparator level. One level (a signed
# compare of the logits' width on the carry chain, then the index/value multiplexers) is
# about as deep as one level of the bank's adder tree or the indexer's comparators, so the
# argmax no longer sets the clock. Measured on the UP5K (64x4 3-bit digits core pruned to 32
# tables a class, 10 classes of 7 bits; Yosys + nextpnr-ice40, seed 1): the one-cycle tree
# 18.8 MHz in 4,105 logic cells; two levels a register 35.7 MHz, 4,172; one level 54.1 MHz,
# 4,324 (+5 %: mostly the vector carried alongside, 3 x 70 flip-flops), where the critical
# path is the indexer's comparators, not the argmax. Latency: ceil(log2 Y) cycles instead of
# 1; the core still takes a vector every clock.
FROZEN_ARGMAX_LEVELS = 1


def frozen_latency(layers, *, argmax: bool = True) -> int:
    """Cycles from the cycle an input vector is offered to a frozen core
    (:mod:`spikelut.hdl.frozen`) to the cycle its result is taken, ``o_stream.ready`` held
    high (as :func:`spikelut.compiler.backend.latency.measure_latency` counts): one more than
    its register stages, which are per layer the comparators' and
    :func:`frozen_bank_stages`, then the pipelined argmax's (a register after every
    :data:`FROZEN_ARGMAX_LEVELS` comparator levels of its tree over the ``Y`` classes:
    :func:`~spikelut.hdl.vector.argmax_stages`, ``max(1, ceil(log2 Y))`` at one level per
    stage). The core takes a vector every clock whatever its latency."""
    stages = sum(1 + frozen_bank_stages(frozen_fan_in(p.tables)) for p in layers)
    if argmax:
        stages += argmax_stages(layers[-1].out_dim, FROZEN_ARGMAX_LEVELS)
    return stages + 1
