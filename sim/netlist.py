"""A core as Yosys synthesises it for a device family, ready for post-synthesis simulation.

:func:`synthesize` converts an elaborated core to RTLIL for the target (SPRAM lanes become
``SB_SPRAM256KA`` instances on an UltraPlus, as in the bitstream), runs the synthesis
command of the board build (:func:`spikelut.compiler.build.synthesis.synth_command`) and
writes the mapped netlist as Verilog: LUTs, carries, flip-flops, block RAMs with their
initial contents, SPRAMs and DSPs as vendor cells. :class:`Netlist` names the cell
simulation models that give those cells their behaviour (Yosys's, and this project's ECP5
block RAM, :mod:`spikelut.sim.ecp5_bram`), so the netlist runs in Verilator or Icarus under the same cocotb testbench as the RTL: a synthesis bug shows up as a
mismatch against the golden model instead of shipping.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from spikelut.compiler.backend.targets import Target
from spikelut.compiler.build import toolchain
from spikelut.compiler.build.synthesis import synth_command
from spikelut.compiler.fileio import write_text_atomic
from spikelut.sim.ecp5_bram import write_ecp5_models

__all__ = ["CELL_MODEL_ARGS", "FAMILIES", "Netlist", "cell_models", "synthesize"]

FAMILIES = ("ice40", "ecp5")

# Verilator options for the vendor cell models, written for event simulators: their delays
# and unused ports are not errors
CELL_MODEL_ARGS = ("--no-timing", "-Wno-lint", "-Wno-style")

# the simulation models of each family's cells, relative to Yosys's data directory
_CELL_MODELS = {"ice40": ("ice40/cells_sim.v",), "ecp5": ("ecp5/cells_sim.v",)}


@dataclass(frozen=True)
class Netlist:
    """A synthesised core: ``path`` of its Verilog netlist (module ``top``), the cell
    models (``libraries``) to simulate it with, the family, the Yosys cell counts
    (``cells``) and the synthesis wall time."""

    path: Path
    top: str
    family: str
    libraries: tuple[Path, ...]
    cells: dict
    synth_seconds: float

    @property
    def verilog(self) -> str:
        """The netlist's text."""
        return self.path.read_text()


def cell_models(family: str, work_dir: str | os.PathLike) -> tuple[Path, ...]:
    """The simulation models of ``family``'s cells: Yosys's, and on ECP5 this project's
    block RAM model in place of Yosys's black box (:mod:`spikelut.sim.ecp5_bram`, written
    into ``work_dir``). ToolNotFound without Yosys's data directory; ValueError for an
    unknown family."""
    if family not in _CELL_MODELS:
        raise ValueError(f"no netlist simulation for {family!r}; choose one of: ice40, ecp5")
    share = toolchain.yosys_share_dir()
    models = tuple(share / rel for rel in _CELL_MODELS[family])
    if family == "ecp5":
        return write_ecp5_models(models[0], Path(work_dir))
    return models


def _cell_counts(log: str) -> dict:
    """Cell type -> count from the ``stat`` at the end of a Yosys log."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        parts = line.split()
        # a cell line reads "<count> <cell type>"; vendor cell types are upper case
        if len(parts) == 2 and parts[0].isdigit() and parts[1][:1].isupper():
            counts[parts[1]] = int(parts[0])
    return counts


def synthesize(net, target: Target, work_dir: str | os.PathLike, *, top: str) -> Netlist:
    """Synthesise the elaborated core ``net`` for ``target``'s family into
    ``work_dir/netlist.v`` (module ``top``) with the board build's Yosys command; raises
    :class:`~spikelut.compiler.build.toolchain.ToolFailed` when Yosys fails."""
    work = Path(work_dir)
    libraries = cell_models(target.family, work)
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(work / "core.il", rtlil.convert(net, name=top, platform=target))
    script = (
        f"read_rtlil core.il; {synth_command(target.family, top)}; "
        "tee -o stat.txt stat; write_verilog -noattr netlist.v"
    )
    t0 = time.monotonic()
    toolchain.run_tool("yosys", ["-q", "-p", script], cwd=work, log=work / "yosys.log")
    seconds = time.monotonic() - t0
    cells = _cell_counts((work / "stat.txt").read_text())
    return Netlist(work / "netlist.v", top, target.family, libraries, cells, seconds)
