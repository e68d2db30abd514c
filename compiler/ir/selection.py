"""Next-byte selection from integer logits: the contract of the hardware's selector.

A language model's core ends by choosing the next byte from its ``V`` integer logits
``l``. Two rules, both exact integer arithmetic (so a seeded generation is byte for byte the
same in the golden model, in cocotb and on a board):

- **greedy**: the argmax, ties to the lowest byte.
- **sampled at a temperature**: with ``m = max(l)``, every byte gets the weight
  ``w_i = EXP[min(m - l_i, K - 1)]`` from an exponential table of ``K`` unsigned entries
  (:func:`exp_table`: ``EXP[d] = round((2**bits - 1) * exp(-d * 2**s / T))`` for logits
  that stand for ``l * 2**s``, so ``w_i`` is proportional to the softmax at temperature
  ``T`` until it rounds to 0). With ``S = sum(w)``, a draw ``r`` is taken from the random
  source by rejection: the next 32-bit word of :class:`Xorshift32`, masked to the bit length
  of ``S``, until it is below ``S`` (uniform on ``0..S-1``, with no multiplier or divider).
  The byte is the first ``i`` whose running sum ``w_0 + ... + w_i`` exceeds ``r``.

The random source is Marsaglia's xorshift32 (shifts 13, 17, 5) from a non-zero 32-bit seed;
its state carries on from one choice to the next and only sampled choices advance it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikelut.hdl.params import check_int

__all__ = [
    "EXP_BITS",
    "EXP_ENTRIES",
    "Selection",
    "Xorshift32",
    "exp_table",
    "select_byte",
]

EXP_ENTRIES = 256  # K: logit distances beyond K - 1 weigh EXP[K - 1]
EXP_BITS = 16  # unsigned width of an exponential-table entry
_MASK32 = (1 << 32) - 1


class Xorshift32:
    """Marsaglia's xorshift32 (13, 17, 5): the selector's random source. ``seed``: a
    non-zero 32-bit state (ValueError otherwise)."""

    def __init__(self, seed: int):
        self.state = check_int("seed", seed, 1, _MASK32)

    def next(self) -> int:
        """Advance the state and return it (a 32-bit word)."""
        x = self.state
        x ^= (x << 13) & _MASK32
        x ^= x >> 17
        x ^= (x << 5) & _MASK32
        self.state = x
        return x


def exp_table(
    temperature: float, scale_log2: int, *, entries: int = EXP_ENTRIES, bits: int = EXP_BITS
) -> np.ndarray:
    """The exponential table of sampling at ``temperature`` for logits that stand for
    ``l * 2**scale_log2``: ``entries`` unsigned ``bits``-bit weights, ``EXP[0]`` the largest
    (see the module docstring). ValueError for a temperature that is not positive and finite."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be positive and finite, not {temperature!r}")
    check_int("entries", entries, 2, 1 << 16)
    check_int("bits", bits, 2, 31)
    d = np.arange(entries, dtype=np.float64)
    top = (1 << bits) - 1
    return np.rint(top * np.exp(-d * 2.0**scale_log2 / temperature)).astype(np.int64)


@dataclass(frozen=True)
class Selection:
    """How a core chooses the next byte: greedy (``exp`` None) or sampled with the
    exponential table ``exp`` (:func:`exp_table`) from a :class:`Xorshift32` seeded with
    ``seed``."""

    exp: tuple[int, ...] | None = None
    seed: int = 1

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 1, _MASK32)
        if self.exp is not None:
            exp = np.asarray(self.exp)
            if exp.ndim != 1 or len(exp) < 2 or exp.min() < 0 or exp.max() >= 1 << 31:
                raise ValueError("the exponential table must be >= 2 non-negative 31-bit entries")
            if exp[0] == 0:
                raise ValueError("the exponential table's first entry must be positive")

    @classmethod
    def sampled(cls, temperature: float, scale_log2: int, seed: int) -> Selection:
        """Sampling at ``temperature`` (greedy for 0) with the default table size."""
        if temperature == 0:
            return cls(None, seed)
        return cls(tuple(int(v) for v in exp_table(temperature, scale_log2)), seed)

    @property
    def greedy(self) -> bool:
        """True for the argmax rule."""
        return self.exp is None


def select_byte(logits, selection: Selection, rng: Xorshift32 | None) -> int:
    """The byte ``selection`` chooses from one vector of integer ``logits``; a sampled
    choice draws from ``rng`` (advancing it), a greedy one does not touch it."""
    lg = np.asarray(logits, np.int64)
    top = int(lg.max())
    if selection.greedy:
        return int(np.flatnonzero(lg == top)[0])
    exp = np.asarray(selection.exp, np.int64)
    w = exp[np.minimum(top - lg, len(exp) - 1)]
    total = int(w.sum())
    mask = (1 << total.bit_length()) - 1
    while True:
        r = rng.next() & mask
        if r < total:
            break
    return int(np.flatnonzero(np.cumsum(w) > r)[0])
