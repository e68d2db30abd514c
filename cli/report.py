"""``spikelut report MODEL_OR_BUILD_DIR... [-o report.html]``: a self-contained HTML report.

For a classifier: the layer structure and widths, where each table lives (from a compile
manifest), resource use on the device (from a board build's ``build-report.json``),
operations and memory bits per inference against the dense ANN of the same shape, throughput
against the memory-bandwidth floor, the estimated energy per inference (from a build's
``board.json``; beside the multiply-accumulate core from an ``energy.json`` that
``bench/energy_per_inference.py --json`` writes), and, on the model's data set, a confusion
matrix and spike rasters. For a language model (an integer spiking RNN or LUT transformer
from ``spikelut quantize``): its shape (a transformer's heads and FFNs per layer), memory per
layer and where each memory is placed (compile manifest, ``board.json``),
the validation loss float, integer and hardware (equal to the integer one when a simulation
in the sources, ``sim.json``/``run.json``/``lm-board.json``, reports 0 mismatches), cycles
per token against the table-bandwidth floor, tokens per second at the board clock and
through the UART, and the build's resources. Sections whose data is missing say how to
produce it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikelut.cli import output
from spikelut.cli.common import check_outputs
from spikelut.compiler.analysis.inputs import ReportError
from spikelut.compiler.analysis.report import write_report
from spikelut.compiler.errors import UserError


def add_parser(sub: Any) -> None:
    """Register the ``report`` subcommand."""
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a model or a build directory",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "sources",
        nargs="+",
        metavar="MODEL_OR_BUILD_DIR",
        help=".lutnet file(s) and/or directories (a demo, compile or build directory; for a "
        "language model also one with sim.json, run.json or lm-board.json)",
    )
    p.add_argument("-o", "--output", default="report.html", metavar="FILE", help="HTML file")
    p.add_argument(
        "--data", metavar="NAME|FILE", help="a classifier's data set (default: the model's)"
    )
    output.add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report; 0 on success (bad input raises UserError)."""
    if Path(args.output).is_dir():
        raise UserError(f"-o {args.output} is a directory; give an .html file name")
    check_outputs([*args.sources, args.data], {"-o": args.output})
    if Path(args.output).suffix.lower() not in (".html", ".htm"):
        # the sources' directories are searched for models and JSON files: an .html name
        # cannot be one of them
        raise UserError(
            f"-o {args.output}: the report is an HTML page; give a name ending in .html"
        )
    try:
        r = write_report(args.sources, args.output, data=args.data)
    except (ReportError, ValueError) as e:
        raise UserError(str(e)) from None
    result = {
        "output": r["output"],
        "model": r["model"],
        "missing_sections": r["missing"],
        "files": r["files"],
    }
    output.emit(args, result, _human)
    return 0


def _human(r: dict) -> str:
    line = f"report written to {r['output']} (model {r['model']})"
    if r["missing_sections"]:
        line += f"; sections without their data: {', '.join(r['missing_sections'])}"
    return line
