"""The frozen core (tables in logic, pipelined): bit-exact with the golden model in Amaranth's
simulator on hypothesis-drawn networks, one vector per clock, its latency formula."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment
from helpers_sim import (
    checked,
    golden,
    ints,
    layer_params,
    layer_width,
    run,
    send,
    stream_through,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikelut.compiler.backend.cores import CoreKind, build_core, choose_core
from spikelut.compiler.backend.latency import measure_latency
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.frozen import FrozenNetwork
from spikelut.hdl.layer_params import FROZEN_ARGMAX_LEVELS, frozen_bank_stages, frozen_latency
from spikelut.hdl.storage import Storage
from spikelut.hdl.vector import argmax_stages

LOGIC = {"storage": Storage.LOGIC}


def simulate(net, x, rng, *, gap_p, ready_p):
    """Labels, logits and output-transfer cycles of ``net`` for inputs ``x``."""
    got = stream_through(net, x.tolist(), rng, gap_p=gap_p, ready_p=ready_p)
    labels = np.array([int(p.index) for _, p in got])
    logits = np.array([ints(p.logits) for _, p in got])
    return labels, logits, [c for c, _ in got]


@st.composite
def frozen_networks(draw):
    """A random non-residual integer network of 1-2 layers, its inputs and stall rates."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_layers = draw(st.integers(1, 2))
    dims = [draw(st.integers(2, 10)) for _ in range(n_layers)] + [draw(st.integers(1, 8))]
    in_width = draw(st.integers(2, 6))
    table_width = draw(st.integers(2, 6))
    layers, shifts, w = [], [], in_width
    for k in range(n_layers):
        layer = LUTLayer.random(
            in_dim=dims[k],
            out_dim=dims[k + 1],
            n_tables=draw(st.integers(1, 9)),
            n_c=draw(st.integers(1, 5)),
            rng=rng,
        )
        lim = 1 << (table_width - 1)
        tables = rng.integers(-lim, lim, layer.tables.shape)
        if draw(st.booleans()):  # constant columns (pruned ones among them): no logic
            const = rng.random((tables.shape[0], tables.shape[2])) < 0.6
            tables = np.where(const[:, None, :], tables[:, :1, :], tables)
        layers.append(layer.with_tables(tables))
        shifts.append(draw(st.integers(0, w - 1)))
        w = layer_width(layers[-1].tables, w, False)
    lim = 1 << (in_width - 1)
    x = rng.integers(-lim, lim, (draw(st.integers(1, 6)), dims[0]))
    gap_p = draw(st.sampled_from([0.0, 0.5]))
    ready_p = draw(st.sampled_from([1.0, 0.4]))
    return layers, shifts, in_width, table_width, x, gap_p, ready_p, seed


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frozen_networks())
def test_random_frozen_networks_match_golden(case):
    layers, shifts, in_width, table_width, x, gap_p, ready_p, seed = case
    params = checked(layer_params(layers, shifts, in_width, table_width, [LOGIC] * len(layers)))
    net = build_core(CoreKind.FROZEN, params)
    assert isinstance(net, FrozenNetwork)
    labels, logits, _ = simulate(net, x, np.random.default_rng(seed), gap_p=gap_p, ready_p=ready_p)
    outs, predictions = golden(layers, shifts, x)
    np.testing.assert_array_equal(logits, outs[-1])
    np.testing.assert_array_equal(labels, predictions)
    assert measure_latency(net) == net.latency == frozen_latency(params)


def _network(rng, n_tables=(7, 5)):
    dims = [12, 6, 4]
    layers = []
    for k, n_t in enumerate(n_tables):
        layer = LUTLayer.random(in_dim=dims[k], out_dim=dims[k + 1], n_tables=n_t, n_c=4, rng=rng)
        layers.append(layer.with_tables(rng.integers(-8, 8, layer.tables.shape)))
    return layers


