"""Quantisation of a dense ANN for the multiply-accumulate baseline core.

Weights become signed ``weight_bits`` integers at a power-of-two scale per layer (the
largest that clips nothing, :func:`~spikelut.compiler.ir.fixed_point.fit_scale`); hidden
activations are requantised by an arithmetic right shift chosen on calibration data; see
:mod:`spikelut.compiler.ir.mac` for the integer semantics.
"""

from __future__ import annotations

import numpy as np

from spikelut.compiler.ir.classifier import InputEncoding
from spikelut.compiler.ir.fixed_point import fit_scale
from spikelut.compiler.ir.mac import MACLayer, MACNetwork

__all__ = ["quantize_mac"]


def quantize_mac(
    ann,
    encoding: InputEncoding,
    calib_raw: np.ndarray,
    *,
    weight_bits: int = 8,
    act_bits: int = 8,
) -> MACNetwork:
    """Integer MAC network for the float ``ann`` (a DenseNet of relu/identity layers).

    ``encoding`` gives the integer inputs; ``calib_raw`` (B, in_dim) raw calibration
    features choose the hidden layers' shifts. Raises ValueError for other activations.
    """
    calib = encoding.encode_int(np.atleast_2d(calib_raw))
    # the ANN reads raw = x_int / (gain * 2**frac) + offset: fold that into layer 0
    per_unit = 1.0 / (encoding.gain * 2.0**encoding.frac_bits)
    lim = 1 << (encoding.bits - 1)
    in_lo, in_hi = -lim, lim - 1
    x_scale = 0.0  # log2 of the integer input's scale relative to the float one
    layers: list[MACLayer] = []
    x = calib
    n = len(ann.layers)
    for k, (W, b, act, *_) in enumerate(ann.layers):
        last = k == n - 1
        if act not in ("relu", "identity") or (act == "identity" and not last):
            raise ValueError(f"layer {k}: the MAC baseline supports ReLU hidden layers, not {act}")
        W = np.asarray(W, np.float64)
        b = np.asarray(b, np.float64)
        if k == 0:
            b = b + encoding.offset @ W
            W = W * per_unit[:, None]
        s = fit_scale(float(np.max(np.abs(W))), weight_bits)
        wl = 1 << (weight_bits - 1)
        w_q = np.clip(np.rint(W * 2.0**s), -wl, wl - 1).astype(np.int64)
        b_q = np.rint(b * 2.0 ** (s + x_scale)).astype(np.int64)
        acc = x @ w_q + b_q
        shift = 0
        if not last:
            top = max(int(np.max(acc)), 0)
            while (top >> shift) > (1 << act_bits) - 1:
                shift += 1
        layer = MACLayer(w_q, b_q, not last, shift, weight_bits, act_bits, in_lo, in_hi)
        layers.append(layer)
        if not last:
            x = np.minimum(np.maximum(acc, 0) >> shift, (1 << act_bits) - 1)
            x_scale = s + x_scale - shift
            in_lo, in_hi = 0, (1 << act_bits) - 1
    return MACNetwork(encoding, layers)
