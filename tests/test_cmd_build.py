"""``spikelut build``: a tiny classifier to an icebreaker bitstream, reproducibly; a missed
clock fails with the report and a suggestion; bad input is a one-line error."""

import json

import pytest
from helpers_models import tiny_model

from spikelut.cli.main import main
from spikelut.compiler.ir.modelfile import save_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.lutnet"
    save_model(tiny_model(), path)
    return path


def _build(model_file, out, capsys, *extra):
    status = main(["build", str(model_file), "--board", "icebreaker", "-o", str(out), *extra])
    return status, json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_build_twice_gives_the_same_bitstream(model_file, tmp_path, capsys):
    status, r = _build(model_file, tmp_path / "a", capsys, "--json")
    assert status == 0 and r["ok"] and r["timing_met"] and r["fits"]
    assert r["resources"]["logic_cells"]["used"] > 100
    assert r["resources"]["flip_flops"]["used"] > 50
    assert min(r["fmax_mhz"].values()) >= r["target_mhz"] == 12.0
    assert r["cycles_per_inference"] >= 1 and r["inferences_per_second"] > 0
    saved = json.loads((tmp_path / "a" / "board.json").read_text())
    assert saved["model_hash"] == r["model_hash"] and saved["plans"] == r["plans"]
    status, _ = _build(model_file, tmp_path / "b", capsys, "--json")
    assert status == 0
    first = (tmp_path / "a" / "spikelut.bin").read_bytes()
    assert first == (tmp_path / "b" / "spikelut.bin").read_bytes() and len(first) > 100_000


@pytest.mark.slow
def test_missed_timing_exits_1_with_a_suggestion(model_file, tmp_path, capsys):
    status = main(
        ["build", str(model_file), "--board", "icebreaker", "-o", str(tmp_path), "--freq", "204"]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL" in out and "Fmax" in out and "ask for --freq" in out
    report = json.loads((tmp_path / "build-report.json").read_text())
    assert not report["timing_met"] and report["target_mhz"] == pytest.approx(204, rel=0.005)


def test_bad_input_is_a_one_line_error(model_file, tmp_path, capsys):
    assert main(["build", str(model_file), "--board", "nosuch", "-o", str(tmp_path)]) == 2
    assert "unknown board" in capsys.readouterr().err
    assert main(["build", str(tmp_path / "none.lutnet"), "--board", "icebreaker"]) == 2
    assert main(["build", str(model_file), "--board", "icebreaker", "--freq", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "16..275 MHz" in err[-1]
