"""The fixed-point format of integer networks: power-of-two scales and rounding to them.

An integer table entry ``k`` at scale ``s`` stands for the float value ``k * 2**-s``; a
``bits``-wide signed entry holds ``-(2**(bits-1)) .. 2**(bits-1) - 1``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fit_scale", "quantize_tables"]


def fit_scale(max_abs: float, table_bits: int) -> int:
    """The largest ``s`` with ``rint(max_abs * 2**s)`` inside the signed ``table_bits`` range."""
    top = (1 << (table_bits - 1)) - 1
    if not max_abs > 0 or not math.isfinite(max_abs):
        return 0
    s = math.floor(math.log2(top / max_abs))
    while np.rint(max_abs * 2.0**s) > top:
        s -= 1
    while np.rint(max_abs * 2.0 ** (s + 1)) <= top:
        s += 1
    return s


def quantize_tables(
    tables: np.ndarray, scale_log2: int, table_bits: int, dtype: type = np.int64
) -> np.ndarray:
    """``clip(rint(tables * 2**scale_log2))`` to the signed ``table_bits`` range, as ``dtype``."""
    lim = 1 << (table_bits - 1)
    q = np.rint(np.asarray(tables, np.float64) * 2.0**scale_log2)
    return np.clip(q, -lim, lim - 1).astype(dtype)
