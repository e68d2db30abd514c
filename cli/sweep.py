"""``spikelut sweep SPEC.toml -o DIR``: a design-space sweep on Ray, and its Pareto report.

Runs every point of the spec (:mod:`spikelut.compiler.sweep.spec` documents the file) through
the real stages (:mod:`spikelut.flows.sweep_point`) as Ray tasks (:mod:`spikelut.flows.sweep`):
a local Ray instance sized to this machine, or ``--address auto|HOST:PORT|ray://HOST:PORT``
for a running cluster. Each result is written to ``DIR/points/ID.json`` as it arrives;
``--resume`` skips the points that have one. Then writes ``DIR/summary.json`` and the Pareto
report ``DIR/report.html`` (``--report-only``: just these, from the results in ``DIR``).
Ray is the optional extra ``cluster``: ``pip install 'spikelut[cluster]'``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spikelut.cli import output
from spikelut.cli.common import check_outputs, positive_int
from spikelut.compiler.errors import UserError
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.sweep.report import render_html, summarize
from spikelut.compiler.sweep.spec import load_spec
from spikelut.flows.sweep import load_results, run_sweep


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelut sweep``."""
    p = sub.add_parser(
        "sweep",
        help="a design-space sweep on Ray, with a Pareto report",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep's specification")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="results directory")
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="a running Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: start a "
        "local Ray instance sized to this machine)",
    )
    p.add_argument("--resume", action="store_true", help="skip the points with a result in DIR")
    p.add_argument(
        "--cpus",
        type=positive_int,
        metavar="N",
        help="CPUs of the local Ray instance (default: all of this machine's)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: write the summary and report of the results in DIR",
    )
    output.add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep (unless ``--report-only``), write the summary and report, print them."""
    out = Path(args.output)
    check_outputs([args.spec], dirs={"-o": out})
    spec = load_spec(args.spec)
    if args.report_only:
        results = load_results(out)
        if not results:
            raise UserError(f"{out} holds no sweep results; run the sweep first")
    else:
        if args.address is not None and args.cpus is not None:
            raise UserError("--cpus sizes a local Ray instance: drop it with --address")
        results = run_sweep(spec, out, address=args.address, resume=args.resume, num_cpus=args.cpus)
    info_path = out / "sweep.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    summary = summarize(results, info)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1, sort_keys=True))
    write_text_atomic(out / "report.html", render_html(summary, results))
    figures = {k: summary[k] for k in ("points", "by_status", "feasible", "fronts")}
    figures.update(report=str(out / "report.html"), summary=str(out / "summary.json"))
    output.emit(args, figures, _human)
    return 0


def _human(r: dict) -> str:
    status = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in r["by_status"].items())
    lines = [f"points    {r['points']} ({status}); {r['feasible']} meet the constraints"]
    for f in r["fronts"]:
        lines.append(
            f"front     {f['board']} {f['kind']}: {len(f['accuracy_vs_logic_cells'])} points "
            f"(accuracy vs logic cells), {len(f['accuracy_vs_inferences_per_second'])} "
            "(accuracy vs inferences/s)"
        )
    lines += [f"report    {r['report']}", f"summary   {r['summary']}"]
    return "\n".join(lines)
