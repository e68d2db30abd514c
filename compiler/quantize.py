"""The quantisation pass: a float classifier to an integer one (DESIGN.md section 2).

- **Tables** become signed ``table_bits``-wide integers: ``clip(rint(S * 2**s))``.
- **Scales**: the layers are grouped by the stream they add into. A non-residual layer
  starts a new stream; each residual layer after it adds into the same stream, so the whole
  group (its tables and, through the residual adds, its values) shares one power-of-two scale
  ``2**s``. A group that starts at the network input (layer 0 residual) also fixes the
  input's ``frac_bits`` to ``s``. A non-residual stream's scale is free (the next layer only
  compares its values), so it is chosen from the group's table range: the largest ``s`` for
  which no entry clips, or, with calibration data, the candidate scale (that one, one less,
  or one to three more, which clip the largest entries) whose integer prefix, followed by the
  float layers after the group, agrees most often with the float network's predictions.
- **Inputs**: the integer format the model's :class:`InputEncoding` declares (digits pixels
  0..16 stay as they are), except that a residual layer 0 rescales it to its group's scale.
- **Input narrowing** (optional, :mod:`spikelut.compiler.narrowing`) sets ``in_shift``.

The result records one :class:`LayerQuant` per layer and ``meta["quantization"]``; its widths
are checked by :func:`spikelut.compiler.widths.infer_widths`, so a network that would need a
register wider than ``max_width`` is refused.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from .engine import lut_predict
from .ir import ClassifierMLP, InputEncoding, LayerQuant, LUTLayer
from .widths import DEFAULT_MAX_WIDTH, infer_widths

DEFAULT_TABLE_BITS = 8


class QuantizeError(ValueError):
    """The network cannot be quantised as asked; the message names the problem and the fix."""


# -- float and integer forward passes ------------------------------------------------------


def float_logits(model: ClassifierMLP, raw: np.ndarray) -> np.ndarray:
    """The float network's last-layer output for raw features (B, dim)."""
    x = model.encoding.encode_float(np.atleast_2d(raw))
    for layer in model.layers:
        x = lut_predict(layer, x)
    return x


def float_predict(model: ClassifierMLP, raw: np.ndarray) -> np.ndarray:
    """Float predictions (argmax, lowest index on ties) for raw features (B, dim)."""
    return np.argmax(float_logits(model, raw), axis=-1)


def int_predict(model: ClassifierMLP, raw: np.ndarray) -> np.ndarray:
    """Integer (golden-model) predictions for raw features (B, dim)."""
    from spikelut.sim.golden import run_classifier

    return run_classifier(model, model.encoding.encode_int(np.atleast_2d(raw))).predictions


# -- scales --------------------------------------------------------------------------------


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


def scale_groups(layers: Sequence[LUTLayer]) -> list[list[int]]:
    """Layer indices grouped by the stream they add into (see the module docstring)."""
    groups: list[list[int]] = []
    for k, layer in enumerate(layers):
        if layer.residual and groups:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


# -- the pass ------------------------------------------------------------------------------


def _candidates(s_fit: int) -> list[int]:
    # In order of preference on equal agreement: no clipping first. Larger scales clip the
    # largest entries but resolve the small ones, which pays at few table bits.
    return [s_fit, s_fit + 1, s_fit - 1, s_fit + 2, s_fit + 3]


