"""The backend: integer classifiers to gateware networks, bit-exact, and their manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from amaranth.back import verilog
from helpers_models import random_model
from helpers_sim import ints, recv, run, send, simulated_latency, vector_events

from spikelut.compiler.backend.cores import CoreKind, build_core
from spikelut.compiler.backend.manifest import manifest
from spikelut.compiler.backend.network import build_network, network_params
from spikelut.compiler.backend.placement import LayerPlan, bandwidth_floor, fit_plans
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.storage import Storage, bank_image


@pytest.mark.parametrize(
    ("plans", "kind"),
    [
        (LayerPlan(), CoreKind.PARALLEL),
        (LayerPlan(Storage.BRAM, 3, 4), CoreKind.TEMPORAL),
        (
            [
                LayerPlan(Storage.LOGIC),
                LayerPlan(Storage.LUTRAM, 2, 8),
                LayerPlan(Storage.BRAM, 99, 99),
            ],
            CoreKind.PARALLEL,
        ),
    ],
)
def test_built_network_matches_run_classifier(plans, kind):
    rng = np.random.default_rng(30)
    model = random_model(rng)
    net = build_network(model, plans, kind=kind)
    x = rng.integers(-32, 32, (12, 16))
    payloads = vector_events(x, 6) if kind == CoreKind.TEMPORAL else x.tolist()
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
    net = build_core(CoreKind.PARALLEL, params)
    m = manifest(net, CoreKind.PARALLEL, widths)
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


@pytest.mark.parametrize(
    ("plans", "kind"),
    [
        (LayerPlan(), CoreKind.PARALLEL),
        (LayerPlan(Storage.BRAM, 3, 4), CoreKind.TEMPORAL),
        (LayerPlan(Storage.SPRAM, 2, 3), CoreKind.PARALLEL),
        (
            [LayerPlan(Storage.LOGIC), LayerPlan(Storage.LUTRAM, 2, 8), LayerPlan(Storage.SPRAM)],
            CoreKind.TEMPORAL,
        ),
        (LayerPlan(Storage.BRAM, 2, 3), CoreKind.SERIAL),
        ([LayerPlan(Storage.SPRAM, 1, 2), LayerPlan(Storage.LUTRAM, 5, 1)], CoreKind.SERIAL),
    ],
)
def test_manifest_latency_equals_a_simulated_one(plans, kind):
    rng = np.random.default_rng(34)
    model = random_model(rng)
    if kind == CoreKind.SERIAL:  # no residual add: the first and last layers
        model = ClassifierMLP(
            model.encoding,
            [model.layers[0], model.layers[2]],
            4,
            quant=[model.quant[0], model.quant[2]],
        )
    params, widths = network_params(model, plans, kind=kind)
    net = build_core(kind, params)
    m = manifest(net, kind, widths)
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


def _run_digits(net, model, x, rng=None, gap_p=0.0, ready_p=1.0, load=False):
    """Stream ``x`` through ``net`` (after loading layer 0's tables through ``w0_stream``
    when ``load``); the ``(logits, predictions)`` it returns."""
    bank = net.layers[0]
    temporal = bank.indexer == IndexerKind.TEMPORAL
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
    ("plan", "kind"),
    [
        (LayerPlan(Storage.LOGIC), CoreKind.PARALLEL),
        (LayerPlan(Storage.BRAM, 64, 10), CoreKind.PARALLEL),
        (LayerPlan(Storage.LUTRAM, 128, 10), CoreKind.TEMPORAL),
    ],
)
def test_digits_whole_test_set_matches_golden(digits_int, plan, kind):
    """All 450 test vectors, output by output, through placements of few cycles each (the
    temporal indexer takes one event per clock, 64 per vector: every 10th vector)."""
    model, x, trace, y = digits_int.model, digits_int.x, digits_int.trace, digits_int.labels
    assert len(x) == 450
    sl = slice(None) if kind == CoreKind.PARALLEL else slice(0, 450, 10)
    net = build_network(model, plan, kind=kind)
    logits, predictions = _run_digits(net, model, x[sl])
    np.testing.assert_array_equal(logits, trace.logits[sl])
    assert predictions == trace.predictions[sl].tolist()
    assert np.mean(np.array(predictions) == y[sl]) > 0.9


@pytest.mark.slow
def test_digits_up5k_placement_loads_spram_and_matches_golden(digits_int):
    """The placement ``fit_plans`` picks for the UP5K (SPRAM, not initialised by the
    bitstream): tables loaded through the write port, then a slice of the test set with
    random gaps and back-pressure (320 cycles per inference: the whole set is the other
    test's job)."""
    model, x, trace = digits_int.model, digits_int.x, digits_int.trace
    plans = fit_plans(model, family="ice40", block_rams=30, sprams=4)
    assert [p.storage for p in plans] == [Storage.SPRAM]
    net = build_network(model, plans)
    rng = np.random.default_rng(7)
    sl = slice(0, 450, 15)  # 30 vectors spread over the test set
    logits, predictions = _run_digits(net, model, x[sl], rng, 0.2, 0.7, load=True)
    np.testing.assert_array_equal(logits, trace.logits[sl])
    assert predictions == trace.predictions[sl].tolist()


@pytest.mark.parametrize("tables_per_cycle", [1, 4])
def test_serial_latency_covers_the_whole_inference(tables_per_cycle):
    """The serial core holds its input until it has indexed the vector, so its latency is
    counted from the offer: never less than its cycles per inference (it was 6 cycles at
    64 cycles per inference when counted from the input's last transfer)."""
    rng = np.random.default_rng(12)
    layer = LUTLayer.random(in_dim=64, out_dim=10, n_tables=64, n_c=2, rng=rng)
    layer = layer.with_tables(rng.integers(-8, 8, layer.tables.shape))
    model = ClassifierMLP(InputEncoding.identity(64, bits=6), [layer], 10, quant=[LayerQuant(4)])
    plan = LayerPlan(Storage.BRAM, tables_per_cycle, 10)
    params, widths = network_params(model, plan, kind=CoreKind.SERIAL)
    net = build_core(CoreKind.SERIAL, params)
    latency = manifest(net, CoreKind.SERIAL, widths)["latency_cycles"]
    assert latency >= net.cycles_per_inference == 64 // tables_per_cycle
    x = rng.integers(-32, 32, 64)
    assert latency == simulated_latency(net, model, x)
