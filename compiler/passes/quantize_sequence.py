"""Quantisation passes of the language models: the spiking RNN and the LUT transformer.

Every stream (the RNN's state, the transformer's residual stream) shares one power-of-two
scale with everything that adds into it; the unembedder's scale is free (only the order of
the logits matters for the argmax). With calibration windows the stream's scale is the
candidate (:func:`~spikelut.compiler.passes.scales.candidate_scales`) with the lowest
next-token loss over all positions.
"""

from __future__ import annotations

import numpy as np

from spikelut.compiler.ir.classifier import LayerQuant
from spikelut.compiler.ir.fixed_point import fit_scale, quantize_tables
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer, storage_dtype
from spikelut.compiler.passes.evaluate import (
    next_token_loss,
    rnn_float_logits,
    rnn_int_logits,
    transformer_float_logits,
    transformer_int_logits,
)
from spikelut.compiler.passes.scales import (
    DEFAULT_TABLE_BITS,
    QuantizeError,
    candidate_scales,
    check_table_bits,
)
from spikelut.compiler.passes.widths import DEFAULT_MAX_WIDTH, rnn_widths, transformer_widths

__all__ = ["quantize_rnn", "quantize_transformer"]


def quantize_rnn(
    model,
    *,
    table_bits: int = DEFAULT_TABLE_BITS,
    calib_windows: np.ndarray | None = None,
    shifts: dict[str, int] | None = None,
    max_width: int = DEFAULT_MAX_WIDTH,
):
    """Quantise a :class:`~spikelut.compiler.ir.sequence.SpikingRNN` to an
    :class:`~spikelut.compiler.ir.integer_sequence.IntegerRNN`.

    The embedding and the cell's tables share the state's scale (both ``table_bits`` wide);
    the unembedder gets its own, the largest that clips nothing. Without ``calib_windows``
    (B, T + 1 tokens) so does the state; with them, the state's scale is the candidate with
    the lowest next-token loss over all positions. ``shifts``: ``{"cell": s, "unembedder": s}``
    input shifts. Raises :class:`QuantizeError` / :class:`~spikelut.compiler.passes.widths.WidthError`.
    """

    check_table_bits(table_bits)
    shifts = dict(shifts or {})
    unknown = set(shifts) - {"cell", "unembedder"}
    if unknown:
        raise QuantizeError(f"rnn shifts name 'cell' or 'unembedder', not {sorted(unknown)!r}")

    def build(s_state: int, s_unemb: int) -> IntegerRNN:
        return IntegerRNN(
            embedding=quantize_tables(model.embedding, s_state, table_bits),
            cell=model.cell.with_tables(quantize_tables(model.cell.tables, s_state, table_bits)),
            unembedder=model.unembedder.with_tables(
                quantize_tables(model.unembedder.tables, s_unemb, table_bits)
            ),
            cell_quant=LayerQuant(table_bits, shifts.get("cell", 0), s_state),
            unembedder_quant=LayerQuant(table_bits, shifts.get("unembedder", 0), s_unemb),
            embedding_bits=table_bits,
            context=model.context,
            meta=dict(model.meta),
        )

    state_max = max(float(np.abs(model.embedding).max()), float(np.abs(model.cell.tables).max()))
    s_state = fit_scale(state_max, table_bits)
    s_unemb = fit_scale(float(np.abs(model.unembedder.tables).max()), table_bits)
    fit = (s_state, s_unemb)
    losses = None
    if calib_windows is not None:
        calib_windows = np.atleast_2d(np.asarray(calib_windows, np.int64))
        inputs = calib_windows[:, :-1]

        def loss(s: int, u: int) -> float:
            logits = rnn_int_logits(build(s, u), inputs)
            return next_token_loss(logits, calib_windows, last_only=False)

        # The unembedder keeps its range scale: a clipping scale would also shrink the logits,
        # i.e. change the softmax temperature, which is not what quantisation should tune.
        s_state = min(candidate_scales(s_state), key=lambda s: loss(s, s_unemb))
        float_loss = next_token_loss(
            rnn_float_logits(model, inputs), calib_windows, last_only=False
        )
        losses = {"float": float_loss, "integer": loss(s_state, s_unemb)}
    qmodel = build(s_state, s_unemb)
    qmodel.meta["quantization"] = {
        "table_bits": table_bits,
        "state_scale_log2": s_state,
        "unembedder_scale_log2": s_unemb,
        "fit_scale_log2": list(fit),
        "calibration_windows": 0 if calib_windows is None else len(calib_windows),
        "calibration_loss_all_positions": losses,
        "shifts": {"user": shifts},
        "max_width": max_width,
    }
    rnn_widths(qmodel, max_width=max_width)
    return qmodel


