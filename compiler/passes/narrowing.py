"""Explicit input narrowing: an arithmetic right shift of a layer's input before its comparators,
and centring non-negative integer inputs one bit narrower.

Only the order of a layer's inputs matters, so dropping low bits narrows the comparators at
the price of ties (a tie reads as bit 0), which can change results. A shift is therefore
always an explicit choice: given by the user, or searched here against calibration data,
and recorded in the model's ``LayerQuant.in_shift`` and ``meta["quantization"]["shifts"]``.
Centring (:func:`centre_inputs`) changes no comparison: it moves every input by the same
power of two, so the signed inputs use the bit a non-negative range left unused.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.golden import argmax_lowest, lut_layer
from spikelut.compiler.passes.widths import infer_widths

__all__ = ["apply_shifts", "centre_inputs", "search_shifts"]


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


def centre_inputs(model: ClassifierMLP) -> ClassifierMLP:
    """A copy of an integer classifier whose non-negative integer inputs are centred one bit
    narrower, every comparison, table row and output unchanged for raw inputs >= 0.

    For the encoding small non-negative integer features get (offset 0, gain 1, frac_bits 0,
    ``b`` bits: the network sees ``0 .. 2**(b-1) - 1``, the sign bit unused): the offset
    becomes ``h = 2**(b-2)`` and the width ``b - 1``, so the network sees ``raw - h`` in the
    signed ``b - 1``-bit range, and the constant inputs move by ``-h`` too. A common offset
    keeps the order of the inputs, and ``h`` is a multiple of ``2**s`` for layer 0's input
    shift ``s <= b - 2``, so the shifted comparisons are unchanged as well (digits pixels:
    6 bits become 5; clipped at 15, 5 become 4). The one difference: a raw input below 0,
    outside that range, reads as 0 (it read as itself, down to ``-2**(b-1)``). Raises
    ``ValueError`` naming why when the model is not of that form."""
    enc = model.encoding
    if not model.is_integer:
        raise ValueError("centring applies to a quantised (integer) network")
    if enc.frac_bits != 0 or np.any(enc.gain != 1) or np.any(enc.offset != 0):
        raise ValueError(
            "centring applies to non-negative integer features encoded as they are (offset "
            "0, gain 1, no fraction bits); these inputs are standardised"
        )
    if enc.bits < 3:
        raise ValueError(f"the inputs are {enc.bits} bits wide; centring needs at least 3")
    if model.layers[0].residual:
        raise ValueError("layer 0 adds its input to its output (residual): an offset shows")
    half = 1 << (enc.bits - 2)
    if model.quant[0].in_shift > enc.bits - 2:
        raise ValueError(
            f"layer 0 shifts its {enc.bits}-bit input by {model.quant[0].in_shift}; centring "
            f"keeps the comparisons only for shifts up to {enc.bits - 2}"
        )
    encoding = dataclasses.replace(
        enc, offset=enc.offset + half, bits=enc.bits - 1, constants=enc.constants - half
    )
    meta = copy.deepcopy(model.meta)
    info = meta.setdefault("quantization", {})
    info["centred_inputs"] = {"offset": half, "bits": enc.bits - 1}
    if "input" in info:
        info["input"]["bits"] = enc.bits - 1
    return dataclasses.replace(model, encoding=encoding, meta=meta)


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
