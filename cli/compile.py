"""``spikelut compile``: an integer classifier or RNN to the Verilog and RTLIL of its core.

Writes ``core.v``, ``core.il`` and ``manifest.json`` (ports and payload formats, cycles per
inference, latency measured in Amaranth's simulator, memory placement per layer, block RAMs
and SPRAMs used, estimated LUT4s, flip-flops and logic cells, the memory-bandwidth floor and
the fraction of it achieved, the compile time). Without ``--storage``/``--tables-per-cycle``/
``--lanes`` it picks the fastest placement that fits the target; ``--throughput`` the
smallest that reaches a rate at ``--clock-mhz``; ``--core`` (or ``--indexer``) the core kind
(``auto``: the one with the fewest estimated logic cells that fits; with ``--optimize
throughput|area`` the frozen core is a candidate too and the goal decides). See
:mod:`spikelut.compiler.backend.compile`. What cannot fit is refused before any Verilog is
written. ``--baseline mac`` compiles an ANN to the multiply-accumulate baseline core instead.
An integer RNN compiles to its language-model core (:mod:`spikelut.compiler.backend.compile_lm`):
the fastest placement of its memories that fits, cycles per generated token measured; an
integer transformer to its core (:mod:`spikelut.compiler.backend.compile_transformer`).
"""

from __future__ import annotations

import argparse
from typing import Any

