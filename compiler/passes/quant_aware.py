"""Quantisation-aware fine-tuning: the float tables learn through the integer tables.

:func:`quantize_classifier` rounds every entry of a trained network to its layer's grid;
the rounding is what the integer network loses (most at 2-3 bits, and most of all at a grid
*coarser* than the tables' range asks for). Here the scales are chosen first (by
:func:`quantize_classifier`, then ``coarsen`` powers of two coarser), the float network is
fine-tuned with its forward pass reading the tables as they will be quantised (the rows'
moves added to the float tables: the straight-through rule,
:func:`~spikelut.compiler.train.classifier.fine_tune_classifier` with ``grid``), and
quantised again at exactly those scales.

Why coarser: a frozen core (:mod:`spikelut.hdl.frozen`) spends logic on every table bit
that varies and on every adder bit, so a grid with fewer levels (more entries exactly 0,
narrower sums) is a smaller core; fine-tuned on that grid, the network recovers most of the
accuracy the coarse rounding cost. Bit-exactness is untouched: the result is an ordinary
integer network, run by the golden model and the hardware as any other.
"""

from __future__ import annotations

import numpy as np

from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.passes.scales import QuantizeError
from spikelut.compiler.train.classifier import fine_tune_classifier

__all__ = ["quantize_aware"]


def quantize_aware(
    model: ClassifierMLP,
    X: np.ndarray,
    y: np.ndarray,
    *,
    table_bits: int,
    epochs: int,
    coarsen: int = 0,
    shifts: dict[int, int] | None = None,
    search_shift: bool = False,
    seed: int = 0,
    **quantize_options,
) -> ClassifierMLP:
    """The integer network of float ``model`` after ``epochs`` of quantisation-aware
    fine-tuning on raw features ``X`` and labels ``y`` (the training split, never the test
    split), at the scales :func:`quantize_classifier` chooses on ``X`` made ``coarsen``
    powers of two coarser (0: the same). Every all-zero column of a layer (a pruned one,
    :func:`~spikelut.compiler.passes.prune.prune_classifier`) stays 0. ``shifts`` and
    ``search_shift`` as in :func:`quantize_classifier` (the searched shifts are kept for the
    fine-tuning and the final pass); other keywords go to both quantisations.
    ``meta["quantization"]["aware"]`` records the run. Raises :class:`QuantizeError` for a
    bad argument."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise QuantizeError(f"quantisation-aware epochs must be >= 0, not {epochs!r}")
    if isinstance(coarsen, bool) or not isinstance(coarsen, int) or coarsen < 0:
        raise QuantizeError(f"coarsen must be 0 or more powers of two, not {coarsen!r}")
    first = quantize_classifier(
        model, table_bits=table_bits, calib_raw=X, shifts=shifts, search_shift=search_shift,
        **quantize_options,
    )  # fmt: skip
    # every layer's scale, its group's (a group starts where a residual chain does)
    layer_scales = [q.out_scale_log2 - coarsen for q in first.quant]
    starts = [g["layers"][0] for g in first.meta["quantization"]["groups"]]
    scales = {k: layer_scales[k] for k in starts}
    used_shifts = {k: q.in_shift for k, q in enumerate(first.quant) if q.in_shift}
    tuned = model
    if epochs:
        grid = [(s, table_bits) for s in layer_scales]
        fixed = [(layer.tables == 0).all(axis=1) for layer in model.layers]
        tuned = fine_tune_classifier(model, X, y, fixed=fixed, epochs=epochs, seed=seed, grid=grid)
    qmodel = quantize_classifier(
        tuned, table_bits=table_bits, calib_raw=X, shifts=used_shifts, fixed_scales=scales,
        **quantize_options,
    )  # fmt: skip
    qmodel.meta["quantization"]["aware"] = {
        "epochs": epochs,
        "coarsen": coarsen,
        "scales_log2": {str(k): v for k, v in scales.items()},
        "chosen_scales_log2": {str(k): first.quant[k].out_scale_log2 for k in starts},
    }
    if first.meta["quantization"]["shifts"]["searched"]:
        qmodel.meta["quantization"]["shifts"] = first.meta["quantization"]["shifts"]
    return qmodel