def quantize_classifier(
    model: ClassifierMLP,
    *,
    table_bits: int = DEFAULT_TABLE_BITS,
    calib_raw: np.ndarray | None = None,
    shifts: dict[int, int] | None = None,
    search_shift: bool = False,
    shift_tolerance: float = 0.002,
    max_width: int = DEFAULT_MAX_WIDTH,
) -> ClassifierMLP:
    """Quantise a float classifier to an integer one.

    ``table_bits``: signed width of every table entry (2..16). ``calib_raw``: raw calibration
    features (B, dim), e.g. the training split; without them, scales come from the table
    ranges alone (the largest scale that clips nothing). ``shifts``: explicit
    ``{layer: in_shift}``; ``search_shift``: choose the other layers' shifts on the
    calibration data, losing at most ``shift_tolerance`` (a fraction) of agreement with the
    float predictions (see :func:`spikelut.compiler.narrowing.search_shifts`). Raises
    :class:`QuantizeError` for bad arguments and :class:`spikelut.compiler.widths.WidthError`
    when a width would exceed ``max_width``.
    """
    if model.is_integer:
        raise QuantizeError("the network is already quantised; quantize its float original")
    if isinstance(table_bits, bool) or not isinstance(table_bits, int) or not 2 <= table_bits <= 16:
        raise QuantizeError(f"table bits must be 2..16, not {table_bits!r}")
    n = len(model.layers)
    shifts = dict(shifts or {})
    for k, s in shifts.items():
        if not isinstance(k, int) or not 0 <= k < n:
            raise QuantizeError(f"shift for layer {k!r}: the network has layers 0..{n - 1}")
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= 62:
            raise QuantizeError(f"shift for layer {k} must be 0..62 bits, not {s!r}")
    if search_shift and calib_raw is None:
        raise QuantizeError("searching input shifts needs calibration data")
    if calib_raw is not None:
        calib_raw = np.atleast_2d(np.asarray(calib_raw, np.float64))
        if calib_raw.shape[1] != model.encoding.dim:
            raise QuantizeError(
                f"calibration data has {calib_raw.shape[1]} features, the network reads "
                f"{model.encoding.dim}"
            )

    encoding = model.encoding
    groups = scale_groups(model.layers)
    scales = [0] * n
    int_tables: list[np.ndarray] = [np.zeros(0)] * n
    group_info = []

    # Calibration state: the integer prefix's output on the calibration data, and the float
    # network's predictions that every candidate is compared against.
    if calib_raw is not None:
        ref_out = _float_outputs(model, calib_raw)
        ref = np.argmax(ref_out[-1], axis=-1)
        x_int = encoding.encode_int(calib_raw)
    for group in groups:
        max_abs = max(float(np.max(np.abs(model.layers[k].tables))) for k in group)
        s_fit = fit_scale(max_abs, table_bits)
        starts_at_input = model.layers[group[0]].residual
        choice, agreement = s_fit, None
        if calib_raw is not None:
            best = None
            for s in _candidates(s_fit):
                enc_s = _input_at_scale(encoding, s) if starts_at_input else encoding
                x0 = enc_s.encode_int(calib_raw) if starts_at_input else x_int
                y = x0
                for k in group:
                    layer = model.layers[k].with_tables(
                        quantize_tables(model.layers[k].tables, s, table_bits)
                    )
                    y = _int_layer(layer, y, shifts.get(k, 0))
                agree = _float_suffix_agreement(model, group[-1] + 1, y / 2.0**s, ref)
                # ties (common: agreement is coarse) go to the closer output, then to order
                err = float(np.mean(np.square(y / 2.0**s - ref_out[group[-1]])))
                if best is None or (agree, -err) > (best[1], -best[3]):
                    best = (s, agree, y, err)
            choice, agreement, x_int, _ = best
        if starts_at_input:
            encoding = _input_at_scale(encoding, choice)
        for k in group:
            scales[k] = choice
            int_tables[k] = quantize_tables(model.layers[k].tables, choice, table_bits)
        group_info.append(
            {
                "layers": group,
                "scale_log2": choice,
                "fit_scale_log2": s_fit,
                "max_abs": max_abs,
                "starts_at_input": starts_at_input,
                "calib_agreement": agreement,
            }
        )

    layers = [layer.with_tables(t) for layer, t in zip(model.layers, int_tables, strict=True)]
    quant = [LayerQuant(table_bits, shifts.get(k, 0), scales[k]) for k in range(n)]
    meta = dict(model.meta)
    meta["quantization"] = {
        "table_bits": table_bits,
        "input": {"bits": encoding.bits, "frac_bits": encoding.frac_bits},
        "groups": group_info,
        "calibration_samples": 0 if calib_raw is None else len(calib_raw),
        "shifts": {"user": {str(k): v for k, v in sorted(shifts.items())}, "searched": {}},
        "max_width": max_width,
    }
    qmodel = ClassifierMLP(
        encoding=encoding,
        layers=layers,
        n_classes=model.n_classes,
        quant=quant,
        class_names=model.class_names,
        meta=meta,
    )
    if search_shift:
        from .narrowing import search_shifts

        qmodel = search_shifts(
            qmodel, model, calib_raw, tolerance=shift_tolerance, fixed=set(shifts)
        )
    infer_widths(qmodel, max_width=max_width)
    return qmodel


def _input_at_scale(encoding: InputEncoding, s: int) -> InputEncoding:
    # Keep the resolution relative to the range: bits grow with the scale.
    bits = max(2, min(32, encoding.bits + s - encoding.frac_bits))
    return dataclasses.replace(encoding, frac_bits=max(-32, min(32, s)), bits=bits)


def _int_layer(layer: LUTLayer, x: np.ndarray, in_shift: int) -> np.ndarray:
    from spikelut.sim.golden import lut_layer

    return lut_layer(layer, x, in_shift)


def _float_outputs(model: ClassifierMLP, raw: np.ndarray) -> list[np.ndarray]:
    """Every layer's float output for raw features."""
    x = model.encoding.encode_float(raw)
    outs = []
    for layer in model.layers:
        x = lut_predict(layer, x)
        outs.append(x)
    return outs


