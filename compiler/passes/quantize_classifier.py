"""The classifier quantisation pass: a float classifier to an integer one.

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
- **Input narrowing** (optional, :mod:`spikelut.compiler.passes.narrowing`) sets ``in_shift``.

The result records one :class:`LayerQuant` per layer and ``meta["quantization"]``; its widths
are checked by :func:`spikelut.compiler.passes.widths.infer_widths`, so a network that would need a
register wider than ``max_width`` is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.fixed_point import fit_scale, quantize_tables
from spikelut.compiler.ir.golden import lut_layer
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.passes.narrowing import search_shifts
from spikelut.compiler.passes.scales import (
    DEFAULT_TABLE_BITS,
    QuantizeError,
    candidate_scales,
    check_table_bits,
)
from spikelut.compiler.passes.widths import DEFAULT_MAX_WIDTH, infer_widths

__all__ = ["quantize_classifier", "scale_groups"]


# -- scales --------------------------------------------------------------------------------


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


def _check_args(model, table_bits, shifts, search_shift, calib_raw):
    """The checked shifts and calibration data; QuantizeError naming a bad argument."""
    if model.is_integer:
        raise QuantizeError("the network is already quantised; quantize its float original")
    check_table_bits(table_bits)
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
    return shifts, calib_raw


@dataclasses.dataclass
class _Calibration:
    """The state of a calibrated pass: the raw calibration features, the float network's
    outputs and predictions on them, and the integer prefix's output so far."""

    raw: np.ndarray
    ref_out: list[np.ndarray]
    ref: np.ndarray
    x_int: np.ndarray


def _best_scale(model, group, candidates, table_bits, shifts, encoding, cal: _Calibration):
    """``(scale, agreement, integer output)`` of the candidate scale whose integer group,
    followed by the float layers after it, agrees most with the float network."""
    starts_at_input = model.layers[group[0]].residual
    best = None
    for s in candidates:
        y = _input_at_scale(encoding, s).encode_int(cal.raw) if starts_at_input else cal.x_int
        for k in group:
            table = quantize_tables(model.layers[k].tables, s, table_bits)
            y = lut_layer(model.layers[k].with_tables(table), y, shifts.get(k, 0))
        agree = _float_suffix_agreement(model, group[-1] + 1, y / 2.0**s, cal.ref)
        # ties (common: agreement is coarse) go to the closer output, then to order
        err = float(np.mean(np.square(y / 2.0**s - cal.ref_out[group[-1]])))
        if best is None or (agree, -err) > (best[1], -best[3]):
            best = (s, agree, y, err)
    return best[:3]


def quantize_classifier(
    model: ClassifierMLP,
    *,
    table_bits: int = DEFAULT_TABLE_BITS,
    calib_raw: np.ndarray | None = None,
    shifts: dict[int, int] | None = None,
    search_shift: bool = False,
    shift_tolerance: float = 0.002,
    max_width: int = DEFAULT_MAX_WIDTH,
    fixed_scales: dict[int, int] | None = None,
) -> ClassifierMLP:
    """Quantise a float classifier to an integer one.

    ``table_bits``: signed width of every table entry (2..16). ``calib_raw``: raw calibration
    features (B, dim), e.g. the training split; without them, scales come from the table
    ranges alone (the largest scale that clips nothing). ``shifts``: explicit
    ``{layer: in_shift}``; ``search_shift``: choose the other layers' shifts on the
    calibration data, losing at most ``shift_tolerance`` (a fraction) of agreement with the
    float predictions (see :func:`spikelut.compiler.passes.narrowing.search_shifts`).
    ``fixed_scales``: ``{layer: scale_log2}`` fixing the table scale of the scale group that
    starts at that layer (as quantisation-aware training chose it) instead of choosing it.
    Raises :class:`QuantizeError` for bad arguments and
    :class:`spikelut.compiler.passes.widths.WidthError` when a width would exceed
    ``max_width``.
    """
    shifts, calib_raw = _check_args(model, table_bits, shifts, search_shift, calib_raw)
    n = len(model.layers)
    encoding = model.encoding
    scales = [0] * n
    group_info = []
    cal = None
    if calib_raw is not None:
        ref_out = model.float_outputs(calib_raw)
        cal = _Calibration(
            calib_raw, ref_out, np.argmax(ref_out[-1], axis=-1), encoding.encode_int(calib_raw)
        )
    groups = scale_groups(model.layers)
    starts = {group[0] for group in groups}
    for k, s in (fixed_scales or {}).items():
        if k not in starts or isinstance(s, bool) or not isinstance(s, int):
            raise QuantizeError(
                f"fixed scale {s!r} for layer {k!r}: give an integer for a layer that starts "
                f"a scale group ({sorted(starts)})"
            )
    for group in groups:
        max_abs = max(float(np.max(np.abs(model.layers[k].tables))) for k in group)
        s_fit = fit_scale(max_abs, table_bits)
        fixed = (fixed_scales or {}).get(group[0])
        choice, agreement = s_fit if fixed is None else fixed, None
        if cal is not None:
            candidates = candidate_scales(s_fit) if fixed is None else [fixed]
            choice, agreement, cal.x_int = _best_scale(
                model, group, candidates, table_bits, shifts, encoding, cal
            )
        starts_at_input = model.layers[group[0]].residual
        if starts_at_input:
            encoding = _input_at_scale(encoding, choice)
        for k in group:
            scales[k] = choice
        group_info.append(
            {
                "layers": group,
                "scale_log2": choice,
                "fit_scale_log2": s_fit,
                "fixed": fixed is not None,
                "max_abs": max_abs,
                "starts_at_input": starts_at_input,
                "calib_agreement": agreement,
            }
        )
    layers = [
        layer.with_tables(quantize_tables(layer.tables, s, table_bits))
        for layer, s in zip(model.layers, scales, strict=True)
    ]
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
        quant=[LayerQuant(table_bits, shifts.get(k, 0), scales[k]) for k in range(n)],
        class_names=model.class_names,
        meta=meta,
    )
    if search_shift:
        qmodel = search_shifts(
            qmodel, model, calib_raw, tolerance=shift_tolerance, fixed=set(shifts)
        )
    infer_widths(qmodel, max_width=max_width)
    return qmodel


def _input_at_scale(encoding: InputEncoding, s: int) -> InputEncoding:
    # Keep the resolution relative to the range: bits grow with the scale.
    bits = max(2, min(32, encoding.bits + s - encoding.frac_bits))
    return dataclasses.replace(encoding, frac_bits=max(-32, min(32, s)), bits=bits)


def _float_suffix_agreement(
    model: ClassifierMLP, start: int, x: np.ndarray, ref: np.ndarray
) -> float:
    """Agreement with ``ref`` of float layers ``start..`` run on ``x`` (float scale)."""
    x = x.astype(np.float32)
    for layer in model.layers[start:]:
        x = layer.forward(x)
    return float(np.mean(np.argmax(x, axis=-1) == ref))


# -- the spiking RNN -----------------------------------------------------------------------


# -- the transformer -----------------------------------------------------------------------
