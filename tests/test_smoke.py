"""The toolchain proven for real: a counter through Amaranth sim, Verilator, and bitstreams."""

import json
from pathlib import Path

import pytest

from spikelut.cli.main import main
from spikelut.compiler.build import synthesis as build
from spikelut.sim import smoke


def test_counter_in_amaranth_simulator():
    result = smoke.check_amaranth_sim(width=3)
    assert result.ok, result.detail
    assert result.figures["cycles"] == 11


def test_counter_verilog_names_its_ports():
    from amaranth.back import verilog

    from spikelut.hdl.counter import Counter

    text = verilog.convert(Counter(width=5), name="counter", emit_src=False)
    assert "module counter" in text
    for port in ("clk", "rst", "en", "count", "wrap"):
        assert port in text


@pytest.mark.slow
def test_counter_on_verilator_with_cocotb(smoke_dir):
    result = smoke.check_verilator(smoke_dir / "verilator")
    assert result.ok, result.detail
    assert result.figures["tests"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("board,ext", [("icebreaker", "bin"), ("ulx3s-85f", "bit")])
def test_counter_bitstream(board, ext, smoke_dir):
    result = smoke.check_bitstream(board, smoke_dir / board)
    assert result.ok, result.detail
    bitstream = Path(result.figures["bitstream"])
    assert bitstream.suffix == f".{ext}" and bitstream.stat().st_size > 10_000
    assert build.timing_passed((smoke_dir / board / "top.tim").read_text())
    assert all(mhz > 12 for mhz in result.figures["fmax_mhz"].values())


def test_nextpnr_timing_parsing():
    log = (
        "Info: Max frequency for clock 'clk': 50.00 MHz (PASS at 12.00 MHz)\n"
        "Info: Max frequency for clock 'clk': 80.25 MHz (PASS at 12.00 MHz)\n"
    )
    assert build.parse_fmax(log) == {"clk": 80.25}
    assert build.timing_passed(log)
    assert not build.timing_passed(
        log + "Info: Max frequency for clock 'x': 5.00 MHz (FAIL at 12.00 MHz)\n"
    )
    assert not build.timing_passed("no report")


@pytest.mark.slow
def test_doctor_reports_every_tool_and_passes(smoke_dir, capsys):
    status = main(["doctor", "--json", "--keep", str(smoke_dir)])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and report["ok"]
    for tool in ("yosys", "nextpnr-ice40", "nextpnr-ecp5", "icepack", "ecppack", "verilator"):
        assert report["tools"][tool]["ok"] and report["tools"][tool]["version"]
    for lib in ("cocotb", "amaranth"):
        assert report["libraries"][lib]["version"]
    assert [c["name"] for c in report["checks"]] == [
        "amaranth-sim",
        "verilator+cocotb",
        "bitstream:icebreaker",
        "bitstream:ulx3s-85f",
    ]
    assert all(c["ok"] for c in report["checks"])