from spikelut.cli import output
from spikelut.cli.common import (
    TRUST_PICKLE_HELP,
    check_outputs,
    check_pickle_trusted,
    load_model_file,
    positive_float,
    positive_int,
)
from spikelut.compiler.backend.compile import compile_core
from spikelut.compiler.backend.compile_lm import compile_lm
from spikelut.compiler.backend.compile_transformer import compile_transformer
from spikelut.compiler.backend.cores import GOALS
from spikelut.compiler.backend.mac import compile_mac
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.ann import ANNError
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.hdl.storage import Storage


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
    p.add_argument("--target", choices=list(TARGETS), default="ice40-up5k")
    p.add_argument(
        "--storage",
        choices=[s.name.lower() for s in Storage],
        help="table storage of every layer (default: block RAM)",
    )
    p.add_argument(
        "-P", "--tables-per-cycle", type=positive_int, metavar="P", help="tables read per cycle"
    )
    p.add_argument(
        "-L", "--lanes", type=positive_int, metavar="L", help="outputs read per row beat"
    )
    p.add_argument(
        "--core",
        "--indexer",
        dest="indexer",
        choices=["auto", "parallel", "serial", "temporal", "frozen"],
        default="auto",
        help="all comparators at once (parallel), a few per clock (serial: far less logic, "
        "same rate at the memory-bandwidth floor), AER spike events in (temporal), or every "
        "table in logic, pipelined, one inference per clock, not reloadable (frozen); "
        "auto: the kind with the fewest estimated logic cells that fits",
    )
    p.add_argument(
        "--optimize",
        choices=list(GOALS),
        help="with --core auto: consider the frozen core too and pick the fewest cycles per "
        "inference (throughput) or estimated logic cells (area)",
    )
    p.add_argument(
        "--throughput",
        type=positive_float,
        metavar="RATE",
        help="inferences per second to reach: the smallest placement that does",
    )
    p.add_argument(
        "--clock-mhz",
        type=positive_float,
        metavar="F",
        help="core clock for --throughput and the reported rate (default: the target's board "
        "oscillator)",
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
    p.add_argument(
        "--macs", type=positive_int, metavar="M", help="multiply-accumulate units (--baseline)"
    )
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    output.add_json_flag(p)
    p.set_defaults(func=run)


def _run_baseline(args: argparse.Namespace) -> int:
    """``--baseline mac``: the ANN to the multiply-accumulate core."""
    check_pickle_trusted(args.model, args.trust_pickle)
    try:
        result = compile_mac(
            args.model, args.output, data=args.data, target=TARGETS[args.target], macs=args.macs
        )
    except (ANNError, ValueError, OSError) as e:
        raise UserError(f"cannot compile {args.model} to the MAC baseline: {e}") from None
    keys = ("cycles_per_inference", "weight_bits_read", "multiplications", "additions")
    output.emit(
        args,
        result,
        lambda r: (
            "\n".join(f"{k}: {r[k]}" for k in keys if k in r)
            + f"\nwrote {args.output}/core.v, core.il, manifest.json"
        ),
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Compile; 0 on success (bad input raises UserError)."""
    check_outputs([args.model, args.data], dirs={"-o": args.output})
    if args.baseline == "mac":
        return _run_baseline(args)
    if args.macs is not None:
        raise UserError("--macs applies to --baseline mac only")
    model = load_model_file(args.model)
    if isinstance(model, IntegerRNN):
        return _run_language_model(args, model)
    if isinstance(model, IntegerTransformer):
        return _run_transformer(args, model)
    if not isinstance(model, ClassifierMLP) or not model.is_integer:
        raise UserError(
            f"{args.model} is not an integer classifier or RNN; run spikelut quantize first"
        )
    placement = None
    if args.storage or args.tables_per_cycle is not None or args.lanes is not None:
        placement = LayerPlan(
            Storage[(args.storage or "bram").upper()], args.tables_per_cycle or 1, args.lanes
        )
    result = compile_core(
        model,
        args.output,
        TARGETS[args.target],
        kind=args.indexer,
        placement=placement,
        throughput=args.throughput,
        clock_mhz=args.clock_mhz,
        goal=args.optimize,
    )
    output.emit(args, result, _human)
    return 0


def _run_language_model(args: argparse.Namespace, model: IntegerRNN) -> int:
    """An integer RNN to its core (:func:`~spikelut.compiler.backend.compile_lm.compile_lm`)."""
    given = [
        flag
        for flag, value in (
            ("--storage", args.storage),
            ("--tables-per-cycle", args.tables_per_cycle),
            ("--lanes", args.lanes),
            ("--throughput", args.throughput),
            ("--optimize", args.optimize),
        )
        if value is not None
    ]
    if given:
        raise UserError(
            f"{', '.join(given)} place a classifier's layers; a language model's memories are "
            "placed by fit (choose --indexer and --target)"
        )
    if args.indexer == "temporal":
        raise UserError("a language model's core indexes its state: --indexer parallel or serial")
    result = compile_lm(
        model, args.output, TARGETS[args.target], kind=args.indexer, clock_mhz=args.clock_mhz
    )
    output.emit(args, result, _human_lm)
    return 0


def _run_transformer(args: argparse.Namespace, model: IntegerTransformer) -> int:
    """An integer transformer to its core
    (:func:`~spikelut.compiler.backend.compile_transformer.compile_transformer`)."""
    given = [
        flag
        for flag, value in (
            ("--storage", args.storage),
            ("--tables-per-cycle", args.tables_per_cycle),
            ("--lanes", args.lanes),
            ("--throughput", args.throughput),
            ("--optimize", getattr(args, "optimize", None)),
        )
        if value is not None
    ]
    if given or args.indexer not in ("auto", "parallel"):
        raise UserError(
            f"{', '.join(given) or '--core ' + args.indexer} do not apply to a transformer: its "
            "tables are placed by fit in block RAM, indexed in parallel (choose --target)"
        )
    target = TARGETS[args.target]
    result = compile_transformer(model, args.output, target, clock_mhz=args.clock_mhz)
    output.emit(args, result, _human_transformer)
    return 0


def _human_transformer(r: dict) -> str:
    rows = [
        (
            layer["layer"],
            layer["heads"],
            layer["attention"]["tables_per_cycle"],
            layer["attention"]["lanes"],
            layer["attention"]["cycles_at_full_context"],
            layer["ffn"]["cycles"],
        )
        for layer in r["layers"]
    ]
    table = output.table(rows, ("layer", "heads", "P", "L", "attention", "ffn"))
    return (
        f"{table}\n{r['cycles_per_token']:g} cycles per generated token over a window of "
        f"{r['context']} (greedy; tables' floor {r['table_cycles_per_token']:g}, "
        f"{r['bandwidth_fraction']:.0%} of it), latency {r['latency_cycles']} cycles; "
        f"{r['block_rams']} block RAMs of {r['block_rams_available']} on {r['target']}; "
        f"{r['tokens_per_second']:,.0f} tokens/s at {r['clock_mhz']:g} MHz"
    )


def _human_lm(r: dict) -> str:
    rows = [
        (
            lut["lut"],
            lut["storage"],
            lut["tables_per_cycle"],
            lut["lanes"],
            lut["cycles"],
            lut["bandwidth_floor_cycles"],
        )
        for lut in r["luts"]
    ]
    table = output.table(rows, ("lut", "storage", "P", "L", "cycles", "floor"))
    emb = r["plan"]["embedding"]
    return (
        f"{table}\nembedding in {emb['storage']}, {emb['lanes']} values a clock; "
        f"{r['indexer']} indexing; {r['cycles_per_token']:g} cycles per generated token "
        f"(greedy; tables {r['table_cycles_per_token']}, sampled up to "
        f"{r['sampled_cycles_per_token']:g}), latency {r['latency_cycles']} cycles; "
        f"{r['block_rams']} block RAMs, {r['sprams']} SPRAMs, about "
        f"{r['estimate']['logic_cells'] if r['estimate'] else '?'} logic cells of "
        f"{r['logic_cells_available']} on {r['target']}; {r['tokens_per_second']:,.0f} tokens/s "
        f"at {r['clock_mhz']:g} MHz"
    )


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
    table = output.table(rows, ("layer", "storage", "P", "L", "cycles", "floor"))
    why = f"chosen: {r['core_choice']}\n" if r.get("core_choice") else ""
    reload = "" if r["reloadable"] else " (tables in logic: not reloadable)"
    return (
        f"{table}\n{why}{r['indexer']} core{reload}; cycles per inference: {r['cycles_per_inference']} "
        f"(bandwidth floor {r['bandwidth_floor_cycles']}, {r['bandwidth_fraction']:.0%}), "
        f"latency {r['latency_cycles']} cycles; "
        f"{r['block_rams']} block RAMs, {r['sprams']} SPRAMs, about "
        f"{r['estimate']['logic_cells']} logic cells of {r['logic_cells_available']} on "
        f"{r['target']}; {r['inferences_per_second']:.0f} inferences/s at {r['clock_mhz']:g} MHz; "
        f"compiled in {r['compile_seconds']} s ({r['compile_cpu_seconds']} s CPU)"
    )