def test_frozen_core_takes_a_vector_every_clock_and_its_latency_is_the_formula():
    rng = np.random.default_rng(3)
    layers = _network(rng)
    params = checked(layer_params(layers, [1, 0], 5, 4, [LOGIC] * 2))
    net = FrozenNetwork(layers=params)
    assert net.cycles_per_inference == 1
    # registers: comparators + ceil(log2 7) adder levels (the rows read combinationally
    # into the first), comparators + ceil(log2 5), the argmax over 4 classes (a register
    # after each of its 2 levels); counted to the cycle the result is taken
    assert [frozen_bank_stages(n) for n in (0, 1, 2, 3, 5, 7, 8, 9)] == [1, 1, 1, 2, 3, 3, 3, 4]
    assert [argmax_stages(y, FROZEN_ARGMAX_LEVELS) for y in (1, 2, 3, 4, 10)] == [1, 1, 2, 2, 4]
    assert net.latency == frozen_latency(params) == (1 + 3) + (1 + 3) + 2 + 1
    assert measure_latency(net) == net.latency
    x = rng.integers(-16, 16, (20, 12))
    labels, logits, cycles = simulate(net, x, rng, gap_p=0.0, ready_p=1.0)
    np.testing.assert_array_equal(labels, golden(layers, [1, 0], x)[1])
    np.testing.assert_array_equal(logits, golden(layers, [1, 0], x)[0][-1])
    assert set(np.diff(cycles)) == {1}  # one result per clock, back to back


def test_frozen_core_serves_a_consumer_that_waits_for_valid_before_ready():
    """The stages advance on one enable, ``~o_stream.valid | o_stream.ready``: a consumer that
    raises ``ready`` only once it sees ``valid`` (as the stream rules allow) still gets every
    result, in order, none twice, while the producer idles at random."""
    rng = np.random.default_rng(5)
    layers = _network(rng)
    params = checked(layer_params(layers, [1, 0], 5, 4, [LOGIC] * 2))
    net = FrozenNetwork(layers=params)
    x = rng.integers(-16, 16, (30, 12))
    got = []

    async def tb_in(ctx):
        await send(ctx, net.i_stream, x.tolist(), rng, gap_p=0.3)

    async def tb_out(ctx):
        for _ in range(5_000):
            if len(got) == len(x):
                return
            _, _, valid, payload = await ctx.tick().sample(net.o_stream.valid, net.o_stream.payload)
            if ctx.get(net.o_stream.ready) and valid:
                got.append((int(payload.index), ints(payload.logits)))
            # ready only after valid was seen, and not always at once
            ctx.set(net.o_stream.ready, bool(valid) and rng.random() < 0.5)
        raise AssertionError(f"stalled: {len(got)} of {len(x)} results in 5,000 cycles")

    run(net, tb_in, tb_out)
    outs, predictions = golden(layers, [1, 0], x)
    assert [label for label, _ in got] == list(predictions)
    np.testing.assert_array_equal([logits for _, logits in got], outs[-1])


def test_frozen_core_has_no_write_ports_and_refuses_memory_or_residual_layers():
    rng = np.random.default_rng(4)
    layers = _network(rng)
    params = checked(layer_params(layers, [0, 0], 5, 4, [LOGIC] * 2))
    net = FrozenNetwork(layers=params)
    assert set(net.signature.members) == {"i_stream", "o_stream"}
    Fragment.get(net, None)  # elaborates
    bram = checked(layer_params(layers, [0, 0], 5, 4, [LOGIC, {"storage": Storage.BRAM}]))
    with pytest.raises(ValueError, match="layer 1: the frozen core keeps its tables in logic"):
        FrozenNetwork(layers=bram)
    sq = LUTLayer.random(in_dim=6, out_dim=6, n_tables=3, n_c=2, rng=rng, residual=True)
    sq = sq.with_tables(rng.integers(-8, 8, sq.tables.shape))
    res = checked(layer_params([layers[0], sq], [0, 0], 5, 4, [LOGIC] * 2))
    with pytest.raises(ValueError, match="layer 1 is residual; the frozen core has no residual"):
        FrozenNetwork(layers=res)


def test_choose_core_by_goal():
    cells = {CoreKind.SERIAL: 900, CoreKind.PARALLEL: 3000, CoreKind.FROZEN: 2000}
    cycles = {CoreKind.SERIAL: 640, CoreKind.PARALLEL: 80, CoreKind.FROZEN: 1}
    assert choose_core(cells) is CoreKind.SERIAL
    assert choose_core(cells, cycles, goal="area") is CoreKind.SERIAL
    assert choose_core(cells, cycles, goal="throughput") is CoreKind.FROZEN
    del cells[CoreKind.FROZEN]
    assert choose_core(cells, cycles, goal="throughput") is CoreKind.PARALLEL
