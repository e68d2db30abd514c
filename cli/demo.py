"""``spikelut demo [--board icebreaker] [-o DIR]``: the digits data to a verified bitstream.

Trains the LUT classifier on the scikit-learn digits data, quantises it, compiles the core,
verifies it in cocotb on Verilator over the whole test set (0 mismatches required), builds
the bitstream for the board, runs test images through the host runtime against the simulated
complete board over the UART link, and prints one summary; writes every stage's files into
its own sub-folder of DIR, then ``summary.json`` and ``report.html``. Exit 1 when a stage
fails (the message names it; the earlier stages' outputs stay).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spikelut.boards.platforms import board
from spikelut.cli import output
from spikelut.compiler.errors import UserError
from spikelut.flows.demo import RUN_EXAMPLES, DemoOptions, StageFailed, run_demo


def add_parser(sub: Any) -> None:
    """Register the ``demo`` subcommand."""
    p = sub.add_parser(
        "demo",
        help="train, quantise, compile, verify, build and run the digits classifier",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--board", default="icebreaker", metavar="BOARD", help="target board")
    p.add_argument(
        "-o", "--output", default="spikelut-demo", metavar="DIR", help="output directory"
    )
    p.add_argument(
        "--run-examples",
        type=int,
        default=RUN_EXAMPLES,
        metavar="N",
        help="test images sent to the simulated complete board (default: the whole test set)",
    )
    output.add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every stage passed, 1 when one failed."""
    board(args.board)  # an unknown board is a UserError before anything runs
    if args.run_examples < 1:
        raise UserError(f"--run-examples must be at least 1, not {args.run_examples}")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} is a file; give a directory")
    try:
        summary = run_demo(out, DemoOptions(board=args.board, run_examples=args.run_examples))
    except StageFailed as e:
        output.emit(
            args,
            {"ok": False, "failed_stage": e.stage, "reason": e.reason, "output": str(out)},
            lambda r: (
                f"spikelut demo: {r['failed_stage']} failed: {r['reason']}\n"
                f"outputs of the earlier stages are in {r['output']}"
            ),
        )
        return 1
    output.emit(args, {"ok": True, **summary}, human)
    return 0


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _used(entry) -> str:
    return "-" if not entry else f"{entry['used']:,} of {entry['available']:,}"


def _cycles(s: dict) -> str:
    if s["cycles_per_inference"] is None:
        return "-"
    text = f"{s['cycles_per_inference']:,}"
    if s.get("board_indexer"):
        text += f" on the board ({s['board_indexer']} indexer)"
    core = s.get("core_cycles_per_inference")
    if core is not None and core != s["cycles_per_inference"]:
        text += f"; {core:,} in the verified parallel core"
    return text


def human(s: dict) -> str:
    """The demo summary as text."""
    rows = [
        ("float accuracy", _pct(s["float_accuracy"])),
        ("integer accuracy (golden model)", _pct(s["int_accuracy"])),
        (
            "compiled core in cocotb",
            "-"
            if s["vectors_checked"] is None
            else f"{_pct(s['core_accuracy'])} on {s['vectors_checked']} test vectors, "
            f"{s['mismatches']} mismatches",
        ),
        (
            "hardware accuracy (bitstream design)",
            "-"
            if s.get("board_vectors_checked") is None
            else f"{_pct(s['hardware_accuracy'])} on {s['board_vectors_checked']} test vectors, "
            f"{s['board_mismatches']} mismatches",
        ),
        ("logic cells", _used(s["logic_cells"])),
        ("flip-flops", _used(s["flip_flops"])),
        ("block RAMs", _used(s["block_rams"])),
        ("SPRAMs", _used(s["sprams"])),
        ("DSPs", _used(s["dsps"])),
        (
            "Fmax",
            "-"
            if s["fmax_mhz"] is None
            else f"{s['fmax_mhz']:.1f} MHz (clock {s['clock_mhz']:.1f} MHz)",
        ),
        ("cycles per inference", _cycles(s)),
        (
            "inferences per second",
            "-" if s["inferences_per_second"] is None else f"{s['inferences_per_second']:,.0f}",
        ),
    ]
    b = s.get("board_run")
    if b:
        rows.append(
            (
                "simulated board over UART",
                f"{b['agree']}/{b['n']} answers equal the golden model, "
                f"{b['uart_inferences_per_second'] or 0:,.0f} inferences/s at "
                f"{b['baud'] or 0:,.0f} baud",
            )
        )
    v = s.get("versus_dense_ann")
    if v:
        rows += [
            (
                "per inference, LUT vs dense ANN",
                f"{v['lut_bits_read']:,} vs {v['ann_bits_read']:,} memory bits read; "
                f"{v['lut_additions']:,} additions + {v['lut_comparisons']:,} comparisons vs "
                f"{v['ann_macs']:,} multiply-accumulates; 0 multiplications",
            ),
        ]
    mac = s.get("mac_baseline")
    if mac is None:
        rows.append(("MAC baseline core", "not built (dense-ANN operation counts above)"))
    else:
        rows.append(
            (
                "MAC baseline core (MLP 64-32-10)",
                f"{_pct(mac.get('test_accuracy'))} as 8-bit integers; {mac['macs']} multipliers, "
                f"{mac['cycles_per_inference']:,} cycles, {mac['weight_bits_read']:,} weight bits "
                f"read and {mac['multiplications']:,} multiplications per inference",
            )
        )
    lines = [output.table(rows, ("figure", "value")), "", "files:"]
    for stage, files in s["files"].items():
        for f in files:
            lines.append(f"  {stage:<9} {f}")
    times = ", ".join(f"{k} {v:.0f} s" for k, v in s["stage_seconds"].items())
    lines.append(f"time: {s['total_seconds']:.0f} s ({times})")
    return "\n".join(lines)
