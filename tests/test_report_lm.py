"""``spikelut report`` for a language model: an integer spiking RNN from ``spikelut quantize``
with the directory of ``spikelut compile``, a board build's ``board.json`` and
``build-report.json`` (written here in the format of ``build_lm_board``) and a simulation's
JSON; the sections, their figures, the hints of missing ones and the one-line refusals."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from spikelut.boards.build import uart_tokens_per_second
from spikelut.boards.lm_design import lm_board_fit
from spikelut.boards.platforms import board
from spikelut.cli.main import main
from spikelut.compiler.analysis.render import _fmt
from spikelut.compiler.analysis.render_lm import LM_SECTIONS
from spikelut.compiler.build.synthesis import BuildReport
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.compiler.ir.sequence import SpikingRNN
from spikelut.sim.lm_sim import LMSimReport


def _float_rnn(path: Path) -> None:
    rng = np.random.default_rng(0)
    m = SpikingRNN.create(rng=rng, context=8, vocab=256, dim=8, n_tables=4, n_c=3)
    m.cell.tables[:] = rng.normal(0, 0.3, m.cell.tables.shape)
    m.unembedder.tables[:] = rng.normal(0, 0.3, m.unembedder.tables.shape)
    m.meta["training"] = {"seed": 1, "val_windows": 30, "step": 0}
    save_model(m, path)


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> tuple[Path, Path]:
    """An integer RNN quantised by ``spikelut quantize`` (its losses in its metadata) and the
    directory ``spikelut compile`` wrote for it."""
    root = tmp_path_factory.mktemp("lm")
    src, model, text = root / "float.lutnet", root / "lm.lutnet", root / "text.txt"
    _float_rnn(src)
    text.write_bytes(bytes(np.random.default_rng(1).integers(32, 127, 4000).astype(np.uint8)))
    argv = ["quantize", str(src), "-o", str(model), "--data", str(text), "--bits", "6"]
    assert main([*argv, "--json"]) == 0
    src.unlink()  # the float model is not the report's
    assert main(["compile", str(model), "-o", str(root / "compile"), "--json"]) == 0
    return model, root / "compile"


def _html(page: str, sid: str) -> str:
    """The body of section ``sid`` of a report page."""
    m = re.search(rf'<section id="{sid}"><h2>[^<]*</h2>(.*?)</section>', page, re.S)
    assert m, sid
    return m.group(1)


def _row(section: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    m = re.search(rf"<tr><td>{re.escape(html.escape(first))}</td>(.*?)</tr>", section)
    assert m, first
    return [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", m.group(1))]


def _report(capsys, *argv) -> tuple[dict, str]:
    out = Path(argv[-1])
    assert main(["report", *map(str, argv[:-1]), "-o", str(out), "--json"]) == 0
    return json.loads(capsys.readouterr().out), out.read_text()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("spikelut report: error:"), err
    return err


@pytest.mark.slow  # quantize runs the numba engine, compile Amaranth's simulator
def test_model_and_compile_dir(lm, tmp_path, capsys):
    model_path, compile_dir = lm
    model = load_model(model_path)
    assert isinstance(model, IntegerRNN)
    ev = model.meta["quantization"]["evaluation"]
    man = json.loads((compile_dir / "manifest.json").read_text())
    r, page = _report(capsys, model_path, compile_dir, tmp_path / "r.html")
    assert r["model"] == str(model_path)
    assert r["files"] == [str(model_path), str(compile_dir / "manifest.json")]
    for sid, heading in LM_SECTIONS:
        assert f'<section id="{sid}"><h2>{heading}</h2>' in page
    # the build's sections say which command fills them; a loss needs a simulation
    assert set(r["missing_sections"]) == {"memory", "loss", "throughput", "resources"}
    res = _html(page, "resources")
    assert 'class="missing"' in res and "spikelut build LM --board icebreaker" in res
    assert "spikelut sim LM" in _html(page, "loss")

    shape = _html(page, "model")
    assert _row(shape, "vocabulary (V)") == ["256"] and _row(shape, "neurons (D)") == ["8"]
    assert _row(shape, "cell")[:6] == ["8", "8", "4", "3", "8", "12"]  # D, Y, N_T, N_C, rows
    assert _row(shape, "unembedder")[:7] == ["8", "256", "4", "3", "8", "12", "6"]

    mem = _html(page, "memory")
    assert _row(mem, "embedding") == ["256 x 8", "6", "12,288", "bram (L 8)", "-"]
    unemb = man["plan"]["unembedder"]
    assert _row(mem, "unembedder")[:4] == ["4 x 8 x 256", "6", "49,152",
        f"{unemb['storage']} (P {unemb['tables_per_cycle']}, L {unemb['lanes']})"]  # fmt: skip
    assert f"takes {man['block_rams']} block RAM(s)" in mem

    loss = _html(page, "loss")
    assert _row(loss, "float (the trained model)") == [f"{ev['float_val_loss']:.4f}"]
    assert _row(loss, "integer (the golden model)") == [f"{ev['int_val_loss']:.4f}"]
    assert _row(loss, "hardware") == ["not measured"]

    tp = _html(page, "throughput")
    assert _row(tp, "table-bandwidth floor (compiled core)")[0] == _fmt(
        man["table_cycles_per_token"]
    )
    greedy = _row(tp, "compiled core, greedy (measured)")
    assert greedy[:3] == [
        _fmt(man["cycles_per_token"]),
        f"{man['clock_mhz']:.1f} MHz",
        _fmt(man["tokens_per_second"]),
    ]
    assert "spikelut build LM --board icebreaker" in tp


def _build_dir(root: Path, model: IntegerRNN, cycles: int) -> Path:
    """``board.json`` and ``build-report.json`` as ``build_lm_board`` writes them (no
    Yosys here: the tools' figures are made up, the placement is the board's)."""
    spec = board("icebreaker")
    fit = lm_board_fit(model, spec)
    root.mkdir()
    report = BuildReport(
        board=spec.name,
        family="ice40",
        bitstream=str(root / "spikelut.bin"),
        resources={
            "logic_cells": {"used": 4321, "available": 5280},
            "block_rams": {"used": fit.block_rams, "available": 30},
            "sprams": {"used": fit.sprams, "available": 4},
        },
        fmax_mhz={"cd_sync": 27.5},
        target_mhz=12.0,
        timing_met=True,
        fits=True,
        ok=True,
        seconds=50.0,
    )
    (root / "build-report.json").write_text(json.dumps(report.to_json()))
    clock_hz, baud = spec.clock_hz, 115200
    b = {
        "board": spec.name, "device": spec.device, "ok": True, "fits": True,
        "timing_met": True, "target_mhz": clock_hz / 1e6, "fmax_mhz": report.fmax_mhz,
        "resources": report.resources, "seconds": 50.0, "suggestion": "",
        "bitstream": report.bitstream, "pll": None, "baud": baud, "uart_divisor": 104,
        "cycles_per_inference": cycles, "inferences_per_second": clock_hz / cycles,
        "model_kind": "language_model", "rnn_plan": fit.plan.to_json(),
        "indexer": fit.plan.kind.value, "model_hash": "00" * 16, "vocab": model.vocab,
        "temperature": 0.4,
        "planned": {"block_rams": fit.block_rams, "sprams": fit.sprams, "estimate": fit.estimate},
        "cycles_per_token": cycles, "tokens_per_second": clock_hz / cycles,
        "uart_tokens_per_second": uart_tokens_per_second(baud, 64, cycles, clock_hz),
        "boot_load": False, "table_offset": None, "flash_image": None,
    }  # fmt: skip
    (root / "board.json").write_text(json.dumps(b))
    return root


def _sim(mismatches: int) -> dict:
    """What ``spikelut sim LM --json`` prints (its own fields and the LMSimReport's)."""
    report = LMSimReport(
        steps=300, mismatches=mismatches, first_mismatch="", logit_chunks_checked=40,
        logit_mismatches=0, generated="abc", cycles_per_token=47.0,
        table_cycles_per_token=35, latency_cycles=47, cycles=14_000, cycles_per_second=1e5,
        cycles_per_cpu_second=1e5, build_seconds=1.0, build_cached=True, total_seconds=2.0,
        kind="parallel",
    )  # fmt: skip
    return {"model": "lm.lutnet", "prompt_from": "random bytes", "prompt_bytes": 256,
            "core_of": "build --board icebreaker", "plan": {}, "temperature": 0.0,
            **report.to_dict()}  # fmt: skip


@pytest.mark.slow
def test_build_and_simulation_fill_every_section(lm, tmp_path, capsys):
    model_path, compile_dir = lm
    model = load_model(model_path)
    build = _build_dir(tmp_path / "build", model, cycles=61)
    (build / "sim.json").write_text(json.dumps(_sim(0)))
    r, page = _report(capsys, model_path, compile_dir, build, tmp_path / "r.html")
    assert r["missing_sections"] == []
    assert str(build / "sim.json") in r["files"]
    b = json.loads((build / "board.json").read_text())
    ev = model.meta["quantization"]["evaluation"]

    loss = _html(page, "loss")
    assert _row(loss, "hardware") == [f"{ev['int_val_loss']:.4f} (equal to the integer loss)"]
    assert "300 tokens checked in 1 run(s), 0 mismatches" in loss

    tp = _html(page, "throughput")
    assert _row(tp, "bitstream's core at the board clock")[:3] == [
        "61", "12.0 MHz", _fmt(b["tokens_per_second"])]  # fmt: skip
    assert _row(tp, "bitstream's core at the achieved Fmax")[1:3] == ["27.5 MHz", _fmt(27.5e6 / 61)]
    assert _row(tp, "bitstream through the UART at 115,200 baud")[2] == _fmt(
        b["uart_tokens_per_second"]
    )
    assert _row(tp, "simulated: cocotb on Verilator, the core, greedy")[0] == "47"

    mem = _html(page, "memory")
    cell = b["rnn_plan"]["cell"]
    assert (
        _row(mem, "cell")[4]
        == f"{cell['storage']} (P {cell['tables_per_cycle']}, L {cell['lanes']})"
    )
    res = _html(page, "resources")
    assert _row(res, "logic cells") == ["4,321", "5,280"] and "27.5 MHz" in res

    # a simulation that differs: the hardware's loss is not the integer one
    (build / "sim.json").write_text(json.dumps(_sim(3)))
    r, page = _report(capsys, model_path, build, tmp_path / "r2.html")
    loss = _html(page, "loss")
    assert _row(loss, "hardware")[0].startswith("not measured")
    assert 'class="warn"' in loss and "3 mismatch(es)" in loss
    assert "memory" in r["missing_sections"]  # no compile manifest this time

    # bench/lm_board.py's JSON, found by its name in a directory
    bench = tmp_path / "bench"
    bench.mkdir()
    runs = {rule: {"tokens": 500, "agree": 500, "mismatches": 0, "board_cycles_per_token": 61,
                   "sim_tokens_per_second": 512.0, "sim_baud": 6_250_000, "temperature": t}
            for rule, t in (("greedy", 0.0), ("sampled", 0.4))}  # fmt: skip
    (bench / "lm-board.json").write_text(json.dumps({"model": "lm", "runs": runs}))
    r, page = _report(capsys, model_path, bench, tmp_path / "r3.html")
    assert "1000 tokens checked".replace("1000", "1,000") in _html(page, "loss")
    assert "sampled at 0.4" in _html(page, "throughput")

    # refusals, one line each: --data, a manifest of another model
    out = tmp_path / "bad.html"
    argv = ["report", str(model_path), str(compile_dir), "-o", str(out)]
    assert main([*argv, "--data", "digits"]) == 2
    assert "--data is for classifiers" in _one_line_error(capsys)
    other = tmp_path / "other"
    shutil.copytree(compile_dir, other)
    man = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**man, "vocab": 128}))
    assert main(["report", str(model_path), str(other), "-o", str(out)]) == 2
    assert "vocabulary 128" in _one_line_error(capsys)
    assert not out.exists()


def test_bad_input_is_one_line(tmp_path, capsys):
    src = tmp_path / "float.lutnet"
    _float_rnn(src)
    out = tmp_path / "r.html"
    assert main(["report", str(src), "-o", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "float spiking RNN" in err and "spikelut quantize" in err
    assert not out.exists()
