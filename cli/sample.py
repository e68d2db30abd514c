"""``spikelut sample``: continue a prompt with a trained byte language model.

In software by default (the float model); with ``--port`` (a serial device,
``tcp:HOST:PORT`` or ``sim``) an integer spiking RNN or transformer generates on a board
instead, through the runtime of ``spikelut run`` (:func:`spikelut.cli.run.generate_lm`):
every byte checked against the golden model, the figures on stderr; exit 1 when a byte
differs.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from spikelut.boards.build import DEFAULT_BAUD
from spikelut.boards.host import LinkTimeout
from spikelut.boards.lm_runtime import DEFAULT_CHUNK
from spikelut.boards.platforms import board
from spikelut.boards.runtime import BoardMismatch
from spikelut.cli import output
from spikelut.cli.common import (
    finite_float,
    load_language_model,
    non_negative_int,
    positive_float,
    positive_int,
    seed_int,
    utf8_text,
)
from spikelut.cli.run import generate_lm, lm_summary
from spikelut.compiler.errors import UserError
from spikelut.compiler.ir.integer_sequence import INTEGER_LANGUAGE_MODELS
from spikelut.compiler.train.lm import sample_text
from spikelut.hdl.hostlink.wire import ProtocolError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelut sample``."""
    p = sub.add_parser(
        "sample",
        help="sample text from a trained language model",
        description="Continue PROMPT by N bytes sampled from a transformer or RNN model file "
        "(temperature 0.4 as the reference; 0 takes the most likely byte).",
    )
    p.add_argument("model", help="model file (.lutnet) of a transformer or rnn")
    p.add_argument("--prompt", default="", type=utf8_text, help="text to continue (UTF-8)")
    p.add_argument(
        "--bytes", type=non_negative_int, default=200, dest="n_bytes", help="bytes to generate"
    )
    p.add_argument("--temperature", type=finite_float, default=0.4)
    p.add_argument(
        "--seed", type=seed_int, default=None, help="sampling seed (default: random; 1 on a board)"
    )
    b = p.add_argument_group("on a board (an integer spiking RNN or transformer)")
    b.add_argument("--port", help="generate on a board: serial device, tcp:HOST:PORT, or sim")
    b.add_argument("--baud", type=positive_int, default=DEFAULT_BAUD, help="serial baud rate")
    b.add_argument("--board", default="icebreaker", help="the design --port sim simulates")
    b.add_argument(
        "--tables",
        choices=["flash", "link"],
        default="flash",
        help="--port sim: SPRAM tables from the flash model at boot, or loaded over the link",
    )
    b.add_argument("--load-tables", metavar="BUILD_DIR", help="the build of the board's bitstream")
    b.add_argument(
        "--chunk", type=positive_int, default=DEFAULT_CHUNK, help="tokens a request asks for"
    )
    b.add_argument("--timeout", type=positive_float, default=2.0, help="reply timeout in seconds")
    output.add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the prompt and its continuation."""
    if args.n_bytes < 0:
        raise UserError(f"--bytes must be >= 0, not {args.n_bytes!r}")
    if not np.isfinite(args.temperature):
        raise UserError(f"--temperature must be finite, not {args.temperature!r}")
    board(args.board).require_host_link()  # an unknown board is an error with or without --port
    model = load_language_model(args.model)
    if args.port is not None:
        return _on_board(model, args)
    if isinstance(model, INTEGER_LANGUAGE_MODELS):
        raise UserError(
            f"{args.model} is a quantised ({model.ARCH}) model; sample from the float model "
            "it was quantised from"
        )
    prompt = args.prompt.encode("utf-8")
    rng = np.random.default_rng(args.seed)
    text = sample_text(model, prompt, args.n_bytes, temperature=args.temperature, rng=rng)
    sys.stdout.buffer.write(prompt + text + b"\n")
    sys.stdout.flush()
    return 0


def _on_board(model, args: argparse.Namespace) -> int:
    """``--port``: generate on the board and check; the text on stdout, the figures on
    stderr (or everything as JSON)."""
    if not isinstance(model, INTEGER_LANGUAGE_MODELS):
        raise UserError(
            f"{args.model}: a board runs an integer language model; quantize the model first"
        )
    quiet = getattr(args, "json", False)

    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr)

    try:
        r = generate_lm(model, args, say)
    except BoardMismatch as e:
        print(f"spikelut sample: {e}", file=sys.stderr)
        return 1
    except (LinkTimeout, ProtocolError) as e:
        print(f"spikelut sample: the board did not answer correctly: {e}", file=sys.stderr)
        return 1
    if quiet:
        output.emit(args, r, str)
    else:
        text = args.prompt.encode("utf-8") + r["generated"].encode("latin-1")
        sys.stdout.buffer.write(text + b"\n")
        sys.stdout.flush()
        say(lm_summary(r))
    return 0 if r["agree"] == r["n"] else 1
