"""``spikelut compile``: Verilog, RTLIL and a manifest that fits the target, or a clear error."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
from helpers_sim import simulated_latency

from spikelut.cli.main import main
from spikelut.compiler.backend.cores import CoreKind, build_core
from spikelut.compiler.backend.estimate import estimate_logic
from spikelut.compiler.backend.manifest import manifest
from spikelut.compiler.backend.network import build_network, network_params
from spikelut.compiler.backend.placement import (
    bank_blocks,
    fit_plans,
    lane_blocks,
    serial_index_blocks,
)
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.backend.targets import HOST_LINK_CELLS, TARGETS
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import save_model
from spikelut.hdl.storage import Storage

UP5K = dict(family="ice40", block_rams=30, sprams=4)


def digits_like(rng, n_t=16, n_c=6, hidden=32):
    layers = []
    for d_in, d_out in ((64, hidden), (hidden, 10)):
        layer = LUTLayer.random(in_dim=d_in, out_dim=d_out, n_tables=n_t, n_c=n_c, rng=rng)
        layers.append(layer.with_tables(rng.integers(-8, 8, layer.tables.shape)))
    quant = [LayerQuant(table_bits=4), LayerQuant(table_bits=4)]
    return ClassifierMLP(InputEncoding.identity(64, bits=6), layers, 10, quant=quant)


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "digits-int.lutnet"
    save_model(digits_like(np.random.default_rng(40)), path)
    return path


def test_compile_fits_the_up5k(model_path, tmp_path, capsys):
    out = tmp_path / "core"
    assert main(["compile", str(model_path), "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((out / "manifest.json").read_text())
    assert "module spikelut_core" in (out / "core.v").read_text()
    assert (out / "core.il").read_text().startswith(("attribute", "autoidx", "module"))
    assert 0 < result["block_rams"] <= 30
    assert result["cycles_per_inference"] == max(
        layer["cycles_per_inference"] for layer in result["layers"]
    )
    # model to Verilog: CPU time (wall time depends on what else runs on the machine)
    assert 0 < result["compile_cpu_seconds"] < 10
    assert result["latency_cycles"] > 0
    for layer in result["layers"]:
        assert layer["load_at_boot"] == (layer["storage"] == "spram")


def test_compile_with_spram_instantiates_sb_spram(model_path, tmp_path, capsys):
    out = tmp_path / "core"
    args = ["compile", str(model_path), "-o", str(out), "--storage", "spram"]
    assert main([*args, "--tables-per-cycle", "1", "--lanes", "4"]) == 0
    latency = json.loads((out / "manifest.json").read_text())["latency_cycles"]
    assert f"latency {latency} cycles" in capsys.readouterr().out
    assert (out / "core.v").read_text().count("SB_SPRAM256KA") == 2
    assert json.loads((out / "manifest.json").read_text())["sprams"] == 2


def test_compile_refuses_what_does_not_fit(model_path, tmp_path, capsys):
    out = tmp_path / "core"
    args = ["compile", str(model_path), "-o", str(out), "--tables-per-cycle", "16"]
    assert main([*args, "--lanes", "32"]) == 2
    assert "block RAMs" in capsys.readouterr().err
    assert (
        main(
            [
                "compile",
                str(model_path),
                "-o",
                str(out),
                "--target",
                "ice40-hx8k",
                "--storage",
                "spram",
            ]
        )
        == 2
    )
    assert "has no SPRAM" in capsys.readouterr().err
    assert not out.exists() or not (out / "core.v").exists()


def test_fit_reports_the_shortfall():
    model = digits_like(np.random.default_rng(41), n_t=32, n_c=8, hidden=64)
    with pytest.raises(
        ValueError,
        match=r"need at least 592 block RAMs \(or SPRAMs beyond the 0 there are\), the target "
        "has 30",
    ):
        fit_plans(model, family="ice40", block_rams=30)
    with pytest.raises(ValueError, match="beyond the 4 there are"):
        fit_plans(model, family="ice40", block_rams=30, sprams=4)
    plans = fit_plans(
        digits_like(np.random.default_rng(42)), family="ice40", block_rams=30, sprams=4
    )
    assert [p.storage for p in plans] == [Storage.SPRAM, Storage.BRAM]


def test_block_estimates():
    assert lane_blocks(16, 256, "ice40") == 1
    assert lane_blocks(4, 1024, "ice40") == 1
    assert lane_blocks(24, 300, "ice40") == 3  # 3 x 512x8 beats 2 x 2 x 256x16
    assert bank_blocks(4, 4, 3, 8, 2, 3, Storage.SPRAM, "ice40") == (0, 4)
    assert bank_blocks(4, 4, 3, 8, 2, 3, Storage.LOGIC, "ice40") == (0, 0)


def test_manifest_has_logic_estimates_and_rate(model_path, tmp_path, capsys):
    out = tmp_path / "core"
    args = ["compile", str(model_path), "-o", str(out), "--clock-mhz", "12", "--json"]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    est = r["estimate"]
    assert est["family"] == "ice40"
    assert 0 < est["flip_flops"] <= est["logic_cells"] == max(est["luts"], est["flip_flops"])
    assert (est["block_rams"], est["sprams"]) == (r["block_rams"], r["sprams"])
    up5k = TARGETS["ice40-up5k"]
    assert est["logic_cells"] <= r["logic_cells_available"] == up5k.core_logic_cells
    assert up5k.core_logic_cells == up5k.logic_cells - HOST_LINK_CELLS["ice40"]
    assert r["inferences_per_second"] == pytest.approx(12e6 / r["cycles_per_inference"])


@pytest.mark.slow
def test_throughput_picks_the_smallest_placement_that_reaches_it(model_path, tmp_path, capsys):
    out = tmp_path / "core"
    base = ["compile", str(model_path), "-o", str(out), "--json", "--clock-mhz", "24"]
    assert main(base) == 0
    fastest = json.loads(capsys.readouterr().out)
    assert main([*base, "--throughput", "1000"]) == 0
    small = json.loads(capsys.readouterr().out)
    assert fastest["cycles_per_inference"] < small["cycles_per_inference"] <= 24_000
    assert small["estimate"]["logic_cells"] < fastest["estimate"]["logic_cells"]
    # just reachable: the fastest placement's own rate
    rate = 24e6 / fastest["cycles_per_inference"]
    assert main([*base, "--throughput", str(rate)]) == 0
    assert (
        json.loads(capsys.readouterr().out)["cycles_per_inference"]
        == (fastest["cycles_per_inference"])
    )
    assert main([*base, "--throughput", str(rate * 1.5)]) == 2
    err = capsys.readouterr().err
    assert f"takes {fastest['cycles_per_inference']}" in err
    assert f"{rate:.0f} inferences/s" in err


def test_fit_refuses_by_the_logic_estimate():
    model = digits_like(np.random.default_rng(43))
    kw = dict(family="ice40", block_rams=30, sprams=4)
    params, _ = network_params(model, fit_plans(model, **kw))
    need = estimate_logic(params, "ice40")["logic_cells"]
    fit_plans(model, logic_cells=need, **kw)
    with pytest.raises(ValueError, match=r"about \d+ logic cells .* more than the 500 available"):
        fit_plans(model, logic_cells=500, **kw)


def test_logic_estimate_grows_with_parallelism():
    model = digits_like(np.random.default_rng(44))
    slow, _ = network_params(model, LayerPlan(Storage.BRAM, 1, 1))
    fast, _ = network_params(model, LayerPlan(Storage.BRAM, 8, 10))
    temporal, _ = network_params(model, LayerPlan(Storage.BRAM, 1, 1), kind=CoreKind.TEMPORAL)
    e_slow, e_fast = estimate_logic(slow, "ice40"), estimate_logic(fast, "ice40")
    assert e_slow["luts"] < e_fast["luts"]
    # the parallel indexer: one comparator of the 6-bit inputs per anchor pair of layer 0
    assert e_slow["luts"] > 16 * 6 * 6
    e_temporal = estimate_logic(temporal, "ice40", CoreKind.TEMPORAL)
    assert e_temporal["flip_flops"] > e_slow["flip_flops"]


def test_baseline_mac_compiles_an_ann(tmp_path, capsys):
    import joblib
    from sklearn.neural_network import MLPClassifier

    from spikelut.cli.main import main
    from spikelut.compiler.frontend.datasets import load_dataset

    data = load_dataset("digits")
    with warnings.catch_warnings():  # a short fit is enough here; it need not converge
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((16,), max_iter=200, random_state=0).fit(data.X_train, data.y_train)
    joblib.dump(mlp, tmp_path / "mlp.joblib")
    out = tmp_path / "mac"
    argv = ["compile", str(tmp_path / "mlp.joblib"), "--baseline", "mac", "-o", str(out)]
    assert main([*argv, "--json", "--trust-pickle"]) == 0  # the MLP is a pickle
    result = json.loads(capsys.readouterr().out)
    assert result["multiplications"] == 64 * 16 + 16 * 10
    assert (out / "core.v").read_text().count("module") >= 1
    assert json.loads((out / "manifest.json").read_text())["cycles_per_inference"] > 0
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    assert (
        main(
            ["compile", str(tmp_path / "bad.onnx"), "--baseline", "mac", "-o", str(tmp_path / "x")]
        )
        == 2
    )
    assert "MAC baseline" in capsys.readouterr().err


def digits_size(rng):
    """A random integer classifier of the default digits shape: 64 -> 10, 256 tables, N_C 4."""
    layer = LUTLayer.random(in_dim=64, out_dim=10, n_tables=256, n_c=4, rng=rng)
    layer = layer.with_tables(rng.integers(-128, 128, layer.tables.shape))
    quant = [LayerQuant(table_bits=8)]
    return ClassifierMLP(InputEncoding.identity(64, bits=6), [layer], 10, quant=quant)


def test_auto_indexer_falls_back_to_the_serial_core_at_the_floor(tmp_path, capsys):
    path = tmp_path / "digits.lutnet"
    save_model(digits_size(np.random.default_rng(45)), path)
    out = tmp_path / "core"
    assert main(["compile", str(path), "-o", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["indexer"], r["indexer_requested"]) == ("serial", "auto")
    # 4 SPRAMs of 16 bits: 8 entries a cycle, 256 x 10 entries: 320 cycles, no more
    (layer,) = r["layers"]
    assert (layer["storage"], layer["tables_per_cycle"], layer["lanes"]) == ("spram", 4, 2)
    assert r["cycles_per_inference"] == r["bandwidth_floor_cycles"] == 320
    assert r["bandwidth_fraction"] == 1.0
    assert layer["comparators"] == 4 and layer["operand_memory"]
    assert r["estimate"]["logic_cells"] <= r["logic_cells_available"]
    assert "module spikelut_core" in (out / "core.v").read_text()
    # the parallel indexer alone is refused, saying by how much
    assert main(["compile", str(path), "-o", str(tmp_path / "p"), "--indexer", "parallel"]) == 2
    cells = TARGETS["ice40-up5k"].core_logic_cells
    assert re.search(rf"about \d+ logic cells .* more than the {cells}", capsys.readouterr().err)


def test_serial_indexer_refuses_residual_layers(tmp_path, capsys):
    rng = np.random.default_rng(46)
    res = LUTLayer.random(in_dim=64, out_dim=64, n_tables=4, n_c=2, rng=rng, residual=True)
    res = res.with_tables(rng.integers(-4, 4, res.tables.shape))
    model = digits_like(rng)
    model = ClassifierMLP(
        model.encoding,
        [res, *model.layers],
        10,
        quant=[LayerQuant(table_bits=4), *model.quant],
    )
    path = tmp_path / "res.lutnet"
    save_model(model, path)
    args = ["compile", str(path), "-o", str(tmp_path / "c"), "--indexer", "serial"]
    assert main(args) == 2
    assert "residual" in capsys.readouterr().err
    # auto falls back to the parallel core (on a device with room for its comparators)
    auto = ["compile", str(path), "-o", str(tmp_path / "c"), "--target", "ecp5-85", "--json"]
    assert main(auto) == 0
    assert json.loads(capsys.readouterr().out)["indexer"] == "parallel"


def test_serial_estimate_and_blocks():
    model = digits_size(np.random.default_rng(47))
    kw = dict(family="ice40", block_rams=30, sprams=4)
    plans = fit_plans(model, logic_cells=4580, kind=CoreKind.SERIAL, **kw)
    params, _ = network_params(model, plans, kind=CoreKind.SERIAL)
    serial = estimate_logic(params, "ice40", CoreKind.SERIAL)
    parallel = estimate_logic(params, "ice40")
    assert serial["luts"] * 4 < parallel["luts"]
    # anchor ROM of 256 slots x 4 pairs of 6-bit anchors, 8 input copies
    assert serial_index_blocks(params[0], "ice40") == 3 + 8
    # with 7 block RAMs the serial core reads fewer tables a cycle: 2 comparators, 4 copies
    small = fit_plans(model, logic_cells=4580, kind=CoreKind.SERIAL, **{**kw, "block_rams": 7})
    params, _ = network_params(model, small)
    assert serial_index_blocks(params[0], "ice40") <= 7 and small != plans
    with pytest.raises(ValueError, match="anchor ROMs and input copies"):
        fit_plans(model, logic_cells=4580, kind=CoreKind.SERIAL, **{**kw, "block_rams": 2})


@pytest.mark.slow
def test_digits_size_latency_equals_the_simulated_and_cocotb_ones(tmp_path, capsys):
    """The UP5K digits core's manifest latency equals an independent simulation's (the
    serial core ``compile`` picks), and for the parallel core at the same placement (the
    one ``spikelut sim --core parallel`` runs in cocotb) an independent simulation's too."""

    model = digits_size(np.random.default_rng(48))
    path = tmp_path / "digits.lutnet"
    save_model(model, path)
    assert main(["compile", str(path), "-o", str(tmp_path / "c"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["indexer"] == "serial"
    assert r["compile_cpu_seconds"] < 10
    serial = CoreKind.SERIAL
    net = build_network(model, fit_plans(model, kind=serial, **UP5K), kind=serial)
    x = np.random.default_rng(0).integers(-32, 32, 64)
    assert r["latency_cycles"] == simulated_latency(net, model, x)
    plans = fit_plans(model, **UP5K)
    params, widths = network_params(model, plans)
    parallel = CoreKind.PARALLEL
    net = build_network(model, plans, kind=parallel)
    latency = manifest(build_core(parallel, params), parallel, widths)["latency_cycles"]
    assert latency == simulated_latency(net, model, x)
