"""Layers and networks against the golden model, output by output, under random stalls."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_sim import (
    checked,
    golden,
    ints,
    layer_params,
    layer_width,
    load_writes,
    recv,
    run,
    send,
    vector_events,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikelut.compiler.ir.golden import lut_layer
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layer import Layer, Network, check_chain
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.params import signed_width, sum_range
from spikelut.hdl.storage import Storage


def simulate(net, x, rng, *, gap_p, ready_p, load=None):
    """Labels, logits and transfer cycles of ``net`` for inputs ``x`` (tables loaded first)."""
    kind = net.layers[0].indexer
    width = net.layers[0].in_width
    payloads = vector_events(x, width) if kind == IndexerKind.TEMPORAL else x.tolist()
    got = []

    async def tb_in(ctx):
        for name, writes in load or []:
            await send(ctx, getattr(net, name), writes)
        await send(ctx, net.i_stream, payloads, rng, gap_p)

    async def tb_out(ctx):
        got.extend(await recv(ctx, net.o_stream, len(x), rng, ready_p))

    run(net, tb_in, tb_out)
    labels = np.array([int(p.index) for _, p in got])
    logits = np.array([ints(p.logits) for _, p in got])
    return labels, logits, [c for c, _ in got]


@st.composite
def networks(draw):
    """A random integer network, its hardware configuration and inputs."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_layers = draw(st.integers(1, 3))
    dims = [draw(st.integers(2, 12)) for _ in range(n_layers)] + [draw(st.integers(1, 12))]
    in_width = draw(st.integers(2, 8))
    table_width = draw(st.integers(2, 8))
    kind = draw(st.sampled_from(list(IndexerKind)))
    layers, shifts, configs = [], [], []
    w = in_width
    for k in range(n_layers):
        n_t = draw(st.integers(1, 12))
        n_c = draw(st.integers(1, 12))
        storage = draw(st.sampled_from(list(Storage)))
        if storage in (Storage.LOGIC, Storage.SPRAM):
            # constant logic of 4096-row tables is slow to elaborate, SPRAM slow to load
            n_c = min(n_c, 5)
        residual = dims[k + 1] == dims[k] and draw(st.booleans())
        if k == 0 and kind == IndexerKind.TEMPORAL:
            residual = False
        layer = LUTLayer.random(
            in_dim=dims[k], out_dim=dims[k + 1], n_tables=n_t, n_c=n_c, rng=rng, residual=residual
        )
        lim = 1 << (table_width - 1)
        layer = layer.with_tables(rng.integers(-lim, lim, layer.tables.shape))
        cfg = {"storage": storage}
        if storage != Storage.LOGIC:
            if n_c > 8:  # keep simulated memories small
                p, lanes = n_t, dims[k + 1]
            else:
                p = draw(st.integers(1, n_t))
                lanes = draw(st.integers(1, dims[k + 1]))
            cfg.update(tables_per_cycle=p, lanes=lanes)
        if k == 0:
            cfg["indexer"] = kind
        layers.append(layer)
        shifts.append(draw(st.integers(0, w - 1)))
        configs.append(cfg)
        w = layer_width(layer.tables, w, residual)
    lim = 1 << (in_width - 1)
    x = rng.integers(-lim, lim, (draw(st.integers(1, 5)), dims[0]))
    gap_p = draw(st.sampled_from([0.0, 0.3, 0.7]))
    ready_p = draw(st.sampled_from([1.0, 0.5, 0.2]))
    return layers, shifts, in_width, table_width, configs, x, gap_p, ready_p, seed


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_random_networks_match_golden(case):
    layers, shifts, in_width, table_width, configs, x, gap_p, ready_p, seed = case
    net = Network(layers=checked(layer_params(layers, shifts, in_width, table_width, configs)))
    spram = any(c["storage"] == Storage.SPRAM for c in configs)
    rng = np.random.default_rng(seed)
    labels, logits, _ = simulate(
        net, x, rng, gap_p=gap_p, ready_p=ready_p, load=load_writes(net, layers) if spram else None
    )
    outs, predictions = golden(layers, shifts, x)
    np.testing.assert_array_equal(logits, outs[-1])
    np.testing.assert_array_equal(labels, predictions)


def small_network(rng, table_width=5):
    dims, shapes = [10, 8, 8, 4], [(6, 4), (4, 3), (5, 5)]
    layers = []
    for k, (n_t, n_c) in enumerate(shapes):
        layer = LUTLayer.random(
            in_dim=dims[k],
            out_dim=dims[k + 1],
            n_tables=n_t,
            n_c=n_c,
            rng=rng,
            residual=k == 1,
        )
        lim = 1 << (table_width - 1)
        layers.append(layer.with_tables(rng.integers(-lim, lim, layer.tables.shape)))
    return layers


