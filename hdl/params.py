"""Validation of the plain constructor parameters the gateware components take.

Every check raises ``ValueError`` with a one-line message quoting the offending value.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_anchors",
    "check_int",
    "check_tables",
    "signed_width",
    "sum_range",
    "tree_sum",
]


def check_int(
    name: str, value, lo: int, hi: int | None = None, *, error: type[ValueError] = ValueError
) -> int:
    """``value`` as an int in ``lo..hi`` (``hi`` None: no upper bound), else ``error`` (a
    ``ValueError`` subclass) naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise error(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise error(f"{name} must be {bound}, not {value!r}")
    return value


def check_anchors(
    anchors_a,
    anchors_b,
    in_dim: int,
    *,
    names: tuple[str, str] = ("anchors_a", "anchors_b"),
    error: type[ValueError] = ValueError,
) -> tuple[np.ndarray, np.ndarray]:
    """Anchor arrays of shape (..., N_T, N_C), indices in ``0..in_dim-1``, ``a != b``, as
    int64; else ``error`` naming the first bad entry (``names``: how the message calls a
    and b)."""
    a = np.asarray(anchors_a)
    b = np.asarray(anchors_b)
    if a.ndim < 2 or a.shape != b.shape or a.size == 0:
        raise error(
            f"{names[0]} and {names[1]} must both have shape (N_T, N_C), not {a.shape!r} and "
            f"{b.shape!r}"
        )
    if not (np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)):
        raise error(f"anchors must be integers, not {a.dtype} and {b.dtype}")
    for name, arr in zip(names, (a, b), strict=True):
        bad = np.argwhere((arr < 0) | (arr >= in_dim))
        if len(bad):
            idx = tuple(int(v) for v in bad[0])
            where = "".join(f"[{v}]" for v in idx)
            raise error(f"{name}{where} = {int(arr[idx])!r} is out of range 0..{in_dim - 1}")
    same = np.argwhere(a == b)
    if len(same):
        idx = tuple(int(v) for v in same[0])
        raise error(f"anchor pair {idx!r} compares neuron {int(a[idx])} with itself")
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
    """The smallest two's-complement width ``w >= 1`` holding every integer in ``lo..hi``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty interval [{lo}, {hi}]")
    w_hi = hi.bit_length() + 1 if hi >= 0 else (-hi - 1).bit_length() + 1
    w_lo = lo.bit_length() + 1 if lo >= 0 else (-lo - 1).bit_length() + 1
    return max(1, w_hi, w_lo)
