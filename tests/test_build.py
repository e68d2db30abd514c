"""The build driver's report parsing (nextpnr and Yosys logs)."""

from spikelut.compiler.build import synthesis as build

ICE40_LOG = """Info: Device utilisation:
Info: \t         ICESTORM_LC:    1234/   5280    23%
Info: \t        ICESTORM_RAM:       2/     30     6%
Info: \t               SB_IO:      11/     39    28%
Info: \t        ICESTORM_PLL:       1/      1   100%
Info: \t        ICESTORM_DSP:       0/      8     0%
Info: \t      ICESTORM_SPRAM:       4/      4   100%
Info: Max frequency for clock 'clk': 20.00 MHz (FAIL at 24.00 MHz)
Info: Max frequency for clock 'clk': 31.50 MHz (PASS at 24.00 MHz)
"""

ECP5_LOG = """Info: Device utilisation:
Info: \t          TRELLIS_IO:    13/   365     3%
Info: \t        TRELLIS_COMB:  9000/ 83640    10%
Info: \t          TRELLIS_FF:  2100/ 83640     2%
Info: \t              DP16KD:   192/   208    92%
Info: \t          MULT18X18D:     0/   156     0%
Info: \t             EHXPLLL:     0/     4     0%
"""


def test_ice40_utilisation_and_the_last_timing_verdict():
    res = build.parse_utilisation(ICE40_LOG, "ice40")
    assert res["logic_cells"] == {"used": 1234, "available": 5280}
    assert res["sprams"]["used"] == 4 and res["block_rams"]["used"] == 2
    assert res["plls"]["used"] == 1 and res["dsps"]["used"] == 0
    assert build.parse_fmax(ICE40_LOG) == {"clk": 31.5}
    assert build.timing_passed(ICE40_LOG)  # the post-route verdict counts, not the estimate
    assert not build.timing_passed(ICE40_LOG.replace("31.50 MHz (PASS", "22.00 MHz (FAIL"))


def test_ecp5_utilisation():
    res = build.parse_utilisation(ECP5_LOG, "ecp5")
    assert res["logic_cells"]["used"] == 9000 and res["flip_flops"]["used"] == 2100
    assert res["block_rams"] == {"used": 192, "available": 208}
    assert build.parse_utilisation("no report", "ecp5") == {}


def test_yosys_flip_flops_count_the_final_statistics():
    rpt = """Printing statistics.
      10   SB_DFF
Printing statistics.
=== top ===
Count including submodules.
      29   SB_DFF
       9   SB_DFFE
    3383   SB_DFFESR
     100   SB_LUT4
"""
    assert build.parse_yosys_flip_flops(rpt) == 29 + 9 + 3383


def test_a_synthesis_failure_names_yosys_log(tmp_path):
    """When Yosys fails, nextpnr never writes its log: the report points at Yosys's log
    and quotes its error (it pointed at a ``.tim`` that did not exist)."""
    from amaranth.hdl import Elaboratable, Instance, Module

    from spikelut.boards.platforms import board

    class Broken(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            led = platform.request("led", 0, dir="-")
            m.submodules.cell = Instance("NO_SUCH_CELL_HERE", io_Y=led.io)
            return m

    spec = board("icebreaker")
    report = build.run_build(
        Broken(), spec.platform(), tmp_path, target=spec.target, board=spec.name,
        target_mhz=12.0, progress=lambda msg: None,
    )  # fmt: skip
    assert not report.ok and report.log.endswith(".rpt")
    assert "NO_SUCH_CELL_HERE" in report.suggestion and str(tmp_path) in report.suggestion
