"""``spikelut train lm``: a byte-level language model (LUT transformer or spiking RNN).

Trains with the C reference's protocol (:mod:`spikelut.compiler.train.lm`): random windows,
plain SGD, held-out validation windows; checkpoints, ``--resume``, a validation CSV and
samples at every validation. The final figures go to stdout (``--json``: one JSON object).
"""

from __future__ import annotations

import argparse
import os

from spikelut.cli.common import load_language_model
from spikelut.cli.output import add_json_flag, emit
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.text import load_text
from spikelut.compiler.ir.modelfile import save_model
from spikelut.compiler.train.lm import ARCHS, MODES, LMTrainConfig, new_model, train_lm

__all__ = ["add_lm_parser", "run_lm"]


def add_lm_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``lm`` to the ``train`` command's subparsers."""
    p = sub.add_parser(
        "lm",
        help="train a byte language model (LUT transformer or spiking RNN)",
        description="Train a byte-level LUT language model with the reference's protocol "
        "(random windows, plain SGD, held-out validation windows).",
    )
    p.add_argument("--text", required=True, help="training text (a .gz file is decompressed)")
    p.add_argument("--arch", choices=ARCHS, default="transformer")
    p.add_argument("-o", "--output", default=None, help="model file to write (NAME.lutnet)")
    p.add_argument("--steps", type=int, default=10_000, help="last training step (default 10000)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="faithful",
        help="faithful: the reference's step, one thread, reproducible bit for bit; fast: one "
        "worker per core training at once on shared tables (not bit-reproducible)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--resume", default=None, metavar="CKPT", help="continue from a checkpoint")
    p.add_argument(
        "--checkpoint", default=None, metavar="FILE", help="checkpoint file (default: OUTPUT.ckpt)"
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        help="steps between checkpoints (default: --val-every)",
    )
    p.add_argument("--val-every", type=int, default=10_000)
    p.add_argument("--val-windows", type=int, default=10_000)
    p.add_argument("--log-every", type=int, default=1000)
    p.add_argument("--csv", default=None, help="validation curve CSV (step,val_loss)")
    p.add_argument("--sample-bytes", type=int, default=80, help="bytes sampled at each validation")
    g = p.add_argument_group("shape (new models only; defaults are the reference's)")
    g.add_argument("--context", type=int, default=32)
    g.add_argument(
        "--dim", type=int, default=None, help="embedding (transformer 32) or hidden size (rnn 48)"
    )
    g.add_argument("--layers", type=int, default=6)
    g.add_argument("--heads", type=int, default=4)
    g.add_argument("--n-tables", type=int, default=16)
    g.add_argument("--n-c", type=int, default=6)
    g.add_argument("--n-pe", type=int, default=4)
    add_json_flag(p)
    p.set_defaults(func=run_lm)


def _shape_args(args: argparse.Namespace) -> dict:
    if args.arch == "transformer":
        return {
            "context": args.context,
            "dim": args.dim or 32,
            "n_layers": args.layers,
            "n_heads": args.heads,
            "n_tables": args.n_tables,
            "n_c": args.n_c,
            "n_pe": args.n_pe,
        }
    return {
        "context": args.context,
        "dim": args.dim or 48,
        "n_tables": args.n_tables,
        "n_c": args.n_c,
    }


def run_lm(args: argparse.Namespace) -> int:
    """``spikelut train lm``."""
    data = load_text(args.text)
    cfg = LMTrainConfig(
        steps=args.steps,
        mode=args.mode,
        seed=args.seed,
        val_every=args.val_every,
        val_windows=args.val_windows,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        sample_bytes=args.sample_bytes,
    )
    state = None
    if args.resume:
        model = load_language_model(args.resume)
        if args.arch != model.ARCH:
            raise UserError(f"{args.resume} holds a {model.ARCH} model, not --arch {args.arch}")
        state = model.meta.get("training")
        if not state:
            raise UserError(f"{args.resume} is a model without training state; not a checkpoint")
    else:
        model = new_model(args.arch, args.seed, **_shape_args(args))
    checkpoint = args.checkpoint or (f"{args.output}.ckpt" if args.output else None)
    result = train_lm(model, data, cfg, state=state, checkpoint=checkpoint, csv=args.csv)
    model.meta["provenance"] = {"text": os.path.basename(args.text), "tool": "spikelut train lm"}
    if args.output:
        save_model(model, args.output)
    out = {
        "arch": args.arch,
        "mode": args.mode,
        "seed": args.seed,
        "last_step": result.last_step,
        "steps_run": result.steps_run,
        "train_seconds": round(result.train_seconds, 3),
        "steps_per_s": round(result.steps_per_s, 3),
        "val": [{"step": s, "loss": round(v, 6)} for s, v in result.val],
        "output": args.output,
    }
    emit(args, out, _human)
    return 0


def _human(r: dict) -> str:
    lines = [
        f"{r['arch']} ({r['mode']}, seed {r['seed']}): step {r['last_step']}, "
        f"{r['steps_per_s']} steps/s"
    ]
    lines += [f"  step {v['step']:>8}: validation loss {v['loss']:.4f}" for v in r["val"]]
    if r["output"]:
        lines.append(f"model written to {r['output']}")
    return "\n".join(lines)
