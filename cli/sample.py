"""``spikelut sample``: continue a prompt with a trained byte language model."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from spikelut.cli.common import load_language_model
from spikelut.compiler.errors import UserError
from spikelut.compiler.train.lm import sample_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelut sample``."""
    p = sub.add_parser(
        "sample",
        help="sample text from a trained language model",
        description="Continue PROMPT by N bytes sampled from a transformer or RNN model file "
        "(temperature 0.4 as the reference; 0 takes the most likely byte).",
    )
    p.add_argument("model", help="model file (.lutnet) of a transformer or rnn")
    p.add_argument("--prompt", default="", help="text to continue (UTF-8)")
    p.add_argument("--bytes", type=int, default=200, dest="n_bytes", help="bytes to generate")
    p.add_argument("--temperature", type=float, default=0.4)
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the prompt and its continuation."""
    if args.n_bytes < 0:
        raise UserError(f"--bytes must be >= 0, not {args.n_bytes!r}")
    if not np.isfinite(args.temperature):
        raise UserError(f"--temperature must be finite, not {args.temperature!r}")
    model = load_language_model(args.model)
    prompt = args.prompt.encode("utf-8")
    rng = np.random.default_rng(args.seed)
    text = sample_text(model, prompt, args.n_bytes, temperature=args.temperature, rng=rng)
    sys.stdout.buffer.write(prompt + text + b"\n")
    sys.stdout.flush()
    return 0
