"""Choosing how a data set's raw features become a network's integer inputs.

Comparisons only see the order of values within a layer's input, so features of different
units must be made comparable first: small non-negative integers (pixels) are used as they
are; anything else is standardised per feature on the training split. Optionally the
encoding appends constant inputs (thresholds), so that the first layer can compare a feature
with a constant as well as with another feature.
"""

from __future__ import annotations

import numpy as np

from spikelut.compiler.ir.classifier import InputEncoding

__all__ = ["REAL_CLIP_SIGMAS", "REAL_CONSTANT_SIGMAS", "REAL_FRAC_BITS", "choose_encoding"]


# Integer encoding of standardised real-valued features: 1/32 of a standard deviation
# resolution, clipped at +-8 standard deviations (10-bit signed).
REAL_FRAC_BITS = 5
REAL_CLIP_SIGMAS = 8
# Constant inputs of standardised features span +-1.5 standard deviations.
REAL_CONSTANT_SIGMAS = 1.5


def choose_encoding(X_train: np.ndarray, *, constants: int = 0) -> InputEncoding:
    """The input encoding for raw training features ``X_train`` (n, D).

    Small non-negative integer features (such as digits pixels 0..16) are used as they are
    (offset 0, gain 1, frac_bits 0, the narrowest signed width holding the maximum), so the
    integer network sees the pixels unchanged. Anything else is standardised per feature
    from the training set (zero mean, unit standard deviation; a constant feature gets gain
    1) and encoded with ``REAL_FRAC_BITS`` fractional bits, clipped at
    ``REAL_CLIP_SIGMAS`` standard deviations.

    ``constants``: that many constant inputs after the features, evenly spaced: within
    +-``REAL_CONSTANT_SIGMAS`` standard deviations for standardised features, strictly inside
    the range of small integer features (rounded to integers there).
    """
    X = np.asarray(X_train, np.float64)
    dim = X.shape[1]
    if np.all(np.round(X) == X) and X.min() >= 0 and X.max() < (1 << 15):
        bits = max(2, int(X.max()).bit_length() + 1)
        lo, hi = float(X.min()), float(X.max())
        consts = np.unique(np.rint(np.linspace(lo, hi, constants + 2)[1:-1])) if constants else ()
        return InputEncoding(
            offset=np.zeros(dim), gain=np.ones(dim), bits=bits, frac_bits=0, constants=consts
        )
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    gain = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 1.0)
    bits = (REAL_CLIP_SIGMAS << REAL_FRAC_BITS).bit_length() + 1
    consts = (
        np.linspace(-REAL_CONSTANT_SIGMAS, REAL_CONSTANT_SIGMAS, constants) if constants else ()
    )
    if constants == 1:
        consts = np.zeros(1)
    return InputEncoding(
        offset=mean, gain=gain, bits=bits, frac_bits=REAL_FRAC_BITS, constants=consts
    )
