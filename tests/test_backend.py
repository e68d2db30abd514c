# amaranth: UnusedElaboratable=no
"""The backend: integer classifiers to gateware networks, bit-exact, and their manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from amaranth.back import verilog
from test_hdl_network import load_writes
from test_hdl_support import ints, recv, run, send, vector_events

from spikelut.compiler.backend import (
    LayerPlan,
    bandwidth_floor,
    build_network,
    fit_plans,
    manifest,
    network_params,
)
from spikelut.compiler.ir import ClassifierMLP, InputEncoding, LayerQuant, LUTLayer
from spikelut.hdl.bank import Storage, bank_image
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layer import Network
from spikelut.hdl.serial_core import SerialNetwork
from spikelut.sim.golden import run_classifier


def random_model(rng, bits=6):
    shapes = [(16, 8, 6, 4, False), (8, 8, 4, 3, True), (8, 4, 5, 5, False)]
    layers = []
    for d_in, d_out, n_t, n_c, residual in shapes:
        layer = LUTLayer.random(
            in_dim=d_in, out_dim=d_out, n_tables=n_t, n_c=n_c, rng=rng, residual=residual
        )
        layers.append(layer.with_tables(rng.integers(-16, 16, layer.tables.shape)))
    quant = [LayerQuant(table_bits=5, in_shift=s) for s in (1, 0, 2)]
    return ClassifierMLP(InputEncoding.identity(16, bits=bits), layers, 4, quant=quant)


@pytest.mark.parametrize(
    ("plans", "indexer"),
    [
        (LayerPlan(), IndexerKind.PARALLEL),
        (LayerPlan(Storage.BRAM, 3, 4), IndexerKind.TEMPORAL),
        (
            [
                LayerPlan(Storage.LOGIC),
                LayerPlan(Storage.LUTRAM, 2, 8),
                LayerPlan(Storage.BRAM, 99, 99),
            ],
            IndexerKind.PARALLEL,
        ),
    ],
)
def test_built_network_matches_run_classifier(plans, indexer):
    rng = np.random.default_rng(30)
    model = random_model(rng)
    net = build_network(model, plans, indexer=indexer)
    x = rng.integers(-32, 32, (12, 16))
    payloads = vector_events(x, 6) if indexer == IndexerKind.TEMPORAL else x.tolist()
    got = []

    async def tb_in(ctx):
        await send(ctx, net.i_stream, payloads, rng, 0.3)

    async def tb_out(ctx):
        got.extend(await recv(ctx, net.o_stream, len(x), rng, 0.5))

    run(net, tb_in, tb_out)
    trace = run_classifier(model, x)
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], trace.logits)
    assert [int(p.index) for _, p in got] == trace.predictions.tolist()


def test_manifest_describes_ports_and_bandwidth():
    rng = np.random.default_rng(31)
    model = random_model(rng)
    params, widths = network_params(model, LayerPlan(Storage.BRAM, 4, 3))
    net = Network(layers=params)
    m = manifest(net, widths)
    json.dumps(m)  # JSON-able
    assert m["ports"]["i_stream"]["direction"] == "in"
    assert m["ports"]["i_stream"]["payload"]["length"] == 16
    assert m["ports"]["i_stream"]["payload"]["array"] == {"signed": True, "width": 6}
    assert set(m["ports"]["o_stream"]["payload"]["struct"]) == {"index", "logits"}
    assert {"w0_stream", "w1_stream", "w2_stream"} <= set(m["ports"])
    # layer 0: N_T=6, Y=8, P=4, L=3: 2 * 3 = 6 cycles against a floor of ceil(48 / 12) = 4
    l0 = m["layers"][0]
    assert (l0["bank_cycles_per_inference"], l0["bandwidth_floor_cycles"]) == (6, 4)
    assert l0["memory_words_per_lane"] == 6 * 16
    assert m["cycles_per_inference"] == max(layer["cycles_per_inference"] for layer in m["layers"])
    assert 0 < m["bandwidth_fraction"] <= 1
    assert bandwidth_floor(6, 8, 6, 8) == 1


def simulated_latency(net, model, x):
    """Independently of :mod:`spikelut.compiler.latency`: load every memory bank through its
    write stream, send the vector ``x``, take the result with ``ready`` high; the cycles
    from the input's last transfer to the result's, and the result (checked against the
    golden model)."""
    temporal = getattr(net.layers[0], "indexer_kind", None) == IndexerKind.TEMPORAL
    payloads = vector_events(x, model.encoding.bits) if temporal else [list(map(int, x))]
    sent, got = [], []

    async def tb_in(ctx):
        edges = 0  # this testbench's clock edges from the start, as recv counts its own
        for name, writes in [*load_writes(net, model.layers), ("i_stream", payloads)]:
            stream = getattr(net, name)
            ctx.set(stream.valid, 1)
            for payload in writes:
                ctx.set(stream.payload, payload)
                while True:
                    _, _, ready = await ctx.tick().sample(stream.ready)
                    edges += 1
                    if ready:
                        break
            ctx.set(stream.valid, 0)
        sent.append(edges)

    async def tb_out(ctx):
        got.extend(await recv(ctx, net.o_stream, 1))

    run(net, tb_in, tb_out)
    ((cycle, payload),) = got
    trace = run_classifier(model, np.array([x]))
    assert ints(payload.logits) == trace.logits[0].tolist()
    return cycle - sent[0]


@pytest.mark.parametrize(
    ("plans", "indexer"),
    [
        (LayerPlan(), IndexerKind.PARALLEL),
        (LayerPlan(Storage.BRAM, 3, 4), IndexerKind.TEMPORAL),
        (LayerPlan(Storage.SPRAM, 2, 3), IndexerKind.PARALLEL),
        (
            [LayerPlan(Storage.LOGIC), LayerPlan(Storage.LUTRAM, 2, 8), LayerPlan(Storage.SPRAM)],
            IndexerKind.TEMPORAL,
        ),
        (LayerPlan(Storage.BRAM, 2, 3), "serial"),
        ([LayerPlan(Storage.SPRAM, 1, 2), LayerPlan(Storage.LUTRAM, 5, 1)], "serial"),
    ],
)
def test_manifest_latency_equals_a_simulated_one(plans, indexer):
    rng = np.random.default_rng(34)
    model = random_model(rng)
    if indexer == "serial":  # no residual add: the first and last layers
        model = ClassifierMLP(
            model.encoding,
            [model.layers[0], model.layers[2]],
            4,
            quant=[model.quant[0], model.quant[2]],
        )
        params, widths = network_params(model, plans)
        net = SerialNetwork(layers=params)
    else:
        params, widths = network_params(model, plans, indexer=indexer)
        net = Network(layers=params)
    m = manifest(net, widths)
    x = rng.integers(-32, 32, 16)
    assert m["latency_cycles"] == simulated_latency(net, model, x) > len(net.layers)


def test_backend_output_converts_to_verilog():
    model = random_model(np.random.default_rng(32))
    text = verilog.convert(build_network(model, LayerPlan(Storage.BRAM, 2, 4)), name="core")
    assert "module core" in text


def test_backend_rejects_float_models_and_bad_plans():
    rng = np.random.default_rng(33)
    model = random_model(rng)
    with pytest.raises(ValueError, match="2 layer plans for 3 layers"):
        network_params(model, [LayerPlan(), LayerPlan()])
    model.quant = None
    with pytest.raises(ValueError, match="quantize first"):
        network_params(model)


# -- the quantised digits classifier, bit-exact on its whole test set --------------------------


@pytest.fixture(scope="module")
def digits():
    """The default digits classifier (64 -> 10, 256 tables, N_C 4), quantised, and its
    integer test inputs with the golden model's trace."""
    from spikelut.compiler.datasets import load_dataset
    from spikelut.compiler.quantize import quantize_classifier
    from spikelut.compiler.train_classifier import train_on_dataset

    data = load_dataset("digits")
    model = quantize_classifier(train_on_dataset(data), calib_raw=data.X_train)
    x = model.encoding.encode_int(data.X_test)
    return model, x, run_classifier(model, x), data.y_test


