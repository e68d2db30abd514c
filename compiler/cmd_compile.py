"""``spikelut compile``: an integer classifier to the Verilog and RTLIL of its network core.

Writes ``core.v``, ``core.il`` and ``manifest.json`` (ports and payload formats, cycles per
inference, latency: cycles from an input vector's last transfer to its result's, measured by
simulating the core once in Amaranth's simulator, SPRAM tables loaded first; memory
placement per layer, block RAMs and SPRAMs used, estimated LUT4s, flip-flops and logic
cells, the memory-bandwidth floor and the fraction of it achieved, the compile time from
model to Verilog, wall and CPU).
Without ``--storage``/``--tables-per-cycle``/``--lanes`` it picks the fastest placement in
block RAM (and SPRAM on an UltraPlus) that fits the target's memories and, by the logic
estimate, its logic cells less room for the host link; ``--throughput`` picks the smallest
placement that reaches a rate at ``--clock-mhz``. ``--indexer`` picks the network core: the
parallel indexer (every comparator at once), the temporal one (AER spike events in), or the
logic-lean serial core (:mod:`spikelut.hdl.serial_core`: a few comparators per clock, indexing
one group of tables while reading the previous one, at the memory-bandwidth floor); ``auto``
(the default) takes the parallel core when it fits the target's logic estimate, else the
serial one. What cannot fit is refused before any Verilog is written.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from amaranth.back import rtlil, verilog

from spikelut.hdl.bank import Storage
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layer import Network
from spikelut.hdl.params import discard
from spikelut.hdl.serial_core import SerialNetwork

from . import report_out
from .backend import LayerPlan, fit_plans, manifest, network_blocks, network_params
from .errors import UserError
from .estimate import HOST_LINK_CELLS, LOGIC_CELLS, estimate_logic
from .fileio import write_text_atomic
from .ir import ClassifierMLP, IRError
from .modelfile import ModelFileError, load_model

# typical core clock of each target, MHz (UP5K at -6 speed grade: about 24-48 MHz)
TYPICAL_MHZ = {"ice40-up5k": 24.0, "ice40-hx8k": 48.0, "ecp5-25": 100.0, "ecp5-85": 100.0}

# target name -> (family, device, block RAMs, SPRAMs)
TARGETS = {
    "ice40-up5k": ("ice40", "iCE40UP5K", 30, 4),
    "ice40-hx8k": ("ice40", "iCE40HX8K", 32, 0),
    "ecp5-25": ("ecp5", "LFE5U-25F", 56, 0),
    "ecp5-85": ("ecp5", "LFE5U-85F", 208, 0),
}


class _Device:
    """What elaboration needs to know of the target (SPRAM instances on an UltraPlus)."""

    def __init__(self, device: str):
        self.device = device


def add_parser(sub: Any) -> None:
    """Register the ``compile`` subcommand."""
    p = sub.add_parser(
        "compile",
        help="compile an integer classifier to Verilog/RTLIL with a JSON manifest",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="integer (quantised) .lutnet classifier, or with --baseline mac an ANN file",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--target", choices=sorted(TARGETS), default="ice40-up5k")
    p.add_argument(
        "--storage",
        choices=[s.name.lower() for s in Storage],
        help="table storage of every layer (default: block RAM)",
    )
    p.add_argument("--tables-per-cycle", type=int, metavar="P", help="tables read per cycle")
    p.add_argument("--lanes", type=int, metavar="L", help="outputs read per row beat")
    p.add_argument(
        "--indexer",
        choices=["auto", "parallel", "serial", "temporal"],
        default="auto",
        help="all comparators at once (parallel), a few per clock (serial: far less logic, "
        "same rate at the memory-bandwidth floor), or AER spike events in (temporal); "
        "auto: parallel if it fits the target's logic, else serial",
    )
    p.add_argument(
        "--throughput",
        type=float,
        metavar="RATE",
        help="inferences per second to reach: the smallest placement that does",
    )
    p.add_argument(
        "--clock-mhz",
        type=float,
        metavar="F",
        help="core clock for --throughput and the reported rate (default: the target's typical)",
    )
    p.add_argument(
        "--baseline",
        choices=["mac"],
        help="compile the ANN MODEL (.onnx, scikit-learn file) to the multiply-accumulate "
        "baseline core instead (8-bit weights, DSP multipliers)",
    )
    p.add_argument(
        "--data", default="digits", metavar="NAME|FILE", help="calibration data for --baseline"
    )
    p.add_argument("--macs", type=int, metavar="M", help="multiply-accumulate units (--baseline)")
    report_out.add_json_flag(p)
    p.set_defaults(func=run)


def _run_baseline(args: argparse.Namespace) -> int:
    """``--baseline mac``: the ANN to the multiply-accumulate core (see mac_backend)."""
    from .ann import ANNError
    from .mac_backend import compile_mac

    try:
        result = compile_mac(
            args.model, args.output, data=args.data, target=args.target, macs=args.macs
        )
    except (ANNError, ValueError, OSError) as e:
        raise UserError(f"cannot compile {args.model} to the MAC baseline: {e}") from None
    report_out.emit(
        args,
        result,
        lambda r: (
            "\n".join(
                f"{k}: {r[k]}"
                for k in (
                    "cycles_per_inference",
                    "weight_bits_read",
                    "multiplications",
                    "additions",
                )
                if k in r
            )
            + f"\nwrote {args.output}/core.v, core.il, manifest.json"
        ),
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Compile; 0 on success (bad input raises UserError)."""
    if args.baseline == "mac":
        return _run_baseline(args)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    try:
        model = load_model(args.model)
    except (ModelFileError, IRError, OSError) as e:
        raise UserError(f"cannot read {args.model}: {e}") from None
    if not isinstance(model, ClassifierMLP) or not model.is_integer:
        raise UserError(f"{args.model} is not an integer classifier; run spikelut quantize first")
    family, device, brams, sprams = TARGETS[args.target]
    clock_mhz = TYPICAL_MHZ[args.target] if args.clock_mhz is None else args.clock_mhz
    if clock_mhz <= 0:
        raise UserError(f"--clock-mhz must be positive, not {clock_mhz:g}")
    cells = LOGIC_CELLS[args.target] - HOST_LINK_CELLS
    if (args.storage or args.tables_per_cycle or args.lanes) and args.throughput:
        raise UserError("--throughput picks the placement: drop --storage/-P/-L")
    choices = [args.indexer]
    if args.indexer == "auto":
        # the serial core has no residual add
        choices = ["parallel"] if _has_residual(model) else ["parallel", "serial"]
    failures = []
    for choice in choices:
        try:
            net, _, widths, est = _core(model, args, choice, family, brams, sprams, cells)
            break
        except UserError as e:
            failures.append(e)
    else:
        # a rate out of reach: the fastest core's figure; else the leanest core's shortfall
        raise failures[0] if args.throughput else failures[-1]
    used_brams, used_sprams = network_blocks(net, family)
    platform = _Device(device)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "core.v", verilog.convert(net, name="spikelut_core", platform=platform))
    write_text_atomic(out / "core.il", rtlil.convert(net, name="spikelut_core", platform=platform))
    result = manifest(net, widths, family=family)
    rate = clock_mhz * 1e6 / result["cycles_per_inference"]
    result.update(
        target=args.target,
        indexer=choice,
        indexer_requested=args.indexer,
        block_rams=used_brams,
        sprams=used_sprams,
        logic_cells_available=cells,
        clock_mhz=clock_mhz,
        inferences_per_second=rate,
        inferences_per_second_per_logic_cell=rate / est["logic_cells"],
        compile_seconds=round(time.perf_counter() - t0, 3),
        compile_cpu_seconds=round(_cpu_seconds() - cpu0, 3),
    )
    write_text_atomic(out / "manifest.json", json.dumps(result, indent=1, sort_keys=True))
    report_out.emit(args, result, _human)
    return 0


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (Yosys writing the Verilog)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _has_residual(model) -> bool:
    return any(layer.residual for layer in model.layers)


