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
    export,
    flash,
    quantize,
    report,
    run,
    sample,
    sim,
    sim_board,
    sweep,
    train,
)
from spikelut.cli import compile as compile_command
from spikelut.cli import eval as eval_command
from spikelut.cli.progress_view import terminal_progress
from spikelut.compiler.build.toolchain import ToolFailed
from spikelut.compiler.errors import UserError
from spikelut.sim.cocotb_runner import CocotbFailure

# Subcommands in the order ``spikelut --help`` lists them.
COMMANDS = [
    doctor,
    demo,
    train,
    eval_command,
    convert,
    quantize,
    compile_command,
    export,
    sim,
    build,
    run,
    sim_board,
    flash,
    report,
    sample,
    sweep,
]


class _UsageError(Exception):
    """A command line argparse refused: the message and the (sub)command's ``prog``."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become one line and exit status 2 from :func:`main`
    (argparse's own prints the usage first and exits); subcommands' parsers are this too."""

    def error(self, message: str):
        raise _UsageError(self.prog, message)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = _Parser(
        prog="spikelut",
        description="Look-up-table spiking networks to verified FPGA bitstreams.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _own_records(record: logging.LogRecord) -> bool:
    return record.name == "spikelut" or record.name.startswith("spikelut.")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 a check failed, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        # "spikelut train: error: ..." like the commands' own errors
        command = " ".join(e.prog.split()[:2])
        print(f"{command}: error: {e}; see {e.prog} --help", file=sys.stderr)
        return 2
    handler = _log_handler(args.verbose)
    try:
        if handler is not None and sys.stderr.isatty() and not getattr(args, "json", False):
            with terminal_progress(handler):
                return _dispatch(args)
        return _dispatch(args)
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            logging.captureWarnings(False)


def _log_handler(verbose: bool) -> logging.Handler | None:
    """Log lines to stderr, as bare messages; without ``-v`` only spikelut's own (no tool
    command lines, cocotb or Ray chatter, or Python warnings from the libraries). None when
    logging is set up already (a test harness)."""
    root = logging.getLogger()
    if root.handlers:
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    if not verbose:
        handler.addFilter(_own_records)
        logging.captureWarnings(True)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; every error it can meet becomes one line and an exit status."""
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"spikelut {args.command}: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except (ToolFailed, CocotbFailure) as e:
        # an external tool failed on a design we made: not the user's input (exit 1); the
        # tool's own output is in its log, and with -v on stderr
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(
            f"spikelut {args.command}: {first} (run with -v for the tool's output)",
            file=sys.stderr,
        )
        if args.verbose:
            print(str(e), file=sys.stderr)
        return 1
    except MemoryError:
        # the commands bound what they allocate; this is what an option still asked for
        print(
            f"spikelut {args.command}: error: not enough memory for these options; "
            "choose a smaller network or fewer inputs",
            file=sys.stderr,
        )
        return 2
    except OSError as e:
        # the commands check their files before they start; this is what the environment
        # changed since (a full disk, a removed directory): one line, not a traceback
        print(f"spikelut {args.command}: error: {_one_line(_os_error(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spikelut {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text


def _os_error(e: OSError) -> str:
    if e.strerror and e.filename is not None:
        return f"cannot use {e.filename}: {e.strerror}"
    return str(e) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