@pytest.mark.parametrize("storage", [Storage.BRAM, Storage.SPRAM, Storage.LUTRAM])
def test_network_reload_runs_the_new_network(storage):
    rng = np.random.default_rng(11)
    old, new = small_network(rng), small_network(rng)
    for o, n in zip(old, new, strict=True):  # same shape and anchors, retrained tables
        n.a[...], n.b[...] = o.a, o.b
    shifts = [1, 0, 0]
    configs = [{"storage": storage, "tables_per_cycle": 2, "lanes": 3}] * 3
    params = layer_params(old, shifts, 6, 5, configs)
    # widths that hold both networks' sums (the larger of the two, layer by layer)
    for k, q in enumerate(layer_params(new, shifts, 6, 5, configs)):
        params[k]["out_width"] = max(params[k]["out_width"], q["out_width"])
        if k:
            params[k]["in_width"] = params[k - 1]["out_width"]
    net = Network(layers=checked(params))
    x = rng.integers(-32, 32, (8, 10))
    labels, logits, _ = simulate(net, x, rng, gap_p=0.2, ready_p=0.5, load=load_writes(net, new))
    outs, predictions = golden(new, shifts, x)
    np.testing.assert_array_equal(logits, outs[-1])
    np.testing.assert_array_equal(labels, predictions)
    if storage != Storage.SPRAM:  # the bitstream's own tables, without a reload
        labels, logits, _ = simulate(net, x, rng, gap_p=0.2, ready_p=0.5)
        np.testing.assert_array_equal(logits, golden(old, shifts, x)[0][-1])


@pytest.mark.parametrize("kind", list(IndexerKind))
def test_layer_alone_matches_golden(kind):
    rng = np.random.default_rng(12)
    layer = small_network(rng)[0]
    (params,) = layer_params([layer], [2], 6, 5, [{"indexer": kind, "tables_per_cycle": 3}])
    dut = Layer(LayerParams(**params))
    x = rng.integers(-32, 32, (10, 10))
    payloads = vector_events(x, 6) if kind == IndexerKind.TEMPORAL else x.tolist()
    got = []

    async def tb_in(ctx):
        await send(ctx, dut.i_stream, payloads, rng, 0.3)

    async def tb_out(ctx):
        got.extend(await recv(ctx, dut.o_stream, len(x), rng, 0.5))

    run(dut, tb_in, tb_out)
    np.testing.assert_array_equal([ints(p) for _, p in got], lut_layer(layer, x, 2))


@pytest.mark.parametrize(
    ("storage", "p_l", "interval"),
    [
        (Storage.BRAM, [(2, 4), (2, 4), (2, 4)], 6),
        (Storage.BRAM, [(6, 8), (2, 8), (5, 4)], 2),
        (Storage.BRAM, [(6, 8), (4, 8), (5, 4)], 1),
        (Storage.LOGIC, [(None, None)] * 3, 1),
    ],
)
def test_network_overlaps_inferences(storage, p_l, interval):
    """At full rate the interval between results is the slowest layer's, not the latency
    (the middle layer is residual, with its default buffer depth)."""
    rng = np.random.default_rng(13)
    layers = small_network(rng)
    configs = [{"storage": storage, "tables_per_cycle": p, "lanes": n} for p, n in p_l]
    net = Network(layers=checked(layer_params(layers, [0, 0, 0], 6, 5, configs)))
    assert net.cycles_per_inference == interval
    x = rng.integers(-32, 32, (12, 10))
    _, logits, cycles = simulate(net, x, rng, gap_p=0.0, ready_p=1.0)
    np.testing.assert_array_equal(logits, golden(layers, [0, 0, 0], x)[0][-1])
    assert set(np.diff(cycles)[2:]) == {interval}
    assert cycles[0] > interval + 2  # the latency is longer than the interval


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({1: {"in_width": 3}}, "layer 1 reads 8 values of 3 bits but layer 0 gives 8 of"),
        ({2: {"indexer": IndexerKind.TEMPORAL}}, "layer 2: only layer 0 may use the temporal"),
    ],
)
def test_network_rejects_inconsistent_layers(change, message):
    """A network is a chain of layers: :func:`check_chain` (what Network checks first)."""
    rng = np.random.default_rng(14)
    params = layer_params(small_network(rng), [0, 0, 0], 6, 5, [{}] * 3)
    for k, extra in change.items():
        params[k].update(extra)
    layers = checked(params)
    with pytest.raises(ValueError, match=message):
        check_chain(layers)
    check_chain(checked(layer_params(small_network(rng), [0, 0, 0], 6, 5, [{}] * 3)))
    with pytest.raises(ValueError, match="non-empty list of LayerParams"):
        check_chain([])
    with pytest.raises(ValueError, match="layer 1 must be a LayerParams"):
        check_chain([layers[0], params[1]])