def _core(model, args, choice, family, brams, sprams, cells):
    """``(net, params, widths, estimate)`` of the core with indexer ``choice`` that fits the
    target (placement given or picked); UserError when it does not fit."""
    serial = choice == "serial"
    if serial and _has_residual(model):
        raise UserError("the serial core has no residual add; use --indexer parallel")
    indexer = IndexerKind.PARALLEL if serial else IndexerKind[choice.upper()]
    clock_mhz = TYPICAL_MHZ[args.target] if args.clock_mhz is None else args.clock_mhz
    try:
        if args.storage or args.tables_per_cycle or args.lanes:
            storage = Storage[(args.storage or "bram").upper()]
            if storage == Storage.SPRAM and not sprams:
                raise UserError(f"{args.target} has no SPRAM; use --storage bram or lutram")
            if serial and storage == Storage.LOGIC:
                raise UserError("the serial core reads tables from memory; drop --storage logic")
            plans: Any = LayerPlan(storage, args.tables_per_cycle or 1, args.lanes)
        else:
            plans = _auto_plans(
                model, args, family, brams, sprams, cells, indexer, clock_mhz, serial
            )
        params, widths = network_params(model, plans, indexer=indexer)
        net = SerialNetwork(layers=params) if serial else Network(layers=params)
    except ValueError as e:
        raise UserError(str(e)) from None
    used_brams, used_sprams = network_blocks(net, family)
    if used_brams > brams or used_sprams > sprams:
        discard(net)
        raise UserError(
            f"the {choice} core needs {used_brams} block RAMs and {used_sprams} SPRAMs, "
            f"{args.target} has {brams} and {sprams}; lower --tables-per-cycle/--lanes or "
            "change --storage"
        )
    est = estimate_logic(params, family, serial=serial)
    if est["logic_cells"] > cells:
        discard(net)
        raise UserError(
            f"the {choice} core needs about {est['logic_cells']} logic cells (estimated), "
            f"{est['logic_cells'] - cells} more than the {cells} {args.target} leaves beside "
            "the host link; lower --tables-per-cycle/--lanes, try --indexer serial or "
            "temporal, or use fewer tables, a smaller N_C or a larger device"
        )
    return net, params, widths, est


