"""Estimated energy per inference of board builds on the iCE40 UP5K, beside ElasticAI.Creator.

Reads the ``board.json`` of each build directory given (``spikelut build`` of a LUT
classifier, ``spikelut build --baseline mac`` of the multiply-accumulate core, or the
``lut``/``mac`` builds ``bench/compare_mac.py --out DIR`` leaves under ``DIR/BOARD/``) and
prints, per build, the energy per inference with its bounds
(:func:`spikelut.compiler.sweep.energy.energy_per_inference`: placed logic cells, table
memories and cycles per inference at the build's clock, the UP5K calibration quoted in
issue 17), its parts, and the ratio to ElasticAI.Creator's measured 0.172 uJ. The method
is printed with the figures: an estimate, not a measurement.

    python bench/energy_per_inference.py BUILD_DIR [BUILD_DIR ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spikelut.boards.platforms import board
from spikelut.compiler.sweep.energy import ELASTICAI_UJ_PER_INFERENCE, METHOD, energy_per_inference


def figures(build_dir: Path) -> dict:
    """The energy figures of the build in ``build_dir`` (its ``board.json``)."""
    info = json.loads((build_dir / "board.json").read_text())
    spec = board(info["board"])
    res = info["resources"]

    def used(name: str) -> int:
        return res.get(name, {}).get("used", 0)

    built = bool(info.get("fits")) and bool(info.get("bitstream"))
    energy = (
        None
        if not built
        else energy_per_inference(
            spec.family,
            spec.device,
            logic_cells=used("logic_cells"),
            memories=used("block_rams") + used("sprams"),
            cycles=info["cycles_per_inference"],
            clock_mhz=info["target_mhz"],
        )
    )
    return {
        "build": str(build_dir),
        "core": "mac" if info.get("baseline") == "mac" else f"lut ({info.get('indexer')})",
        "board": info["board"],
        "logic_cells": used("logic_cells"),
        "block_rams": used("block_rams"),
        "sprams": used("sprams"),
        "dsps": used("dsps"),
        "cycles_per_inference": info["cycles_per_inference"],
        "clock_mhz": info["target_mhz"],
        "timing_met": info["timing_met"],
        "built": built,
        "energy": energy,
    }


def main(argv=None) -> int:
    """Print the estimates (or ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("builds", nargs="+", type=Path, metavar="BUILD_DIR")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = [figures(b) for b in args.builds]
    if args.json:
        print(json.dumps({"method": METHOD, "elasticai_uj": ELASTICAI_UJ_PER_INFERENCE,
                          "builds": rows}, indent=1))  # fmt: skip
        return 0
    print(f"method: {METHOD}")
    for r in rows:
        e = r["energy"]
        head = (
            f"{r['core']:18} {r['board']}: {r['logic_cells']} LC, {r['block_rams']} BRAM, "
            f"{r['sprams']} SPRAM, {r['dsps']} DSP, {r['cycles_per_inference']} cycles at "
            f"{r['clock_mhz']:g} MHz"
        )
        if not r["built"]:
            print(f"{head}: the build does not fit the device: no estimate")
            continue
        if e is None:
            print(f"{head}: no calibration for this device")
            continue
        print(
            f"{head}: {e['uj']:.4g} uJ/inference (bounds {e['uj_low']:.3g}..{e['uj_high']:.3g}; "
            f"dynamic {e['dynamic_uj']:.3g}, static {e['static_uj']:.3g}, memory "
            f"{e['memory_uj']:.3g}); ElasticAI.Creator {ELASTICAI_UJ_PER_INFERENCE} uJ "
            f"(measured): {e['uj'] / ELASTICAI_UJ_PER_INFERENCE:.3g}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
