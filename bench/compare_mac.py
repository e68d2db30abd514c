"""The LUT network beside the multiply-accumulate baseline on the same boards (issue 8).

For digits: trains the MLP ``MLPClassifier((32,), max_iter=500, random_state=0)`` on the
fixed split, converts it to a LUT classifier (:func:`convert_ann`, then
:func:`quantize_classifier`), quantises it for the MAC core (8-bit weights), builds both cores
for every board in the same board top (:class:`spikelut.boards.top.BoardTop`: UART host
link, LEDs), and prints one table side by side: accuracy, logic cells, flip-flops, block
RAM/SPRAM, DSPs, Fmax, cycles per inference, inferences per second (at the achieved Fmax),
memory bits read per inference, additions and multiplications per inference, and the ratio
LUT/MAC. ``--explore`` adds other conversion settings (accuracy against table bits read; no
build).

Both cores go through ``spikelut build``'s own functions (:func:`build_board`, and
:func:`build_mac_board` as ``--baseline mac``); on iCE40 the build runs ``synth_ice40
-dsp``, so the MAC core's multipliers use the UltraPlus's SB_MAC16 blocks; ECP5 maps them to
MULT18X18D. The LUT network's tables are ``--bits`` wide (default
:data:`~spikelut.compiler.train.convert.INT_TABLE_BITS`), which sets its bits read per inference.

Usage: ``python bench/compare_mac.py [--json] [--boards icebreaker,ulx3s-85f] [--no-build]
[--explore] [--seeds N] [--bits B] [--out DIR] [--build lut,mac] [--reuse] [--lut-tables
N0,N1] [--lut-nc C0,C1] [--lut-indexer auto|parallel|serial]``. ``--seeds N`` converts at
seeds 0..N-1 with anchors from the weights and random and prints each seed's gap to the MLP
(``--no-build --seeds 5`` gives the figures quoted in :func:`default_shape`). Builds run one
at a time; progress goes to stderr. The MAC core gets one unit per DSP block of the board, at
most the widest layer's outputs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from spikelut.boards.build import build_board, build_mac_board
from spikelut.boards.design import board_core
from spikelut.boards.platforms import board
from spikelut.compiler.analysis.conversion import conversion_report
from spikelut.compiler.backend.mac import default_macs, mac_figures, mac_params, quantize_for
from spikelut.compiler.frontend.ann import from_sklearn
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.frontend.encoding import choose_encoding
from spikelut.compiler.ir.mac import mac_predict
from spikelut.compiler.ir.operations import classifier_operations
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.train.classifier import train_on_dataset
from spikelut.compiler.train.convert import INT_TABLE_BITS, ConvertSettings, convert_ann

# (name, ConvertSettings overrides, table bits or None for --bits) tried by --explore: the
# shapes and settings measured against the default (see compiler/convert.py's default_shape)
EXPLORE = [
    ("default", {}, None),
    ("default at 8 bits", {}, 8),
    ("no table dropout", {"drop": 0.0}, None),
    ("hidden 96x5, out 32x6", {"n_tables": (96, 32)}, None),
    ("hidden 256x3, out 64x6", {"n_tables": (256, 64), "n_c": (3, 6)}, 8),
    ("quantisation-aware", {"quant_bits": INT_TABLE_BITS}, None),
    ("random anchors", {"anchors": "random"}, None),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_mlp(data):
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32,), max_iter=500, random_state=0)
        return clf.fit(data.X_train, data.y_train)


def lut_model(ann, data, overrides: dict, bits: int = INT_TABLE_BITS):
    """(integer LUT classifier with ``bits``-wide tables, conversion report on the test
    split, conversion seconds)."""
    settings = ConvertSettings(**overrides)
    enc = choose_encoding(data.X_train)
    t0 = time.perf_counter()
    model = convert_ann(ann, data.X_train, data.y_train, settings=settings, encoding=enc)
    seconds = time.perf_counter() - t0
    int_model = quantize_classifier(model, table_bits=bits, calib_raw=data.X_train)
    report = conversion_report(ann, model, data.X_test, data.y_test, int_model=int_model)
    return int_model, report, seconds


def seed_study(ann, data, n_seeds: int, bits: int) -> list[dict]:
    """The default conversion at seeds ``0..n_seeds-1``, anchors from the weights and random:
    integer accuracy gap to the MLP (percentage points) per seed."""
    rows = []
    for anchors in ("weights", "random"):
        for seed in range(n_seeds):
            _m, r, sec = lut_model(ann, data, {"seed": seed, "anchors": anchors}, bits)
            row = {
                "anchors": anchors,
                "seed": seed,
                "int_accuracy": r["int_accuracy"],
                "float_accuracy": r["float_accuracy"],
                "gap_pp": 100 * (r["ann_accuracy"] - r["int_accuracy"]),
                "seconds": round(sec, 1),
            }
            log(f"seeds: {row}")
            rows.append(row)
    return rows


def seed_table(rows: list[dict], bits: int) -> str:
    """Per-seed gaps, then mean and worst per anchor mode."""
    lines = [f"conversion gap to the MLP, {bits}-bit integer LUT network (percentage points)"]
    for anchors in ("weights", "random"):
        sel = [r for r in rows if r["anchors"] == anchors]
        gaps = [r["gap_pp"] for r in sel]
        per = "  ".join(f"s{r['seed']} {r['gap_pp']:+.2f}" for r in sel)
        lines.append(
            f"anchors {anchors:8} {per}  | mean {np.mean(gaps):+.2f} worst {max(gaps):+.2f}  "
            f"({np.mean([r['seconds'] for r in sel]):.0f} s per conversion)"
        )
    return "\n".join(lines)


def native_lut(data) -> dict:
    """Figures of the natively trained default LUT classifier (no MLP involved)."""
    model = quantize_classifier(train_on_dataset(data), calib_raw=data.X_train)
    ops = classifier_operations(model)["total"]
    return {
        "settings": "native train_on_dataset",
        "int_accuracy": float(np.mean(int_predict(model, data.X_test) == data.y_test)),
        "table_bits_read": ops["table_bits_read"],
        "table_memory_bits": ops["table_memory_bits"],
        "additions": ops["additions"],
    }


def build_lut(int_model, spec, out: Path, *, reuse: bool = False, kind="auto") -> dict:
    """The LUT core through ``spikelut build``'s own path (:func:`build_board`)."""
    if reuse and (out / "board.json").exists():
        log(f"reusing the build in {out}")
        r = json.loads((out / "board.json").read_text())
    else:
        r = build_board(int_model, spec, out, progress=log, kind=kind)
    fig = _build_figures(r["resources"], r["fmax_mhz"], r["ok"], r["seconds"])
    fig.update(cycles_per_inference=r["cycles_per_inference"], indexer=r["indexer"])
    return fig


