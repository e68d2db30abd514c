"""Explicit input narrowing: an arithmetic right shift of a layer's input before its comparators.

Only the order of a layer's inputs matters, so dropping low bits narrows the comparators at
the price of ties (a tie reads as bit 0), which can change results. A shift is therefore
always an explicit choice: given by the user, or searched here against calibration data,
and recorded in the model's ``LayerQuant.in_shift`` and ``meta["quantization"]["shifts"]``.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.golden import argmax_lowest, lut_layer
from spikelut.compiler.passes.widths import infer_widths

__all__ = ["apply_shifts", "search_shifts"]


def apply_shifts(model: ClassifierMLP, shifts: dict[int, int]) -> ClassifierMLP:
    """A copy of an integer classifier with ``in_shift`` of layer ``k`` set to ``shifts[k]``."""
    if not model.is_integer:
        raise ValueError("input shifts apply to a quantised (integer) network")
    for k in shifts:
        if not 0 <= k < len(model.layers):
            raise ValueError(
                f"shift for layer {k}: the network has layers 0..{len(model.layers) - 1}"
            )
    quant = [
        dataclasses.replace(q, in_shift=shifts.get(k, q.in_shift))
        for k, q in enumerate(model.quant)
    ]
    return dataclasses.replace(model, quant=quant, meta=copy.deepcopy(model.meta))


def search_shifts(
    qmodel: ClassifierMLP,
    float_model: ClassifierMLP,
    calib_raw: np.ndarray,
    *,
    tolerance: float = 0.002,
    fixed: set[int] | frozenset[int] = frozenset(),
) -> ClassifierMLP:
    """Choose each layer's ``in_shift`` (layers in ``fixed`` keep theirs), first layer first.

    For each layer, the largest shift (below its input width) is taken whose agreement with
    the float network's predictions on ``calib_raw`` is at most ``tolerance`` (a fraction)
    below the agreement of ``qmodel`` with every searched layer unshifted (earlier layers'
    choices kept), so the total loss of all searched shifts stays within ``tolerance``.
    Returns a copy with the shifts set and recorded in
    ``meta["quantization"]["shifts"]["searched"]``.
    """
    ref = float_model.float_predict(calib_raw)
    model = apply_shifts(qmodel, {k: 0 for k in range(len(qmodel.layers)) if k not in fixed})
    x = model.encoding.encode_int(calib_raw)
    base = _agreement(model, 0, x, model.quant[0].in_shift, ref)
    searched = {}
    for k, layer in enumerate(model.layers):
        q = model.quant[k]
        if k not in fixed:
            in_width = infer_widths(apply_shifts(model, {k: 0}), max_width=64)[k].in_width

            def agree(shift: int, m: ClassifierMLP = model, k: int = k, x=x) -> float:
                return _agreement(m, k, x, shift, ref)

            best = 0
            for shift in range(1, in_width):
                if base - agree(shift) <= tolerance + 1e-12:
                    best = shift
            model = apply_shifts(model, {k: best})
            q = model.quant[k]
            searched[str(k)] = {
                "shift": best,
                "agreement_unshifted_network": base,
                "agreement": agree(best),
            }
        x = lut_layer(layer, x, q.in_shift)
    info = model.meta.setdefault("quantization", {}).setdefault("shifts", {})
    info["searched"] = searched
    info["tolerance"] = tolerance
    return model


def _agreement(model: ClassifierMLP, k: int, x: np.ndarray, shift: int, ref: np.ndarray) -> float:
    """Agreement with ``ref`` of layers ``k..`` run on layer ``k``'s input ``x``, with layer
    ``k`` shifted by ``shift`` and later layers by their own shifts."""
    y = lut_layer(model.layers[k], x, shift)
    for j in range(k + 1, len(model.layers)):
        y = lut_layer(model.layers[j], y, model.quant[j].in_shift)
    return float(np.mean(argmax_lowest(y) == ref))