def _auto_plans(model, args, family, brams, sprams, cells, indexer, clock_mhz, serial=False):
    """The placement to use when none was given: the fastest that fits, or with
    ``--throughput`` the smallest that reaches it (UserError saying what is reachable)."""
    kw = dict(
        family=family,
        block_rams=brams,
        sprams=sprams,
        logic_cells=cells,
        indexer=indexer,
        serial=serial,
    )
    if not args.throughput:
        return fit_plans(model, **kw)
    if args.throughput <= 0:
        raise UserError(f"--throughput must be positive, not {args.throughput:g}")
    max_cycles = int(clock_mhz * 1e6 // args.throughput)
    try:
        return fit_plans(model, max_cycles=max_cycles, smallest=True, **kw)
    except ValueError:
        fastest = fit_plans(model, **kw)  # raises when nothing fits at all
        params, _ = network_params(model, fastest, indexer=indexer)
        probe = SerialNetwork(layers=params) if serial else Network(layers=params)
        cycles = probe.cycles_per_inference
        discard(probe)
        raise UserError(
            f"{args.throughput:g} inferences/s at {clock_mhz:g} MHz needs at most "
            f"{max(max_cycles, 0)} cycles per inference; the fastest placement that fits "
            f"{args.target} takes {cycles}: {clock_mhz * 1e6 / cycles:.0f} inferences/s "
            "(raise --clock-mhz or choose a larger device)"
        ) from None


def _human(r: dict) -> str:
    rows = [
        (
            layer["layer"],
            layer["storage"],
            layer["tables_per_cycle"],
            layer["lanes"],
            layer["cycles_per_inference"],
            layer["bandwidth_floor_cycles"],
        )
        for layer in r["layers"]
    ]
    table = report_out.table(rows, ("layer", "storage", "P", "L", "cycles", "floor"))
    return (
        f"{table}\n{r['indexer']} indexer; cycles per inference: {r['cycles_per_inference']} "
        f"(bandwidth floor {r['bandwidth_floor_cycles']}, {r['bandwidth_fraction']:.0%}), "
        f"latency {r['latency_cycles']} cycles; "
        f"{r['block_rams']} block RAMs, {r['sprams']} SPRAMs, about "
        f"{r['estimate']['logic_cells']} logic cells of {r['logic_cells_available']} on "
        f"{r['target']}; {r['inferences_per_second']:.0f} inferences/s at {r['clock_mhz']:g} MHz; "
        f"compiled in {r['compile_seconds']} s ({r['compile_cpu_seconds']} s CPU)"
    )
