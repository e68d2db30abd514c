"""The ECP5 block RAM model that replaces Yosys's black box in post-synthesis simulation.

Its behaviour is checked where it matters, against the golden model through a synthesised
core whose tables sit in DP16KD block RAMs (``tests/test_cmd_sim.py``, ``--netlist ecp5``);
here, that the library it goes with is the one Yosys ships minus that black box.
"""

from __future__ import annotations

import re

from spikelut.compiler.build import toolchain
from spikelut.sim.ecp5_bram import dp16kd_model, write_ecp5_models
from spikelut.sim.netlist import cell_models


def test_the_library_loses_only_the_black_box_and_the_model_takes_its_place(tmp_path):
    share = toolchain.yosys_share_dir()
    lib, model = write_ecp5_models(share / "ecp5" / "cells_sim.v", tmp_path)
    text = lib.read_text()
    assert "module DP16KD" not in text
    assert "`include" not in text  # inlined: the copy compiles from anywhere
    for cell in ("LUT4", "CCU2C", "TRELLIS_FF", "TRELLIS_DPR16X4", "PFUMX"):
        assert re.search(rf"module\s+{cell}\b", text), cell
    body = model.read_text()
    assert body == dp16kd_model()
    assert body.count("module DP16KD(") == 1
    # every initialisation word and every mode the memory mapping sets is a parameter
    for name in ("INITVAL_00", "INITVAL_3F", "DATA_WIDTH_A", "WRITEMODE_B", "CLKAMUX", "GSR"):
        assert f"parameter {name} " in body, name
    assert cell_models("ecp5", tmp_path / "w") == (
        tmp_path / "w" / "ecp5_cells_sim.v",
        tmp_path / "w" / "ecp5_dp16kd.v",
    )
