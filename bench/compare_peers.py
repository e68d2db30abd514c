"""The digits Pareto table against the LUT-network peers (issue 16), from real Yosys/nextpnr.

For each device (the iCE40 UP5K and the ECP5-85 by default) and each core it prints:
accuracy on the digits test split (the integer golden model), logic cells, memories (block
RAMs + SPRAMs), DSPs, Fmax, cycles per inference, inferences/s at that Fmax, inferences/s per
logic cell and whether the tables can be reloaded. Cores:

- the memory cores (parallel, temporal, serial) of the default digits classifier
  (``train_on_dataset`` defaults, 8-bit tables) at the fastest placement ``spikelut compile``
  picks for the device;
- frozen cores (``--frozen``) of small networks trained for this mode:
  ``NT:NC:BITS[:SHIFT[:KEEP]]`` is ``NT`` tables of ``N_C`` index bits into the 10 classes,
  ``BITS``-bit table entries, layer 0's ``in_shift`` (input narrowing, trained for:
  :func:`frozen_model`), 30 epochs, training seed ``--seed`` (default 0); ``KEEP`` > 0
  prunes each class to that many tables
  (:func:`~spikelut.compiler.passes.prune.prune_classifier`, fine-tuned on the training
  split) before quantising. ``--clip C`` trains and tests the frozen networks on pixels
  clipped at ``C`` (``--clip 15``: the digits' 0..16 become 4-bit 0..15, so the core's
  inputs and, after ``SHIFT``, its comparators are one bit narrower). ``--centre`` encodes
  the pixels centred, one more bit narrower, every output unchanged
  (:func:`~spikelut.compiler.passes.narrowing.centre_inputs`). ``--qat N`` quantises with
  ``N`` epochs of quantisation-aware fine-tuning at table scales ``--coarsen D`` powers of
  two coarser than calibration picks
  (:func:`~spikelut.compiler.passes.quant_aware.quantize_aware`; ``spikelut quantize
  --qat-epochs N --coarsen D``).

Bare cores, measured: Yosys ``synth_<family>`` of the core alone (the script a board build
runs), then nextpnr. On the ECP5 nextpnr runs ``--out-of-context`` (the core's ports need
no pins): logic cells are ``TRELLIS_COMB``, Fmax its routed figure. The UP5K has 39 pins
for a core with hundreds of port bits, so there logic cells are ``ICESTORM_LC`` of
``nextpnr-ice40 --pack-only`` on the bare core, and Fmax is routed with the core inside a
small harness (:class:`_Harness`: a ``D + 1``-stage shift register from one pin feeding the
input vector, every output bit XOR-ed to one pin), whose own cells are not counted. Fmax is
nextpnr's for the clock requested (``--freq``); a row whose timing fails at that clock says
so. Each measured row names the endpoints of nextpnr's critical path (``critical_path`` in
``--json``).

The peers' rows are quoted from the text of issue 16 (their source), never re-derived:
TreeLUT on the same UP5K, digits split and YoWASP tools: 98.0 %, 2,764 logic cells, about
46 MHz, one inference per clock; its smallest model at >= 95 %: 1,106 logic cells, about
60 MHz. The multiply-accumulate core on the UP5K (``bench/compare_mac.py`` on main, quoted
by the issue): 97.11 %, 4,579 logic cells, 8 DSPs, 339 cycles per inference; its Fmax is not
quoted, so its rate is shown at an upper bound of 100 MHz.

    python bench/compare_peers.py [--devices ice40-up5k,ecp5-85] [--frozen 48:4:2,96:4:2]
        [--kinds parallel,temporal,serial,frozen] [--freq 40] [--out DIR] [--json]
        [--lock FILE] [--clip C] [--centre] [--seed N] [--qat N] [--coarsen D] [--save DIR]

``--curve NT:NC:BITS[:SHIFT[:KEEP]],...`` trains those frozen networks instead and prints
accuracy against the logic estimate, marking the Pareto front (no synthesis); with
``--synth`` against the logic cells of the bare core on the UP5K (Yosys ``synth_ice40``,
``nextpnr-ice40 --pack-only``). Every point also shows its comparators (``N_T * N_C``), the
bank's table bits (its rows, each a LUT4 of the index bits for ``N_C <= 4``) and
adder bits (its adder registers), counted in the elaborated design.

Builds run one at a time; progress goes to stderr; results are cached in ``--out`` (a core
already measured there is not rebuilt).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
from amaranth.back import rtlil, verilog
from amaranth.hdl import Cat, Elaboratable, Module, Signal

from spikelut.compiler.backend.compile import CompileError, plan_core
from spikelut.compiler.backend.cores import CoreKind, build_core
from spikelut.compiler.backend.estimate import estimate_logic
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.build.synthesis import parse_fmax, parse_utilisation, timing_passed
from spikelut.compiler.build.toolchain import run_tool
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.ir.modelfile import save_model
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.narrowing import centre_inputs
from spikelut.compiler.passes.prune import prune_classifier
from spikelut.compiler.passes.quant_aware import quantize_aware
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.sweep.peers import PEERS as QUOTED_PEERS
from spikelut.compiler.train.classifier import train_classifier, train_on_dataset
from spikelut.hdl.frozen import FrozenBank
from spikelut.hdl.layer_params import FROZEN_ARGMAX_LEVELS, frozen_fan_in
from spikelut.hdl.storage import Storage

# quoted from issue 16 (see the module docstring); cycles per inference 1 = one per clock
# (TreeLUT's from compiler/sweep/peers.py, their one source; its smaller model's accuracy is
# quoted as ">= 95%", so no figure)
PEERS = [
    *(
        (f"{p['name']} (issue 16)", "ice40-up5k", p["accuracy"] if i == 0 else None,
         p["logic_cells"], 0, 0, p["clock_mhz"], p["cycles_per_inference"], "no")
        for i, p in enumerate(QUOTED_PEERS)
    ),
    ("MAC core (compare_mac, issue 16)", "ice40-up5k", 0.9711, 4579, 0, 8, None, 339, "yes"),
]  # fmt: skip
MAC_BOUND_MHZ = 100.0
FROZEN_EPOCHS = 30
PRUNE_EPOCHS = 30
MEMORY_KINDS = (CoreKind.PARALLEL, CoreKind.TEMPORAL, CoreKind.SERIAL)


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_frozen(text: str) -> list[tuple[int, int, int, int, int]]:
    """``NT:NC:BITS[:SHIFT[:KEEP]]`` items, comma-separated."""
    out = []
    for item in filter(None, text.split(",")):
        parts = [int(v) for v in item.split(":")]
        if not 3 <= len(parts) <= 5:
            raise SystemExit(f"--frozen: {item!r} is not NT:NC:BITS[:SHIFT[:KEEP]]")
        out.append(tuple(parts + [0] * (5 - len(parts))))
    return out


def frozen_name(nt: int, nc: int, bits: int, shift: int, keep: int) -> str:
    return f"{nt}x{nc} {bits}b s{shift}" + (f" k{keep}" if keep else "")


def frozen_model(
    data,
    n_tables: int,
    n_c: int,
    bits: int,
    shift: int,
    keep: int = 0,
    *,
    seed: int = 0,
    centre: bool = False,
    qat: int = 0,
    coarsen: int = 0,
):
    """A one-layer classifier trained for the frozen core, quantised to ``bits``-bit
    entries, its comparators narrowed by ``shift`` and trained so (``in_shift``: the
    network learns on the pixels as the hardware compares them, ``x >> shift``). ``keep`` >
    0: each class pruned to that many tables, fine-tuned on the same training inputs.
    ``seed``: the training's (and the pruning's) random seed; ``centre``: the pixels centred
    one bit narrower (:func:`~spikelut.compiler.passes.narrowing.centre_inputs`, no output
    changes); ``qat``/``coarsen``: quantisation-aware fine-tuning epochs at table scales
    that many powers of two coarser (:func:`quantize_aware`). The steps of ``spikelut train
    classifier --in-shift`` then ``spikelut quantize --bits --prune-to [--qat-epochs
    --coarsen] [--centre-inputs]``."""
    model = train_classifier(
        data.X_train, data.y_train, n_tables=n_tables, n_c=n_c, epochs=FROZEN_EPOCHS,
        seed=seed, n_classes=data.n_classes, meta={"dataset": data.name, "split": data.split},
        in_shift=shift,
    )  # fmt: skip
    if keep:
        model = prune_classifier(
            model, data.X_train, data.y_train, keep=keep, epochs=PRUNE_EPOCHS, seed=seed
        )
    if qat or coarsen:
        model = quantize_aware(
            model, data.X_train, data.y_train, table_bits=bits, epochs=qat, coarsen=coarsen,
            shifts={0: shift}, seed=seed,
        )  # fmt: skip
    else:
        model = quantize_classifier(
            model, table_bits=bits, calib_raw=data.X_train, shifts={0: shift}
        )
    return centre_inputs(model) if centre else model


def accuracy(model, data) -> float:
    return float(np.mean(int_predict(model, data.X_test) == data.y_test))


class _Harness(Elaboratable):
    """The bare core between one input pin and one output pin, small beside the core: a
    shift register of ``D + 1`` bits clocked from the pin feeds the input vector, bit ``j``
    of value ``n`` from stage ``(n + 7 j) mod (D + 1)`` (no two values the same signals, so
    no comparator folds away); the XOR of every output bit drives the output pin."""

    def __init__(self, core, in_dim: int, in_width: int):
        self.core = core
        self.in_dim, self.in_width = in_dim, in_width
        self.sin = Signal()
        self.sout = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        i, o = core.i_stream, core.o_stream
        n = self.in_dim + 1
        sr = Signal(n)
        m.d.sync += sr.eq(Cat(self.sin, sr[:-1]))
        bits = [sr[(v + 7 * j) % n] for v in range(self.in_dim) for j in range(self.in_width)]
        m.d.comb += [i.payload.eq(Cat(*bits)), i.valid.eq(1), o.ready.eq(1)]
        m.d.sync += self.sout.eq(Cat(o.payload.as_value(), o.valid).xor())
        return m


def _yosys(work: Path, family: str, top: str) -> None:
    """Synthesise ``core.v`` to ``core.json`` (``synth_<family>``, as a board build does)."""
    script = f"read_verilog core.v; synth_{family} -top {top} -json core.json"
    run_tool("yosys", ["-q", "-p", script], cwd=work, log=work / "yosys.log")


def critical_path(log: str) -> str | None:
    """The endpoints of the last clock-to-clock critical path in a nextpnr log, as
    ``source -> sink`` cell names with the mapping suffixes Yosys adds (``_SB_LUT4_O``,
    ``$CARRY``, ...) cut off, e.g. ``core.argmax.val_l1_0_2 -> core.argmax.idx_l2_0_4``."""
    reports = re.findall(
        r"Critical path report for clock [^\n]*\n(.*?)\nInfo: [\d.]+ ns logic", log, re.S
    )
    if not reports:
        return None
    cells = re.findall(r"Source (\S+)", reports[-1])

    def short(name: str) -> str:
        cell = name.rsplit(".", 1)[0]  # without the pin
        return re.split(r"_SB_|\$CARRY", cell)[0] or cell

    return f"{short(cells[0])} -> {short(cells[-1])}" if cells else None


def measure(make, target, work: Path, freq: float) -> dict:
    """Logic cells, memories, DSPs and Fmax of a bare core; ``make()`` builds a fresh one
    (see the module docstring). A core nextpnr cannot place or route has no Fmax."""
    work.mkdir(parents=True, exist_ok=True)
    family = target.family
    if family == "ecp5":
        (work / "core.v").write_text(verilog.convert(make(), name="spikelut_core"))
        say(f"  yosys synth_{family}")
        _yosys(work, family, "spikelut_core")
        size = target.device.split("-")[1].rstrip("F").lower()
        args = [f"--{size}k", "--out-of-context", "--json", "core.json", "--freq", str(freq)]
        args.append("--timing-allow-fail")
        say("  nextpnr-ecp5 --out-of-context")
        try:
            run_tool("nextpnr-ecp5", [*args, "--seed", "1"], cwd=work, log=work / "pnr.log")
        except RuntimeError as e:
            say(f"  nextpnr failed: {str(e).splitlines()[0]}")
        log = (work / "pnr.log").read_text()
        res = parse_utilisation(log, family)
    else:
        res, log = _measure_ice40(make, work, freq)
    fmax = parse_fmax(log)
    clk = min(fmax.values()) if fmax else None
    return {
        "logic_cells": res.get("logic_cells", {}).get("used", 0),
        "block_rams": res.get("block_rams", {}).get("used", 0),
        "sprams": res.get("sprams", {}).get("used", 0),
        "dsps": res.get("dsps", {}).get("used", 0),
        "fmax_mhz": clk,
        "timing_met": timing_passed(log),
        "requested_mhz": freq,
        "critical_path": critical_path(log),
    }


def _measure_ice40(make, work: Path, freq: float) -> tuple[dict, str]:
    """The UP5K measurement of :func:`measure`: ``(utilisation of the bare core packed, the
    harness's nextpnr log)``."""
    res = _pack_ice40(make(), work)
    dev = ["--up5k", "--package", "sg48"]
    core = make()
    harness = _Harness(core, core.layers[0].in_dim, core.layers[0].in_width)
    hw = work / "harness"
    hw.mkdir(exist_ok=True)
    text = verilog.convert(harness, name="top", ports=[harness.sin, harness.sout])
    (hw / "core.v").write_text(text)
    say("  yosys + nextpnr-ice40 (core in a harness, for Fmax)")
    _yosys(hw, "ice40", "top")
    args = [*dev, "--json", "core.json", "--pcf-allow-unconstrained", "--freq", str(freq)]
    args.append("--timing-allow-fail")
    try:
        run_tool("nextpnr-ice40", [*args, "--seed", "1"], cwd=hw, log=hw / "pnr.log")
    except RuntimeError as e:
        say(f"  nextpnr failed: {str(e).splitlines()[0]}")
    return res, (hw / "pnr.log").read_text()


def row(name, device, acc, m, cycles, reloadable) -> dict:
    rate = m["fmax_mhz"] * 1e6 / cycles if m["fmax_mhz"] else None
    cells = m["logic_cells"]
    return {
        "core": name,
        "device": device,
        "accuracy": acc,
        **m,
        "cycles_per_inference": cycles,
        "inferences_per_second": rate,
        "inferences_per_second_per_logic_cell": rate / cells if rate and cells else None,
        "reloadable": reloadable,
    }


def peer_rows() -> list[dict]:
    out = []
    for name, dev, acc, cells, mem, dsp, mhz, cycles, reload in PEERS:
        shown = mhz if mhz is not None else MAC_BOUND_MHZ
        rate = shown * 1e6 / cycles
        out.append(
            {
                "core": name,
                "device": dev,
                "accuracy": acc,
                "logic_cells": cells,
                "block_rams": mem,
                "sprams": 0,
                "dsps": dsp,
                "fmax_mhz": mhz,
                "timing_met": None,
                "cycles_per_inference": cycles,
                "inferences_per_second": rate,
                "inferences_per_second_per_logic_cell": rate / cells,
                "reloadable": reload == "yes",
                "quoted": True,
                "bound": mhz is None,
            }
        )
    return out


def _fmt(r: dict) -> tuple:
    def num(v, f):
        return "-" if v is None else format(v, f)

    if "unfit" in r:
        acc = num(100 * r["accuracy"], ".2f")
        return (r["device"], r["core"], acc, "does not fit the device", *[""] * 7)

    bound = "<=" if r.get("bound") else ""
    fmax = num(r["fmax_mhz"], ".1f")
    if r.get("timing_met") is False:
        fmax += "!"
    return (
        r["device"],
        r["core"],
        num(None if r["accuracy"] is None else 100 * r["accuracy"], ".2f"),
        num(r["logic_cells"], ",d"),
        f"{r['block_rams']}+{r['sprams']}",
        str(r["dsps"]),
        fmax,
        str(r["cycles_per_inference"]),
        bound + num(r["inferences_per_second"], ",.0f"),
        bound + num(r["inferences_per_second_per_logic_cell"], ",.1f"),
        "yes" if r["reloadable"] else "no",
    )


HEADER = (
    "device",
    "core",
    "acc %",
    "LCs",
    "BRAM+SPRAM",
    "DSP",
    "Fmax MHz",
    "cycles",
    "inf/s",
    "inf/s/LC",
    "reload",
)


def table(rows: list[dict]) -> str:
    lines = [HEADER, *(_fmt(r) for r in rows)]
    widths = [max(len(line[k]) for line in lines) for k in range(len(HEADER))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


def _locked(path: str | None, fn):
    """``fn()`` holding an exclusive flock on ``path`` (when given)."""
    if path is None:
        return fn()
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            return fn()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _cached(out: Path, key: str, fn):
    path = out / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = fn()
    path.write_text(json.dumps(result))
    return result


def _pack_ice40(core, work: Path) -> dict:
    """The utilisation of ``core`` alone on the UP5K: Yosys ``synth_ice40``, then
    ``nextpnr-ice40 --pack-only``."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "core.v").write_text(verilog.convert(core, name="spikelut_core"))
    say("  yosys synth_ice40")
    _yosys(work, "ice40", "spikelut_core")
    say("  nextpnr-ice40 --pack-only (bare core)")
    args = ["--up5k", "--package", "sg48", "--json", "core.json", "--pack-only"]
    run_tool("nextpnr-ice40", args, cwd=work, log=work / "pack.log")
    return parse_utilisation((work / "pack.log").read_text(), "ice40")


def pack_cells(core, work: Path) -> int:
    """``ICESTORM_LC`` of ``core`` alone on the UP5K (:func:`_pack_ice40`)."""
    return _pack_ice40(core, work).get("logic_cells", {}).get("used", 0)


def bank_bits(params) -> dict:
    """The frozen bank's table output bits (its rows, each a constant function of
    the index bits), adder bits (its adder registers) and the most tables a class sums, from
    the elaborated design."""
    text = rtlil.convert(FrozenBank(params))
    widths = {"row": 0, "add": 0}
    for width, kind in re.findall(r"wire width (\d+) (?:signed )?\\(row|add)\d+_\d+", text):
        widths[kind] += int(width)
    return {
        "table_bits": widths["row"],
        "adder_bits": widths["add"],
        "fan_in": frozen_fan_in(params.tables),
    }


def _synth_point(args, out: Path, model, params) -> dict:
    """Logic cells of the bare frozen core (cached)."""
    key = _key(model, "ice40-up5k", CoreKind.FROZEN, 0)

    def core():
        return {"logic_cells": pack_cells(build_core(CoreKind.FROZEN, params), out / key)}

    return _cached(out, f"{key}-pack", lambda: _locked(args.lock, core))


def _frozen_of_args(args, data, point: tuple):
    """:func:`frozen_model` of ``point`` (NT, NC, BITS, SHIFT, KEEP) with the command line's
    ``--seed``, ``--centre``, ``--qat`` and ``--coarsen``."""
    return frozen_model(
        data, *point, seed=args.seed, centre=args.centre, qat=args.qat, coarsen=args.coarsen
    )


def curve(data, grid: list[tuple], args) -> list[dict]:
    """Accuracy against logic of frozen networks ``grid`` (NT, NC, BITS, SHIFT, KEEP): the
    estimate (:func:`estimate_logic`), and with ``args.synth`` the synthesised cells
    (:func:`_synth_point`). Each point is marked when no point with as few cells
    (synthesised when measured) is more accurate (the Pareto front)."""
    out = []
    synth = args.synth
    for nt, nc, bits, shift, keep in grid:
        say(f"training {frozen_name(nt, nc, bits, shift, keep)}")
        model = _frozen_of_args(args, data, (nt, nc, bits, shift, keep))
        params, _ = network_params(model, LayerPlan(Storage.LOGIC), kind=CoreKind.FROZEN)
        est = estimate_logic(params, "ice40", CoreKind.FROZEN)
        r = {
            "config": frozen_name(nt, nc, bits, shift, keep),
            "accuracy": accuracy(model, data),
            "tables": params[0].n_tables,
            "comparators": params[0].n_tables * params[0].n_c,
            "estimated_logic_cells": est["logic_cells"],
            **bank_bits(params[0]),
        }
        if synth:
            r["logic_cells"] = _synth_point(args, Path(args.out), model, params)["logic_cells"]
        out.append(r)
    cells = "logic_cells" if synth else "estimated_logic_cells"
    for r in out:
        r["pareto"] = not any(o[cells] <= r[cells] and o["accuracy"] > r["accuracy"] for o in out)
    return sorted(out, key=lambda r: r[cells])


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="ice40-up5k,ecp5-85")
    ap.add_argument(
        "--frozen", default="48:4:2:2,96:4:3:2,96:4:4", metavar="NT:NC:BITS[:SHIFT[:KEEP]],..."
    )
    ap.add_argument("--kinds", default="frozen,serial,parallel,temporal")
    ap.add_argument("--freq", type=float, default=40.0, help="clock requested of nextpnr (MHz)")
    ap.add_argument("--out", default="/tmp/spikelut-compare-peers", metavar="DIR")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--curve",
        metavar="NT:NC:BITS[:SHIFT[:KEEP]],...",
        help="instead of the table: train these frozen networks and print accuracy against "
        "the logic estimate (no synthesis)",
    )
    ap.add_argument(
        "--synth",
        action="store_true",
        help="with --curve: synthesise every point for the UP5K (pack-only logic cells)",
    )
    ap.add_argument(
        "--lock", metavar="FILE", help="hold an exclusive flock on FILE during each build"
    )
    ap.add_argument(
        "--clip",
        type=int,
        metavar="C",
        help="frozen networks (rows and --curve): train and test on pixels clipped at C",
    )
    ap.add_argument(
        "--centre",
        action="store_true",
        help="frozen networks (rows and --curve): pixels centred one bit narrower "
        "(spikelut quantize --centre-inputs)",
    )
    ap.add_argument(
        "--save",
        metavar="DIR",
        help="also write every frozen network (rows) as DIR/<name>.lutnet, e.g. for "
        "spikelut build --core frozen",
    )
    ap.add_argument(
        "--qat",
        type=int,
        default=0,
        metavar="N",
        help="frozen networks: N epochs of quantisation-aware fine-tuning (default 0)",
    )
    ap.add_argument(
        "--coarsen",
        type=int,
        default=0,
        metavar="D",
        help="frozen networks: table scales D powers of two coarser than calibration picks",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="frozen networks (rows and --curve): the training seed (default 0)",
    )
    return ap


def _print_curve(points: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(points, indent=1))
        return
    for r in points:
        mark = "  pareto" if r["pareto"] else ""
        measured = ""
        if "logic_cells" in r:
            measured = f"{r['logic_cells']:>6,d} LCs  "
        print(
            f"{r['config']:>18}  {100 * r['accuracy']:6.2f} %  {measured}"
            f"{r['estimated_logic_cells']:>6,d} est.  N_T {r['tables']:>3d}  comparators "
            f"{r['comparators']:>3d}  sums of "
            f"<= {r['fan_in']:>3d} tables  table bits {r['table_bits']:>5,d}  adder bits "
            f"{r['adder_bits']:>5,d}{mark}"
        )


def clipped(data, clip: int | None):
    """``data`` with every feature clipped at ``clip`` in both splits (None: unchanged)."""
    if clip is None:
        return data
    return dataclasses.replace(
        data, X_train=np.minimum(data.X_train, clip), X_test=np.minimum(data.X_test, clip)
    )


def _models(args, data) -> list[tuple]:
    """``(name, integer model, kind, the data it is trained and tested on)`` of every core
    asked for."""
    kinds = [CoreKind.parse(k) for k in args.kinds.split(",")]
    models = []
    if CoreKind.FROZEN in kinds:
        frozen_data = clipped(data, args.clip)
        suffix = "" if args.clip is None else f" c{args.clip}"
        suffix += f" seed {args.seed}" if args.seed else ""
        suffix += " centred" if args.centre else ""
        suffix += f" q{args.qat}" if args.qat else ""
        suffix += f" d{args.coarsen}" if args.coarsen else ""
        for point in parse_frozen(args.frozen):
            name = f"frozen {frozen_name(*point)}{suffix}"
            say(f"training {name}")
            model = _frozen_of_args(args, frozen_data, point)
            models.append((name, model, CoreKind.FROZEN, frozen_data))
            if args.save:
                path = Path(args.save) / (name.replace(" ", "-") + ".lutnet")
                path.parent.mkdir(parents=True, exist_ok=True)
                save_model(model, path)
                say(f"  wrote {path}")
    memory = [k for k in kinds if k in MEMORY_KINDS]
    if memory:
        say("training the default digits classifier (memory cores)")
        default = quantize_classifier(train_on_dataset(data), calib_raw=data.X_train)
        models += [(f"{k.value} 256x4 8b", default, k, data) for k in memory]
    return models


def _key(model, dev: str, kind: CoreKind, freq: float) -> str:
    """The cache key of a core: device, kind, a digest of the model, the clock asked for;
    a frozen core's also names its argmax's comparator levels per register (a row measured
    with the one-cycle argmax is not taken for the pipelined one, nor one of the stages'
    own enables for the lockstep core, nor one with registered table rows for the
    combinational rows)."""
    header, arrays = model.to_arrays()
    header = {k: v for k, v in header.items() if k != "meta"}  # meta holds the training time
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    for k in sorted(arrays):
        digest.update(np.ascontiguousarray(arrays[k]).tobytes())
    design = f"-argmax{FROZEN_ARGMAX_LEVELS}-lockstep-rows" if kind is CoreKind.FROZEN else ""
    return f"{dev}-{kind.value}-{digest.hexdigest()[:12]}-{freq:g}{design}"


def _row_of(args, out: Path, name: str, model, kind: CoreKind, dev: str, acc: float) -> dict:
    """The measured row of one core (from the cache when it was measured before)."""
    target = TARGETS[dev]
    say(f"{dev}: {name} ({100 * acc:.2f} %)")
    try:
        plan = plan_core(model, target, kind=kind, logic_cells=target.logic_cells)
    except CompileError as e:
        say(f"  does not fit: {e}")
        return {"core": name, "device": dev, "accuracy": acc, "unfit": str(e)}
    key = _key(model, dev, kind, args.freq)

    def run():
        m = measure(
            lambda: build_core(plan.kind, plan.params),
            target,
            out / key,
            args.freq,
        )
        m["cycles_per_inference"] = plan.cycles_per_inference
        return m

    m = _cached(out, key, lambda: _locked(args.lock, run))
    cycles = m.pop("cycles_per_inference")
    return row(name, dev, acc, m, cycles, kind is not CoreKind.FROZEN)


def main(argv=None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.clip is not None and args.clip < 1:
        ap.error(f"--clip must be a positive pixel value, not {args.clip}")
    if args.qat < 0 or args.coarsen < 0:
        ap.error(f"--qat and --coarsen must be >= 0, not {args.qat} and {args.coarsen}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset("digits")
    if args.curve:
        _print_curve(curve(clipped(data, args.clip), parse_frozen(args.curve), args), args.json)
        return 0
    devices = args.devices.split(",")
    rows = []
    for name, model, kind, used in _models(args, data):
        acc = accuracy(model, used)
        rows += [_row_of(args, out, name, model, kind, dev, acc) for dev in devices]
    rows.sort(key=lambda r: devices.index(r["device"]))
    rows += [r for r in peer_rows() if r["device"] in devices]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(table(rows))
        print(
            "peers quoted from issue 16; the MAC core's Fmax is not quoted: its rate is an "
            f"upper bound at {MAC_BOUND_MHZ:g} MHz; '!' marks a core that missed --freq"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
