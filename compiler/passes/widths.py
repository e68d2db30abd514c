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

The widths are what the gateware sizes its registers with. The same rule gives the widths of
the sequence models' streams (:func:`rnn_widths`, :func:`transformer_widths`). A configuration needing more than
``max_width`` bits is refused with :class:`WidthError` naming the layer and the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from spikelut.compiler.ir.classifier import ClassifierMLP, LayerQuant
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.params import signed_width

__all__ = [
    "DEFAULT_MAX_WIDTH",
    "LayerWidths",
    "RNNWidths",
    "TransformerWidths",
    "WidthError",
    "infer_widths",
    "layer_widths",
    "rnn_widths",
    "signed_range",
    "transformer_widths",
]

DEFAULT_MAX_WIDTH = 32


class WidthError(ValueError):
    """A layer needs a wider register than the stated maximum; the message names the layer."""


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
        table_memory_bits=layer.memory_bits(quant.table_bits),
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


@dataclass(frozen=True)
class RNNWidths:
    """Inferred widths of an integer RNN.

    ``state_width``: the recurrent state ``h`` (every ``h_t``, and ``h_{-1} = 0``, lies in
    ``[state_lo[d], state_hi[d]]``) and the cell's LUT sums before ``z`` is added (the
    hardware cell computes them at the state's width); ``cell_acc_width``: an accumulator that starts from
    ``emb[tok]`` and adds the cell's rows in any order; ``cell`` and ``unembedder``: the
    LUTs' widths with the state as input (``cell.acc_width`` excludes the embedding).
    """

    state_width: int
    state_lo: tuple[int, ...]
    state_hi: tuple[int, ...]
    cell_acc_width: int
    cell: LayerWidths
    unembedder: LayerWidths


def rnn_widths(model: IntegerRNN, *, max_width: int = DEFAULT_MAX_WIDTH) -> RNNWidths:
    """Exact widths of an integer RNN; :class:`WidthError` when one exceeds ``max_width``."""
    t = model.cell.tables.astype(np.int64)
    tmin, tmax = t.min(axis=1), t.max(axis=1)
    e_lo, e_hi = model.embedding.min(axis=0), model.embedding.max(axis=0)
    state_lo = np.minimum(0, e_lo + tmin.sum(axis=0))
    state_hi = np.maximum(0, e_hi + tmax.sum(axis=0))
    acc_lo = np.minimum(e_lo, 0) + np.minimum(tmin, 0).sum(axis=0)
    acc_hi = np.maximum(e_hi, 0) + np.maximum(tmax, 0).sum(axis=0)
    cell_acc_width = signed_width(int(acc_lo.min()), int(acc_hi.max()))
    if cell_acc_width > max_width:
        raise WidthError(
            f"rnn cell: the state accumulator needs {cell_acc_width} bits (the embedding plus "
            f"{model.cell.n_tables} tables of {model.cell_quant.table_bits}-bit entries), more "
            f"than the maximum width {max_width}; use fewer table bits or raise the maximum width"
        )
    widths = []
    for k, (name, lut, q) in enumerate(
        (("cell", model.cell, model.cell_quant),
         ("unembedder", model.unembedder, model.unembedder_quant))
    ):  # fmt: skip
        try:
            widths.append(layer_widths(lut, q, state_lo, state_hi, index=k, max_width=max_width))
        except WidthError as e:
            raise WidthError(str(e).replace(f"layer {k}:", f"rnn {name}:", 1)) from None
    cell, unemb = widths
    lut_lo, lut_hi = int(tmin.sum(axis=0).min()), int(tmax.sum(axis=0).max())
    return RNNWidths(
        state_width=signed_width(
            min(int(state_lo.min()), lut_lo), max(int(state_hi.max()), lut_hi)
        ),
        state_lo=tuple(int(v) for v in state_lo),
        state_hi=tuple(int(v) for v in state_hi),
        cell_acc_width=cell_acc_width,
        cell=cell,
        unembedder=unemb,
    )


