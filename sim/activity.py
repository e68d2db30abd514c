"""Switching activity of a simulated design, from Verilator's toggle coverage.

A design built with :data:`TOGGLE_BUILD_ARGS` counts, for every bit of every signal, its
0->1 and 1->0 transitions over the run and writes them to ``coverage.dat`` in the run's
directory when the simulation ends. :func:`read_toggles` sums them into
:class:`ToggleCounts`. What counts as logic: every signal bit of the RTL, each seen once per
module it appears in (a net that is a port of a child and a wire of its parent is counted
in both, toggles and bits alike, so the rate is unchanged). Memory contents (unpacked arrays,
``mem[i][j]``) are left out: on the FPGA they are block RAM, whose energy is counted per
read, not per logic cell.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["TOGGLE_BUILD_ARGS", "ToggleCounts", "read_toggles", "toggle_figures"]

TOGGLE_BUILD_ARGS = ("--coverage-toggle",)
COVERAGE_FILE = "coverage.dat"

_ARRAY_ELEMENT = re.compile(r"\]\[")  # a bit of an unpacked array's element: memory


@dataclass(frozen=True)
class ToggleCounts:
    """``toggles`` (transitions either way, summed over ``bits`` signal bits) of one run;
    ``memory_bits`` left out as memory contents."""

    toggles: int
    bits: int
    memory_bits: int

    def per_bit(self, events: int) -> float:
        """Toggles per logic bit per event (per inference, or per cycle with cycles)."""
        return self.toggles / self.bits / events if self.bits and events > 0 else 0.0

    def to_dict(self) -> dict:
        """JSON-able fields."""
        return asdict(self)


def read_toggles(run_dir: str | Path) -> ToggleCounts:
    """The toggle counts Verilator wrote to ``run_dir/coverage.dat``; FileNotFoundError
    when the design was not built with :data:`TOGGLE_BUILD_ARGS` (or did not finish)."""
    toggles, points, memory = 0, 0, 0
    with open(Path(run_dir) / COVERAGE_FILE, encoding="latin-1") as f:
        for line in f:
            if not line.startswith("C '"):
                continue
            key, count = line.rstrip("\n").rsplit(" ", 1)
            fields = dict(kv.split("\x02", 1) for kv in key[3:-1].split("\x01") if "\x02" in kv)
            if fields.get("t") != "toggle":
                continue
            if _ARRAY_ELEMENT.search(fields.get("o", "")):
                memory += 1
                continue
            toggles += int(count)
            points += 1
    # two points a bit: its 0->1 and its 1->0 transitions
    return ToggleCounts(toggles=toggles, bits=points // 2, memory_bits=memory // 2)


def toggle_figures(run_dir: str | Path, inferences: int) -> dict:
    """The counts of :func:`read_toggles` as a dict, with ``per_bit_per_inference`` over
    ``inferences`` (what a simulation report carries)."""
    counts = read_toggles(run_dir)
    return {**counts.to_dict(), "per_bit_per_inference": counts.per_bit(inferences)}
