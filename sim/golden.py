"""The integer golden model: the one oracle every hardware test compares against.

Integer semantics (DESIGN.md section 2): values are int64 here (the hardware's widths are
inferred so that no value ever exceeds them); comparisons are signed and strict; the layer
input is arithmetic-right-shifted by ``in_shift`` before the comparators (the residual add
uses the unshifted input); argmax ties resolve to the lowest index. Everything is
vectorised over a batch (leading axis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spikelut.compiler.ir import ClassifierMLP, LUTLayer


def lut_indices(layer: LUTLayer, x: np.ndarray, in_shift: int = 0) -> np.ndarray:
    """Row index of every table, shape (B, N_T), for integer inputs ``x`` of shape (B, D).

    Bit ``r`` of ``j[i]`` is 1 iff ``(x >> in_shift)[a[i, r]] > (x >> in_shift)[b[i, r]]``.
    """
    x = np.asarray(x, np.int64) >> in_shift
    bits = x[:, layer.a] > x[:, layer.b]  # (B, N_T, N_C)
    weights = np.left_shift(np.int64(1), np.arange(layer.n_c, dtype=np.int64))
    return (bits.astype(np.int64) * weights).sum(axis=2)


def lut_rows(layer: LUTLayer, indices: np.ndarray) -> np.ndarray:
    """The selected rows, shape (B, N_T, Y), for indices of shape (B, N_T)."""
    return layer.tables[np.arange(layer.n_tables)[None, :], indices].astype(np.int64)


def lut_layer(layer: LUTLayer, x: np.ndarray, in_shift: int = 0) -> np.ndarray:
    """Integer output of one layer, shape (B, Y): sum of selected rows (+ x if residual)."""
    x = np.asarray(x, np.int64)
    y = lut_rows(layer, lut_indices(layer, x, in_shift)).sum(axis=1)
    return y + x if layer.residual else y


def argmax_lowest(values: np.ndarray) -> np.ndarray:
    """Argmax over the last axis; ties resolve to the lowest index (as the hardware does)."""
    return np.argmax(values, axis=-1)  # numpy returns the first maximum


@dataclass
class ClassifierTrace:
    """Everything the golden model computed for a batch, to locate a hardware mismatch.

    ``inputs``: (B, D) integer inputs; ``indices[k]``: (B, N_T) table rows of layer ``k``;
    ``outputs[k]``: (B, Y) accumulated output of layer ``k``; ``predictions``: (B,) argmax
    of the last layer's output.
    """

    inputs: np.ndarray
    indices: list[np.ndarray]
    outputs: list[np.ndarray]
    predictions: np.ndarray

    @property
    def logits(self) -> np.ndarray:
        """The last layer's output, shape (B, n_classes)."""
        return self.outputs[-1]


def run_classifier(model: ClassifierMLP, x_int: np.ndarray) -> ClassifierTrace:
    """Run a quantised classifier on integer inputs of shape (B, D) (see InputEncoding)."""
    if not model.is_integer:
        raise ValueError("the golden model runs quantised (integer) networks; quantize first")
    x = np.atleast_2d(np.asarray(x_int, np.int64))
    inputs = x
    indices, outputs = [], []
    for layer, q in zip(model.layers, model.quant, strict=True):
        j = lut_indices(layer, x, q.in_shift)
        y = lut_rows(layer, j).sum(axis=1)
        if layer.residual:
            y = y + x
        indices.append(j)
        outputs.append(y)
        x = y
    return ClassifierTrace(inputs, indices, outputs, argmax_lowest(x))
