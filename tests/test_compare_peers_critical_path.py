"""``bench/compare_peers.py`` names nextpnr's critical path by its end cells."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from compare_peers import critical_path

LOG = """Info: Critical path report for clock 'clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  1.39  1.39 Source core.argmax.index_SB_DFF_Q_D_SB_LUT4_O_LC.O
Info:      logic  0.87  9.63 Source core.argmax.index_SB_LUT4_I2_LC.O
Info:      setup  0.10 19.03 Source core.argmax.index_SB_DFFSR_Q_DFFLC.SR
Info: 7.32 ns logic, 11.72 ns routing
Info: Max frequency for clock 'clk': 52.54 MHz (PASS at 40.00 MHz)
Info: Critical path report for clock 'clk' (posedge -> posedge):
Info:   clk-to-q  1.39  1.39 Source core.argmax.val_l1_0_2_SB_DFF_Q_6_D_SB_LUT4_O_LC.O
Info:      logic  0.28  6.67 Source core.argmax.idx_l2_0_4_SB_CARRY_CO$CARRY.COUT
Info:      logic  0.87  9.32 Source $nextpnr_ICESTORM_LC_154.O
Info:      setup  0.10 18.57 Source core.argmax.idx_l2_0_4_SB_DFFSR_Q_DFFLC.SR
Info: 6.19 ns logic, 12.38 ns routing
"""


def test_critical_path_names_the_last_reports_end_cells():
    assert critical_path(LOG) == "core.argmax.val_l1_0_2 -> core.argmax.idx_l2_0_4"
    assert critical_path("Info: Max frequency for clock 'clk': 52.54 MHz") is None
