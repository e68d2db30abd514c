"""``spikelut sim MODEL``: the compiled core in cocotb, every output checked against the golden model.

Simulates exactly the core that ships: by default the one ``spikelut build --board
icebreaker`` puts in the bitstream (same kind, placement and widths), or that of another
``--board``, of an existing build (``--build DIR``), or the one ``spikelut compile --target``
writes. ``--netlist ice40|ecp5`` simulates that core as Yosys synthesises it for the family
(the vendor cell models, block RAM and SPRAM included) instead of its RTL. The run uses
Verilator (or Icarus Verilog where installed) on the data set's test split (or random
vectors) under random stream gaps and back-pressure, and prints the vectors checked, the
mismatches (must be 0), the accuracy, the measured cycles per inference and latency, and the
simulation speed. Exit status 1 on any mismatch. A language model's core is simulated by
:mod:`spikelut.cli.sim_lm` (a prompt, then generation).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from spikelut.boards.design import board_core, core_of_build
from spikelut.boards.platforms import board
from spikelut.cli import output
from spikelut.cli.common import (
    check_outputs,
    dataset_of,
    load_model_file,
    non_negative_float,
    non_negative_int,
    nonzero_seed,
    seed_int,
)
from spikelut.cli.sim_lm import DEFAULT_GENERATE, run_language_model
from spikelut.compiler.backend.compile import CorePlan, plan_core
from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.backend.plan import plans_to_json
from spikelut.compiler.backend.targets import TARGETS, Target
from spikelut.compiler.errors import UserError
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.sim.netlist import FAMILIES
from spikelut.sim.network_sim import SimulatorUnavailable, simulate

# the board whose core is simulated when none is named, per --netlist family
DEFAULT_BOARD = {"ice40": "icebreaker", "ecp5": "ulx3s-85f"}


def add_parser(sub: Any) -> None:
    """Register the ``sim`` subcommand."""
    p = sub.add_parser(
        "sim",
        help="simulate the compiled core in cocotb against the golden model",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("model", metavar="MODEL", help="integer (quantised) classifier or RNN")
    p.add_argument(
        "--vectors",
        type=int,
        metavar="N",
        help="vectors to check (default: all); for a language model, prompt bytes (256)",
    )
    p.add_argument(
        "--dataset",
        choices=("test", "train", "random"),
        default="test",
        help="the model's data set split to run, or random input vectors",
    )
    p.add_argument("--data", metavar="NAME|FILE", help="the model's data set, if not recorded")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--waves", metavar="FILE", help="write a .vcd or .fst trace")
    p.add_argument(
        "--seed", type=seed_int, default=0, help="seed of the gaps and stalls (and vectors)"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--board",
        metavar="BOARD",
        help="the core `spikelut build --board BOARD` puts in the bitstream (default: "
        f"{DEFAULT_BOARD['ice40']}, or {DEFAULT_BOARD['ecp5']} with --netlist ecp5)",
    )
    where.add_argument(
        "--target",
        choices=list(TARGETS),
        help="the core `spikelut compile --target TARGET` writes, instead of a board's",
    )
    where.add_argument(
        "--build", metavar="DIR", help="the core of the build in DIR (its board.json)"
    )
    p.add_argument(
        "--core",
        "--indexer",
        dest="indexer",
        choices=("auto", *(k.value for k in CoreKind)),
        default="auto",
        help="core kind (default: the one build/compile chooses); not with --build",
    )
    p.add_argument(
        "--netlist",
        choices=FAMILIES,
        help="simulate the core as Yosys synthesises it for this family (cell models) "
        "instead of its RTL",
    )
    lm = p.add_argument_group("language models")
    lm.add_argument(
        "--generate",
        type=non_negative_int,
        default=DEFAULT_GENERATE,
        metavar="N",
        help=f"bytes the core generates after the prompt (default {DEFAULT_GENERATE})",
    )
    lm.add_argument(
        "--temperature",
        type=non_negative_float,
        default=0.0,
        help="0: greedy; else sampled with the core's random source (default 0)",
    )
    lm.add_argument(
        "--sample-seed", type=nonzero_seed, default=1, help="the random source's seed (non-zero)"
    )
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
        try:
            x = rng.integers(-lim, lim, (n or 1000, model.encoding.width))
        except ValueError as e:  # numpy's, for sizes no array can have
            raise UserError(f"--vectors {n}: more random vectors than memory holds ({e})") from None
        return x, None, "random vectors"
    if not (args.data or model.meta.get("dataset")):
        raise UserError(f"{args.model} records no data set; pass --data or --dataset random")
    data = dataset_of(model, args.data, args.model)
    X, y = (data.X_test, data.y_test) if args.dataset == "test" else (data.X_train, data.y_train)
    x = model.encoding.encode_int(X)
    if n is not None:
        x, y = x[:n], y[:n]
    return x, y, f"{data.name} {args.dataset} split"


def _core(args, model: ClassifierMLP) -> tuple[CorePlan, Target, str]:
    """The core to simulate, its target and where it comes from (see the module docstring)."""
    if args.build is not None:
        if args.indexer != "auto":
            raise UserError("--build simulates the core the build chose; drop --core")
        path = Path(args.build) / "board.json"
        try:
            spec, core = core_of_build(model, json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            raise UserError(f"cannot use {path}: {e}") from None
        return core, spec.target, f"the core of the build in {args.build} ({spec.name})"
    if args.target is not None:
        target = TARGETS[args.target]
        return (
            plan_core(model, target, kind=args.indexer),
            target,
            f"compile --target {target.name}",
        )
    spec = board(DEFAULT_BOARD[args.netlist or "ice40"] if args.board is None else args.board)
    core = board_core(model, spec, kind=args.indexer)
    return core, spec.target, f"build --board {spec.name}"


def run(args: argparse.Namespace) -> int:
    """Simulate; 0 when every output matches, 1 on any mismatch."""
    model = load_model_file(args.model)
    if isinstance(model, (IntegerRNN, IntegerTransformer)):
        check_outputs([args.model, args.data], {})
        return run_language_model(args, model)
    if not isinstance(model, ClassifierMLP) or not model.is_integer:
        raise UserError(
            f"{args.model} is not an integer classifier, RNN or transformer; run spikelut "
            "quantize first"
        )
    if args.waves is not None and not args.waves.lower().endswith((".vcd", ".fst")):
        raise UserError(f"--waves {args.waves!r} must end in .vcd or .fst")
    check_outputs([args.model, args.data, getattr(args, "build", None)], {"--waves": args.waves})
    core, target, source = _core(args, model)
    if args.netlist and args.netlist != target.family:
        raise UserError(
            f"--netlist {args.netlist} does not match {target.name} ({target.family}); "
            f"use --netlist {target.family} or a {args.netlist} board"
        )
    x, labels, what = _vectors(args, model)
    quiet = getattr(args, "json", False)
    try:
        report = simulate(
            model,
            x,
            labels=labels,
            plans=core.plans,
            target=target,
            kind=core.kind,
            simulator=args.simulator,
            seed=args.seed,
            waves=args.waves,
            optimize=args.optimize,
            netlist=bool(args.netlist),
            progress=None if quiet else print,
        )
    except SimulatorUnavailable as e:
        output.emit(args, {"skipped": True, "reason": str(e)}, lambda r: f"skipped: {r['reason']}")
        return 0
    except ValueError as e:
        raise UserError(str(e)) from None
    result = {
        "model": str(args.model),
        "vectors_from": what,
        "core_of": source,
        "plans": plans_to_json(core.plans),
        **report.to_dict(),
    }
    output.emit(args, result, _human)
    return 1 if report.mismatches else 0


def _human(r: dict) -> str:
    build = "cached build" if r["build_cached"] else f"built in {r['build_seconds']:.1f} s"
    design = "RTL"
    if r["netlist"]:
        n = r["netlist"]
        design = f"{n['family']} netlist ({sum(n['cells'].values()):,} cells, Yosys {n['synth_seconds']:.0f} s)"
    lines = [
        f"core                {r['kind']} core of {r['core_of']}, {design}",
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