def build_mac(net, spec, macs: int, out: Path, *, reuse: bool = False) -> dict:
    """The MAC core through ``spikelut build --baseline mac``'s own path
    (:func:`spikelut.boards.build.build_mac_board`)."""
    if reuse and (out / "board.json").exists():
        log(f"reusing the build in {out}")
        r = json.loads((out / "board.json").read_text())
    else:
        r = build_mac_board(net, spec, out, macs=macs, progress=log)
    return _build_figures(r["resources"], r["fmax_mhz"], r["ok"], r["seconds"])


def _build_figures(res: dict, fmax: dict, ok: bool, seconds: float) -> dict:
    over = any(r["used"] > r["available"] for r in res.values())

    def used(name):
        return res.get(name, {}).get("used", 0)

    return {
        "logic_cells": used("logic_cells"),
        "flip_flops": used("flip_flops"),
        "block_rams": used("block_rams"),
        "sprams": used("sprams"),
        "dsps": used("dsps"),
        "fmax_mhz": min(fmax.values(), default=0.0),
        "build_ok": ok,
        "fits": not over and bool(fmax),
        "build_seconds": round(seconds, 1),
    }


ROWS = [
    ("accuracy (test, integer)", "accuracy", "{:.4f}"),
    ("logic cells", "logic_cells", "{}"),
    ("flip-flops", "flip_flops", "{}"),
    ("block RAMs", "block_rams", "{}"),
    ("SPRAMs", "sprams", "{}"),
    ("DSPs", "dsps", "{}"),
    ("Fmax (MHz)", "fmax_mhz", "{:.1f}"),
    ("cycles per inference", "cycles_per_inference", "{}"),
    ("inferences/s at Fmax", "inferences_per_second", "{:,.0f}"),
    ("memory bits read / inference", "bits_read", "{:,}"),
    ("additions / inference", "additions", "{:,}"),
    ("multiplications / inference", "multiplications", "{:,}"),
]


