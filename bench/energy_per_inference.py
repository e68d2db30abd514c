"""Estimated energy per inference of board builds on the iCE40 UP5K, beside ElasticAI.Creator.

Reads the ``board.json`` of each build directory given (``spikelut build`` of a LUT
classifier, ``spikelut build --baseline mac`` of the multiply-accumulate core, or the
``lut``/``mac`` builds ``bench/compare_mac.py --out DIR`` leaves under ``DIR/BOARD/``) and
prints, per build, the energy per inference with its bounds
(:func:`spikelut.compiler.analysis.energy.energy_per_inference`: placed logic cells, table
memories and cycles per inference at the build's clock, the UP5K calibration quoted in
issue 17), its parts, and the ratio to ElasticAI.Creator's measured 0.172 uJ. The method
is printed with the figures: an estimate, not a measurement.

    python bench/energy_per_inference.py BUILD_DIR [BUILD_DIR ...]
        [--lut MODEL=BUILD_DIR ...] [--mac BUILD_DIR] [--vectors N] [--json FILE]

``--lut MODEL=BUILD_DIR`` (an integer classifier and its build) and ``--mac BUILD_DIR`` (a
``--baseline mac`` build of the MLP ``bench/compare_mac.py`` trains, trained again here
the same way) add the estimate from measured switching: the build's core runs the digits
test set (``--vectors`` of it, default all) in Verilator with toggle counting
(:mod:`spikelut.sim.activity`), every output checked against its golden model, and its
toggles per signal bit per inference replace the activity bounds
(:data:`~spikelut.compiler.analysis.energy.METHOD_ACTIVITY`). Run it under
``flock /tmp/spikelut-heavy.lock``: each core is a Verilator build.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spikelut.boards.design import core_of_build
from spikelut.compiler.analysis.energy import (
    ELASTICAI_UJ_PER_INFERENCE,
    METHOD,
    METHOD_ACTIVITY,
    build_energy,
)
from spikelut.compiler.backend.mac import quantize_for
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.frontend.ann import from_sklearn
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.ir.modelfile import load_model
from spikelut.sim.mac_sim import check_mac_core
from spikelut.sim.network_sim import simulate


def lut_toggles(model_path: Path, build_dir: Path, vectors: int | None) -> float:
    """Toggles per signal bit per inference of the LUT core of ``build_dir`` running the
    model's test set; every output checked against the golden model."""
    model = load_model(model_path)
    spec, core = core_of_build(model, json.loads((build_dir / "board.json").read_text()))
    data = load_dataset(model.meta.get("dataset", "digits"))
    x = model.encoding.encode_int(data.X_test)[:vectors]
    rep = simulate(model, x, plans=core.plans, target=spec.target, kind=core.kind, activity=True)
    if rep.mismatches:
        raise SystemExit(
            f"{build_dir}: the core differs from the golden model: {rep.first_mismatch}"
        )
    return rep.toggles["per_bit_per_inference"]


def mac_toggles(build_dir: Path, vectors: int | None) -> float:
    """Toggles per signal bit per inference of the MAC core of ``build_dir`` (the MLP of
    bench/compare_mac.py, trained again) running the digits test set, checked against
    its integer reference."""
    from compare_mac import train_mlp  # the same MLP, deterministic

    info = json.loads((build_dir / "board.json").read_text())
    data = load_dataset("digits")
    net, _ = quantize_for(from_sklearn(train_mlp(data)), "digits")
    x = net.encoding.encode_int(data.X_test)[:vectors]
    res = check_mac_core(net, x, macs=info["macs"], activity=True)
    return res["toggles"]["per_bit_per_inference"]


def figures(build_dir: Path, toggles_per_bit: float | None = None) -> dict:
    """The energy figures of the build in ``build_dir`` (its ``board.json``,
    :func:`~spikelut.compiler.analysis.energy.build_energy`); with ``toggles_per_bit`` (its
    core's, measured) also the estimate from that activity."""
    info = json.loads((build_dir / "board.json").read_text())
    return {"build": str(build_dir), **build_energy(info, toggles_per_bit)}


def _line(e: dict) -> str:
    return (
        f"{e['uj']:.4g} uJ/inference (bounds {e['uj_low']:.3g}..{e['uj_high']:.3g}; dynamic "
        f"{e['dynamic_uj']:.3g}, static {e['static_uj']:.3g}, memory {e['memory_uj']:.3g}); "
        f"ElasticAI.Creator {ELASTICAI_UJ_PER_INFERENCE} uJ (measured): "
        f"{e['uj'] / ELASTICAI_UJ_PER_INFERENCE:.3g}x"
    )


def main(argv=None) -> int:
    """Print the estimates (and with ``--json FILE`` write them)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("builds", nargs="*", type=Path, metavar="BUILD_DIR")
    ap.add_argument("--lut", action="append", default=[], metavar="MODEL=BUILD_DIR")
    ap.add_argument("--mac", action="append", default=[], type=Path, metavar="BUILD_DIR")
    ap.add_argument("--vectors", type=int, default=None, help="test vectors simulated (all)")
    ap.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="also write the figures as JSON (name it energy.json in a build or demo "
        "directory and spikelut report shows them beside the build's own estimate)",
    )
    args = ap.parse_args(argv)
    jobs = [(b, None) for b in args.builds]
    for item in args.lut:
        model, sep, build = item.partition("=")
        if not sep:
            ap.error(f"--lut {item!r}: give MODEL=BUILD_DIR")
        jobs.append((Path(build), lut_toggles(Path(model), Path(build), args.vectors)))
    jobs += [(b, mac_toggles(b, args.vectors)) for b in args.mac]
    if not jobs:
        ap.error("give build directories, --lut MODEL=BUILD_DIR or --mac BUILD_DIR")
    rows = [figures(b, t) for b, t in jobs]
    if args.json:
        doc = {"method": METHOD, "method_activity": METHOD_ACTIVITY,
               "elasticai_uj": ELASTICAI_UJ_PER_INFERENCE, "builds": rows}  # fmt: skip
        write_text_atomic(args.json, json.dumps(doc, indent=1) + "\n")
    print(f"method: {METHOD}")
    if any(t is not None for _, t in jobs):
        print(f"method from activity: {METHOD_ACTIVITY}")
    for r in rows:
        e, a = r["energy"], r["energy_from_activity"]
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
        print(f"{head}:\n  from cells alone: {_line(e)}")
        if a is not None:
            print(f"  from activity ({a['toggles_per_bit']:.3g} toggles a bit an inference): "
                  f"{_line(a)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
