"""``spikelut build MODEL --board BOARD``: a quantised classifier or language model to a bitstream.

Places the tables in the board's memories (the fastest placement within an eighth of the
block RAMs unless ``--max-brams`` says otherwise, SPRAM on an UltraPlus), takes the core
kind ``--core`` names or, for ``auto``, picks the serial core
(:mod:`spikelut.hdl.serial_core`: a few comparisons per clock, the same table rate) or the
parallel one by the backend's one rule (the fewest estimated logic cells), wraps the network in the
board top (UART host link, boot-time table loader for SPRAM, LEDs, a PLL when ``--freq``
differs from the oscillator), runs Yosys/nextpnr/packing, and reports resources and timing.
Writes into DIR: the bitstream, ``build-report.json`` (tool figures), ``board.json`` (what
``spikelut run`` and ``flash`` need: board, plans, indexer, clock, baud, model hash) and,
when tables live in SPRAM, ``tables.bin`` and ``flash.bin`` (bitstream + tables at the
documented offset).
Exit 1 when the design does not fit or misses timing.

An integer language model (a byte-level spiking RNN or LUT transformer) is placed within
the board's memories (:func:`spikelut.boards.lm_design.lm_board_fit`: an RNN for area, the
UART, not the core, bounding the tokens per second; a transformer reading as many attention
tables a cycle as the block RAMs allow) and built with the host link's GENERATE; the
selector's exponential table at reset is the one of ``--temperature`` (default 0.4;
``spikelut run`` writes its own). ``board.json`` then holds the plan and everything
``spikelut run`` needs; a model that does not fit is refused in one line with the memory it
would need.

``--baseline mac``: MODEL is a trained ANN (.onnx or a scikit-learn pickle, as
``spikelut compile --baseline mac``); it is quantised to 8-bit weights on ``--data``'s
training split and built as the multiply-accumulate core
(:mod:`spikelut.boards.mac_design`: one unit per DSP block unless ``--macs``) in the same
board top, with the same report (``board.json`` has ``"baseline": "mac"``; no plans, no
tables: the weights are in the bitstream).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikelut.boards.build import DEFAULT_BAUD, build_board, build_lm_board, build_mac_board
from spikelut.boards.lm_design import DEFAULT_TEMPERATURE
from spikelut.boards.platforms import board
from spikelut.cli import output
from spikelut.cli.common import (
    TRUST_PICKLE_HELP,
    add_board_core_flag,
    check_outputs,
    load_ann_file,
    load_board_model,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    seed_int,
)
from spikelut.compiler.backend.mac import quantize_for
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.ann import ANNError
from spikelut.compiler.ir.integer_sequence import INTEGER_LANGUAGE_MODELS


def add_parser(sub: Any) -> None:
    """Register the ``build`` subcommand."""
    p = sub.add_parser(
        "build",
        help="synthesise a quantised classifier or language model into a bitstream for a board",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="integer (quantised) .lutnet classifier, RNN or transformer, or with --baseline "
        "mac an ANN file",
    )
    p.add_argument("--board", required=True, metavar="BOARD", help="target board")
    p.add_argument("-o", "--output", metavar="DIR", help="output directory (default build-BOARD)")
    p.add_argument(
        "--freq", type=positive_float, metavar="MHZ", help="clock (default: the oscillator)"
    )
    p.add_argument("--seed", type=seed_int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--baud", type=positive_int, default=DEFAULT_BAUD, help="UART baud rate")
    p.add_argument(
        "--max-brams",
        type=non_negative_int,
        metavar="N",
        help="block RAMs the tables may use (default: all but the host link's); fewer "
        "means fewer tables read per cycle, less logic and a faster build",
    )
    add_board_core_flag(p, "the core in the bitstream")
    p.add_argument(
        "--baseline",
        choices=["mac"],
        help="build the ANN MODEL (.onnx, scikit-learn file) as the multiply-accumulate "
        "baseline core instead (8-bit weights, DSP multipliers)",
    )
    p.add_argument(
        "--data",
        metavar="NAME|FILE",
        help="calibration data for --baseline (default digits)",
    )
    p.add_argument(
        "--macs", type=positive_int, metavar="M", help="multiply-accumulate units (--baseline)"
    )
    p.add_argument(
        "--temperature",
        type=non_negative_float,
        metavar="T",
        help=f"a language model's sampling temperature at reset (default {DEFAULT_TEMPERATURE})",
    )
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    output.add_json_flag(p)
    p.set_defaults(func=run)


def _mac_network(args: argparse.Namespace):
    """``--baseline mac``: the ANN file quantised for the MAC core (UserError on bad input)."""
    ann = load_ann_file(args.model, args.trust_pickle)
    try:
        net, _ = quantize_for(ann, args.data or "digits")
    except (ANNError, ValueError, OSError) as e:
        raise UserError(f"cannot build {args.model} as the MAC baseline: {e}") from None
    return net


def run(args: argparse.Namespace) -> int:
    """Build; 0 when the bitstream fits and meets timing, 1 otherwise."""
    spec = board(args.board)
    out = args.output if args.output is not None else f"build-{spec.name}"
    check_outputs([args.model, args.data], dirs={"-o": out})
    out = Path(out)
    common = dict(
        freq=args.freq,
        seed=args.seed,
        baud=args.baud,
        progress=(lambda msg: None) if getattr(args, "json", False) else print,
    )
    if getattr(args, "baseline", None) == "mac":
        if args.max_brams is not None or args.indexer != "auto":
            raise UserError("--max-brams and --core are LUT-core options; drop them for --baseline")
        result = build_mac_board(_mac_network(args), spec, out, macs=args.macs, **common)
    else:
        if args.macs is not None or args.data is not None:
            raise UserError("--macs and --data apply to --baseline mac only")
        model = load_board_model(args.model)
        if isinstance(model, INTEGER_LANGUAGE_MODELS):
            if args.max_brams is not None:
                raise UserError(
                    "--max-brams applies to classifiers; a language model is placed by its kind"
                )
            temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
            result = build_lm_board(
                model, spec, out, kind=args.indexer, temperature=temperature, **common
            )
        else:
            if args.temperature is not None:
                raise UserError("--temperature applies to a language model (RNN or transformer)")
            result = build_board(
                model, spec, out, kind=args.indexer, max_brams=args.max_brams, **common
            )
    output.emit(args, result, _human)
    return 0 if result["ok"] else 1


def _human(r: dict) -> str:
    res = r["resources"]

    def cell(name):
        entry = res.get(name)
        return "-" if entry is None else f"{entry['used']}/{entry['available']}"

    rows = [
        (name, cell(key))
        for name, key in (
            ("logic cells", "logic_cells"),
            ("flip-flops", "flip_flops"),
            ("block RAMs", "block_rams"),
            ("SPRAMs", "sprams"),
            ("DSPs", "dsps"),
            ("PLLs", "plls"),
        )
    ]
    fmax = min(r["fmax_mhz"].values(), default=0.0)
    rows.append(("Fmax", f"{fmax:.1f} MHz (requested {r['target_mhz']:.1f} MHz)"))
    verdict = "PASS" if r["ok"] else "FAIL"
    rows.append(("result", verdict))
    if r.get("model_kind") == "language_model":
        rate = (
            f"{r['indexer']} {'' if r['indexer'] == 'transformer' else 'RNN '}core, "
            f"{r['cycles_per_token']:.0f} cycles per token (greedy): "
            f"{r['tokens_per_second']:,.0f} tokens/s at {r['target_mhz']:.1f} MHz, about "
            f"{r['uart_tokens_per_second']:,.0f} through the UART at {r['baud']} baud"
        )
    else:
        rate = (
            (
                f"MAC baseline on {r['macs']} multiply-accumulate units"
                if r.get("baseline") == "mac"
                else f"{r['indexer']} indexer"
            )
            + f", {r['cycles_per_inference']} cycles per inference: "
            f"{r['inferences_per_second']:,.0f} inferences/s at {r['target_mhz']:.1f} MHz "
            f"(UART at {r['baud']} baud is the bound on a host link)"
        )
    lines = [output.table(rows, ("resource", "used/available")), rate]
    if r["bitstream"]:
        lines.append(f"bitstream: {r['bitstream']}")
    if r["flash_image"]:
        lines.append(
            f"flash image (bitstream + tables at 0x{r['table_offset']:x}): {r['flash_image']}"
        )
    if r["suggestion"]:
        lines.append(f"{verdict}: {r['suggestion']}")
    return "\n".join(lines)
