"""Spike routing: the indexer turns one input vector into the row index of every table.

Two bit-identical implementations share one output stream (``index_layout(N_C, N_T)``):

- :class:`ParallelIndexer` takes the whole vector in one transfer and compares
  ``x[a[i, r]] >> in_shift > x[b[i, r]] >> in_shift`` with ``N_T * N_C`` signed, strict
  comparators wired to their constant anchors; one vector per clock.
- :class:`TemporalIndexer` takes the vector as AER spike events, one per clock, in
  non-decreasing time order, the vector's final event flagged ``last``.

Value-to-spike mapping (what makes the two agree with ``spikelut.compiler.ir.golden.lut_indices``):
a larger value fires earlier. Neuron ``n`` with the ``W``-bit signed value ``x[n]`` spikes
once at time step ``t[n] = (2**(W-1) - 1) - x[n]`` (``0 .. 2**W - 1``, unsigned ``W`` bits).
``in_shift`` coarsens time: two spikes are simultaneous when ``t >> in_shift`` is equal,
which is exactly ``x >> in_shift`` being equal, because ``t >> s == K - 1 - (x >> s)`` with
``K = 2**(W-1-s)``. Bit ``r`` of index ``i`` is 1 iff ``a[i, r]`` spiked in a strictly
earlier (coarse) time step than ``b[i, r]``; simultaneous spikes give 0. A neuron that never
spikes counts as later than every spike (so a vector must send all ``D`` neurons to
reproduce ``lut_indices``); only a neuron's first spike in a vector counts.
:func:`spike_events` gives the event sequence of a value vector.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layouts import event_layout, index_layout, vector_layout
from spikelut.hdl.params import check_anchors, check_int

__all__ = [
    "LOGIC_COMPARE_MAX_WIDTH",
    "IndexerKind",
    "ParallelIndexer",
    "TemporalIndexer",
    "check_indexer",
    "greater",
    "make_indexer",
    "spike_events",
]


# Narrower comparisons than this are written as logic, not as ``>``: Yosys maps ``>`` to a
# carry chain, whose entry and exit cost an iCE40 two routed hops and a LUT more than the
# two levels of LUT4 a comparison of two 4-bit values needs.
LOGIC_COMPARE_MAX_WIDTH = 4


def greater(a: Value, b: Value) -> Value:
    """``a > b`` for two signed values of one width: as ``>`` when wider than
    :data:`LOGIC_COMPARE_MAX_WIDTH`, else as sum-of-products logic, LSB to MSB (the MSBs
    swapped, which orders two's complement)."""
    width = len(a)
    if width != len(b) or width > LOGIC_COMPARE_MAX_WIDTH:
        return a > b
    gt = Const(0, 1)
    for n in range(width):
        hi, lo = (b[n], a[n]) if n == width - 1 else (a[n], b[n])
        gt = (hi & ~lo) | (~(hi ^ lo) & gt)
    return gt


class IndexerKind(enum.Enum, shape=1):
    """Which implementation of the indexer a layer uses."""

    PARALLEL = 0
    TEMPORAL = 1


def spike_events(x, in_width: int) -> list[tuple[int, int]]:
    """The ``(neuron, time)`` events of value vector ``x``, sorted by time (stable).

    ``time = 2**(in_width-1) - 1 - x``: the largest value spikes first. Every neuron spikes
    exactly once; the caller flags the final event ``last``.
    """
    x = np.asarray(x, np.int64)
    times = ((1 << (in_width - 1)) - 1) - x
    order = np.argsort(times, kind="stable")
    return [(int(n), int(times[n])) for n in order]


def check_indexer(*, anchors_a, anchors_b, in_dim: int, in_width: int, in_shift: int = 0):
    """The parameters both indexers take, checked: ``(in_dim, in_width, in_shift, a, b)``
    (anchors as int64 arrays); ``ValueError`` naming the first bad one."""
    in_dim = check_int("in_dim", in_dim, 2)
    in_width = check_int("in_width", in_width, 1, 64)
    in_shift = check_int("in_shift", in_shift, 0, in_width - 1)
    a, b = check_anchors(anchors_a, anchors_b, in_dim)
    return in_dim, in_width, in_shift, a, b


class _IndexerBase(wiring.Component):
    """The parameters (:func:`check_indexer`) and ports both indexers share; a subclass names
    its input payload in :meth:`_input_layout`."""

    def __init__(self, *, anchors_a, anchors_b, in_dim: int, in_width: int, in_shift: int = 0):
        self._in_dim, self._in_width, self._in_shift, self._a, self._b = check_indexer(
            anchors_a=anchors_a,
            anchors_b=anchors_b,
            in_dim=in_dim,
            in_width=in_width,
            in_shift=in_shift,
        )
        super().__init__(
            {
                "i_stream": In(stream.Signature(self._input_layout())),
                "o_stream": Out(stream.Signature(index_layout(self.n_c, self.n_tables))),
            }
        )

    @property
    def anchors_a(self) -> np.ndarray:
        """The ``a`` anchors, shape (N_T, N_C) (a copy)."""
        return self._a.copy()

    @property
    def anchors_b(self) -> np.ndarray:
        """The ``b`` anchors, shape (N_T, N_C) (a copy)."""
        return self._b.copy()

    @property
    def in_dim(self) -> int:
        """D, the length of the input vector."""
        return self._in_dim

    @property
    def in_width(self) -> int:
        """W, the signed width of an input value."""
        return self._in_width

    @property
    def in_shift(self) -> int:
        """The arithmetic right shift applied to the values before comparing them."""
        return self._in_shift

    @property
    def n_tables(self) -> int:
        """N_T, the number of indices produced per vector."""
        return self._a.shape[0]

    @property
    def n_c(self) -> int:
        """N_C, the number of bits of one index."""
        return self._a.shape[1]

    def _pairs(self):
        """(table, bit, a, b) for every anchor pair, table-major, bit 0 first."""
        for i in range(self.n_tables):
            for r in range(self.n_c):
                yield i, r, int(self._a[i, r]), int(self._b[i, r])


class ParallelIndexer(_IndexerBase):
    """Indices of whole value vectors, one vector per clock, one cycle of latency.

    ``i_stream``: ``vector_layout(in_width, in_dim)``; ``o_stream``:
    ``index_layout(N_C, N_T)``. Bit ``r`` of index ``i`` is
    ``(x[a[i, r]] >> in_shift) > (x[b[i, r]] >> in_shift)`` (signed, strict).
    ``lockstep``: advance only when ``o_stream.ready`` is high (``i_stream.ready`` is
    ``o_stream.ready``, no bubble filled), so that every register's enable is that one
    signal: for stages chained under one enable (:mod:`spikelut.hdl.frozen`), whose consumer
    must not wait for ``valid`` before ``ready``.
    """

    def __init__(
        self,
        *,
        anchors_a,
        anchors_b,
        in_dim: int,
        in_width: int,
        in_shift: int = 0,
        lockstep: bool = False,
    ):
        self._lockstep = bool(lockstep)
        super().__init__(
            anchors_a=anchors_a,
            anchors_b=anchors_b,
            in_dim=in_dim,
            in_width=in_width,
            in_shift=in_shift,
        )

    def _input_layout(self):
        return vector_layout(self.in_width, self.in_dim)

    @property
    def kind(self) -> IndexerKind:
        """IndexerKind.PARALLEL."""
        return IndexerKind.PARALLEL

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        # shift_right narrows the value (">>" keeps its width): the comparator sees only the
        # bits that matter, and narrow ones become logic (greater). Unshifted inputs keep
        # the form (">> 0") every other core was verified with: the ECP5 netlist of a small
        # test core disagreed with the golden model when its comparators read the inputs
        # directly (not root-caused; the RTL and the iCE40 netlist agree).
        x = [
            i.payload[n].shift_right(self.in_shift) if self.in_shift else i.payload[n] >> 0
            for n in range(self.in_dim)
        ]
        bits = Cat(greater(x[a], x[b]) for _, _, a, b in self._pairs())
        if self._lockstep:
            m.d.comb += i.ready.eq(o.ready)
            with m.If(o.ready):
                m.d.sync += [o.payload.eq(bits), o.valid.eq(i.valid)]
            return m
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(i.valid & i.ready):
            m.d.sync += [o.payload.eq(bits), o.valid.eq(1)]
        return m


class TemporalIndexer(_IndexerBase):
    """Indices of vectors sent as AER spike events, one event per clock.

    ``i_stream``: ``event_layout(in_dim, in_width)``, events of one vector in
    non-decreasing ``time`` order, its final event with ``last`` set (a vector has at least
    one event); ``o_stream``: ``index_layout(N_C, N_T)``, one transfer per vector, one cycle
    after its ``last`` event. Spike semantics and the value mapping: see the module docstring.
    """

    def _input_layout(self):
        return event_layout(self.in_dim, self.in_width)

    @property
    def kind(self) -> IndexerKind:
        """IndexerKind.TEMPORAL."""
        return IndexerKind.TEMPORAL

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        d = self.in_dim
        n_pairs = self.n_tables * self.n_c
        ev = i.payload

        # Per neuron: spiked in an earlier time step / in the current one.
        early = Signal(d)
        cur = Signal(d)
        cur_bin = Signal(self.in_width - self.in_shift)
        # Per pair: the first-spike latch (b has spiked; a had spiked strictly before).
        decided = Signal(n_pairs)
        bit = Signal(n_pairs)

        ev_bin = ev.time[self.in_shift :]
        # Named signals, not expressions: every pair indexes them, and re-deriving an
        # expression per pair makes elaboration quadratic in the network size.
        hit = Signal(d)
        new_bin = Signal()
        early_eff = Signal(d)
        cur_next = Signal(d)
        fired = Signal(d)
        # After a reset early == cur == 0, so the first event needs no special case.
        m.d.comb += [
            hit.eq(1 << ev.neuron),
            new_bin.eq(ev_bin != cur_bin),
            early_eff.eq(Mux(new_bin, early | cur, early)),
            cur_next.eq(Mux(new_bin, 0, cur) | hit),
            fired.eq(early_eff | cur_next),
        ]
        decided_next, bit_next, final = [], [], []
        for k, (_, _, a, b) in enumerate(self._pairs()):
            first_b = hit[b] & ~decided[k]
            dn = decided[k] | hit[b]
            bn = Mux(first_b, early_eff[a], bit[k])
            decided_next.append(dn)
            bit_next.append(bn)
            # b never spiked: a wins iff it spiked at all
            final.append(Mux(dn, bn, fired[a]))

        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(i.valid & i.ready):
            with m.If(ev.last):
                m.d.sync += [
                    o.payload.eq(Cat(final)),
                    o.valid.eq(1),
                    early.eq(0),
                    cur.eq(0),
                    decided.eq(0),
                    bit.eq(0),
                ]
            with m.Else():
                m.d.sync += [
                    early.eq(early_eff),
                    cur.eq(cur_next),
                    cur_bin.eq(ev_bin),
                    decided.eq(Cat(decided_next)),
                    bit.eq(Cat(bit_next)),
                ]
        return m


def make_indexer(kind: IndexerKind, **params) -> ParallelIndexer | TemporalIndexer:
    """The indexer of ``kind`` built from the keyword parameters both implementations take."""
    if kind == IndexerKind.PARALLEL:
        return ParallelIndexer(**params)
    if kind == IndexerKind.TEMPORAL:
        return TemporalIndexer(**params)
    raise ValueError(f"indexer must be an IndexerKind, not {kind!r}")