@dataclass(frozen=True)
class TransformerWidths:
    """Inferred widths of an integer transformer.

    ``stream_width``: every value of the residual stream ``z`` (at any layer and position);
    ``stream_acc_width``: a register that adds attention rows (any order) and FFN rows into
    ``z``; ``layer_in_widths[l]``: the stream entering layer ``l`` (the heads' comparators),
    ``ffn_in_widths[l]``: the stream entering layer ``l``'s FFN; ``unembedder``: the
    unembedder LUT's widths.
    """

    stream_width: int
    stream_acc_width: int
    layer_in_widths: tuple[int, ...]
    ffn_in_widths: tuple[int, ...]
    unembedder: LayerWidths


def transformer_widths(
    model: IntegerTransformer, *, max_width: int = DEFAULT_MAX_WIDTH
) -> TransformerWidths:
    """Exact widths of an integer transformer; :class:`WidthError` above ``max_width``.

    Bounds are per position ``pos`` (which has ``pos`` earlier positions to attend to) and
    per column of ``z``.
    """
    ctx = model.context
    npos = np.arange(ctx, dtype=np.int64)[:, None]  # rows each head adds at pos
    lo = np.broadcast_to(model.embedding.min(axis=0).astype(np.int64), (ctx, model.dim)).copy()
    hi = np.broadcast_to(model.embedding.max(axis=0).astype(np.int64), (ctx, model.dim)).copy()
    acc_lo, acc_hi = np.minimum(lo, 0), np.maximum(hi, 0)
    s_lo, s_hi = [int(lo.min())], [int(hi.max())]
    layer_in, ffn_in = [], []
    for l_ in range(model.attn_tables.shape[0]):
        layer_in.append(signed_width(int(lo.min()), int(hi.max())))
        t = model.attn_tables[l_]  # (H, N_T, R, E), reduced before widening
        rmin, rmax = t.min(axis=2).astype(np.int64), t.max(axis=2).astype(np.int64)
        tmin, tmax = rmin.sum(axis=(0, 1)), rmax.sum(axis=(0, 1))
        nmin = np.minimum(rmin, 0).sum(axis=(0, 1))
        pmax = np.maximum(rmax, 0).sum(axis=(0, 1))
        acc_lo = np.minimum(acc_lo, np.minimum(lo, 0) + npos * nmin)
        acc_hi = np.maximum(acc_hi, np.maximum(hi, 0) + npos * pmax)
        lo, hi = lo + npos * tmin, hi + npos * tmax
        ffn_in.append(signed_width(int(lo.min()), int(hi.max())))
        f = model.ffn_tables[l_].astype(np.int64)  # (N_T, R, E)
        acc_lo = np.minimum(acc_lo, np.minimum(lo, 0) + np.minimum(f.min(axis=1), 0).sum(axis=0))
        acc_hi = np.maximum(acc_hi, np.maximum(hi, 0) + np.maximum(f.max(axis=1), 0).sum(axis=0))
        lo, hi = lo + f.min(axis=1).sum(axis=0), hi + f.max(axis=1).sum(axis=0)
        s_lo.append(int(lo.min()))
        s_hi.append(int(hi.max()))
        acc_width = signed_width(int(acc_lo.min()), int(acc_hi.max()))
        if acc_width > max_width:
            raise WidthError(
                f"transformer layer {l_}: the residual stream needs {acc_width} bits (attention "
                f"over {ctx - 1} earlier positions and the FFN add up to "
                f"{int(acc_lo.min())}..{int(acc_hi.max())}), more than the maximum width "
                f"{max_width}; use fewer table bits or raise the maximum width"
            )
    unemb = LUTLayer(a=model.unemb_a, b=model.unemb_b, tables=model.unemb_tables, in_dim=model.dim)
    try:
        uw = layer_widths(unemb, LayerQuant(model.unemb_bits), lo.min(axis=0), hi.max(axis=0),
                          index=0, max_width=max_width)  # fmt: skip
    except WidthError as e:
        raise WidthError(str(e).replace("layer 0:", "transformer unembedder:", 1)) from None
    return TransformerWidths(
        stream_width=signed_width(min(s_lo), max(s_hi)),
        stream_acc_width=signed_width(int(acc_lo.min()), int(acc_hi.max())),
        layer_in_widths=tuple(layer_in),
        ffn_in_widths=tuple(ffn_in),
        unembedder=uw,
    )
