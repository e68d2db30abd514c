"""Training byte language models (LUT transformer, spiking RNN) with the reference's protocol.

Protocol (the C reference ``izhikevich/SNN``, ``main.c``):

- the text is bytes; a window starting at ``s`` is ``data[s : s + C + 1]`` (C inputs, each
  predicting the next byte); starts range over ``0 .. len(data) - C - 2``.
- validation: ``val_windows`` (10,000) starts drawn uniformly before training; every start
  within ``C`` of one of them is reserved and never used for training. The validation loss
  is the mean ``-ln p`` of the byte after the window's last position, accumulated in
  float32 in window order as the reference does.
- training: step ``t = 1, 2, ...`` draws a random non-reserved start (rejection sampling)
  and does one plain SGD step with ``lr(t) = min(1/sqrt(1+t), t/4000/sqrt(4000))``
  (float32). The reference's step 0 has ``lr = 0`` and changes nothing, so it is skipped.
- validation at ``t = 0`` and at every multiple of ``val_every`` (and at the last step).

Modes: ``faithful`` runs the reference's kernels single-threaded; ``fast`` trains with one
worker per core at once, asynchronously on shared tables (:mod:`spikelut.compiler.lm_engine`
states the semantics); both draw the same windows and rates, step ``t`` of a chunk going to
worker ``t % workers``.

Randomness: ``SeedSequence(seed)`` is split into independent streams for the validation
starts, the model's initialisation and the training starts (samples printed at a
validation use a generator seeded by ``(seed, step)``), so a run is
reproducible from ``--seed`` and a resumed run equals an uninterrupted one: the checkpoint
holds the model, the step and the training stream's state.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import logging
import math
import os
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import modelfile
from .errors import UserError
from .fileio import atomic_path, write_text_atomic
from .ir import IRError
from .report_out import add_json_flag, emit
from .seqmodels import SpikingRNN, TransformerLM, describe

log = logging.getLogger(__name__)

MODES = ("faithful", "fast")
ARCHS = ("transformer", "rnn")


# ---------------------------------------------------------------------------------------
# data


def load_text(path: str | os.PathLike) -> np.ndarray:
    """The bytes of a text file (gzip-compressed when it ends in ``.gz``) as uint8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise UserError(f"{path}: no such text file") from None
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path}: cannot read the text ({e})") from None
    return np.frombuffer(bytearray(raw), np.uint8)