def table(lut: dict, mac: dict, title: str) -> str:
    lines = [title, f"{'':32} {'LUT':>14} {'MAC':>14} {'LUT/MAC':>9}"]
    for label, key, fmt in ROWS:
        a, b = lut.get(key), mac.get(key)
        if a is None and b is None:
            continue
        sa = "-" if a is None else fmt.format(a)
        sb = "-" if b is None else fmt.format(b)
        ratio = f"{a / b:.3g}" if a is not None and b else ("0" if a == 0 else "-")
        lines.append(f"{label:32} {sa:>14} {sb:>14} {ratio:>9}")
    if "build_ok" in lut or "build_ok" in mac:
        verdicts = [_verdict(r) for r in (lut, mac)]
        lines.append(f"{'build':32} {verdicts[0]:>14} {verdicts[1]:>14}")
    return "\n".join(lines)


def _verdict(r: dict) -> str:
    if "build_ok" not in r:
        return "not built"
    if r["build_ok"]:
        return "ok"
    return "timing missed" if r["fits"] else "does not fit"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--boards", default="icebreaker,ulx3s-85f")
    p.add_argument("--no-build", action="store_true", help="model figures only, no synthesis")
    p.add_argument("--explore", action="store_true", help="also try other LUT conversions")
    p.add_argument(
        "--seeds",
        type=int,
        default=0,
        metavar="N",
        help="also convert at seeds 0..N-1 with weight and random anchors (accuracy gaps)",
    )
    p.add_argument(
        "--bits",
        type=int,
        default=INT_TABLE_BITS,
        help=f"table bits of the integer LUT network (default {INT_TABLE_BITS})",
    )
    p.add_argument("--out", default="build-compare-mac", help="build directory")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="take the figures of builds already in --out (made with the same settings)",
    )
    p.add_argument("--build", default="lut,mac", help="cores to synthesise (default lut,mac)")
    p.add_argument(
        "--lut-tables", metavar="N0,N1", help="LUT conversion: tables per layer (default: auto)"
    )
    p.add_argument("--lut-nc", metavar="C0,C1", help="LUT conversion: N_C per layer")
    p.add_argument(
        "--lut-indexer",
        choices=["auto", "parallel", "serial"],
        default="auto",
        help="the LUT core's indexer (as spikelut build --indexer)",
    )
    return p


def _board(name: str, args, int_model, net, lut_base: dict, mac_acc: float) -> dict:
    """The LUT and MAC cores' figures on board ``name`` (and their builds unless
    ``--no-build``)."""
    spec = board(name)
    macs = default_macs(net, spec.target)
    mf = mac_figures(mac_params(net, macs=macs))
    mac = {
        "accuracy": mac_acc,
        "bits_read": mf["weight_bits_read"],
        "additions": mf["additions"],
        "multiplications": mf["multiplications"],
        "cycles_per_inference": mf["cycles_per_inference"],
        "macs": macs,
    }
    lut = dict(lut_base)
    core = board_core(int_model, spec, kind=args.lut_indexer)
    lut["cycles_per_inference"] = core.cycles_per_inference
    lut["indexer"] = core.kind.value
    if not args.no_build:
        out = Path(args.out) / name
        if "lut" in args.build:
            log(f"{name}: building the LUT core")
            lut.update(
                build_lut(int_model, spec, out / "lut", reuse=args.reuse, kind=args.lut_indexer)
            )
        if "mac" in args.build:
            log(f"{name}: building the MAC core ({macs} units)")
            mac.update(build_mac(net, spec, macs, out / "mac", reuse=args.reuse))
        for r in (lut, mac):
            if r.get("fmax_mhz"):
                r["inferences_per_second"] = r["fmax_mhz"] * 1e6 / r["cycles_per_inference"]
    return {"lut": lut, "mac": mac}


