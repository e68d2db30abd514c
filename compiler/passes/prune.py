"""Pruning per output: each class keeps the tables whose column pays for its logic.

In the frozen core (:mod:`spikelut.hdl.frozen`) every output column is its own adder tree
over the tables whose column in it varies; a constant column costs no adder and no table
logic. So the last layer's class ``c`` keeps ``K`` tables: the ones whose column moves its
logit most on the calibration data (the standard deviation over samples of
``T[t, j_t(x), c]``); every other table's column ``c`` becomes 0. A table that no class keeps
is removed whole, with its comparators. The kept entries are then fine-tuned with the
pruned ones held at 0 (:func:`~spikelut.compiler.train.classifier.fine_tune_classifier`).
Pruning runs in ``rounds``, the number kept shrinking geometrically from ``N_T`` to ``K``,
importance re-measured and the network fine-tuned after each.

This is a pass on the float network, before quantisation: a pruned column is exactly 0, so
it quantises to 0, and the golden model, the hardware and every other core compute the same
sums as before (bit-exactness does not depend on pruning).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.lut import comparisons, indices_from_u
from spikelut.compiler.passes.scales import QuantizeError
from spikelut.compiler.train.classifier import fine_tune_classifier

__all__ = ["DEFAULT_PRUNE_EPOCHS", "DEFAULT_PRUNE_ROUNDS", "column_importance", "prune_classifier"]

DEFAULT_PRUNE_EPOCHS = 10
DEFAULT_PRUNE_ROUNDS = 3


def column_importance(model: ClassifierMLP, X: np.ndarray) -> np.ndarray:
    """(N_T, Y) of the last layer: the standard deviation over the samples of raw features
    ``X`` of what table ``t`` adds to output ``c`` (0 for a constant column), the inputs
    as the model's float forward pass sees them."""
    h = model.encoding.encode_float(X, model.float_in_shift)
    for layer in model.layers[:-1]:
        h = layer.forward(h)
    last = model.layers[-1]
    j = indices_from_u(comparisons(last, last.as_input(h)))  # (B, N_T)
    rows = last.tables[np.arange(last.n_tables), j]  # (B, N_T, Y)
    return rows.astype(np.float64).std(axis=0)


def _keep_schedule(n_tables: int, keep: int, rounds: int) -> list[int]:
    """Kept-per-class counts of each round, geometric from ``n_tables`` down to ``keep``."""
    ratio = keep / n_tables
    counts = [max(keep, round(n_tables * ratio ** ((r + 1) / rounds))) for r in range(rounds)]
    counts[-1] = keep
    return counts


def prune_classifier(
    model: ClassifierMLP,
    X: np.ndarray,
    y: np.ndarray,
    *,
    keep: int,
    epochs: int = DEFAULT_PRUNE_EPOCHS,
    rounds: int = DEFAULT_PRUNE_ROUNDS,
    seed: int = 0,
) -> ClassifierMLP:
    """The float classifier with each class of its last layer summing at most ``keep``
    tables (see the module docstring). ``X``, ``y``: the raw features and labels the model
    is trained on (the training split; never the test split); ``epochs``: fine-tuning epochs
    in all, spread over ``rounds`` (0 epochs: prune only). A network trained for an input
    shift (``train_classifier(in_shift=...)``) is measured and fine-tuned on its inputs so.
    Raises :class:`QuantizeError` naming a bad argument. ``meta["pruning"]`` records the
    kept tables per class."""
    if model.is_integer:
        raise QuantizeError("pruning works on the float network; give its float original")
    n_t = model.layers[-1].n_tables
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= n_t:
        raise QuantizeError(
            f"cannot keep {keep!r} tables per class: the last layer has {n_t}; give 1..{n_t}"
        )
    if epochs < 0 or rounds < 1:
        raise QuantizeError(f"pruning needs epochs >= 0 and rounds >= 1, not {epochs}, {rounds}")
    pruned = np.zeros((n_t, model.n_classes), bool)
    schedule = _keep_schedule(n_t, keep, rounds)
    for r, count in enumerate(schedule):
        score = np.where(pruned, -1.0, column_importance(model, X))
        order = np.argsort(-score, axis=0, kind="stable")  # (N_T, Y), best first
        np.put_along_axis(pruned, order[count:], True, axis=0)
        last = model.layers[-1]
        tables = np.where(pruned[:, None, :], 0, last.tables).astype(last.tables.dtype)
        model = dataclasses.replace(model, layers=[*model.layers[:-1], last.with_tables(tables)])
        share = epochs // rounds + (1 if r < epochs % rounds else 0)
        if share:
            fixed = [None] * (len(model.layers) - 1) + [pruned]
            model = fine_tune_classifier(model, X, y, fixed=fixed, epochs=share, seed=seed + r)
    used = ~pruned.all(axis=1)
    last = model.layers[-1]
    last = dataclasses.replace(last, a=last.a[used], b=last.b[used], tables=last.tables[used])
    kept = [np.flatnonzero(used & ~pruned[:, c]).tolist() for c in range(model.n_classes)]
    meta = dict(model.meta)
    meta["pruning"] = {
        "keep_per_class": keep,
        "tables_before": n_t,
        "tables_after": int(used.sum()),
        "schedule": schedule,
        "epochs": epochs,
        "in_shift": model.float_in_shift,
        "kept": kept,
    }
    return dataclasses.replace(model, layers=[*model.layers[:-1], last], meta=meta)
