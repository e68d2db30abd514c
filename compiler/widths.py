"""Exact width inference for integer LUT networks: overflow is impossible by construction.

For every layer, from the bounds of its input stream and the actual table contents:

- ``in_width``: the two's-complement width of the input stream;
- ``compare_width``: the width of the comparator operands, the input after the arithmetic
  right shift by ``in_shift``;
- ``out_width``: the width of the output stream; column ``c`` lies in
  ``[sum_i min_j S[i, j, c], sum_i max_j S[i, j, c]]`` (plus the residual input's bounds);
- ``acc_width``: the width of an accumulator that adds the selected rows (and, for a
  residual layer, the input) *in any order*: every partial sum lies in
  ``[min(0, x_lo) + sum_i min(0, min_j S), max(0, x_hi) + sum_i max(0, max_j S)]``.

The widths are what the gateware sizes its registers with. A configuration needing more than
``max_width`` bits is refused with :class:`WidthError` naming the layer and the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .ir import ClassifierMLP, LayerQuant, LUTLayer

DEFAULT_MAX_WIDTH = 32


class WidthError(ValueError):
    """A layer needs a wider register than the stated maximum; the message names the layer."""


def signed_width(lo: int, hi: int) -> int:
    """The smallest two's-complement width ``w >= 1`` holding every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty interval [{lo}, {hi}]")
    w_hi = hi.bit_length() + 1 if hi >= 0 else (-hi - 1).bit_length() + 1
    w_lo = lo.bit_length() + 1 if lo >= 0 else (-lo - 1).bit_length() + 1
    return max(1, w_hi, w_lo)


def signed_range(width: int) -> tuple[int, int]:
    """``(lo, hi)`` of a two's-complement integer of ``width`` bits."""
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


@dataclass(frozen=True)
class LayerWidths:
    """The inferred widths and bounds of one layer (see the module docstring).

    ``in_lo``/``in_hi``: bounds of the input stream (over all its elements);
    ``col_lo``/``col_hi``: exact bounds of every output column; ``acc_lo``/``acc_hi``:
    bounds of every partial sum; ``table_memory_bits``: ``N_T * 2**N_C * Y * table_bits``.
    """

    layer: int
    n_tables: int
    n_c: int
    out_dim: int
    residual: bool
    table_bits: int
    in_shift: int
    in_width: int
    compare_width: int
    acc_width: int
    out_width: int
    in_lo: int
    in_hi: int
    acc_lo: int
    acc_hi: int
    col_lo: tuple[int, ...]
    col_hi: tuple[int, ...]
    table_memory_bits: int

    def to_dict(self) -> dict:
        """A JSON-able dict of every field."""
        d = asdict(self)
        d["col_lo"] = list(self.col_lo)
        d["col_hi"] = list(self.col_hi)
        return d


def layer_widths(
    layer: LUTLayer,
    quant: LayerQuant,
    in_lo: np.ndarray,
    in_hi: np.ndarray,
    *,
    index: int = 0,
    max_width: int = DEFAULT_MAX_WIDTH,
) -> LayerWidths:
    """Widths of one integer layer whose input element ``d`` lies in ``[in_lo[d], in_hi[d]]``.

    Raises :class:`WidthError` when any width exceeds ``max_width``.
    """
    if not layer.is_integer:
        raise ValueError(f"layer {index} has float tables; quantize the network first")
    in_lo = np.broadcast_to(np.asarray(in_lo, np.int64), (layer.in_dim,))
    in_hi = np.broadcast_to(np.asarray(in_hi, np.int64), (layer.in_dim,))
    t = layer.tables.astype(np.int64)
    tmin = t.min(axis=1)  # (N_T, Y)
    tmax = t.max(axis=1)
    col_lo = tmin.sum(axis=0)
    col_hi = tmax.sum(axis=0)
    acc_lo = np.minimum(tmin, 0).sum(axis=0)
    acc_hi = np.maximum(tmax, 0).sum(axis=0)
    if layer.residual:
        col_lo = col_lo + in_lo
        col_hi = col_hi + in_hi
        acc_lo = acc_lo + np.minimum(in_lo, 0)
        acc_hi = acc_hi + np.maximum(in_hi, 0)
    s_lo, s_hi = int(in_lo.min()), int(in_hi.max())
    sh = quant.in_shift
    in_width = signed_width(s_lo, s_hi)
    compare_width = signed_width(s_lo >> sh, s_hi >> sh)
    a_lo, a_hi = int(acc_lo.min()), int(acc_hi.max())
    acc_width = signed_width(a_lo, a_hi)
    out_width = signed_width(int(col_lo.min()), int(col_hi.max()))
    what = f"{layer.n_tables} tables of {quant.table_bits}-bit entries" + (
        " plus the residual input" if layer.residual else ""
    )
    if in_width > max_width:
        raise WidthError(
            f"layer {index}: the input stream needs {in_width} bits (values {s_lo}..{s_hi}), "
            f"more than the maximum width {max_width}; use fewer table bits in earlier layers "
            "or raise the maximum width"
        )
    if acc_width > max_width:
        worst = int(np.argmax(np.maximum(acc_hi, -acc_lo - 1)))
        raise WidthError(
            f"layer {index}: the accumulator needs {acc_width} bits (column {worst} reaches "
            f"{int(acc_lo[worst])}..{int(acc_hi[worst])} from {what}), more than the maximum "
            f"width {max_width}; use fewer table bits or tables, or raise the maximum width"
        )
    return LayerWidths(
        layer=index,
        n_tables=layer.n_tables,
        n_c=layer.n_c,
        out_dim=layer.out_dim,
        residual=layer.residual,
        table_bits=quant.table_bits,
        in_shift=sh,
        in_width=in_width,
        compare_width=compare_width,
        acc_width=acc_width,
        out_width=out_width,
        in_lo=s_lo,
        in_hi=s_hi,
        acc_lo=a_lo,
        acc_hi=a_hi,
        col_lo=tuple(int(v) for v in col_lo),
        col_hi=tuple(int(v) for v in col_hi),
        table_memory_bits=layer.n_tables * (1 << layer.n_c) * layer.out_dim * quant.table_bits,
    )


def infer_widths(model: ClassifierMLP, *, max_width: int = DEFAULT_MAX_WIDTH) -> list[LayerWidths]:
    """Per-layer widths of an integer classifier whose inputs are ``encoding.bits`` wide.

    The input stream may hold any ``encoding.bits``-bit value; each later stream is bounded
    per element by the previous layer's column bounds. Raises :class:`WidthError` (naming the
    layer) when a width exceeds ``max_width``, ``ValueError`` for a float network.
    """
    if not model.is_integer:
        raise ValueError("width inference needs a quantised (integer) network; quantize first")
    lo, hi = signed_range(model.encoding.bits)
    in_lo = np.full(model.layers[0].in_dim, lo, np.int64)
    in_hi = np.full(model.layers[0].in_dim, hi, np.int64)
    out = []
    for k, (layer, q) in enumerate(zip(model.layers, model.quant, strict=True)):
        w = layer_widths(layer, q, in_lo, in_hi, index=k, max_width=max_width)
        out.append(w)
        in_lo = np.array(w.col_lo, np.int64)
        in_hi = np.array(w.col_hi, np.int64)
    return out
