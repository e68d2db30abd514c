"""``spikelut train lm``: a byte-level language model (LUT transformer or spiking RNN).

Trains with the C reference's protocol (:mod:`spikelut.compiler.train.lm`): random windows,
plain SGD, held-out validation windows; checkpoints, ``--resume``, a validation CSV and
samples at every validation. The final figures go to stdout (``--json``: one JSON object).
``--preset NAME`` starts a spiking RNN from a shape measured on a device
(:mod:`spikelut.compiler.train.presets`); explicit shape options override its values.
"""

from __future__ import annotations

import argparse

from spikelut.cli.common import (
    check_outputs,
    load_language_model,
    non_negative_int,
    positive_int,
    same_path,
    seed_int,
)
from spikelut.cli.output import add_json_flag, emit
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.text import load_text
from spikelut.compiler.ir.modelfile import save_model
from spikelut.compiler.train.lm import ARCHS, MODES, LMTrainConfig, new_model, train_lm
from spikelut.compiler.train.presets import LM_PRESETS, TRANSFORMER_PRESETS, lm_preset

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
    p.add_argument(
        "--arch", choices=ARCHS, default=None, help="default transformer (rnn with --preset)"
    )
    p.add_argument("-o", "--output", default=None, help="model file to write (NAME.lutnet)")
    p.add_argument(
        "--steps", type=positive_int, default=10_000, help="last training step (default 10000)"
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default="faithful",
        help="faithful: the reference's step, one thread, reproducible bit for bit; fast: one "
        "worker per core training at once on shared tables (not bit-reproducible)",
    )
    p.add_argument("--seed", type=seed_int, default=1)
    p.add_argument("--resume", default=None, metavar="CKPT", help="continue from a checkpoint")
    p.add_argument(
        "--checkpoint", default=None, metavar="FILE", help="checkpoint file (default: OUTPUT.ckpt)"
    )
    p.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=0,
        help="steps between checkpoints (default: --val-every)",
    )
    p.add_argument("--val-every", type=positive_int, default=10_000)
    p.add_argument("--val-windows", type=positive_int, default=10_000)
    p.add_argument("--log-every", type=positive_int, default=1000)
    p.add_argument("--csv", default=None, help="validation curve CSV (step,val_loss)")
    p.add_argument(
        "--sample-bytes", type=non_negative_int, default=80, help="bytes sampled at each validation"
    )
    g = p.add_argument_group(
        "shape (new models only; defaults are the reference's, or the --preset's)"
    )
    g.add_argument(
        "--preset",
        choices=tuple(dict.fromkeys([*LM_PRESETS, *TRANSFORMER_PRESETS])),
        default=None,
        help="start from a shape measured on a device: a spiking RNN's ("
        + "; ".join(f"{name}: {_describe_preset(name, 'rnn')}" for name in LM_PRESETS)
        + "), or with --arch transformer a transformer's ("
        + "; ".join(
            f"{name}: {_describe_preset(name, 'transformer')}" for name in TRANSFORMER_PRESETS
        )
        + "); without --arch, an RNN's; an explicit shape option below overrides its value "
        "(quantise it with --bits at the preset's table width)",
    )
    g.add_argument("--context", type=positive_int, default=None, help="default 32")
    g.add_argument(
        "--dim",
        type=positive_int,
        default=None,
        help="embedding (transformer 32) or hidden size (rnn 48)",
    )
    g.add_argument("--layers", type=positive_int, default=None, help="transformer (default 6)")
    g.add_argument("--heads", type=positive_int, default=None, help="transformer (default 4)")
    g.add_argument("--n-tables", type=positive_int, default=None, help="default 16")
    g.add_argument("--n-c", type=positive_int, default=None, help="default 6")
    g.add_argument("--n-pe", type=positive_int, default=None, help="transformer (default 4)")
    g.add_argument(
        "--unembed-tables",
        type=positive_int,
        default=None,
        help="rnn: tables of the unembedder (default --n-tables)",
    )
    g.add_argument(
        "--unembed-n-c",
        type=positive_int,
        default=None,
        help="rnn: comparisons per unembedder table (default --n-c)",
    )
    add_json_flag(p)
    p.set_defaults(func=run_lm)


def _describe_preset(name: str, arch: str) -> str:
    p = lm_preset(name, arch)
    if arch == "transformer":
        return (
            f"context {p.context}, dim {p.dim}, {p.layers} layer(s) of {p.heads} heads, "
            f"{p.n_tables} tables of N_C {p.n_c}, N_PE {p.n_pe}, {p.table_bits}-bit tables"
        )
    return (
        f"dim {p.dim}, cell {p.n_tables} tables of N_C {p.n_c}, unembedder "
        f"{p.unembed_tables} of N_C {p.unembed_n_c}, {p.table_bits}-bit tables"
    )


def _arch(args: argparse.Namespace) -> str:
    """The architecture: ``--arch``, else rnn with a preset, else transformer; a preset
    of another architecture is a UserError."""
    arch = args.arch or ("rnn" if args.preset else "transformer")
    if args.preset:
        lm_preset(args.preset, arch)
    return arch


def _shape_args(args: argparse.Namespace) -> dict:
    """The new model's shape: the reference's defaults, or the preset's values, each
    overridden by an explicit option."""
    if args.arch == "transformer":
        base = {"context": 32, "dim": 32, "n_layers": 6, "n_heads": 4, "n_tables": 16,
                "n_c": 6, "n_pe": 4}  # fmt: skip
        if args.preset:
            base = lm_preset(args.preset, "transformer").shape()
        option = {"n_layers": "layers", "n_heads": "heads"}
        given = {k: getattr(args, option.get(k, k)) for k in base}
        return base | {k: v for k, v in given.items() if v is not None}
    base = {"dim": 48, "n_tables": 16, "n_c": 6, "unembed_tables": None, "unembed_n_c": None}
    if args.preset:
        base = lm_preset(args.preset).shape()
    given = {k: getattr(args, k) for k in base if getattr(args, k) is not None}
    return {"context": args.context or 32, **base, **given}


def run_lm(args: argparse.Namespace) -> int:
    """``spikelut train lm``."""
    checkpoint = args.checkpoint
    if checkpoint is None and args.output:
        checkpoint = f"{args.output}.ckpt"
    # the checkpoint is rewritten in place by design: resuming from it continues the run
    resumed_checkpoint = args.resume is not None and same_path(args.resume, checkpoint)
    check_outputs(
        [args.text, args.resume],
        {"-o": args.output, "--csv": args.csv}
        | ({} if resumed_checkpoint else {"--checkpoint": checkpoint}),
    )
    args.arch = _arch(args)
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
        try:
            model = new_model(args.arch, args.seed, **_shape_args(args))
        except ValueError as e:  # numpy's, for sizes no array can have
            raise UserError(
                f"cannot make a model of this shape ({e}); choose smaller sizes"
            ) from None
    result = train_lm(model, data, cfg, state=state, checkpoint=checkpoint, csv=args.csv)
    model.meta["provenance"] = {"text": args.text, "tool": "spikelut train lm"}
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
