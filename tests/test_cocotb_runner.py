"""The cocotb runner's build options: what a build shows Python, and the cache key."""

from __future__ import annotations

import pytest
from cocotb_tools import runner as cocotb_runner_lib

from spikelut.sim.cocotb_runner import build_key, run_cocotb

VERILOG = "module tiny(input clk, output reg q); always @(posedge clk) q <= ~q; endmodule\n"


def _commands(monkeypatch, tmp_path, public: str) -> list[list[str]]:
    """The commands run_cocotb would run (nothing is executed), and the build's files."""
    ran: list[list[str]] = []

    def record(self, cmds, cwd):
        ran.extend([str(a) for a in cmd] for cmd in cmds)

    monkeypatch.setattr(cocotb_runner_lib.Runner, "_execute", record)
    res = run_cocotb(
        VERILOG,
        toplevel="tiny",
        test_module="no_such_module",
        build_dir=tmp_path / public,
        check=False,
        public=public,
    )
    assert not res.cached and res.tests == []
    return ran


def test_ports_only_builds_drop_public_flat_rw(monkeypatch, tmp_path):
    every = _commands(monkeypatch, tmp_path, "all")
    ports = _commands(monkeypatch, tmp_path, "ports")
    verilate_all = next(c for c in every if "--vpi" in c)
    verilate_ports = next(c for c in ports if "--vpi" in c)
    assert "--public-flat-rw" in verilate_all
    assert not any(a.endswith(".vlt") for a in verilate_all)
    assert "--public-flat-rw" not in verilate_ports
    # instead, a control file makes the top module's signals (its ports) public
    assert sum(a.endswith("public.vlt") for a in verilate_ports) == 1
    (vlt,) = (tmp_path / "ports").glob("tiny-*/public.vlt")  # the build moved into place
    assert 'public_flat_rw -module "tiny" -var "*"' in vlt.read_text()


def test_build_key_names_the_visibility():
    opts = dict(parameters={}, waves=None, build_args=[])
    default = build_key(VERILOG, "tiny", **opts)
    # "all" is cocotb's own build: its key is the one builds had before the option existed
    assert build_key(VERILOG, "tiny", public="all", **opts) == default
    assert build_key(VERILOG, "tiny", public="ports", **opts) != default
    assert build_key(VERILOG, "tiny", optimize=True, **opts) != default


def test_unknown_visibility_is_refused(tmp_path):
    with pytest.raises(ValueError, match="public"):
        run_cocotb(VERILOG, toplevel="tiny", test_module="m", build_dir=tmp_path, public="some")
