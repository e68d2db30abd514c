"""``spikelut export MODEL -o DIR``: an integer classifier's core as reusable IP.

Writes the core exactly as ``spikelut compile`` does (``core.v``, ``core.il``,
``manifest.json``), a FuseSoC CAPI2 core file (``NAME.core``: targets ``default`` and
``lint``), ``INTEGRATION.md`` (ports, stream handshake, table write ports, latency and
cycles per inference, resource estimate) and ``export.json``; with ``--wishbone`` also
``spikelut_wb.v``, the core as a Wishbone B4 classic peripheral (status register, input and
output FIFOs, table write window; its register map is in the notes) and a Verilator harness
for the ``sim_wishbone`` target. See :mod:`spikelut.compiler.backend.export`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikelut.cli import output
from spikelut.cli.common import check_outputs, load_model_file, positive_float
from spikelut.compiler.backend.export import export_core
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.errors import UserError
from spikelut.compiler.ir.classifier import ClassifierMLP


def add_parser(sub: Any) -> None:
    """Register the ``export`` subcommand."""
    p = sub.add_parser(
        "export",
        help="export a classifier's core as IP: Verilog, FuseSoC core file, integration notes",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("model", metavar="MODEL", help="integer (quantised) .lutnet classifier")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--target", choices=list(TARGETS), default="ice40-up5k")
    p.add_argument(
        "--core",
        "--indexer",
        dest="indexer",
        choices=["auto", "parallel", "serial", "temporal"],
        default="auto",
        help="core kind as for spikelut compile (the Wishbone peripheral takes parallel or serial)",
    )
    p.add_argument(
        "--clock-mhz", type=positive_float, metavar="F", help="core clock for the reported rate"
    )
    p.add_argument(
        "--name", metavar="NAME", help="name of the FuseSoC core (default: the model's file name)"
    )
    p.add_argument(
        "--wishbone",
        action="store_true",
        help="also write the core as a Wishbone B4 classic peripheral (spikelut_wb.v)",
    )
    output.add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; 0 on success (bad input raises UserError)."""
    check_outputs([args.model], dirs={"-o": args.output})
    name = args.name if args.name is not None else Path(args.model).stem
    if not name or not name.replace("_", "a").replace("-", "a").isalnum():
        raise UserError(f"--name {name!r}: use letters, digits, '_' and '-' only")
    model = load_model_file(args.model)
    if not isinstance(model, ClassifierMLP) or not model.is_integer:
        raise UserError(
            f"{args.model} is not an integer classifier; export takes the output of "
            "spikelut quantize"
        )
    if args.wishbone and args.indexer == "temporal":
        raise UserError(
            "the Wishbone peripheral feeds whole input vectors: use --core parallel, serial or auto"
        )
    result = export_core(
        model,
        args.output,
        TARGETS[args.target],
        name=name,
        kind=args.indexer,
        wishbone=args.wishbone,
        clock_mhz=args.clock_mhz,
    )
    output.emit(args, result, lambda r: _human(r, args.output))
    return 0


def _human(r: dict, out: str) -> str:
    man = r["manifest"]
    return (
        f"{man['indexer']} core for {man['target']}: {man['cycles_per_inference']} cycles per "
        f"inference, latency {man['latency_cycles']} cycles\n"
        f"FuseSoC core {r['fusesoc']}\nwrote {out}/: {', '.join(r['files'])}"
    )
