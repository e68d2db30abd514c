"""The C reference's own random stream, to run our engine on exactly the reference's draws.

The reference (``izhikevich/SNN``, ``main.c``) takes every random number from the C
library's ``rand()`` (after ``srand(seed)``; without a call, as seed 1) in a fixed order:
the 10,000 validation starts, then the model (embedding, then per layer the FFN's anchors
and per head the positional encodings and the attention table's anchors, then the
unembedder's anchors), then one training start per step by rejection, and 80 draws to
sample text after each validation. :class:`GlibcRand` is glibc's ``rand()`` (the additive
generator of ``random_r``, TYPE_3), so this works on any platform.

:func:`reference_setup` replays that order and returns our model and split drawn from it,
so a faithful run can be set beside the reference's ``loss.csv`` for the same seed curve
for curve, not only in distribution. Our own runs draw from numpy instead
(:mod:`spikelut.compiler.train.lm`): same distributions, different numbers.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from spikelut.compiler.frontend.text import Split
from spikelut.compiler.ir.sequence import TransformerLM

RAND_MAX = 2**31 - 1
# text sampled after each validation: one draw per byte (main.c, model_prompt_response)
SAMPLE_DRAWS = 80


class GlibcRand:
    """glibc's ``rand()`` after ``srand(seed)``: ``next()`` returns the same integers in
    0..RAND_MAX, in the same order."""

    def __init__(self, seed: int) -> None:
        seed = int(seed) & 0xFFFFFFFF
        r = [seed or 1]
        for _ in range(1, 31):
            r.append((16807 * r[-1]) % RAND_MAX)
        r += r[:3]  # r[31..33] = r[0..2]
        self._state = deque(r, maxlen=34)
        for _ in range(310):  # glibc discards the first 310 outputs
            self._step()

    def _step(self) -> int:
        s = self._state
        word = (s[-31] + s[-3]) & 0xFFFFFFFF
        s.append(word)
        return word

    def next(self) -> int:
        """The next ``rand()``."""
        return self._step() >> 1

    def below(self, n: int) -> int:
        """``rand() % n``."""
        return self.next() % n

    def uniform_pm1(self, count: int) -> np.ndarray:
        """``count`` values of the reference's ``random_vector`` at scale 1: the float32 of
        ``2 * ((float)rand() / RAND_MAX - 0.5)`` (float division, then double arithmetic)."""
        r = np.array([self.next() for _ in range(count)], np.int64)
        q = (r.astype(np.float32) / np.float32(RAND_MAX)).astype(np.float32)
        return (2.0 * (q.astype(np.float64) - 0.5)).astype(np.float32)

    def anchors(self, n_tables: int, n_c: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """The reference's ``build_LUT`` anchors: per table its ``a`` (``rand() % dim``),
        then its ``b``, each redrawn while equal to the ``a`` of its comparison."""
        a = np.zeros((n_tables, n_c), np.int32)
        b = np.zeros((n_tables, n_c), np.int32)
        for i in range(n_tables):
            for r in range(n_c):
                a[i, r] = self.below(dim)
            for r in range(n_c):
                b[i, r] = self.below(dim)
                while b[i, r] == a[i, r]:
                    b[i, r] = self.below(dim)
        return a, b


def reference_setup(
    data: np.ndarray, seed: int, *, val_windows: int = 10_000, **shape
) -> tuple[TransformerLM, Split, GlibcRand]:
    """The model and split the reference draws for ``srand(seed)`` on ``data``, and the
    generator positioned where the reference's training loop starts (its step 0 drawn: our
    step 1 is its next draw). ``shape`` as :meth:`TransformerLM.create`."""
    rand = GlibcRand(seed)
    m = TransformerLM.create(rng=np.random.default_rng(0), **shape)
    C, E = m.context, m.dim
    n_starts = len(data) - C - 1
    val = np.array([rand.below(n_starts) for _ in range(val_windows)], np.int64)
    reserved = np.zeros(n_starts + C + 1, bool)
    for s in val:
        reserved[max(0, s - C) : s + C + 1] = True
    split = Split(C, n_starts, val, reserved[:n_starts])

    m.embedding[:] = rand.uniform_pm1(m.embedding.size).reshape(m.embedding.shape)
    for layer in range(m.n_layers):
        m.ffn_a[layer], m.ffn_b[layer] = rand.anchors(m.n_tables, m.n_c, E)
        for head in range(m.n_heads):
            m.pe[layer, head] = rand.uniform_pm1(m.pe[layer, head].size).reshape(
                m.pe[layer, head].shape
            )
            m.attn_a[layer, head], m.attn_b[layer, head] = rand.anchors(m.n_tables, m.n_c, E)
    m.unemb_a[:], m.unemb_b[:] = rand.anchors(m.n_tables, m.n_c, E)
    draw_train_start(rand, split)  # the reference's step 0 (rate 0: changes nothing)
    skip_sample(rand)  # the text it samples after validating at step 0
    return m, split, rand


def draw_train_start(rand: GlibcRand, split: Split) -> int:
    """The reference's ``get_random_training_index``: ``rand() % n`` until not reserved."""
    while True:
        s = rand.below(split.n_starts)
        if not split.reserved[s]:
            return s


def skip_sample(rand: GlibcRand) -> None:
    """Consume the draws of the text the reference samples after a validation."""
    for _ in range(SAMPLE_DRAWS):
        rand.next()
