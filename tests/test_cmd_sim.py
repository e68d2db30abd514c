# amaranth: UnusedElaboratable=no
"""``spikelut sim``: the digits core over its whole test set, a trace, Icarus Verilog where
installed (its "not installed" message where not), the exit status on a mismatch, and bad
input refused."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from spikelut.compiler.cli import main
from spikelut.compiler.datasets import load_dataset
from spikelut.compiler.ir import ClassifierMLP, InputEncoding, LayerQuant, LUTLayer
from spikelut.compiler.modelfile import save_model
from spikelut.compiler.quantize import quantize_classifier
from spikelut.compiler.train_classifier import train_on_dataset
from spikelut.sim import network_sim
from spikelut.sim.golden import run_classifier


@pytest.fixture(scope="module")
def digits_path(tmp_path_factory):
    """The default digits classifier (64 -> 10, 256 tables, N_C 4), quantised."""
    data = load_dataset("digits")
    model = quantize_classifier(train_on_dataset(data), calib_raw=data.X_train)
    path = tmp_path_factory.mktemp("sim") / "digits-int.lutnet"
    save_model(model, path)
    return path, model, data


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


def _fake_report(mismatches: int) -> network_sim.SimReport:
    return network_sim.SimReport(
        simulator="verilator",
        vectors=10,
        mismatches=mismatches,
        first_mismatch="2 of 10 outputs differ; first: vector 3" if mismatches else "",
        divergence="layer 0 table 5: index 3 (golden 1)" if mismatches else "",
        accuracy=0.5,
        cycles_per_inference=4.0,
        expected_cycles_per_inference=4,
        latency_cycles=6,
        latency_ns=60,
        cycles=100,
        load_cycles=0,
        sim_wall_seconds=0.01,
        cycles_per_second=10000.0,
        inference_cycles_per_second=10000.0,
        cycles_per_cpu_second=10000.0,
        build_seconds=0.0,
        build_cached=True,
        total_seconds=0.1,
    )


def test_sim_exits_1_on_a_mismatch_and_names_the_divergence(small_path, monkeypatch, capsys):
    path = small_path
    monkeypatch.setattr(network_sim, "simulate", lambda *a, **k: _fake_report(2))
    assert main(["sim", str(path), "--dataset", "random", "--vectors", "10"]) == 1
    out = capsys.readouterr().out
    assert "mismatches          2" in out and "layer 0 table 5" in out
    monkeypatch.setattr(network_sim, "simulate", lambda *a, **k: _fake_report(0))
    assert main(["sim", str(path), "--dataset", "random", "--vectors", "10"]) == 0


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
