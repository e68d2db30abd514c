"""``spikelut export``: the core as IP (Verilog, FuseSoC core file, integration notes) and as
a Wishbone B4 peripheral, driven over the bus in cocotb and checked against the golden model;
FuseSoC itself runs the exported core's Verilator lint targets."""

import json
import subprocess

import numpy as np
import pytest
from helpers_models import retrained, tiny_model

from spikelut.cli.main import main
from spikelut.compiler.build.toolchain import tool_env
from spikelut.compiler.ir.modelfile import save_model
from spikelut.sim.cocotb_runner import CocotbFailure
from spikelut.sim.wishbone_sim import simulate_wishbone

TARGET = "ice40-hx8k"  # block RAM only: the exported Verilog needs no vendor cell models


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny model exported with its Wishbone peripheral, and ``spikelut compile``'s
    output of the same model for the same target."""
    root = tmp_path_factory.mktemp("export")
    save_model(tiny_model(), root / "tiny.lutnet")
    argv = [str(root / "tiny.lutnet"), "--target", TARGET]
    assert main(["export", *argv, "-o", str(root / "ip"), "--wishbone"]) == 0
    assert main(["compile", *argv, "-o", str(root / "compiled")]) == 0
    return root


def test_export_writes_the_compiled_core_and_quotes_its_manifest(exported):
    ip = exported / "ip"
    info = json.loads((ip / "export.json").read_text())
    assert sorted(p.name for p in ip.iterdir()) == sorted(info["files"])
    # the same core as spikelut compile, byte for byte
    assert (ip / "core.v").read_bytes() == (exported / "compiled" / "core.v").read_bytes()
    man = json.loads((ip / "manifest.json").read_text())
    notes = (ip / "INTEGRATION.md").read_text()
    assert f"cycles per inference (one result every so many cycles at full rate): " \
        f"{man['cycles_per_inference']}" in notes  # fmt: skip
    assert f"latency: {man['latency_cycles']} cycles" in notes
    assert f"{man['estimate']['logic_cells']} logic cells" in notes
    for layer in man["layers"]:
        assert f"`w{layer['layer']}_stream`" in notes
    rmap = info["register_map"]
    assert f"| {rmap['registers']['OUT']} | OUT:" in notes
    for t in rmap["table_layers"]:
        assert f"| {t['layer']} | {t['base']} | {t['lanes']} | {t['depth']} |" in notes
    core = (ip / "tiny.core").read_text()
    assert core.startswith("CAPI=2:\n") and f"name: {info['fusesoc']}\n" in core
    assert "module spikelut_wb(" in (ip / "spikelut_wb.v").read_text()


def test_export_refuses_bad_input(exported, tmp_path, capsys):
    model = str(exported / "tiny.lutnet")
    assert main(["export", model, "-o", model]) == 2
    assert "spikelut export: error:" in capsys.readouterr().err
    assert main(["export", model, "-o", str(tmp_path / "a"), "--name", "a b"]) == 2
    assert "--name" in capsys.readouterr().err
    argv = ["export", model, "-o", str(tmp_path / "b"), "--wishbone", "--indexer", "temporal"]
    assert main(argv) == 2
    assert "parallel, serial or auto" in capsys.readouterr().err
    float_model = tmp_path / "float.lutnet"
    save_model(tiny_model().__class__(tiny_model().encoding, tiny_model().layers, 4), float_model)
    assert main(["export", str(float_model), "-o", str(tmp_path / "c")]) == 2
    assert "not an integer classifier" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


@pytest.mark.slow
def test_wishbone_peripheral_matches_the_golden_model(exported):
    """100 vectors over the bus with the bitstream's tables, then another model's tables
    written through the table window and the same vectors again: every class and logit."""
    model = tiny_model()
    x = np.random.default_rng(7).integers(-16, 16, (100, 8))
    r = simulate_wishbone(exported / "ip", model, x, reload=retrained(model))
    assert r["checked"] == 200 and r["mismatches"] == 0
    assert r["table_writes"] > 0
    # the check can fail: the retrained model's answers from the old tables do not match
    other = retrained(model)
    with pytest.raises(CocotbFailure):
        simulate_wishbone(exported / "ip", other, x[:20])


@pytest.mark.slow
def test_fusesoc_runs_the_exported_cores_verilator_targets(exported, tmp_path):
    """FuseSoC lints the core and the peripheral with Verilator (every warning but the
    four waived idioms fatal). Its ``sim_wishbone`` target (a Verilator build with the C++
    harness, 7 to 12 s here) is left to ``fusesoc run`` by hand, for the suite's time."""
    info = json.loads((exported / "ip" / "export.json").read_text())
    env = tool_env()
    for target in ("lint", "lint_wishbone"):
        build = ["--build-root", str(tmp_path / target), "--target", target, info["fusesoc"]]
        result = subprocess.run(
            ["fusesoc", "--cores-root", str(exported / "ip"), "run", *build],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (target, result.stdout[-3000:], result.stderr[-3000:])
        assert f"{target}-verilator" in result.stdout + result.stderr
