"""Benchmark: the logic a board top spends beside its core (the host link's share).

Builds, with the real Yosys/nextpnr flow of ``spikelut build``, the board top of the smallest
classifier there is (one table of one comparison, two inputs, two classes: a core of a few
dozen cells) for one iCE40, one ECP5 and one Gowin board, and prints what nextpnr reports as used, the
core's own estimate and their difference: the cells the UART host link, its buffers, CRC,
hashes, boot loader, LEDs and reset take. That difference is what
:data:`spikelut.compiler.backend.targets.HOST_LINK_CELLS` keeps free on each family; rerun
this after changing the host link and update it.

    flock /tmp/spikelut-heavy.lock .venv/bin/python bench/host_link_cells.py [--boards ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from spikelut.boards.build import build_board
from spikelut.boards.design import board_core
from spikelut.boards.platforms import board
from spikelut.compiler.backend.targets import HOST_LINK_CELLS
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.lut import LUTLayer


def smallest_classifier() -> ClassifierMLP:
    """One LUT layer of one table with one comparison: two inputs, two classes."""
    rng = np.random.default_rng(0)
    layer = LUTLayer.random(in_dim=2, out_dim=2, n_tables=1, n_c=1, rng=rng)
    layer = layer.with_tables(np.array([[[1, -1], [-1, 1]]]))
    return ClassifierMLP(
        InputEncoding.identity(2, bits=2), [layer], 2, quant=[LayerQuant(table_bits=2)]
    )


def measure(name: str, work: Path) -> dict:
    """Build the smallest classifier's board top for board ``name``; its figures."""
    spec = board(name)
    model = smallest_classifier()
    core = board_core(model, spec)
    result = build_board(model, spec, work / name, progress=lambda msg: None)
    used = result["resources"]["logic_cells"]["used"]
    core_cells = core.estimate["logic_cells"]
    return {
        "board": name,
        "family": spec.family,
        "board_top_logic_cells": used,
        "core_estimate": core_cells,
        "host_link_cells": used - core_cells,
        "kept_free": HOST_LINK_CELLS[spec.family],
        "resources": result["resources"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--boards", default="icebreaker,ulx3s-85f,tang-nano-9k", help="comma-separated boards"
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.boards.split(","):
            print(f"building the smallest board top for {name} ...", file=sys.stderr)
            rows.append(measure(name, Path(tmp)))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'board':<16} {'used':>6} {'core est':>9} {'host link':>10} {'kept free':>10}")
    for r in rows:
        print(
            f"{r['board']:<16} {r['board_top_logic_cells']:>6} {r['core_estimate']:>9} "
            f"{r['host_link_cells']:>10} {r['kept_free']:>10}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
