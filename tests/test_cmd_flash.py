"""``spikelut flash``: programmer command lines, DFU suffix, clean failures."""

import os
import stat
import struct
import zlib

import pytest

from spikelut.boards.platforms import board
from spikelut.boards.program import add_dfu_suffix, has_dfu_suffix, plan_program
from spikelut.cli.main import main


def _fake_tool(tmp_path, name, status, message):
    path = tmp_path / name
    path.write_text(
        f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\necho '{message}' >&2\nexit {status}\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# the starts of real bitstreams: a comment block, then the ECP5 preamble / iCE40 sync word
ECP5_START = b"\xff\x00Part: LFE5U-85F-6CABGA381\x00\xff\xff\xff\xbd\xb3"
ICE40_START = b"\xff\x00\x00\xff\x7e\xaa\x99\x7e"


@pytest.fixture
def bitstream(tmp_path):
    path = tmp_path / "spikelut.bit"
    path.write_bytes(ECP5_START + bytes(range(256)) * 4)
    return path


def test_dfu_suffix_is_dfu_1_0_with_crc(bitstream):
    data = bitstream.read_bytes()
    out = add_dfu_suffix(data, vid=0x1209, pid=0x5AF0)
    assert out[: len(data)] == data and len(out) == len(data) + 16
    device, pid, vid, bcd = struct.unpack("<HHHH", out[-16:-8])
    assert (device, pid, vid, bcd) == (0xFFFF, 0x5AF0, 0x1209, 0x0100)
    assert out[-8:-5] == b"UFD" and out[-5] == 16
    # dfu-suffix's CRC: CRC-32 without the final inversion, over everything before it
    assert struct.unpack("<I", out[-4:])[0] == (~zlib.crc32(out[:-4])) & 0xFFFFFFFF
    assert has_dfu_suffix(out) and not has_dfu_suffix(data)
    assert add_dfu_suffix(out, vid=0x1209, pid=0x5AF0) == out
    corrupted = out[:10] + b"\0" + out[11:]
    assert not has_dfu_suffix(corrupted)


def test_orangecrab_gets_a_dfu_file_and_dfu_command(bitstream, monkeypatch):
    monkeypatch.setenv("OPENFPGALOADER", "/nonexistent/openFPGALoader")
    plan = plan_program(bitstream, board("orangecrab-85f"))
    assert plan.file.suffix == ".dfu" and has_dfu_suffix(plan.file.read_bytes())
    assert plan.argv[1:] == ["-b", "orangeCrab", "--dfu", str(plan.file)]
    assert not plan.found


def test_missing_programmer_fails_with_the_command(bitstream, monkeypatch, capsys):
    monkeypatch.setenv("OPENFPGALOADER", "/nonexistent/openFPGALoader")
    assert main(["flash", str(bitstream), "--board", "ulx3s-85f"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith(f"would run: openFPGALoader -b ulx3s -f {bitstream}")


def test_no_board_attached_fails_cleanly_with_exit_1(bitstream, tmp_path, monkeypatch, capsys):
    tool = _fake_tool(tmp_path, "openFPGALoader", 1, "unable to open ftdi device: -3")
    monkeypatch.setenv("OPENFPGALOADER", str(tool))
    assert main(["flash", str(bitstream), "--board", "ulx3s-12f", "--sram"]) == 1
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1
    assert "unable to open ftdi device" in out
    assert out.endswith(f"command: {tool} -b ulx3s {bitstream}")


def test_iceprog_programs_flash_and_sram(tmp_path, monkeypatch, capsys):
    tool = _fake_tool(tmp_path, "iceprog", 0, "done")
    monkeypatch.setenv("ICEPROG", str(tool))
    build = tmp_path / "build"
    build.mkdir()
    (build / "spikelut.bin").write_bytes(ICE40_START + b"bits")
    (build / "flash.bin").write_bytes(ICE40_START + b"bits+tables")
    (build / "tables.bin").write_bytes(b"tables")
    assert main(["flash", str(build), "--board", "icebreaker"]) == 0
    assert (tmp_path / "args").read_text().split() == [str(build / "flash.bin")]
    assert main(["flash", str(build), "--board", "icebreaker", "--sram"]) == 0
    assert (tmp_path / "args").read_text().split() == ["-S", str(build / "spikelut.bin")]
    out = capsys.readouterr().out
    assert "write flash.bin to the flash once first" in out  # SPRAM tables come from flash


def test_dry_run_prints_the_command(tmp_path, monkeypatch, capsys):
    bitstream = tmp_path / "spikelut.bin"
    bitstream.write_bytes(ICE40_START + bytes(64))
    monkeypatch.setenv("ICEPROG", "/nonexistent/iceprog")
    monkeypatch.setenv("OPENFPGALOADER", "/nonexistent/openFPGALoader")
    assert main(["flash", str(bitstream), "--board", "upduino3", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == f"iceprog {bitstream}"


def test_bad_path_is_a_user_error(tmp_path):
    assert main(["flash", str(tmp_path / "missing.bin"), "--board", "icebreaker"]) == 2
    assert main(["flash", str(tmp_path), "--board", "icebreaker"]) == 2
    assert not os.listdir(tmp_path)
