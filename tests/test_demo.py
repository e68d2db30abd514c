"""``spikelut demo``: the stage mechanism (order, progress, failure, no silent reuse) and a tiny
real pipeline through the first stages, and (slow) the whole demo."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_output import foreign_lines

from spikelut.flows.demo import (
    DEFAULT_STAGES,
    DemoContext,
    DemoOptions,
    Stage,
    StageFailed,
    run_demo,
    run_stages,
)


def _writer(name: str, seen: list[str]):
    def fn(ctx: DemoContext, folder: Path) -> dict:
        seen.append(name)
        (folder / f"{name}.txt").write_text(name)
        ctx.objects[name] = len(seen)
        return {"order": len(seen), "files": [str(folder / f"{name}.txt")]}

    return fn


def _broken(ctx: DemoContext, folder: Path) -> dict:
    (folder / "partial.txt").write_text("half")
    raise RuntimeError("the tool crashed")


def test_stages_run_in_order_with_progress(tmp_path, caplog):
    seen: list[str] = []
    stages = [Stage(n, _writer(n, seen)) for n in ("alpha", "beta", "gamma")]
    with caplog.at_level(logging.INFO, logger="spikelut.demo"):
        ctx = run_stages(stages, DemoContext(out=tmp_path))
    assert seen == ["alpha", "beta", "gamma"]
    assert [ctx.results[n]["order"] for n in seen] == [1, 2, 3]
    lines = [r.getMessage() for r in caplog.records]
    starts = [i for i, m in enumerate(lines) if m.endswith(": started")]
    ends = [i for i, m in enumerate(lines) if " done in " in m]
    assert len(starts) == len(ends) == 3 and all(s < e for s, e in zip(starts, ends, strict=True))
    assert lines[ends[1]].startswith("[2/3] beta: done in ")
    for k, n in enumerate(seen, 1):
        record = json.loads((tmp_path / f"{k:02d}-{n}" / "stage.json").read_text())
        assert record["stage"] == n and record["order"] == k and record["seconds"] >= 0


def test_a_failure_names_the_stage_and_keeps_earlier_outputs(tmp_path, caplog):
    seen: list[str] = []
    stages = [
        Stage("alpha", _writer("alpha", seen)),
        Stage("boom", _broken),
        Stage("gamma", _writer("gamma", seen)),
    ]
    with caplog.at_level(logging.INFO, logger="spikelut.demo"), pytest.raises(StageFailed) as e:
        run_stages(stages, DemoContext(out=tmp_path))
    assert e.value.stage == "boom" and "the tool crashed" in str(e.value)
    assert (tmp_path / "01-alpha" / "alpha.txt").read_text() == "alpha"
    assert (tmp_path / "02-boom" / "partial.txt").exists()  # left for inspection
    assert not (tmp_path / "03-gamma").exists() and seen == ["alpha"]
    assert any("boom: FAILED" in r.getMessage() for r in caplog.records)


def test_rerunning_reuses_nothing(tmp_path):
    seen: list[str] = []
    stages = [Stage("alpha", _writer("alpha", seen)), Stage("beta", _writer("beta", seen))]
    run_stages(stages, DemoContext(out=tmp_path))
    stale = tmp_path / "02-beta" / "stale.bin"
    stale.write_bytes(b"old")
    failing = [Stage("alpha", _broken), stages[1]]
    with pytest.raises(StageFailed):
        run_stages(failing, DemoContext(out=tmp_path))
    # the earlier run's outputs of every listed stage are gone, not mixed with this run's
    assert not stale.exists() and not (tmp_path / "02-beta").exists()
    assert not (tmp_path / "01-alpha" / "alpha.txt").exists()
    # a stage that moved in the list, and a stage no longer listed, leave nothing behind;
    # folders that are not stage folders stay
    (tmp_path / "07-old").mkdir()
    (tmp_path / "07-old" / "stage.json").write_text("{}")
    (tmp_path / "09-photos").mkdir()
    run_stages([Stage("zero", _writer("zero", seen)), stages[0]], DemoContext(out=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-zero", "02-alpha", "09-photos"]


def test_missing_inputs_and_duplicate_names_are_clear(tmp_path):
    with pytest.raises(StageFailed, match="needs 'model', which no earlier stage"):
        run_stages([DEFAULT_STAGES[2]], DemoContext(out=tmp_path))
    with pytest.raises(ValueError, match="unique"):
        run_stages([Stage("a", _broken), Stage("a", _broken)], DemoContext(out=tmp_path))


def test_default_stage_order():
    assert [s.name for s in DEFAULT_STAGES] == [
        "train",
        "quantize",
        "compile",
        "sim",
        "netlist",
        "build",
        "run",
        "baseline",
    ]


@pytest.mark.slow
def test_tiny_pipeline_summary_and_report(tmp_path):
    options = DemoOptions(data="iris", train={"n_tables": 6, "n_c": 3, "epochs": 3})
    stages = [s for s in DEFAULT_STAGES if s.name in ("train", "quantize", "compile")]
    s = run_demo(tmp_path, options, stages)
    assert 0.0 <= s["float_accuracy"] <= 1.0 and 0.0 <= s["int_accuracy"] <= 1.0
    assert s["cycles_per_inference"] >= 1 and s["mismatches"] is None
    assert s["versus_dense_ann"]["lut_multiplications"] == 0
    assert s["versus_dense_ann"]["ann_macs"] == 4 * 3
    for files in s["files"].values():
        assert files and all(Path(f).exists() for f in files)
    assert json.loads((tmp_path / "summary.json").read_text())["int_accuracy"] == s["int_accuracy"]
    page = (tmp_path / "report.html").read_text()
    assert "Table memory and placement" in page and "Confusion matrix" in page


def test_cli_rejects_bad_input(tmp_path, capsys):
    from spikelut.cli.main import main

    assert main(["demo", "--board", "no-such-board", "-o", str(tmp_path)]) == 2
    assert "unknown board" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["demo", "-o", str(tmp_path / "file")]) == 2


@pytest.mark.slow
def test_the_demo(tmp_path):
    """The whole demo as ``spikelut demo`` runs it: digits on icebreaker, every stage (about
    2.5 minutes here with warm tool caches, 5 with cold Verilator caches), in its own
    process with its output in a file, which holds only spikelut's own lines (issue 19)."""
    out = tmp_path / "demo"
    with open(tmp_path / "out.txt", "w") as f:
        cmd = [sys.executable, "-m", "spikelut.cli.main", "demo", "-o", str(out)]
        status = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=1800)
    text = (tmp_path / "out.txt").read_text()
    assert status.returncode == 0, text[-3000:]
    assert foreign_lines(text) == [] and re.search(r"\[(\d+)/\1\] \w+: done in", text)
    s = json.loads((out / "summary.json").read_text())
    assert s["vectors_checked"] == 450 and s["mismatches"] == 0
    # the core verified in cocotb is the bitstream's: same kind, and its Yosys netlist too
    compiled = json.loads(Path(s["files"]["compile"][2]).read_text())
    assert compiled["indexer"] == s["board_indexer"]
    assert compiled["plans"] == json.loads(Path(s["files"]["build"][2]).read_text())["plans"]
    assert s["netlist_vectors_checked"] == 100 and s["netlist_mismatches"] == 0
    assert s["netlist_family"] == "ice40"
    assert s["hardware_accuracy"] == s["int_accuracy"] >= 0.965  # issue 9's target
    # the bitstream's own design, simulated over UART, on the whole test set
    assert s["board_run"]["agree"] == s["board_run"]["n"] == 450
    assert s["board_vectors_checked"] == 450 and s["board_mismatches"] == 0
    mac = s["mac_baseline"]  # the multiply-accumulate core of an MLP, side by side
    assert mac["multiplications"] == 64 * 32 + 32 * 10 and mac["cycles_per_inference"] > 0
    assert s["logic_cells"]["used"] <= s["logic_cells"]["available"]
    assert s["fmax_mhz"] >= s["clock_mhz"]
    assert Path(s["files"]["build"][0]).stat().st_size > 100_000  # the bitstream
    page = (out / "report.html").read_text()
    assert 'class="missing"' not in page
