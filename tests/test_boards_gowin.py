"""``spikelut build --board tang-nano-9k``: a tiny classifier through the open Gowin flow
from PyPI (Yosys, nextpnr-himbaechel, Apicula's gowin_pack) to a bitstream that meets the
board's 27 MHz, with its tables in Gowin memory, and the flash command for it."""

import json
from pathlib import Path

import pytest
from helpers_models import tiny_model

from spikelut.boards.program import bitstream_family
from spikelut.cli.main import main
from spikelut.compiler.ir.modelfile import save_model


@pytest.mark.slow
def test_tang_nano_9k_build_meets_timing_with_tables_in_bsram(tmp_path, capsys):
    model = tmp_path / "tiny.lutnet"
    save_model(tiny_model(), model)
    out = tmp_path / "build"
    status = main(["build", str(model), "--board", "tang-nano-9k", "-o", str(out), "--json"])
    r = json.loads(capsys.readouterr().out)
    assert status == 0 and r["ok"] and r["fits"] and r["timing_met"], r["suggestion"]
    assert r["device"] == "GW1NR-LV9QN88PC6/I5" and r["target_mhz"] == 27.0
    assert min(r["fmax_mhz"].values()) >= 27.0
    res = r["resources"]
    assert 500 < res["logic_cells"]["used"] <= res["logic_cells"]["available"] == 8640
    assert 0 < res["flip_flops"]["used"] <= res["flip_flops"]["available"]
    # memory-backed tables: Yosys puts tables this small in distributed RAM (RAM16SDP4), the
    # host link's payload buffer takes a block SRAM (the demo's tables take 13 to 23)
    assert all(p["storage"] == "bram" for p in r["plans"])
    assert res["lutrams"]["used"] > 0 and res["block_rams"]["used"] >= 1
    bitstream = Path(r["bitstream"])
    assert bitstream.name == "spikelut.fs"
    assert bitstream_family(bitstream.read_bytes()[:4096]) == "gowin"
    assert main(["flash", str(out), "--board", "tang-nano-9k", "--dry-run"]) == 0
    command = capsys.readouterr().out
    assert "-b tangnano9k" in command and "spikelut.fs" in command
