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

from spikelut.boards.design import board_core
from spikelut.boards.platforms import board
from spikelut.cli import sim as cli_sim
from spikelut.cli.main import main
from spikelut.compiler.backend.compile import plan_core
from spikelut.compiler.backend.cores import build_core
from spikelut.compiler.backend.latency import measure_latency
from spikelut.compiler.backend.plan import LayerPlan, plans_to_json
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.hdl.storage import Storage
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
    assert main([*args, "--indexer", "parallel", "--waves", str(trace)]) == 0
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
    # Yosys's ECP5 cell models do not parse in Icarus: refused before any synthesis
    icarus_ecp5 = ["--dataset", "random", "--netlist", "ecp5", "--simulator", "icarus"]
    assert main(["sim", str(path), *icarus_ecp5]) == 2
    assert "ECP5 netlist runs with --simulator verilator only" in capsys.readouterr().err


@pytest.mark.slow
def test_sim_simulates_the_core_the_build_ships(small_path, tmp_path, capsys):
    """By default the core of ``spikelut build --board icebreaker`` (kind and placement);
    ``--build DIR`` the one a build recorded; ``--target`` the one compile writes."""
    model = load_model(small_path)
    core = board_core(model, board("icebreaker"))
    args = ["sim", str(small_path), "--dataset", "random", "--vectors", "20", "--json"]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["vectors"], r["mismatches"]) == (20, 0)
    assert r["kind"] == core.kind.value and r["plans"] == plans_to_json(core.plans)
    assert r["expected_cycles_per_inference"] == core.cycles_per_inference
    # cocotb's latency is the manifest's (both from the cycle the vector is offered)
    assert r["latency_cycles"] == measure_latency(build_core(core.kind, core.params))
    assert r["latency_cycles"] >= core.cycles_per_inference
    # a build directory's board.json names another kind and placement: that one is simulated
    other = [LayerPlan(Storage.BRAM, 1, 1)]
    info = {"board": "ulx3s-85f", "indexer": "parallel", "plans": plans_to_json(other)}
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "board.json").write_text(json.dumps(info))
    assert main([*args, "--build", str(tmp_path / "b")]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["kind"], r["plans"], r["mismatches"]) == ("parallel", plans_to_json(other), 0)
    assert "ulx3s-85f" in r["core_of"]
    compiled = plan_core(model, TARGETS["ecp5-25"])
    assert main([*args, "--target", "ecp5-25"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["kind"], r["plans"]) == (compiled.kind.value, plans_to_json(compiled.plans))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_sim_netlist_runs_the_synthesised_core(small_path, family, capsys):
    """--netlist: the core as Yosys maps it to the family's cells, in their simulation
    models, bit-exact with the golden model."""
    args = ["sim", str(small_path), "--dataset", "random", "--vectors", "40", "--json"]
    assert main([*args, "--netlist", family]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["vectors"], r["mismatches"]) == (40, 0)
    cells = r["netlist"]["cells"]
    assert r["netlist"]["family"] == family
    lut = "SB_LUT4" if family == "ice40" else "LUT4"
    assert cells.get(lut, 0) > 10, cells
    assert r["cycles_per_inference"] == r["expected_cycles_per_inference"]


@pytest.mark.slow
def test_ecp5_block_ram_netlist_matches_golden():
    """Tables read one entry a cycle from deep, narrow memories, which Yosys maps to ECP5
    DP16KD block RAMs: simulated with this project's DP16KD model (Yosys ships a black box
    that reads zeros), the netlist is bit-exact with the golden model."""
    rng = np.random.default_rng(11)
    layer = LUTLayer.random(in_dim=8, out_dim=3, n_tables=16, n_c=6, rng=rng)
    layer = layer.with_tables(rng.integers(-8, 8, layer.tables.shape))
    model = ClassifierMLP(InputEncoding.identity(8, bits=5), [layer], 3, quant=[LayerQuant(4)])
    x = rng.integers(-16, 16, (30, 8))
    plan = LayerPlan(Storage.BRAM, 1, 1)
    report = network_sim.simulate(model, x, plans=plan, target=TARGETS["ecp5-85"], netlist=True)
    assert report.netlist["cells"].get("DP16KD", 0) > 0, report.netlist
    assert (report.vectors, report.mismatches) == (30, 0), report.first_mismatch


@pytest.mark.slow
def test_sim_netlist_catches_a_fault(small_path):
    """A netlist run reports mismatches against a model it does not implement."""
    model = load_model(small_path)
    bad = model.layers[0].tables.copy()
    bad[1] = -bad[1] - 1
    faulty = dataclasses.replace(model, layers=[model.layers[0].with_tables(bad)])
    x = np.random.default_rng(5).integers(-16, 16, (12, 8))
    report = network_sim.simulate(model, x, golden=faulty, netlist=True)
    assert report.mismatches > 0 and "netlist" in report.divergence


def test_sim_netlist_refuses_another_family(small_path, tmp_path, capsys):
    args = ["sim", str(small_path), "--dataset", "random", "--vectors", "2"]
    assert main([*args, "--board", "icebreaker", "--netlist", "ecp5"]) == 2
    assert main([*args, "--build", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert "--netlist ecp5 does not match ice40-up5k" in err[0]
    assert "board.json" in err[1]