@pytest.mark.parametrize(
    ("layer", "change", "exc", "message"),
    [
        (0, {"out_width": 2}, ValueError, "out_width=2 cannot hold the table sums"),
        (1, {"indexer": IndexerKind.TEMPORAL}, ValueError, "a residual layer needs the parallel"),
        (0, {"bogus": 1}, TypeError, "bogus"),
    ],
)
def test_layer_parameters_reject_bad_values(layer, change, exc, message):
    rng = np.random.default_rng(14)
    params = layer_params(small_network(rng), [0, 0, 0], 6, 5, [{}] * 3)
    with pytest.raises(exc, match=message):
        LayerParams(**{**params[layer], **change})


def test_residual_width_is_checked():
    rng = np.random.default_rng(14)
    layers = small_network(rng)
    params = layer_params(layers, [0, 0, 0], 6, 5, [{}] * 3)
    lo, hi = sum_range(layers[1].tables)
    bank_only = signed_width(int(lo.min()), int(hi.max()))
    assert bank_only < params[1]["out_width"]
    params[1]["out_width"] = bank_only
    with pytest.raises(ValueError, match=f"out_width={bank_only} cannot hold the residual"):
        LayerParams(**params[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "p", "lanes"),
    [(IndexerKind.PARALLEL, 4, 4), (IndexerKind.TEMPORAL, 16, 10), (IndexerKind.PARALLEL, 16, 32)],
)
def test_digits_sized_network_cycles(kind, p, lanes):
    """D=64 -> 32 -> 10, N_T=16, N_C=6: results every ``cycles_per_inference`` clocks."""
    rng = np.random.default_rng(15)
    layers = []
    for d_in, d_out in ((64, 32), (32, 10)):
        layer = LUTLayer.random(in_dim=d_in, out_dim=d_out, n_tables=16, n_c=6, rng=rng)
        layers.append(layer.with_tables(rng.integers(-8, 8, layer.tables.shape)))
    configs = [
        {"indexer": kind, "tables_per_cycle": p, "lanes": lanes},
        {"tables_per_cycle": p, "lanes": min(lanes, 10)},
    ]
    net = Network(layers=checked(layer_params(layers, [0, 0], 6, 4, configs)))
    expected = max(64 if kind == IndexerKind.TEMPORAL else 1, -(-16 // p) * -(-32 // lanes))
    assert net.cycles_per_inference == expected
    x = rng.integers(0, 17, (6, 64))
    labels, logits, cycles = simulate(net, x, rng, gap_p=0.0, ready_p=1.0)
    outs, predictions = golden(layers, [0, 0], x)
    np.testing.assert_array_equal(logits, outs[-1])
    np.testing.assert_array_equal(labels, predictions)
    assert set(np.diff(cycles)) == {expected}


def test_network_with_inferred_widths_and_wrapping_residual():
    """Widths from ``compiler.widths.infer_widths`` (per-element input bounds): the residual
    layer's output is narrower than its table sums, which wrap and come back exact."""
    from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
    from spikelut.compiler.ir.golden import run_classifier
    from spikelut.compiler.passes.widths import infer_widths

    rng = np.random.default_rng(16)
    shapes = [(12, 8, 8, 3, False, 5, 8), (8, 8, 8, 4, True, -7, -4), (8, 3, 4, 4, False, -8, 8)]
    layers = []
    for d_in, d_out, n_t, n_c, residual, lo, hi in shapes:
        layer = LUTLayer.random(
            in_dim=d_in, out_dim=d_out, n_tables=n_t, n_c=n_c, rng=rng, residual=residual
        )
        layers.append(layer.with_tables(rng.integers(lo, hi, layer.tables.shape)))
    quant = [LayerQuant(table_bits=4, in_shift=s) for s in (0, 1, 0)]
    model = ClassifierMLP(InputEncoding.identity(12, bits=5), layers, 3, quant=quant)
    widths = infer_widths(model)
    lo1, hi1 = sum_range(layers[1].tables)
    assert widths[1].out_width < signed_width(int(lo1.min()), int(hi1.max()))
    params = []
    for k, (layer, w) in enumerate(zip(layers, widths, strict=True)):
        bounds = None if k == 0 else (widths[k - 1].col_lo, widths[k - 1].col_hi)
        params.append(
            dict(
                anchors_a=layer.a,
                anchors_b=layer.b,
                tables=layer.tables,
                in_dim=layer.in_dim,
                in_width=w.in_width if k == 0 else widths[k - 1].out_width,
                table_width=4,
                out_width=w.out_width,
                in_shift=w.in_shift,
                residual=layer.residual,
                in_bounds=bounds,
                tables_per_cycle=2,
                lanes=min(4, layer.out_dim),
            )
        )
    net = Network(layers=checked(params))
    x = rng.integers(-16, 16, (10, 12))
    labels, logits, _ = simulate(net, x, rng, gap_p=0.3, ready_p=0.5)
    trace = run_classifier(model, x)
    np.testing.assert_array_equal(logits, trace.logits)
    np.testing.assert_array_equal(labels, trace.predictions)
    with pytest.raises(ValueError, match=r"in_bounds -100\.\.100 must be ordered and within"):
        LayerParams(**{**params[1], "in_bounds": (-100, 100)})
