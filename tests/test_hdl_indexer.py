"""The two indexers against ``spikelut.compiler.ir.golden.lut_indices``, index by index."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator
from helpers_sim import ints, recv, run, send

from spikelut.compiler.ir.golden import lut_indices
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.indexer import (
    LOGIC_COMPARE_MAX_WIDTH,
    IndexerKind,
    ParallelIndexer,
    TemporalIndexer,
    check_indexer,
    greater,
    make_indexer,
    spike_events,
)


def events_payloads(events):
    """Stream payloads of one vector's ``(neuron, time)`` events, the last one flagged."""
    return [
        {"neuron": n, "time": t, "last": int(k == len(events) - 1)}
        for k, (n, t) in enumerate(events)
    ]


def shuffled_ties(events, rng):
    """The same events with simultaneous ones in a random order (still time-ordered)."""
    events = list(events)
    rng.shuffle(events)
    return sorted(events, key=lambda e: e[1])


def simulate(dut, payloads, count, rng):
    got = []

    async def tb_in(ctx):
        await send(ctx, dut.i_stream, payloads, rng, 0.3)

    async def tb_out(ctx):
        got.extend(await recv(ctx, dut.o_stream, count, rng, 0.5))

    run(dut, tb_in, tb_out)
    return np.array([ints(p) for _, p in got])


@pytest.mark.parametrize("in_shift", [0, 1, 3])
@pytest.mark.parametrize("kind", list(IndexerKind))
def test_indexer_matches_golden(kind, in_shift):
    rng = np.random.default_rng(10 + in_shift)
    d, w = 9, 5
    layer = LUTLayer.random(in_dim=d, out_dim=1, n_tables=5, n_c=6, rng=rng)
    # few distinct values, so ties (and ties created by the shift) are common
    x = rng.integers(-(1 << (w - 1)), 1 << (w - 1), (40, d))
    x[::3] = rng.integers(-2, 2, (len(x[::3]), d))
    x[1] = (1 << (w - 1)) - 1  # all tied at the extremes
    x[2] = -(1 << (w - 1))
    dut = make_indexer(
        kind, anchors_a=layer.a, anchors_b=layer.b, in_dim=d, in_width=w, in_shift=in_shift
    )
    assert dut.kind == kind
    if kind == IndexerKind.PARALLEL:
        payloads = [v.tolist() for v in x]
    else:
        payloads = []
        for v in x:
            payloads += events_payloads(shuffled_ties(spike_events(v, w), rng))
    got = simulate(dut, payloads, len(x), rng)
    np.testing.assert_array_equal(got, lut_indices(layer, x, in_shift))


def test_temporal_silent_neurons_fire_after_everything():
    rng = np.random.default_rng(5)
    d, w = 8, 4
    layer = LUTLayer.random(in_dim=d, out_dim=1, n_tables=6, n_c=4, rng=rng)
    x = rng.integers(-(1 << (w - 1)), 1 << (w - 1), (30, d))
    silent = rng.random((30, d)) < 0.3
    silent[:, 0] = False  # at least one event per vector
    payloads = []
    for v, s in zip(x, silent, strict=True):
        events = [(n, t) for n, t in spike_events(v, w) if not s[n]]
        payloads += events_payloads(events)
    dut = TemporalIndexer(anchors_a=layer.a, anchors_b=layer.b, in_dim=d, in_width=w, in_shift=1)
    got = simulate(dut, payloads, len(x), rng)
    # a silent neuron is below every value, even after the shift
    np.testing.assert_array_equal(got, lut_indices(layer, np.where(silent, -(1 << 40), x), 1))


def test_temporal_only_first_spike_counts():
    a, b = np.array([[0]]), np.array([[1]])
    dut = TemporalIndexer(anchors_a=a, anchors_b=b, in_dim=2, in_width=4)
    # b at 3, a at 5, b again at 7: b was first, so the bit is 0; then a first: 1
    payloads = events_payloads([(1, 3), (0, 5), (1, 7)]) + events_payloads([(0, 2), (1, 2), (0, 2)])
    payloads += events_payloads([(0, 1), (0, 4), (1, 4)])
    got = simulate(dut, payloads, 3, np.random.default_rng(0))
    assert got.ravel().tolist() == [0, 0, 1]


def test_spike_events_order_and_times():
    ev = spike_events([3, -4, 3, 0], 4)
    assert ev == [(0, 4), (2, 4), (3, 7), (1, 11)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_dim": 1}, "in_dim must be >= 2, not 1"),
        ({"in_width": 0}, "in_width must be 1..64, not 0"),
        ({"in_shift": 4}, "in_shift must be 0..3, not 4"),
        ({"anchors_a": np.array([[0, 9]])}, r"anchors_a\[0\]\[1\] = 9"),
        ({"anchors_b": np.array([[0, 2]])}, "compares neuron 0 with itself"),
        ({"anchors_b": np.array([[1]])}, "must both have shape"),
    ],
)
def test_indexer_parameters_reject_bad_values(kwargs, message):
    """Both indexers check their parameters with :func:`check_indexer` before building."""
    params = dict(anchors_a=np.array([[0, 1]]), anchors_b=np.array([[1, 2]]), in_dim=3, in_width=4)
    params.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("..", r"\.\.")):
        check_indexer(**params)
    with pytest.raises(TypeError):
        check_indexer(params["anchors_a"], params["anchors_b"], 3, 4)  # keyword-only


@pytest.mark.parametrize("cls", [ParallelIndexer, TemporalIndexer])
def test_indexer_parameters_are_keyword_only(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # after self
    names = ["anchors_a", "anchors_b", "in_dim", "in_width", "in_shift"]
    if cls is ParallelIndexer:
        names.append("lockstep")
    assert [p.name for p in params] == names
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)


def test_indexer_properties_are_read_only():
    a, b = np.array([[0]]), np.array([[1]])
    dut = ParallelIndexer(anchors_a=a, anchors_b=b, in_dim=2, in_width=3)
    assert (dut.in_dim, dut.in_width, dut.in_shift, dut.n_tables, dut.n_c) == (2, 3, 0, 1, 1)
    with pytest.raises(AttributeError):
        dut.in_width = 4
    # and it indexes with what it reports
    x = np.array([[3, -4], [-4, 3], [1, 1]])
    got = simulate(dut, x.tolist(), len(x), np.random.default_rng(1))
    layer = LUTLayer(a, b, np.zeros((1, 2, 1), np.int64), in_dim=2)
    np.testing.assert_array_equal(got, lut_indices(layer, x, 0))


@pytest.mark.parametrize("width", range(1, LOGIC_COMPARE_MAX_WIDTH + 2))
def test_greater_is_signed_strict_comparison_for_every_pair(width):
    # every pair of `width`-bit signed values: the logic form (narrow) and `>` (wider) alike
    a, b = Signal(signed(width)), Signal(signed(width))
    m = Module()
    out = Signal()
    m.d.comb += out.eq(greater(a, b))
    values = range(-(1 << (width - 1)), 1 << (width - 1))
    wrong = []

    async def bench(ctx):
        for u in values:
            for v in values:
                ctx.set(a, u)
                ctx.set(b, v)
                if ctx.get(out) != int(u > v):
                    wrong.append((u, v))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert wrong == []