def _float_suffix_agreement(
    model: ClassifierMLP, start: int, x: np.ndarray, ref: np.ndarray
) -> float:
    """Agreement with ``ref`` of float layers ``start..`` run on ``x`` (float scale)."""
    x = x.astype(np.float32)
    for layer in model.layers[start:]:
        x = lut_predict(layer, x)
    return float(np.mean(np.argmax(x, axis=-1) == ref))


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of equal predictions."""
    return float(np.mean(np.asarray(a) == np.asarray(b)))


# -- the spiking RNN -----------------------------------------------------------------------


def rnn_float_logits(model, tokens: np.ndarray) -> np.ndarray:
    """Float logits (B, T, V) of a :class:`~spikelut.compiler.seqmodels.SpikingRNN` on token
    windows (B, T), from ``h_{-1} = 0`` (the semantics of its docstring)."""
    tokens = np.atleast_2d(np.asarray(tokens, np.int64))
    h = np.zeros((tokens.shape[0], model.dim), np.float32)
    out = []
    for t in range(tokens.shape[1]):
        h = model.embedding[tokens[:, t]] + lut_predict(model.cell, h)
        out.append(lut_predict(model.unembedder, h))
    return np.stack(out, axis=1)


def rnn_int_logits(model, tokens: np.ndarray) -> np.ndarray:
    """Integer logits of an :class:`~spikelut.compiler.intseq.IntegerRNN` divided by the
    unembedder's scale (float, comparable with :func:`rnn_float_logits`)."""
    from spikelut.sim.golden import run_rnn

    return run_rnn(model, tokens).logits / 2.0**model.unembedder_quant.out_scale_log2


def next_token_loss(logits: np.ndarray, windows: np.ndarray, *, last_only: bool = True) -> float:
    """Mean ``-ln p`` (nats) of the next token: ``logits`` (B, T, V) for windows (B, T + 1).

    With ``last_only`` (the validation figure), only the token after the last position counts;
    otherwise every position's next token does.
    """
    windows = np.asarray(windows, np.int64)
    if last_only:
        logits, targets = logits[:, -1:], windows[:, -1:]
    else:
        targets = windows[:, 1:]
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return float(-picked.mean())


def quantize_rnn(
    model,
    *,
    table_bits: int = DEFAULT_TABLE_BITS,
    calib_windows: np.ndarray | None = None,
    shifts: dict[str, int] | None = None,
    max_width: int = DEFAULT_MAX_WIDTH,
):
    """Quantise a :class:`~spikelut.compiler.seqmodels.SpikingRNN` to an
    :class:`~spikelut.compiler.intseq.IntegerRNN`.

    The embedding and the cell's tables share the state's scale (both ``table_bits`` wide);
    the unembedder gets its own, the largest that clips nothing. Without ``calib_windows``
    (B, T + 1 tokens) so does the state; with them, the state's scale is the candidate with
    the lowest next-token loss over all positions. ``shifts``: ``{"cell": s, "unembedder": s}``
    input shifts. Raises :class:`QuantizeError` / :class:`~spikelut.compiler.widths.WidthError`.
    """
    from .intseq import IntegerRNN, rnn_widths

    if isinstance(table_bits, bool) or not isinstance(table_bits, int) or not 2 <= table_bits <= 16:
        raise QuantizeError(f"table bits must be 2..16, not {table_bits!r}")
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
        s_state = min(_candidates(s_state), key=lambda s: loss(s, s_unemb))
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


# -- the transformer -----------------------------------------------------------------------


def _max_abs(arr: np.ndarray) -> float:
    """``max |arr|`` without a full-size temporary (per leading index)."""
    return max(float(max(arr[i].max(), -arr[i].min())) for i in range(arr.shape[0]))


def transformer_float_logits(model, windows: np.ndarray) -> np.ndarray:
    """Float logits (B, C, V) of a :class:`~spikelut.compiler.seqmodels.TransformerLM` for
    windows (B, C) of exactly ``C`` tokens, from its compiled engine."""
    from .lm_engine import TransformerEngine

    engine = TransformerEngine(model)
    return np.stack([engine.logits(w) for w in np.atleast_2d(windows)])


def transformer_int_logits(model, windows: np.ndarray) -> np.ndarray:
    """Integer logits of an :class:`~spikelut.compiler.intseq.IntegerTransformer` divided by
    the unembedder's scale (float, comparable with :func:`transformer_float_logits`)."""
    from spikelut.sim.golden import run_transformer

    return run_transformer(model, windows).logits / 2.0**model.unemb_scale_log2


def quantize_transformer(
    model,
    *,
    table_bits: int = DEFAULT_TABLE_BITS,
    calib_windows: np.ndarray | None = None,
    max_width: int = DEFAULT_MAX_WIDTH,
):
    """Quantise a :class:`~spikelut.compiler.seqmodels.TransformerLM` to an
    :class:`~spikelut.compiler.intseq.IntegerTransformer`.

    The embedding, attention and FFN tables all add into the residual stream and share its
    scale; the unembedder gets its own, the largest that clips nothing. Positional encodings
    keep their signs. Without ``calib_windows`` (B, C + 1 tokens) the stream scale is the
    largest that clips nothing; with them, the candidate with the lowest next-token loss
    over all positions (integer forward in numpy: keep B small for large models).
    """
    from .intseq import IntegerTransformer, storage_dtype, transformer_widths

    if isinstance(table_bits, bool) or not isinstance(table_bits, int) or not 2 <= table_bits <= 16:
        raise QuantizeError(f"table bits must be 2..16, not {table_bits!r}")
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

        scored = {s: loss(s) for s in _candidates(s_stream)}
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