def text_fingerprint(data: np.ndarray) -> dict:
    """Length and SHA-256 of the text (recorded in models and checked on resume)."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data.tobytes()).hexdigest()}


@dataclass
class Split:
    """Validation starts and the reserved-start mask (the reference's protocol)."""

    context: int
    n_starts: int
    val_starts: np.ndarray
    reserved: np.ndarray

    def draw_train_start(self, rng: np.random.Generator) -> int:
        """A uniform random start that is not reserved (rejection sampling)."""
        while True:
            s = int(rng.integers(0, self.n_starts))
            if not self.reserved[s]:
                return s


def make_split(data: np.ndarray, context: int, val_windows: int, rng: np.random.Generator) -> Split:
    """Draw ``val_windows`` validation starts and reserve every start within ``context``."""
    n_starts = len(data) - context - 1
    if n_starts < 4 * (2 * context + 1):
        raise UserError(
            f"the text has {len(data)} bytes, too short for context {context}; use a longer text"
        )
    val = rng.integers(0, n_starts, size=val_windows)
    reserved = np.zeros(n_starts, bool)
    for d in range(-context, context + 1):
        idx = np.clip(val + d, 0, None)
        reserved[idx[idx < n_starts]] = True
    if reserved.mean() > 0.9:
        raise UserError(
            f"{val_windows} validation windows reserve {reserved.mean():.0%} of the text; "
            "use fewer --val-windows or a longer text"
        )
    return Split(context, n_starts, val.astype(np.int64), reserved)


def learning_rate(t: int) -> np.float32:
    """The reference's schedule ``min(1/sqrt(1+t), t/4000/sqrt(4000))``, as float32."""
    warm = float(np.float32(t) / np.float32(4000.0)) / math.sqrt(4000.0)
    return np.float32(min(1.0 / math.sqrt(1.0 + t), warm))


# ---------------------------------------------------------------------------------------
# sampling


def sample_text(
    model: Any,
    prompt: bytes,
    n_bytes: int,
    *,
    temperature: float = 0.4,
    rng: np.random.Generator | None = None,
    engine: Any = None,
) -> bytes:
    """Continue ``prompt`` by ``n_bytes`` bytes sampled at ``temperature`` (reference: 0.4).

    The transformer sees the last C bytes (left-padded with spaces); the RNN runs over the
    whole history. ``temperature <= 0`` takes the argmax.
    """
    from .lm_engine import make_engine  # numba: imported only when needed

    rng = rng if rng is not None else np.random.default_rng()
    engine = engine if engine is not None else make_engine(model)
    history = bytearray(prompt)
    out = bytearray()
    for _ in range(n_bytes):
        logits = engine.next_logits(np.frombuffer(bytes(history), np.uint8)).astype(np.float64)
        if temperature <= 0:
            b = int(np.argmax(logits))
        else:
            p = np.exp((logits - logits.max()) / temperature)
            b = int(rng.choice(len(p), p=p / p.sum()))
        history.append(b)
        out.append(b)
    return bytes(out)


# ---------------------------------------------------------------------------------------
# model files (streamed: the default transformer's tables are 3.2 GB)


class _HashingWriter(io.RawIOBase):
    def __init__(self, fh):
        self.fh = fh
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.sha.update(b)
        return self.fh.write(b)


def save_seqmodel(model: Any, path: str | os.PathLike) -> None:
    """Write ``model`` as a ``.lutnet`` file, streaming each array (no in-memory copy).

    The file is the one :func:`spikelut.compiler.modelfile.load_model` reads; the write is
    atomic.
    """
    header, arrays = model.to_arrays()
    index = {}
    with (
        atomic_path(path) as tmp,
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf,
    ):
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            with zf.open(f"arrays/{name}.npy", "w", force_zip64=True) as fh:
                w = _HashingWriter(fh)
                np.lib.format.write_array(w, arr, allow_pickle=False)
            index[name] = {
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "sha256": w.sha.hexdigest(),
            }
        top = {
            "format": modelfile.FORMAT,
            "schema": modelfile.SCHEMA,
            "arch": model.ARCH,
            "spikelut_version": modelfile._version(),
            "model": header,
            "arrays": index,
        }
        zf.writestr("header.json", json.dumps(top, indent=1, sort_keys=True))


def load_seqmodel(path: str | os.PathLike) -> Any:
    """Load a transformer or RNN model file; one-line :class:`UserError` otherwise."""
    try:
        model = modelfile.load_model(path)
    except modelfile.ModelFileError as e:
        raise UserError(str(e)) from None
    if not isinstance(model, (TransformerLM, SpikingRNN)):
        raise UserError(f"{path}: a {model.ARCH} model, not a language model (transformer or rnn)")
    return model


# ---------------------------------------------------------------------------------------
# training


@dataclass
class LMTrainConfig:
    """What :func:`train_lm` does; ``steps`` is the last step number (``t = 1..steps``)."""

    steps: int = 10_000
    mode: str = "faithful"
    seed: int = 1
    val_every: int = 10_000
    val_windows: int = 10_000
    log_every: int = 1000
    checkpoint_every: int = 0  # 0: at every validation
    sample_bytes: int = 80

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"--mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        for name in ("steps", "val_every", "val_windows", "log_every"):
            if int(getattr(self, name)) < 1:
                raise UserError(
                    f"--{name.replace('_', '-')} must be >= 1, not {getattr(self, name)!r}"
                )
        if self.checkpoint_every < 0 or self.seed < 0:
            raise UserError("--checkpoint-every and --seed must be >= 0")


@dataclass
class LMTrainResult:
    """Figures of a run: validation curve, speed, the final step."""

    val: list[tuple[int, float]] = field(default_factory=list)
    val_train_seconds: list[float] = field(default_factory=list)  # training time at each
    train_seconds: float = 0.0
    val_seconds: float = 0.0
    steps_run: int = 0
    last_step: int = 0
    samples: list[str] = field(default_factory=list)

    @property
    def steps_per_s(self) -> float:
        """Training steps per second of training time (validation excluded)."""
        return self.steps_run / self.train_seconds if self.train_seconds else float("nan")


def _streams(seed: int) -> list[np.random.Generator]:
    """Generators for: validation starts, initialisation, training starts, sampling."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]


def new_model(arch: str, seed: int, **shape: Any) -> Any:
    """A fresh model of ``arch`` initialised from the seed's initialisation stream."""
    rng = _streams(seed)[1]
    try:
        if arch == "transformer":
            return TransformerLM.create(rng=rng, **shape)
        if arch == "rnn":
            return SpikingRNN.create(rng=rng, **shape)
    except IRError as e:
        raise UserError(str(e)) from None
    raise UserError(f"--arch must be one of {', '.join(ARCHS)}, not {arch!r}")


def _is_fresh(model: Any) -> bool:
    tables = (
        [model.attn_tables, model.ffn_tables, model.unemb_tables]
        if isinstance(model, TransformerLM)
        else [model.cell.tables, model.unembedder.tables]
    )
    return not any(t.any() for t in tables)


def _uniform_val_loss(vocab: int, n: int) -> float:
    # an all-zero model predicts uniformly; the reference accumulates ln V in float32
    v = -math.log(float(np.float32(1.0) / np.float32(vocab)))
    total = np.float32(0.0)
    for _ in range(n):
        total = np.float32(float(total) + v)
    return float(total / np.float32(n))


def train_lm(
    model: Any,
    data: np.ndarray,
    config: LMTrainConfig,
    *,
    state: dict | None = None,
    checkpoint: str | os.PathLike | None = None,
    csv: str | os.PathLike | None = None,
) -> LMTrainResult:
    """Train ``model`` in place on ``data`` (uint8) as ``config`` says.

    ``state`` is the ``meta["training"]`` of a checkpoint to resume from (the model must be
    the checkpoint's). ``checkpoint``: path written at every checkpoint; ``csv``: the
    validation curve (``step,val_loss``), rewritten atomically after each validation.
    """
    cfg = config
    context = model.context
    s_val, _, s_train, _ = _streams(cfg.seed)
    split = make_split(data, context, cfg.val_windows, s_val)
    result = LMTrainResult()
    t = 0
    if state is not None:
        if state["seed"] != cfg.seed or state["text"] != text_fingerprint(data):
            raise UserError(
                "the checkpoint was made with another --seed or text; resume with those"
            )
        if state["val_windows"] != cfg.val_windows:
            raise UserError(f"the checkpoint used --val-windows {state['val_windows']}")
        t = int(state["step"])
        s_train.bit_generator.state = state["rng"]
        result.val = [tuple(v) for v in state["val"]]
    from .lm_engine import make_engine  # numba: imported only when needed

    engine = make_engine(model, fast=cfg.mode == "fast")
    ckpt_every = cfg.checkpoint_every or cfg.val_every
    fingerprint = text_fingerprint(data)
    log.info(
        "%s; %s mode, seed %d, %d training windows",
        describe(model),
        cfg.mode,
        cfg.seed,
        int((~split.reserved).sum()),
    )

    def validate(step: int) -> None:
        t0 = time.perf_counter()
        if step == 0 and _is_fresh(model):
            loss = _uniform_val_loss(model.vocab, cfg.val_windows)
        else:
            loss = engine.validate(data, split.val_starts)
        result.val_seconds += time.perf_counter() - t0
        result.val.append((step, loss))
        result.val_train_seconds.append(result.train_seconds)
        text = ""
        if cfg.sample_bytes:
            s = int(split.val_starts[0])
            prompt = data[s : s + context].tobytes()
            rng = np.random.default_rng([cfg.seed, step])
            text = sample_text(model, prompt, cfg.sample_bytes, rng=rng, engine=engine).decode(
                "utf-8", "replace"
            )
            result.samples.append(text)
        log.info(
            "t=%d validation loss %.4f (%.1f s) sample: %r",
            step,
            loss,
            time.perf_counter() - t0,
            text,
        )
        if csv is not None:
            rows = "".join(f"{st},{ls:.6f}\n" for st, ls in result.val)
            write_text_atomic(csv, "step,val_loss\n" + rows)

    def save_checkpoint(step: int) -> None:
        model.meta["training"] = {
            "step": step,
            "seed": cfg.seed,
            "mode": cfg.mode,
            "val_windows": cfg.val_windows,
            "text": fingerprint,
            "rng": s_train.bit_generator.state,
            "val": [list(v) for v in result.val],
        }
        save_seqmodel(model, checkpoint)
        log.info("t=%d checkpoint written to %s", step, checkpoint)

    if t == 0:
        validate(0)
    chunk_loss = 0.0
    chunk_steps = 0
    chunk_t0 = time.perf_counter()
    while t < cfg.steps:
        # run up to the next log/validation/checkpoint boundary in one compiled call
        nxt = min(
            cfg.steps,
            (t // cfg.log_every + 1) * cfg.log_every,
            (t // cfg.val_every + 1) * cfg.val_every,
            (t // ckpt_every + 1) * ckpt_every if checkpoint else cfg.steps,
            t + 100,
        )
        starts = [split.draw_train_start(s_train) for _ in range(t + 1, nxt + 1)]
        lrs = [learning_rate(k) for k in range(t + 1, nxt + 1)]
        t0 = time.perf_counter()
        chunk_loss += engine.train(data, np.array(starts, np.int64), np.array(lrs, np.float32))
        result.train_seconds += time.perf_counter() - t0
        result.steps_run += nxt - t
        chunk_steps += nxt - t
        t = nxt
        if t % cfg.log_every == 0 or t == cfg.steps:
            dt = time.perf_counter() - chunk_t0
            log.info(
                "t=%d train loss %.4f, %.2f steps/s",
                t,
                chunk_loss / max(chunk_steps, 1),
                chunk_steps / dt if dt else float("nan"),
            )
            chunk_loss, chunk_steps, chunk_t0 = 0.0, 0, time.perf_counter()
        if t % cfg.val_every == 0 or t == cfg.steps:
            validate(t)
        if checkpoint and (t % ckpt_every == 0 or t == cfg.steps):
            save_checkpoint(t)
    result.last_step = t
    model.meta["training"] = {
        "step": t,
        "seed": cfg.seed,
        "mode": cfg.mode,
        "val_windows": cfg.val_windows,
        "text": fingerprint,
        "rng": s_train.bit_generator.state,
        "val": [list(v) for v in result.val],
    }
    return result


# ---------------------------------------------------------------------------------------
# CLI: ``spikelut train lm``


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
        model = load_seqmodel(args.resume)
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
        save_seqmodel(model, args.output)
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
