"""Text for the byte-level language models: reading it, fingerprinting it, splitting it.

The split follows the C reference's protocol: ``val_windows`` validation starts are drawn
uniformly, every start within ``context`` of one of them is reserved, and training draws its
windows from the other starts (rejection sampling). The random streams of a training run
come from one seed (:func:`rng_streams`), so the validation windows of a run can be drawn
again exactly (:func:`training_split`) to compare losses with it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikelut.compiler.errors import UserError

__all__ = [
    "Split",
    "load_text",
    "make_split",
    "rng_streams",
    "text_fingerprint",
    "training_split",
    "windows",
]


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


def rng_streams(seed: int) -> list[np.random.Generator]:
    """Generators of a training run: validation starts, initialisation, training starts,
    sampling."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]


def training_split(model: Any, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(validation starts, training starts)`` of the run that trained ``model`` on ``data``:
    the validation starts redrawn exactly as ``spikelut train lm`` drew them (the seed and
    count recorded in the model's metadata), the training starts every other start."""
    training = (getattr(model, "meta", None) or {}).get("training") or {}
    seed = int(training.get("seed", 1))
    n_val = int(training.get("val_windows", 10_000))
    split = make_split(data, model.context, n_val, rng_streams(seed)[0])
    return split.val_starts, np.flatnonzero(~split.reserved)


def windows(data: np.ndarray, starts: np.ndarray, context: int) -> np.ndarray:
    """Windows ``data[s : s + context + 1]`` as int64, shape (len(starts), context + 1)."""
    return data[np.asarray(starts)[:, None] + np.arange(context + 1)].astype(np.int64)
