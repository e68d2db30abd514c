"""Compiled cores in cocotb/Verilator against the golden model: random networks over 10,000
random vectors each (the digits core over its whole test set: tests/test_cmd_sim.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_models import MIXED_PLANS, mixed_model

from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.backend.placement import LayerPlan
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.storage import Storage
from spikelut.sim.network_sim import SimulatorUnavailable, core_for, simulate, write_case


def random_model(seed, shapes, *, bits, table_bits, shifts, n_classes) -> ClassifierMLP:
    """An integer classifier with random anchors and tables."""
    rng = np.random.default_rng(seed)
    layers = []
    lim = 1 << (table_bits - 1)
    for d_in, d_out, n_t, n_c, residual in shapes:
        layer = LUTLayer.random(
            in_dim=d_in, out_dim=d_out, n_tables=n_t, n_c=n_c, rng=rng, residual=residual
        )
        layers.append(layer.with_tables(rng.integers(-lim, lim, layer.tables.shape)))
    quant = [LayerQuant(table_bits=table_bits, in_shift=s) for s in shifts]
    d0 = shapes[0][0]
    return ClassifierMLP(InputEncoding.identity(d0, bits=bits), layers, n_classes, quant=quant)


# name -> (model, plans, indexer, argmax)
RANDOM_NETWORKS = {
    "logic-vector": (
        dict(
            shapes=[(20, 16, 8, 5, False), (16, 7, 6, 4, False)],
            bits=8,
            table_bits=6,
            shifts=(2, 0),
            n_classes=7,
        ),
        LayerPlan(Storage.LOGIC),
        CoreKind.PARALLEL,
        False,
    ),
    "bram-residual": (
        dict(
            shapes=[(24, 12, 7, 4, False), (12, 12, 5, 6, True), (12, 5, 4, 3, False)],
            bits=5,
            table_bits=4,
            shifts=(0, 1, 0),
            n_classes=5,
        ),
        [
            LayerPlan(Storage.BRAM, 4, 5),
            LayerPlan(Storage.BRAM, 5, 12),
            LayerPlan(Storage.LUTRAM, 4, 5),
        ],
        CoreKind.PARALLEL,
        True,
    ),
}

# a small temporal network with an SPRAM layer (for the case files; no build)
SMALL_TEMPORAL = (
    dict(
        shapes=[(10, 8, 5, 3, False), (8, 4, 3, 4, False)],
        bits=4,
        table_bits=7,
        shifts=(0, 3),
        n_classes=4,
    ),
    [LayerPlan(Storage.SPRAM, 5, 8), LayerPlan(Storage.BRAM, 3, 4)],
    CoreKind.TEMPORAL,
    True,
)


def network(name: str):
    """``(model, plans, indexer, argmax)`` of a random network: one of RANDOM_NETWORKS, or
    "mixed-temporal", the four-layer network of every storage kind that
    tests/test_cocotb_lib.py also builds (so the build is shared)."""
    if name == "mixed-temporal":
        return mixed_model(), MIXED_PLANS, CoreKind.TEMPORAL, True
    spec, plans, indexer, argmax = RANDOM_NETWORKS[name]
    return random_model(17, **spec), plans, indexer, argmax


@pytest.mark.slow
@pytest.mark.parametrize("name", [*sorted(RANDOM_NETWORKS), "mixed-temporal"])
def test_random_network_matches_golden_on_10000_vectors(name):
    model, plans, indexer, argmax = network(name)
    rng = np.random.default_rng(18)
    lim = 1 << (model.encoding.bits - 1)
    x = rng.integers(-lim, lim, (10_000, model.encoding.dim))
    # the vectors must exercise the network: many distinct outputs
    logits = run_classifier(model, x).logits
    assert len(np.unique(logits, axis=0)) > 200
    rep = simulate(model, x, plans=plans, kind=indexer, argmax=argmax, seed=3)
    assert (rep.vectors, rep.mismatches) == (10_000, 0), rep.first_mismatch
    net, _ = core_for(model, plans=plans, kind=indexer, argmax=argmax)
    assert rep.expected_cycles_per_inference == net.cycles_per_inference
    assert rep.cycles_per_inference == pytest.approx(net.cycles_per_inference, abs=1.0)
    print(f"{name}: {rep.cycles_per_second:,.0f} cycles/s, {rep.sim_wall_seconds:.1f} s")


def test_write_case_describes_the_run(tmp_path):
    spec, plans, indexer, argmax = SMALL_TEMPORAL
    model = random_model(1, **spec)
    net, widths = core_for(model, plans=plans, kind=indexer, argmax=argmax)
    x = np.zeros((3, model.encoding.dim), np.int64)
    man = write_case(tmp_path, net, indexer, widths, model, x, debug=True)
    import json

    cfg = json.loads((tmp_path / "tb.json").read_text())
    loads = json.loads((tmp_path / "loads.json").read_text())
    assert cfg["indexer"] == "temporal" and cfg["event"]["struct"].keys() == {
        "neuron",
        "time",
        "last",
    }
    # only the SPRAM layer is loaded at run time: every lane and address once
    bank = net.layers[0]
    assert list(loads) == ["w0_stream"]
    assert len(loads["w0_stream"]) == bank.tables_per_cycle * bank.depth
    assert man["cycles_per_inference"] == net.cycles_per_inference
    assert (tmp_path / "golden_layers.json").exists()


def test_simulate_rejects_bad_options_and_missing_icarus(monkeypatch):
    spec, *_ = RANDOM_NETWORKS["logic-vector"]
    model = random_model(2, **spec)
    x = np.zeros((2, model.encoding.dim), np.int64)
    with pytest.raises(ValueError, match="simulator"):
        simulate(model, x, simulator="xsim")
    with pytest.raises(ValueError, match="inputs must be"):
        simulate(model, x[:, :3])
    top = 1 << (model.encoding.bits - 1)
    with pytest.raises(ValueError, match=f"signed integers \\({-top}\\.\\.{top - 1}\\)"):
        simulate(model, x + top)  # would wrap in the core's input ports
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SimulatorUnavailable, match="iverilog"):
        simulate(model, x, simulator="icarus")


@pytest.mark.slow
def test_icarus_matches_golden_or_says_it_is_missing(tmp_path):
    """On Icarus Verilog (where installed) the temporal core with an SPRAM layer, loaded
    through its write port, matches the golden model, and a fault is caught and located
    by the debug re-run; where Icarus is missing the run says so instead of failing."""
    import shutil

    spec, plans, indexer, argmax = SMALL_TEMPORAL
    model = random_model(4, **spec)
    x = np.random.default_rng(5).integers(-8, 8, (120, model.encoding.dim))
    run = dict(plans=plans, kind=indexer, argmax=argmax, simulator="icarus", seed=2)
    if shutil.which("iverilog") is None:
        with pytest.raises(SimulatorUnavailable, match=r"iverilog.*not installed"):
            simulate(model, x, **run)
        return
    rep = simulate(model, x, **run)
    assert rep.simulator == "icarus"
    assert (rep.vectors, rep.mismatches) == (120, 0), rep.first_mismatch
    assert rep.load_cycles > 0 and rep.cycles_per_inference == rep.expected_cycles_per_inference
    # golden model off by 20 in layer 1's output 2 (table 0): caught, and located
    tables = model.layers[1].tables.copy()
    tables[0, :, 2] += 20
    other = ClassifierMLP(
        model.encoding,
        [model.layers[0], model.layers[1].with_tables(tables)],
        4,
        quant=[model.quant[0], LayerQuant(table_bits=8, in_shift=model.quant[1].in_shift)],
    )
    bad = simulate(model, x[:20], golden=other, work_dir=tmp_path, **run)
    assert bad.mismatches >= 1
    assert bad.divergence.startswith("layer 1 output 2: sum"), bad.divergence
