"""``spikelut compile``: an integer classifier to the Verilog and RTLIL of its network core.

Writes ``core.v``, ``core.il`` and ``manifest.json`` (ports and payload formats, cycles per
inference, memory placement per layer, block RAMs and SPRAMs used, the memory-bandwidth
floor and the fraction of it achieved). Without ``--storage``/``--tables-per-cycle``/
``--lanes`` it picks the fastest placement in block RAM (and SPRAM on an UltraPlus) that
fits the target's memories.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from amaranth.back import rtlil, verilog

from spikelut.hdl.bank import Storage
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layer import Network
from spikelut.hdl.params import discard

from . import report_out
from .backend import LayerPlan, fit_plans, manifest, network_blocks, network_params
from .errors import UserError
from .fileio import write_text_atomic
from .ir import ClassifierMLP, IRError
from .modelfile import ModelFileError, load_model

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
    p.add_argument("model", metavar="MODEL", help="integer (quantised) .lutnet classifier")
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
        choices=[k.name.lower() for k in IndexerKind],
        default="parallel",
        help="input as value vectors (parallel) or AER spike events (temporal)",
    )
    report_out.add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compile; 0 on success (bad input raises UserError)."""
    t0 = time.perf_counter()
    try:
        model = load_model(args.model)
    except (ModelFileError, IRError, OSError) as e:
        raise UserError(f"cannot read {args.model}: {e}") from None
    if not isinstance(model, ClassifierMLP) or not model.is_integer:
        raise UserError(f"{args.model} is not an integer classifier; run spikelut quantize first")
    family, device, brams, sprams = TARGETS[args.target]
    manual = args.storage or args.tables_per_cycle or args.lanes
    try:
        if manual:
            storage = Storage[(args.storage or "bram").upper()]
            if storage == Storage.SPRAM and not sprams:
                raise UserError(f"{args.target} has no SPRAM; use --storage bram or lutram")
            plans: Any = LayerPlan(storage, args.tables_per_cycle or 1, args.lanes)
        else:
            plans = fit_plans(model, family=family, block_rams=brams, sprams=sprams)
        params, widths = network_params(model, plans, indexer=IndexerKind[args.indexer.upper()])
        net = Network(layers=params)
    except ValueError as e:
        raise UserError(str(e)) from None
    used_brams, used_sprams = network_blocks(net, family)
    if used_brams > brams or used_sprams > sprams:
        discard(net)
        raise UserError(
            f"the tables need {used_brams} block RAMs and {used_sprams} SPRAMs, {args.target} "
            f"has {brams} and {sprams}; lower --tables-per-cycle/--lanes or change --storage"
        )
    platform = _Device(device)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "core.v", verilog.convert(net, name="spikelut_core", platform=platform))
    write_text_atomic(out / "core.il", rtlil.convert(net, name="spikelut_core", platform=platform))
    result = manifest(net, widths)
    result.update(
        target=args.target,
        block_rams=used_brams,
        sprams=used_sprams,
        compile_seconds=round(time.perf_counter() - t0, 3),
    )
    write_text_atomic(out / "manifest.json", json.dumps(result, indent=1, sort_keys=True))
    report_out.emit(args, result, _human)
    return 0


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
        f"{table}\ncycles per inference: {r['cycles_per_inference']} "
        f"(bandwidth floor {r['bandwidth_floor_cycles']}, {r['bandwidth_fraction']:.0%}); "
        f"{r['block_rams']} block RAMs, {r['sprams']} SPRAMs on {r['target']}; "
        f"compiled in {r['compile_seconds']} s"
    )
