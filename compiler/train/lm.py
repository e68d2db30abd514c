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
worker per core at once, asynchronously on shared tables (:mod:`spikelut.compiler.train.lm_engine`
states the semantics); both draw the same windows and rates, step ``t`` of a chunk going to
worker ``t % workers``.

Randomness: ``SeedSequence(seed)`` is split into independent streams for the validation
starts, the model's initialisation and the training starts (samples printed at a
validation use a generator seeded by ``(seed, step)``), so a run is
reproducible from ``--seed`` and a resumed run equals an uninterrupted one: the checkpoint
holds the model, the step and the training stream's state.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikelut.compiler.errors import UserError
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.frontend.text import make_split, rng_streams, text_fingerprint
from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.ir.modelfile import save_model
from spikelut.compiler.ir.sequence import SpikingRNN, TransformerLM, describe
from spikelut.compiler.progress import task as progress_task

log = logging.getLogger(__name__)

MODES = ("faithful", "fast")
ARCHS = ("transformer", "rnn")


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
    from spikelut.compiler.train.lm_engine import make_engine

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


def new_model(arch: str, seed: int, **shape: Any) -> Any:
    """A fresh model of ``arch`` initialised from the seed's initialisation stream."""
    rng = rng_streams(seed)[1]
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


class _Run:
    """One training run of :func:`train_lm`: its split, random stream, engine and result,
    and what it does at a validation and at a checkpoint."""

    def __init__(self, model, data, cfg: LMTrainConfig, checkpoint, csv):
        self.model, self.data, self.cfg = model, data, cfg
        self.checkpoint, self.csv = checkpoint, csv
        s_val, _, self.s_train, _ = rng_streams(cfg.seed)
        self.split = make_split(data, model.context, cfg.val_windows, s_val)
        self.fingerprint = text_fingerprint(data)
        self.result = LMTrainResult()
        self.engine = None

    def resume(self, state: dict) -> int:
        """Continue from a checkpoint's training state; the step to continue from."""
        if state["seed"] != self.cfg.seed or state["text"] != self.fingerprint:
            raise UserError(
                "the checkpoint was made with another --seed or text; resume with those"
            )
        if state["val_windows"] != self.cfg.val_windows:
            raise UserError(f"the checkpoint used --val-windows {state['val_windows']}")
        self.s_train.bit_generator.state = state["rng"]
        self.result.val = [tuple(v) for v in state["val"]]
        return int(state["step"])

    def state(self, step: int) -> dict:
        """What a checkpoint records to resume at ``step``."""
        return {
            "step": step,
            "seed": self.cfg.seed,
            "mode": self.cfg.mode,
            "val_windows": self.cfg.val_windows,
            "text": self.fingerprint,
            "rng": self.s_train.bit_generator.state,
            "val": [list(v) for v in self.result.val],
        }

    def validate(self, step: int) -> None:
        """Validation loss (and a sample) at ``step``, logged and kept; the CSV rewritten."""
        cfg, result, model = self.cfg, self.result, self.model
        t0 = time.perf_counter()
        if step == 0 and _is_fresh(model):
            loss = _uniform_val_loss(model.vocab, cfg.val_windows)
        else:
            loss = self.engine.validate(self.data, self.split.val_starts)
        result.val_seconds += time.perf_counter() - t0
        result.val.append((step, loss))
        result.val_train_seconds.append(result.train_seconds)
        text = ""
        if cfg.sample_bytes:
            s = int(self.split.val_starts[0])
            prompt = self.data[s : s + model.context].tobytes()
            rng = np.random.default_rng([cfg.seed, step])
            sample = sample_text(model, prompt, cfg.sample_bytes, rng=rng, engine=self.engine)
            text = sample.decode("utf-8", "replace")
            result.samples.append(text)
        log.info(
            "t=%d validation loss %.4f (%.1f s) sample: %r",
            step, loss, time.perf_counter() - t0, text,
        )  # fmt: skip
        if self.csv is not None:
            rows = "".join(f"{st},{ls:.6f}\n" for st, ls in result.val)
            write_text_atomic(self.csv, "step,val_loss\n" + rows)

    def save_checkpoint(self, step: int) -> None:
        """Write the model with its training state to the checkpoint file."""
        self.model.meta["training"] = self.state(step)
        save_model(self.model, self.checkpoint)
        log.info("t=%d checkpoint written to %s", step, self.checkpoint)

    def next_boundary(self, t: int) -> int:
        """The next step at which to log, validate or checkpoint (at most 100 steps on, so
        one compiled call runs up to it)."""
        cfg = self.cfg
        ckpt_every = cfg.checkpoint_every or cfg.val_every
        return min(
            cfg.steps,
            (t // cfg.log_every + 1) * cfg.log_every,
            (t // cfg.val_every + 1) * cfg.val_every,
            (t // ckpt_every + 1) * ckpt_every if self.checkpoint else cfg.steps,
            t + 100,
        )

    def train_chunk(self, t: int, nxt: int) -> float:
        """Steps ``t + 1 .. nxt``; their summed training loss."""
        starts = [self.split.draw_train_start(self.s_train) for _ in range(t + 1, nxt + 1)]
        lrs = [learning_rate(k) for k in range(t + 1, nxt + 1)]
        t0 = time.perf_counter()
        loss = self.engine.train(self.data, np.array(starts, np.int64), np.array(lrs, np.float32))
        self.result.train_seconds += time.perf_counter() - t0
        self.result.steps_run += nxt - t
        return loss


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
    run = _Run(model, data, cfg, checkpoint, csv)
    t = 0 if state is None else run.resume(state)
    # numba kernels: imported when a model is trained (see tests/test_imports.py)
    from spikelut.compiler.train.lm_engine import make_engine

    run.engine = make_engine(model, fast=cfg.mode == "fast")
    ckpt_every = cfg.checkpoint_every or cfg.val_every
    log.info(
        "%s; %s mode, seed %d, %d training windows",
        describe(model), cfg.mode, cfg.seed, int((~run.split.reserved).sum()),
    )  # fmt: skip
    if t == 0:
        run.validate(0)
    chunk_loss, chunk_steps, chunk_t0 = 0.0, 0, time.perf_counter()
    with progress_task("training", total=cfg.steps, unit="steps") as shown:
        shown.update(completed=t)
        while t < cfg.steps:
            nxt = run.next_boundary(t)
            chunk_loss += run.train_chunk(t, nxt)
            chunk_steps += nxt - t
            t = nxt
            shown.update(completed=t, loss=chunk_loss / max(chunk_steps, 1))
            if t % cfg.log_every == 0 or t == cfg.steps:
                dt = time.perf_counter() - chunk_t0
                rate = chunk_steps / dt if dt else float("nan")
                log.info(
                    "t=%d train loss %.4f, %.2f steps/s", t, chunk_loss / max(chunk_steps, 1), rate
                )
                chunk_loss, chunk_steps, chunk_t0 = 0.0, 0, time.perf_counter()
            if t % cfg.val_every == 0 or t == cfg.steps:
                run.validate(t)
            if checkpoint and (t % ckpt_every == 0 or t == cfg.steps):
                run.save_checkpoint(t)
    run.result.last_step = t
    model.meta["training"] = run.state(t)
    return run.result


# ---------------------------------------------------------------------------------------
# CLI: ``spikelut train lm``