def _explore(ann, data, args) -> list[dict]:
    """The figures of the other LUT conversions of :data:`EXPLORE`, and of native training."""
    found = []
    for label, over, bits in EXPLORE:
        _m, r, _sec = lut_model(ann, data, over, bits or args.bits)
        found.append(
            {
                "settings": label,
                "table_bits": bits or args.bits,
                "int_accuracy": r["int_accuracy"],
                "table_bits_read": r["table_bits_read"],
                "table_memory_bits": r["table_memory_bits"],
                "additions": r["lut_ops"]["additions"],
            }
        )
        log(f"explore {label}: {found[-1]}")
    found.append(native_lut(data))
    return found


def _print(result: dict, conv: dict, ann_acc: float, conv_seconds: float, bits: int) -> None:
    shape = ", ".join(f"{x['in']}->{x['out']} ({x['n_tables']}x{x['n_c']})" for x in conv["layers"])
    print(
        f"digits MLP (64-32-10) test accuracy {ann_acc:.4f}; MAC core 8-bit weights; LUT "
        f"network {shape} (N_T x N_C), {bits}-bit tables, converted in {conv_seconds:.0f} s"
    )
    for name, r in result["boards"].items():
        title = f"\n{name}: LUT core (converted) vs MAC core ({r['mac']['macs']} units)"
        print(table(r["lut"], r["mac"], title))
    for e in result.get("explore", []):
        print(
            f"explore {e['settings']:32} {e.get('table_bits', 8)}-bit accuracy "
            f"{e['int_accuracy']:.4f}  "
            f"bits read {e['table_bits_read']:>7,}  table memory {e['table_memory_bits']:>9,}"
        )
    if result.get("seeds"):
        print(seed_table(result["seeds"], bits))


def main(argv=None) -> int:
    """Run the comparison; print the tables (or ``--json``)."""
    args = _parser().parse_args(argv)
    t0 = time.time()
    data = load_dataset("digits")
    clf = train_mlp(data)
    ann = from_sklearn(clf)
    ann_acc = float(np.mean(ann.predict(data.X_test) == data.y_test))
    log(f"MLP test accuracy {ann_acc:.4f}")
    net, _ = quantize_for(ann, "digits")
    mac_acc = float(np.mean(mac_predict(net, data.X_test) == data.y_test))
    overrides: dict = {}
    if args.lut_tables:
        overrides["n_tables"] = tuple(int(v) for v in args.lut_tables.split(","))
    if args.lut_nc:
        overrides["n_c"] = tuple(int(v) for v in args.lut_nc.split(","))
    int_model, conv, conv_seconds = lut_model(ann, data, overrides, args.bits)
    log(f"LUT conversion: integer accuracy {conv['int_accuracy']:.4f}")
    lut_ops = conv["lut_ops"]
    lut_base = {
        "accuracy": conv["int_accuracy"],
        "bits_read": conv["table_bits_read"],
        "additions": lut_ops["additions"],
        "multiplications": 0,
        "table_memory_bits": conv["table_memory_bits"],
    }
    result: dict = {
        "mlp_accuracy": ann_acc,
        "lut_settings": {k: list(v) for k, v in overrides.items()} or "default",
        "lut_table_bits": args.bits,
        "conversion": {k: conv[k] for k in ("int_accuracy", "float_accuracy", "int_agreement")}
        | {"seconds": round(conv_seconds, 1), "layers": conv["layers"]},
        "boards": {},
    }
    for name in [b for b in args.boards.split(",") if b]:
        result["boards"][name] = _board(name, args, int_model, net, lut_base, mac_acc)
    if args.explore:
        result["explore"] = _explore(ann, data, args)
    if args.seeds:
        result["seeds"] = seed_study(ann, data, args.seeds, args.bits)
    result["seconds"] = round(time.time() - t0, 1)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    _print(result, conv, ann_acc, conv_seconds, args.bits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
