"""``spikelut sim MODEL``: the compiled core in cocotb, every output checked against the golden model.

Builds the core of an integer classifier (the placement ``spikelut compile`` picks for
``--target``), runs it in Verilator (or Icarus Verilog where installed) on the data set's
test split (or random vectors) under random stream gaps and back-pressure, and prints the
vectors checked, the mismatches (must be 0), the accuracy, the measured cycles per inference
and latency, and the simulation speed. Exit status 1 on any mismatch.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from spikelut.cli import output
from spikelut.cli.common import dataset_of, load_integer_classifier
from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.errors import UserError
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.sim.network_sim import SimulatorUnavailable, simulate


def add_parser(sub: Any) -> None:
    """Register the ``sim`` subcommand."""
    p = sub.add_parser(
        "sim",
        help="simulate the compiled core in cocotb against the golden model",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("model", metavar="MODEL", help="integer (quantised) .lutnet classifier")
    p.add_argument("--vectors", type=int, metavar="N", help="vectors to check (default: all)")
    p.add_argument(
        "--dataset",
        choices=("test", "train", "random"),
        default="test",
        help="the model's data set split to run, or random input vectors",
    )
    p.add_argument("--data", metavar="NAME|FILE", help="the model's data set, if not recorded")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--waves", metavar="FILE", help="write a .vcd or .fst trace")
    p.add_argument("--seed", type=int, default=0, help="seed of the gaps and stalls (and vectors)")
    p.add_argument("--indexer", choices=("parallel", "temporal"), default="parallel")
    p.add_argument("--target", choices=list(TARGETS), default="ice40-up5k", help="memory placement")
    p.add_argument(
        "--optimize",
        action="store_true",
        help="compile the Verilator model with -O2 instead of -Os: about twice the build "
        "time for a model about 15%% faster, worth it for long runs",
    )
    output.add_json_flag(p)
    p.set_defaults(func=run)


def _vectors(args, model: ClassifierMLP) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Integer inputs, their labels (None for random vectors) and a description."""
    n = args.vectors
    if n is not None and n < 1:
        raise UserError(f"--vectors must be at least 1, not {n}")
    if args.dataset == "random":
        rng = np.random.default_rng(args.seed)
        lim = 1 << (model.encoding.bits - 1)
        x = rng.integers(-lim, lim, (n or 1000, model.encoding.dim))
        return x, None, "random vectors"
    if not (args.data or model.meta.get("dataset")):
        raise UserError(f"{args.model} records no data set; pass --data or --dataset random")
    data = dataset_of(model, args.data, args.model)
    X, y = (data.X_test, data.y_test) if args.dataset == "test" else (data.X_train, data.y_train)
    x = model.encoding.encode_int(X)
    if n is not None:
        x, y = x[:n], y[:n]
    return x, y, f"{data.name} {args.dataset} split"


def run(args: argparse.Namespace) -> int:
    """Simulate; 0 when every output matches, 1 on any mismatch."""
    model = load_integer_classifier(args.model)
    if args.waves and not args.waves.lower().endswith((".vcd", ".fst")):
        raise UserError(f"--waves {args.waves!r} must end in .vcd or .fst")
    x, labels, what = _vectors(args, model)
    try:
        report = simulate(
            model,
            x,
            labels=labels,
            target=TARGETS[args.target],
            kind=CoreKind(args.indexer),
            simulator=args.simulator,
            seed=args.seed,
            waves=args.waves,
            optimize=args.optimize,
        )
    except SimulatorUnavailable as e:
        output.emit(args, {"skipped": True, "reason": str(e)}, lambda r: f"skipped: {r['reason']}")
        return 0
    except ValueError as e:
        raise UserError(str(e)) from None
    result = {"model": str(args.model), "vectors_from": what, **report.to_dict()}
    output.emit(args, result, _human)
    return 1 if report.mismatches else 0


def _human(r: dict) -> str:
    build = "cached build" if r["build_cached"] else f"built in {r['build_seconds']:.1f} s"
    lines = [
        f"simulator           {r['simulator']} ({build})",
        f"vectors checked     {r['vectors']} ({r['vectors_from']})",
        f"mismatches          {r['mismatches']}",
    ]
    if r["mismatches"]:
        lines.append(f"first mismatch      {r['first_mismatch']}")
        lines.append(f"divergence          {r['divergence']}")
    if r["accuracy"] is not None:
        lines.append(f"accuracy            {r['accuracy']:.2%}")
    cpi = r["cycles_per_inference"]
    lines += [
        f"cycles/inference    {'n/a' if cpi is None else f'{cpi:g}'} measured "
        f"({r['expected_cycles_per_inference']} by design)",
        f"latency             {r['latency_cycles']} cycles ({r['latency_ns']} ns at 100 MHz)",
        f"simulation speed    {r['cycles_per_second']:,.0f} cycles/s "
        f"({r['cycles']} cycles in {r['sim_wall_seconds']:.2f} s, of which "
        f"{r['load_cycles']} loading tables; {r['inference_cycles_per_second']:,.0f} "
        f"cycles/s after loading; {r['cycles_per_cpu_second']:,.0f} cycles per CPU second; "
        f"total {r['total_seconds']:.1f} s)",
    ]
    if r["waves"]:
        lines.append(f"waves               {r['waves']}")
    return "\n".join(lines)