def _max_abs(arr: np.ndarray) -> float:
    """``max |arr|`` without a full-size temporary (per leading index)."""
    return max(float(max(arr[i].max(), -arr[i].min())) for i in range(arr.shape[0]))


def quantize_transformer(
    model,
    *,
    table_bits: int = DEFAULT_TABLE_BITS,
    calib_windows: np.ndarray | None = None,
    max_width: int = DEFAULT_MAX_WIDTH,
):
    """Quantise a :class:`~spikelut.compiler.ir.sequence.TransformerLM` to an
    :class:`~spikelut.compiler.ir.integer_sequence.IntegerTransformer`.

    The embedding, attention and FFN tables all add into the residual stream and share its
    scale; the unembedder gets its own, the largest that clips nothing. Positional encodings
    keep their signs. Without ``calib_windows`` (B, C + 1 tokens) the stream scale is the
    largest that clips nothing; with them, the candidate with the lowest next-token loss
    over all positions (integer forward in numpy: keep B small for large models).
    """

    check_table_bits(table_bits)
    dtype = storage_dtype(table_bits)

    def q_big(arr: np.ndarray, s: int) -> np.ndarray:
        # per leading index, to bound the float64 temporary of multi-GB tables
        out = np.empty(arr.shape, dtype)
        for idx in np.ndindex(arr.shape[:2]):
            out[idx] = quantize_tables(arr[idx], s, table_bits, dtype)
        return out

    def build(s: int, u: int) -> IntegerTransformer:
        return IntegerTransformer(
            embedding=quantize_tables(model.embedding, s, table_bits),
            attn_a=model.attn_a,
            attn_b=model.attn_b,
            attn_tables=q_big(model.attn_tables, s),
            pe_bits=(np.asarray(model.pe) > 0).astype(np.uint8),
            ffn_a=model.ffn_a,
            ffn_b=model.ffn_b,
            ffn_tables=q_big(model.ffn_tables, s),
            unemb_a=model.unemb_a,
            unemb_b=model.unemb_b,
            unemb_tables=quantize_tables(model.unemb_tables, u, table_bits, dtype),
            table_bits=table_bits,
            unemb_bits=table_bits,
            stream_scale_log2=s,
            unemb_scale_log2=u,
            meta=dict(model.meta),
        )

    stream_max = max(
        float(np.abs(model.embedding).max()),
        _max_abs(model.attn_tables),
        _max_abs(model.ffn_tables),
    )
    s_stream = fit_scale(stream_max, table_bits)
    s_unemb = fit_scale(float(np.abs(model.unemb_tables).max()), table_bits)
    fit = (s_stream, s_unemb)
    losses = None
    if calib_windows is not None:
        calib_windows = np.atleast_2d(np.asarray(calib_windows, np.int64))
        inputs = calib_windows[:, :-1]

        def loss(s: int) -> float:
            logits = transformer_int_logits(build(s, s_unemb), inputs)
            return next_token_loss(logits, calib_windows, last_only=False)

        scored = {s: loss(s) for s in candidate_scales(s_stream)}
        s_stream = min(scored, key=scored.get)
        float_loss = next_token_loss(
            transformer_float_logits(model, inputs), calib_windows, last_only=False
        )
        losses = {"float": float_loss, "integer": scored[s_stream]}
    qmodel = build(s_stream, s_unemb)
    qmodel.meta["quantization"] = {
        "table_bits": table_bits,
        "stream_scale_log2": s_stream,
        "unembedder_scale_log2": s_unemb,
        "fit_scale_log2": list(fit),
        "calibration_windows": 0 if calib_windows is None else len(calib_windows),
        "calibration_loss_all_positions": losses,
        "max_width": max_width,
    }
    transformer_widths(qmodel, max_width=max_width)
    return qmodel
