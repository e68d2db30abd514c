# amaranth: UnusedElaboratable=no
"""The backend: integer classifiers to gateware networks, bit-exact, and their manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from amaranth.back import verilog
from test_hdl_support import ints, recv, run, send, vector_events

from spikelut.compiler.backend import (
    LayerPlan,
    bandwidth_floor,
    build_network,
    manifest,
    network_params,
)
from spikelut.compiler.ir import ClassifierMLP, InputEncoding, LayerQuant, LUTLayer
from spikelut.hdl.bank import Storage
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layer import Network
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
