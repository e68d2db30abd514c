"""``spikelut sim-board MODEL``: the simulated board on a pseudo-terminal, a serial port to any host.

Runs the complete design ``spikelut build --board BOARD`` would put in the bitstream (board
top, UART host link, boot loader, core) in Verilator at the board's clock, with the UART
divisor a build uses for ``--baud``, and serves it on a pseudo-terminal: the first line
printed is the device (``/dev/pts/N``), which ``spikelut run MODEL --port /dev/pts/N
--baud BAUD`` (or any program with pyserial) opens like a USB UART. The simulation is slower
than a real board: give ``spikelut run`` a ``--timeout`` of a few seconds or more. The
board serves until ``--sessions`` host sessions (openings of the device) have ended,
``--idle-timeout`` seconds pass with no byte from a host, or it is interrupted (Ctrl-C,
SIGTERM). ``--port-file FILE`` also writes the device's path to FILE when it is ready.
See :mod:`spikelut.sim.pty_board`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from spikelut.boards.platforms import board
from spikelut.cli.common import (
    add_board_core_flag,
    check_outputs,
    load_board_model,
    positive_float,
    positive_int,
)
from spikelut.compiler.errors import UserError
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.sim.pty_board import pty_board


def add_parser(sub: Any) -> None:
    """Register the ``sim-board`` subcommand."""
    p = sub.add_parser(
        "sim-board",
        help="serve the simulated board on a pseudo-terminal (/dev/pts/N) for spikelut run",
        description=__doc__.splitlines()[0],
        epilog="Then, in another shell: spikelut run MODEL --port /dev/pts/N --baud BAUD "
        "--timeout 30 (the simulation is slower than a board). The board serves host sessions "
        "(openings of the device) until --sessions or --idle-timeout, or Ctrl-C/SIGTERM.",
    )
    p.add_argument("model", metavar="MODEL", help="integer (quantised) .lutnet classifier")
    p.add_argument("--board", default="icebreaker", help="the board whose design to simulate")
    p.add_argument(
        "--baud", type=positive_int, default=115200, help="UART baud rate (default 115200)"
    )
    p.add_argument(
        "--tables",
        choices=["flash", "link"],
        default="flash",
        help="SPRAM tables booted from the simulated flash, or none until a host loads them",
    )
    add_board_core_flag(p, "the core simulated (as spikelut build --core)")
    p.add_argument("--sessions", type=positive_int, metavar="N", help="stop after N host sessions")
    p.add_argument(
        "--idle-timeout",
        type=positive_float,
        metavar="S",
        help="stop when no host byte arrives for S seconds",
    )
    p.add_argument(
        "--port-file", metavar="FILE", help="also write the device path to FILE when ready"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until a stop condition; 0 when the simulation ended cleanly."""
    check_outputs([args.model], files={"--port-file": args.port_file})
    model = load_board_model(args.model)
    spec = board(args.board)
    if not isinstance(model, ClassifierMLP):
        raise UserError(
            f"{args.model} is a language model; sim-board serves classifiers (use "
            "spikelut sample --port sim for a language model)"
        )
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with pty_board(
            model,
            spec,
            baud=args.baud,
            tables=args.tables,
            kind=args.indexer,
            progress=lambda msg: print(msg, file=sys.stderr),
        ) as (sim, serve):
            print(sim.path, flush=True)
            print(
                f"sim-board: the {sim.board} design on {sim.path}: {sim.clock_hz / 1e6:g} "
                f"MHz clock, UART divisor {sim.divisor} ({sim.baud:,.0f} baud), tables "
                f"from {sim.tables}; spikelut run MODEL --port {sim.path} "
                f"--baud {args.baud} --timeout 30",
                file=sys.stderr,
                flush=True,
            )
            if args.port_file:
                write_text_atomic(args.port_file, sim.path + "\n")
            why = serve(sessions=args.sessions, idle_timeout=args.idle_timeout, stop=stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"sim-board: served {sim.sessions} host session(s); stopped: {why}", file=sys.stderr)
    return 0