def _run_digits(net, model, x, rng=None, gap_p=0.0, ready_p=1.0, load=False):
    """Stream ``x`` through ``net`` (after loading layer 0's tables through ``w0_stream``
    when ``load``); the ``(logits, predictions)`` it returns."""
    bank = net.layers[0].bank
    temporal = net.layers[0].indexer_kind == IndexerKind.TEMPORAL
    got = []

    async def tb_in(ctx):
        if load:
            image = bank_image(
                model.layers[0].tables, tables_per_cycle=bank.tables_per_cycle, lanes=bank.lanes
            )
            words = [
                {"lane": p, "addr": a, "data": image[p, a].tolist()}
                for p in range(image.shape[0])
                for a in range(image.shape[1])
            ]
            await send(ctx, net.w0_stream, words)
        payloads = vector_events(x, model.encoding.bits) if temporal else x.tolist()
        await send(ctx, net.i_stream, payloads, rng, gap_p)

    async def tb_out(ctx):
        got.extend(await recv(ctx, net.o_stream, len(x), rng, ready_p, timeout=10**7))

    run(net, tb_in, tb_out)
    return np.array([ints(p.logits) for _, p in got]), [int(p.index) for _, p in got]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("plan", "indexer"),
    [
        (LayerPlan(Storage.LOGIC), IndexerKind.PARALLEL),
        (LayerPlan(Storage.BRAM, 64, 10), IndexerKind.PARALLEL),
        (LayerPlan(Storage.LUTRAM, 128, 10), IndexerKind.TEMPORAL),
    ],
)
def test_digits_whole_test_set_matches_golden(digits, plan, indexer):
    """All 450 test vectors, output by output, through placements of few cycles each (the
    temporal indexer takes one event per clock, 64 per vector: every 10th vector)."""
    model, x, trace, y = digits
    assert len(x) == 450
    sl = slice(None) if indexer == IndexerKind.PARALLEL else slice(0, 450, 10)
    net = build_network(model, plan, indexer=indexer)
    logits, predictions = _run_digits(net, model, x[sl])
    np.testing.assert_array_equal(logits, trace.logits[sl])
    assert predictions == trace.predictions[sl].tolist()
    assert np.mean(np.array(predictions) == y[sl]) > 0.9


@pytest.mark.slow
def test_digits_up5k_placement_loads_spram_and_matches_golden(digits):
    """The placement ``fit_plans`` picks for the UP5K (SPRAM, not initialised by the
    bitstream): tables loaded through the write port, then a slice of the test set with
    random gaps and back-pressure (320 cycles per inference: the whole set is the other
    test's job)."""
    model, x, trace, _ = digits
    plans = fit_plans(model, family="ice40", block_rams=30, sprams=4)
    assert [p.storage for p in plans] == [Storage.SPRAM]
    net = build_network(model, plans)
    rng = np.random.default_rng(7)
    sl = slice(0, 450, 15)  # 30 vectors spread over the test set
    logits, predictions = _run_digits(net, model, x[sl], rng, 0.2, 0.7, load=True)
    np.testing.assert_array_equal(logits, trace.logits[sl])
    assert predictions == trace.predictions[sl].tolist()
