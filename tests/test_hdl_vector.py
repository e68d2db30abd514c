"""Residual add, argmax and broadcast, alone, under random stalls and back-pressure."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_sim import ints, recv, run, send, stream_through
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikelut.compiler.ir.golden import argmax_lowest
from spikelut.hdl.layouts import vector_layout
from spikelut.hdl.streams import Broadcast
from spikelut.hdl.vector import Argmax, ResidualAdd, argmax_stages, check_vector


def test_residual_add():
    rng = np.random.default_rng(0)
    dut = ResidualAdd(dim=5, in_width=6, res_width=4, out_width=7)
    a = rng.integers(-32, 32, (30, 5))
    r = rng.integers(-8, 8, (30, 5))
    got = []

    async def tb_a(ctx):
        await send(ctx, dut.i_stream, a.tolist(), rng, 0.4)

    async def tb_r(ctx):
        await send(ctx, dut.r_stream, r.tolist(), rng, 0.4)

    async def tb_out(ctx):
        got.extend(await recv(ctx, dut.o_stream, 30, rng, 0.5))

    run(dut, tb_a, tb_r, tb_out)
    np.testing.assert_array_equal([ints(p) for _, p in got], a + r)


@pytest.mark.parametrize("dim", [1, 2, 7, 10])
def test_argmax_ties_to_lowest(dim):
    rng = np.random.default_rng(dim)
    dut = Argmax(dim=dim, width=4)
    x = rng.integers(-3, 3, (40, dim))  # many ties
    x[0] = -8
    x[1] = 7
    got = []

    async def tb_in(ctx):
        await send(ctx, dut.i_stream, x.tolist(), rng, 0.3)

    async def tb_out(ctx):
        got.extend(await recv(ctx, dut.o_stream, len(x), rng, 0.5))

    run(dut, tb_in, tb_out)
    assert [int(p.index) for _, p in got] == argmax_lowest(x).tolist()
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], x)


@st.composite
def argmax_cases(draw):
    """An Argmax (dim, width, levels per stage), vectors rich in ties, stall rates."""
    dim = draw(st.integers(1, 12))
    width = draw(st.integers(1, 6))
    levels = draw(st.sampled_from([None, 1, 2, 3]))
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    # values from a narrow band (ties everywhere) or the full range, and the extremes
    band = draw(st.sampled_from([(lo, hi), (max(lo, -1), min(hi, 1)), (hi, hi)]))
    value = st.integers(*band) | st.sampled_from([lo, hi])
    rows = draw(st.lists(st.lists(value, min_size=dim, max_size=dim), min_size=1, max_size=12))
    gap_p = draw(st.sampled_from([0.0, 0.4]))
    ready_p = draw(st.sampled_from([1.0, 0.3, 0.7]))
    return dim, width, levels, np.array(rows), gap_p, ready_p, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argmax_cases())
def test_pipelined_argmax_matches_golden_under_stalls(case):
    """Any registers per level: the lowest index of the maximum (the golden model's), the
    vector unchanged, in order, under random input gaps and output stalls."""
    dim, width, levels, x, gap_p, ready_p, seed = case
    rng = np.random.default_rng(seed)
    dut = Argmax(dim=dim, width=width, levels_per_stage=levels)
    got = stream_through(dut, x.tolist(), rng, gap_p=gap_p, ready_p=ready_p)
    assert [int(p.index) for _, p in got] == argmax_lowest(x).tolist()
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], x)


@pytest.mark.parametrize(
    ("dim", "levels", "stages"),
    [(1, 1, 1), (2, 1, 1), (3, 1, 2), (10, None, 1), (10, 1, 4), (10, 2, 2), (10, 3, 2)],
)
def test_pipelined_argmax_latency_and_rate(dim, levels, stages):
    """A result :func:`argmax_stages` cycles after its vector is taken, one per clock."""
    assert argmax_stages(dim, levels) == stages
    dut = Argmax(dim=dim, width=5, levels_per_stage=levels)
    assert dut.stages == stages
    x = np.random.default_rng(dim).integers(-16, 16, (8, dim))
    got = []

    async def tb_in(ctx):
        await send(ctx, dut.i_stream, x.tolist())

    async def tb_out(ctx):
        got.extend(await recv(ctx, dut.o_stream, len(x)))

    run(dut, tb_in, tb_out)
    # the first vector is taken at the first edge; its result at the edge ``stages`` later
    assert [c for c, _ in got] == list(range(1 + stages, 1 + stages + len(x)))
    assert [int(p.index) for _, p in got] == argmax_lowest(x).tolist()
    with pytest.raises(ValueError, match="levels_per_stage must be >= 1, not 0"):
        Argmax(dim=dim, width=5, levels_per_stage=0)


def test_broadcast_delivers_every_transfer_to_both():
    rng = np.random.default_rng(2)
    dut = Broadcast(shape=vector_layout(5, 2))
    x = rng.integers(-16, 16, (40, 2))
    got_a, got_b = [], []

    async def tb_in(ctx):
        await send(ctx, dut.i_stream, x.tolist(), rng, 0.3)

    async def tb_a(ctx):
        got_a.extend(await recv(ctx, dut.a_stream, len(x), rng, 0.3))

    async def tb_b(ctx):
        got_b.extend(await recv(ctx, dut.b_stream, len(x), rng, 0.7))

    run(dut, tb_in, tb_a, tb_b)
    np.testing.assert_array_equal([ints(p) for _, p in got_a], x)
    np.testing.assert_array_equal([ints(p) for _, p in got_b], x)


def test_vector_parameters_are_validated():
    """Argmax and ResidualAdd check their parameters with :func:`check_vector`."""
    with pytest.raises(ValueError, match="dim must be >= 1, not 0"):
        check_vector(0, width=4)  # Argmax(dim=0, width=4)
    with pytest.raises(ValueError, match=r"out_width must be 1\.\.64, not 65"):
        check_vector(2, in_width=4, res_width=4, out_width=65)
    assert check_vector(3, in_width=4, res_width=5) == (3, 4, 5)
