"""``spikelut sim``: the digits core over its whole test set, a trace, Icarus Verilog where
installed (its "not installed" message where not), the exit status on a mismatch, and bad
input refused."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time

import numpy as np
import pytest

from spikelut.cli import sim as cli_sim
from spikelut.cli.main import main
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.sim import network_sim


@pytest.fixture(scope="module")
def digits_path(tmp_path_factory, digits, digits_int):
    """The default digits classifier (64 -> 10, 256 tables, N_C 4), quantised, in a file."""
    path = tmp_path_factory.mktemp("sim") / "digits-int.lutnet"
    save_model(digits_int.model, path)
    return path, digits_int.model, digits


@pytest.mark.slow
def test_sim_digits_whole_test_set(digits_path, capsys):
    path, model, data = digits_path
    t0 = time.monotonic()
    assert main(["sim", str(path), "--json"]) == 0
    seconds = time.monotonic() - t0
    r = json.loads(capsys.readouterr().out)
    assert r["vectors"] == len(data.y_test) == 450
    assert r["mismatches"] == 0
    golden = run_classifier(model, model.encoding.encode_int(data.X_test)).predictions
    assert r["accuracy"] == pytest.approx(float((golden == data.y_test).mean()))
    assert r["accuracy"] > 0.8
    assert r["cycles_per_inference"] == r["expected_cycles_per_inference"]
    assert r["latency_cycles"] >= r["expected_cycles_per_inference"]
    assert r["cycles"] >= 450 * r["expected_cycles_per_inference"]
    # the build is cached by the Verilog's hash: the time limit is for the simulation
    assert r["sim_wall_seconds"] < 60
    # the speed target, per CPU second of the simulator (wall time depends on what
    # else the machine runs); a build showing Python every signal reaches about 80,000
    assert r["cycles_per_cpu_second"] > 100_000
    print(
        f"digits sim: {r['cycles_per_second']:,.0f} cycles/s, {r['sim_wall_seconds']:.1f} s "
        f"simulated, {seconds:.1f} s in all (build {r['build_seconds']:.1f} s)"
    )
    # the human report carries every figure
    assert main(["sim", str(path), "--vectors", "30", "--seed", "4"]) == 0
    text = capsys.readouterr().out
    for word in (
        "vectors checked     30",
        "mismatches          0",
        "accuracy",
        "latency",
        "cycles/s",
    ):
        assert word in text


@pytest.fixture
def small_path(tmp_path):
    """A small random integer classifier (no data set recorded)."""
    rng = np.random.default_rng(9)
    layer = LUTLayer.random(in_dim=8, out_dim=3, n_tables=4, n_c=3, rng=rng)
    layer = layer.with_tables(rng.integers(-8, 8, layer.tables.shape))
    model = ClassifierMLP(InputEncoding.identity(8, bits=5), [layer], 3, quant=[LayerQuant(4)])
    path = tmp_path / "small.lutnet"
    save_model(model, path)
    return path


@pytest.mark.slow
def test_sim_exits_1_on_a_mismatch_and_names_the_divergence(small_path, monkeypatch, capsys):
    """A planted fault: the outputs are checked against a model whose table 2 differs (the
    simulation itself is real), so the command must report the mismatches and exit 1."""
    model = load_model(small_path)
    bad = model.layers[0].tables.copy()
    bad[2] = -bad[2] - 1  # every entry of table 2 changes, within its 4-bit range
    faulty = dataclasses.replace(model, layers=[model.layers[0].with_tables(bad)])

    def simulate_against_the_fault(*args, **kwargs):
        return network_sim.simulate(*args, golden=faulty, **kwargs)

    monkeypatch.setattr(cli_sim, "simulate", simulate_against_the_fault)
    assert main(["sim", str(small_path), "--dataset", "random", "--vectors", "10"]) == 1
    out = capsys.readouterr().out
    assert "mismatches          10" in out and "layer 0 output 0: sum" in out
    monkeypatch.undo()
    assert main(["sim", str(small_path), "--dataset", "random", "--vectors", "10"]) == 0


def test_sim_skips_missing_icarus_with_a_message(small_path, monkeypatch, capsys):
    path = small_path
    monkeypatch.setattr(network_sim.shutil, "which", lambda name: None)
    args = ["sim", str(path), "--simulator", "icarus", "--dataset", "random", "--vectors", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "iverilog" in out


def test_sim_on_icarus_or_says_it_is_not_installed(small_path, capsys):
    """With Icarus Verilog installed the core runs on it bit-exact; without, the command
    says so and exits 0 (CI installs iverilog where it can)."""
    path = small_path
    args = ["sim", str(path), "--simulator", "icarus", "--dataset", "random", "--vectors", "300"]
    assert main([*args, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    if shutil.which("iverilog") is None:
        assert r["skipped"] is True
        assert "iverilog" in r["reason"] and "not installed" in r["reason"]
        return
    assert r["simulator"] == "icarus"
    assert (r["vectors"], r["mismatches"]) == (300, 0)
    assert r["cycles_per_inference"] == r["expected_cycles_per_inference"]
    assert r["cycles"] >= 300 * r["expected_cycles_per_inference"]
    assert r["cycles_per_second"] > 0


@pytest.mark.slow
def test_sim_writes_a_trace_of_every_signal(small_path, tmp_path, capsys):
    """--waves traces the whole core (internal signals too), though the build shows Python
    only the ports."""
    trace = tmp_path / "core.vcd"
    args = ["sim", str(small_path), "--dataset", "random", "--vectors", "5", "--json"]
    assert main([*args, "--waves", str(trace)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["vectors"], r["mismatches"]) == (5, 0) and r["waves"] == str(trace)
    lines = trace.read_text().splitlines()
    names = {line.split()[4] for line in lines if line.strip().startswith("$var")}
    scopes = {line.split()[2] for line in lines if line.strip().startswith("$scope")}
    assert {"clk", "i_stream__valid", "o_stream__payload"} <= names
    assert {"layer0", "indexer", "bank"} <= scopes, sorted(scopes)


def test_sim_refuses_bad_input(small_path, tmp_path, capsys):
    path = small_path
    assert main(["sim", str(path), "--vectors", "0"]) == 2
    assert main(["sim", str(path)]) == 2  # no data set recorded
    assert main(["sim", str(tmp_path / "missing.lutnet")]) == 2
    assert main(["sim", str(path), "--waves", str(tmp_path / "w.txt")]) == 2
    icarus_waves = ["--simulator", "icarus", "--waves", str(tmp_path / "w.vcd")]
    assert main(["sim", str(path), "--dataset", "random", *icarus_waves]) == 2
    err = capsys.readouterr().err
    assert "--vectors" in err and "cannot read" in err and ".vcd" in err
    assert "--dataset random" in err and "verilator only" in err
