"""Validation of the plain constructor parameters the gateware components take.

Every check raises ``ValueError`` with a one-line message quoting the offending value.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "check_anchors",
    "check_int",
    "check_tables",
    "discard",
    "signed_width",
    "silent_on_error",
    "sum_range",
    "tree_sum",
]


def check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in ``lo..hi`` (``hi`` None: no upper bound), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {bound}, not {value!r}")
    return value


def check_anchors(anchors_a, anchors_b, in_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Anchor arrays of shape (N_T, N_C), indices in ``0..in_dim-1``, ``a != b``."""
    a = np.asarray(anchors_a)
    b = np.asarray(anchors_b)
    if a.ndim != 2 or a.shape != b.shape or a.size == 0:
        raise ValueError(
            f"anchors_a and anchors_b must both have shape (N_T, N_C), not {a.shape!r} and {b.shape!r}"
        )
    if not (np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)):
        raise ValueError(f"anchors must be integer arrays, not {a.dtype} and {b.dtype}")
    for name, arr in (("anchors_a", a), ("anchors_b", b)):
        bad = np.argwhere((arr < 0) | (arr >= in_dim))
        if len(bad):
            i, r = bad[0]
            raise ValueError(
                f"{name}[{i}][{r}] = {int(arr[i, r])!r} is out of range 0..{in_dim - 1}"
            )
    same = np.argwhere(a == b)
    if len(same):
        i, r = same[0]
        raise ValueError(
            f"anchor pair ({int(i)}, {int(r)}) compares neuron {int(a[i, r])} with itself"
        )
    return a.astype(np.int64), b.astype(np.int64)


def check_tables(tables, table_width: int) -> np.ndarray:
    """Integer tables of shape (N_T, 2**N_C, Y) whose entries fit ``table_width`` signed bits."""
    t = np.asarray(tables)
    if t.ndim != 3 or t.shape[0] < 1 or t.shape[2] < 1:
        raise ValueError(f"tables must have shape (N_T, 2**N_C, Y), not {t.shape!r}")
    n_c = t.shape[1].bit_length() - 1
    if n_c < 1 or t.shape[1] != 1 << n_c:
        raise ValueError(f"tables must have 2**N_C rows with N_C >= 1, not {t.shape[1]!r}")
    if not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"tables must be integers (quantise first), not {t.dtype}")
    lim = 1 << (table_width - 1)
    if t.min() < -lim or t.max() >= lim:
        raise ValueError(
            f"table entries {int(t.min())}..{int(t.max())} do not fit table_width={table_width!r}"
        )
    return t.astype(np.int64)


def sum_range(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output column, the smallest and largest possible sum of one row per table."""
    return tables.min(axis=1).sum(axis=0), tables.max(axis=1).sum(axis=0)


def tree_sum(terms):
    """The sum of a non-empty list of Amaranth values as a balanced adder tree.

    Every addition widens by one bit, so the result is exact; a balanced tree keeps the
    expression depth logarithmic (a linear chain of hundreds of terms overflows Python's
    recursion limit when the design is elaborated or simulated).
    """
    terms = list(terms)
    if not terms:
        raise ValueError("tree_sum needs at least one term")
    while len(terms) > 1:
        pairs = [a + b for a, b in zip(terms[0::2], terms[1::2], strict=False)]
        terms = pairs + terms[len(pairs) * 2 :]
    return terms[0]


def signed_width(lo: int, hi: int) -> int:
    """The fewest bits of a signed integer holding every value in ``lo..hi``."""
    w = 1
    while -(1 << (w - 1)) > lo or (1 << (w - 1)) - 1 < hi:
        w += 1
    return w


def discard(*components) -> None:
    """Mark sub-components of a constructor that failed as intentionally never elaborated."""
    for c in components:
        if c is not None:
            c._MustUse__silence = True


def silent_on_error(init):
    """Decorate a component's ``__init__``: when it raises, the half-built component (and
    amaranth's "created but never used" warning for it) is discarded with it."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except BaseException:
            discard(self)
            raise

    return wrapper
