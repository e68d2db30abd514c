"""The ``spikelut`` command line: one entry point, one module per subcommand.

Each subcommand lives in ``spikelut.cli.NAME`` and defines ``add_parser(subparsers)``, which
adds its parser and sets ``func=run`` with ``run(args) -> int``. Bad input raises :class:`UserError`, printed as one line with exit
status 2. Commands that report figures take ``--json`` and print one JSON object
(see :func:`spikelut.cli.output.emit`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from spikelut.cli import (
    build,
    convert,
    demo,
    doctor,
    flash,
    quantize,
    report,
    run,
    sample,
    sim,
    train,
)
from spikelut.cli import compile as compile_command
from spikelut.cli import eval as eval_command
from spikelut.compiler.errors import UserError

# Subcommands in the order ``spikelut --help`` lists them.
COMMANDS = [
    doctor,
    demo,
    train,
    eval_command,
    convert,
    quantize,
    compile_command,
    sim,
    build,
    run,
    flash,
    report,
    sample,
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="spikelut",
        description="Look-up-table spiking networks to verified FPGA bitstreams.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 a check failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # cocotb's runners log every tool command line at INFO; keep them for -v. A filter,
        # not a level: the runner resets its logger's level to INFO.
        for name in ("Verilator", "Icarus"):
            log = logging.getLogger(name)
            if _warnings_only not in log.filters:
                log.addFilter(_warnings_only)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"spikelut {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spikelut {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
