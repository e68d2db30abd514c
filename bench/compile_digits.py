"""The digits classifier on the iCE40 UP5K: compile time, cycles, size, rate per logic cell.

Trains the default digits classifier (or loads ``--model``, float or integer), quantises it,
and for the UP5K reports:

- cycles per inference of each indexer (parallel, temporal, serial) at the fastest table
  placement the UP5K's memories allow, with the bandwidth floor and the logic estimate;
- the fastest and the smallest configuration (indexer and placement) that fit the UP5K with
  room for the host link, by the logic estimate: logic cells (with ``--synth``: measured by
  Yosys ``synth_ice40``), block RAMs and SPRAMs, cycles per inference, and inferences per
  second per logic cell at ``--clock-mhz`` (an assumed clock: the bare core is not placed and
  routed; ``spikelut build --board icebreaker`` reports the Fmax of the board design).

    python bench/compile_digits.py [--model FILE] [--synth] [--clock-mhz 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import verilog

from spikelut.compiler.backend.cores import CoreKind, build_core, core_cycles
from spikelut.compiler.backend.estimate import estimate_logic
from spikelut.compiler.backend.manifest import manifest
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.placement import fit_plans
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.build.toolchain import find
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.ir.modelfile import load_model
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.sweep.peers import PEERS
from spikelut.compiler.train.classifier import train_on_dataset

TARGET = TARGETS["ice40-up5k"]
KINDS = (CoreKind.PARALLEL, CoreKind.TEMPORAL, CoreKind.SERIAL)
# TreeLUT on the same UP5K and digits split, as quoted (one inference per clock, no block RAM)
TREELUT = {k: PEERS[0][k] for k in ("accuracy", "logic_cells", "clock_mhz", "cycles_per_inference")}


def _model(path: str | None, data):
    model = train_on_dataset(data) if path is None else load_model(path)
    if not model.is_integer:
        model = quantize_classifier(model, calib_raw=data.X_train)
    return model


def _synth(text: str) -> dict:
    """Yosys ``synth_ice40`` cell counts of a Verilog core."""
    yosys = find("yosys")  # YOSYS, then the YoWASP copy installed with spikelut
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "core.v"
        src.write_text(text)
        # relative paths: the YoWASP build only sees the working directory
        script = "read_verilog core.v; synth_ice40 -top spikelut_core; tee -o stat.txt stat"
        t0 = time.perf_counter()
        subprocess.run([yosys, "-q", "-p", script], check=True, capture_output=True, cwd=tmp)
        stat = (Path(tmp) / "stat.txt").read_text()
    counts = {name: int(n) for n, name in re.findall(r"^\s+(\d+)\s+(SB_\w+)\s*$", stat, re.M)}
    luts, ffs = counts.get("SB_LUT4", 0), sum(v for k, v in counts.items() if "DFF" in k)
    return {
        "luts": luts,
        "flip_flops": ffs,
        "carries": counts.get("SB_CARRY", 0),
        "logic_cells": max(luts, ffs),
        "block_rams": counts.get("SB_RAM40_4K", 0),
        "sprams": counts.get("SB_SPRAM256KA", 0),
        "synth_seconds": round(time.perf_counter() - t0, 1),
    }


def _config(model, plans, kind: CoreKind, clock_mhz: float, synth: bool) -> dict:
    t0 = time.perf_counter()
    params, widths = network_params(model, plans, kind=kind)
    net = build_core(kind, params)
    text = verilog.convert(net, name="spikelut_core", platform=TARGET)
    seconds = time.perf_counter() - t0
    m = manifest(net, kind, widths, family=TARGET.family)
    est = m["estimate"]
    rate = clock_mhz * 1e6 / m["cycles_per_inference"]
    out = {
        "indexer": kind.value,
        "placement": [
            {
                k: layer[k]
                for k in ("storage", "tables_per_cycle", "lanes", "comparators")
                if k in layer
            }
            for layer in m["layers"]
        ],
        "compile_seconds": round(seconds, 2),
        "cycles_per_inference": m["cycles_per_inference"],
        "bandwidth_floor_cycles": m["bandwidth_floor_cycles"],
        "bandwidth_fraction": m["bandwidth_fraction"],
        "inferences_per_second": rate,
        "estimate": est,
        "estimate_per_logic_cell": rate / est["logic_cells"],
        "fits_logic": est["logic_cells"] <= TARGET.core_logic_cells,
    }
    if synth:
        y = _synth(text)
        out["yosys"] = y
        out["yosys_per_logic_cell"] = rate / y["logic_cells"]
    return out


def _fitting(model, mem: dict, smallest: bool):
    """``(kind, plans)`` of the fastest (or smallest, by the logic estimate) configuration
    that fits the UP5K beside the host link, over every core kind."""
    found = []
    for kind in KINDS:
        try:
            plans = fit_plans(
                model, logic_cells=TARGET.core_logic_cells, kind=kind, smallest=smallest, **mem
            )
        except ValueError:
            continue
        params, _ = network_params(model, plans, kind=kind)
        est = estimate_logic(params, mem["family"], kind)["logic_cells"]
        cycles = core_cycles(params)
        found.append(((est, cycles) if smallest else (cycles, est), kind.value, kind, plans))
    if not found:
        raise SystemExit("no configuration of the digits classifier fits the UP5K")
    _, _, kind, plans = min(found, key=lambda f: f[:2])
    return kind, plans


def main(argv=None) -> int:
    """Run the benchmark; print a summary (or ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help=".lutnet digits classifier (default: train one)")
    ap.add_argument(
        "--synth",
        action="store_true",
        help="synthesise the fitting configurations with Yosys (about a minute)",
    )
    ap.add_argument(
        "--clock-mhz",
        type=float,
        default=12.0,
        help="assumed core clock for the rates (the iCEBreaker's 12 MHz by default)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    data = load_dataset("digits")
    model = _model(args.model, data)
    acc = float((int_predict(model, data.X_test) == data.y_test).mean())
    mem = dict(family=TARGET.family, block_rams=TARGET.block_rams, sprams=TARGET.sprams)
    fastest_mem = fit_plans(model, **mem)  # the memories' limit, whatever the logic
    configs = {
        f"{kind.value}_at_fastest_placement": _config(
            model, fastest_mem, kind, args.clock_mhz, False
        )
        for kind in KINDS
    }
    for name, smallest in (("fastest_that_fits", False), ("smallest_that_fits", True)):
        kind, plans = _fitting(model, mem, smallest)
        configs[name] = _config(model, plans, kind, args.clock_mhz, args.synth)
    layers = model.layers
    result = {
        "target": TARGET.name,
        "clock_mhz": args.clock_mhz,
        "model": {
            "shape": [(lay.in_dim, lay.out_dim, lay.n_tables, lay.n_c) for lay in layers],
            "table_bits": [q.table_bits for q in model.quant],
            "integer_test_accuracy": acc,
            "test_vectors": len(data.y_test),
        },
        "logic_cells_available": TARGET.core_logic_cells,
        "configs": configs,
        "treelut": {
            **TREELUT,
            "inferences_per_second_per_logic_cell": TREELUT["clock_mhz"]
            * 1e6
            / TREELUT["cycles_per_inference"]
            / TREELUT["logic_cells"],
        },
    }
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return 0
    print(
        f"digits {result['model']['shape']} integer accuracy {acc:.1%} on "
        f"{len(data.y_test)} test vectors; {TARGET.name} at {args.clock_mhz:g} MHz"
    )
    for key, c in configs.items():
        est = c["estimate"]
        line = (
            f"{key:32s} {c['indexer']:8s} {c['placement']}: {c['cycles_per_inference']} "
            f"cycles/inf (floor {c['bandwidth_floor_cycles']}, {c['bandwidth_fraction']:.0%}), "
            f"est {est['logic_cells']} LC ({est['luts']} LUT4, {est['flip_flops']} FF), "
            f"{est['block_rams']} BRAM + {est['sprams']} SPRAM, "
            f"{c['estimate_per_logic_cell']:.1f} inf/s/LC, "
            f"{'fits' if c['fits_logic'] else 'does NOT fit'} "
            f"{result['logic_cells_available']} LC, "
            f"compile {c['compile_seconds']} s"
        )
        if "yosys" in c:
            y = c["yosys"]
            line += (
                f"; yosys {y['logic_cells']} LC ({y['luts']} LUT4, {y['flip_flops']} FF), "
                f"{y['block_rams']} BRAM, {y['sprams']} SPRAM, "
                f"{c['yosys_per_logic_cell']:.1f} inf/s/LC"
            )
        print(line)
    t = result["treelut"]
    print(
        f"TreeLUT: {t['accuracy']:.1%}, {t['logic_cells']} LC at {t['clock_mhz']:g} MHz, "
        f"1 inference/clock: {t['inferences_per_second_per_logic_cell']:.0f} inf/s/LC"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
