"""The figures of an ANN-to-LUT conversion: accuracy and agreement on a data split, memory
and operations per inference of both networks."""

from __future__ import annotations

import numpy as np

from spikelut.compiler.frontend.ann import DenseNet
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.operations import (
    ANN_WEIGHT_BITS,
    classifier_operations,
    dense_operations,
    layer_table_bits,
)
from spikelut.compiler.passes.evaluate import int_predict

__all__ = ["conversion_report"]


def conversion_report(
    ann: DenseNet,
    model: ClassifierMLP,
    X: np.ndarray,
    y: np.ndarray | None,
    *,
    int_model: ClassifierMLP | None = None,
    weight_bits: int = ANN_WEIGHT_BITS,
) -> dict:
    """The figures of a conversion on ``(X, y)`` (labels optional): accuracies of the ANN, the
    float and the integer LUT network, agreement with the ANN's predictions, table memory and
    operations per inference against the ANN's multiply-accumulates (``weight_bits`` per ANN
    weight for its memory figures)."""
    ann_pred = ann.predict(X)
    f_pred = model.float_predict(X)
    r: dict = {"n": len(X)}

    def acc(p: np.ndarray) -> float | None:
        return None if y is None else float(np.mean(p == np.asarray(y)))

    r["ann_accuracy"] = acc(ann_pred)
    r["float_accuracy"] = acc(f_pred)
    r["float_agreement"] = float(np.mean(f_pred == ann_pred))
    r["int_accuracy"] = r["int_agreement"] = None
    lut_model = model
    if int_model is not None:
        i_pred = int_predict(int_model, X)
        r["int_accuracy"] = acc(i_pred)
        r["int_agreement"] = float(np.mean(i_pred == ann_pred))
        lut_model = int_model
    lut = classifier_operations(lut_model)["total"]
    dense = dense_operations(
        [layer.W.shape for layer in ann.layers],
        [layer.activation for layer in ann.layers],
        weight_bits=weight_bits,
    )
    r["table_bits"] = layer_table_bits(lut_model)
    r["table_memory_bits"] = lut["table_memory_bits"]
    r["table_bits_read"] = lut["table_bits_read"]
    r["lut_ops"] = lut
    r["ann_ops"] = dense
    r["ann_weight_bits"] = dense["weight_memory_bits"]
    r["ann_bits_read"] = dense["weight_bits_read"]
    r["layers"] = [
        {"in": layer.in_dim, "out": layer.out_dim, "n_tables": layer.n_tables, "n_c": layer.n_c}
        for layer in model.layers
    ]
    return r
