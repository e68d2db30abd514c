"""The figures of ``spikelut report``: what :func:`collect` computes from the
:class:`~spikelut.compiler.analysis.inputs.ReportInputs`, section by section, as one
JSON-able dict (``None`` where data is missing).

Operation and memory counts come from :mod:`spikelut.compiler.ir.operations` (a LUT network
against the dense ANN of the same layer shapes); device facts from
:data:`~spikelut.compiler.backend.targets.TARGETS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spikelut.compiler.analysis.energy import (
    ELASTICAI_UJ_PER_INFERENCE,
    METHOD,
    METHOD_ACTIVITY,
    build_energy,
)
from spikelut.compiler.analysis.inputs import ReportError, ReportInputs
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.frontend.datasets import SKLEARN_DATASETS, load_dataset
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.operations import classifier_operations, versus_dense
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.widths import infer_widths

__all__ = [
    "RASTER_EXAMPLES",
    "classification_figures",
    "collect",
    "device_memories",
    "energy_figures",
    "layer_figures",
    "resolve_dataset",
    "spike_times",
]

# test examples whose spike order the report draws
RASTER_EXAMPLES = 3


def collect(inputs: ReportInputs, *, data: str | None = None) -> dict:
    """Every figure of the report as a JSON-able dict (``None`` where data is missing);
    ``data`` names the data set to evaluate on (default: the one the model records)."""
    model = inputs.model
    r: dict[str, Any] = {
        "model": str(inputs.model_path),
        "integer": model.is_integer,
        "n_classes": model.n_classes,
        "n_features": model.encoding.dim,
        "input_bits": model.encoding.bits if model.is_integer else None,
        "layers": layer_figures(model),
        "operations": versus_dense(model),
        "classification": classification_figures(inputs, data),
        "manifest": inputs.manifest,
        "build": inputs.build,
        "board": inputs.board,
        "summary": inputs.summary,
        "energy": energy_figures(inputs),
        "files": [str(p) for p in inputs.files],
    }
    if inputs.manifest is not None:
        r["device_memories"] = device_memories(inputs.manifest)
    return r


def layer_figures(model: ClassifierMLP) -> list[dict]:
    """Per layer: shape, comparisons, table memory (a float model's at the dense ANN's
    weight width) and, for an integer model, the inferred widths."""
    widths = infer_widths(model) if model.is_integer else None
    ops = classifier_operations(model)["layers"]
    out = []
    for k, (layer, o) in enumerate(zip(model.layers, ops, strict=True)):
        d = {
            "layer": k,
            "in_dim": layer.in_dim,
            "out_dim": layer.out_dim,
            "n_tables": layer.n_tables,
            "n_c": layer.n_c,
            "rows_per_table": 1 << layer.n_c,
            "comparisons": o["comparisons"],
            "residual": layer.residual,
            "table_bits": o["table_bits"] if model.is_integer else None,
            "table_memory_bits": o["table_memory_bits"],
        }
        if widths is not None:
            w = widths[k]
            d.update(
                in_shift=w.in_shift,
                in_width=w.in_width,
                compare_width=w.compare_width,
                acc_width=w.acc_width,
                out_width=w.out_width,
            )
        out.append(d)
    return out


def resolve_dataset(model: ClassifierMLP, data: str | None):
    """The :class:`~spikelut.compiler.frontend.datasets.Dataset` to evaluate on (``data`` or
    the one the model records) and ``""``, or ``(None, reason)`` when there is none usable."""
    name = data or model.meta.get("dataset")
    if not name:
        return None, "the model records no data set; pass --data NAME"
    if data is None and name not in SKLEARN_DATASETS and not Path(name).exists():
        return None, f"the model's data set {name!r} is not here; pass --data FILE"
    try:
        ds = load_dataset(name)
    except (ValueError, OSError) as e:
        return None, f"cannot load data set {name!r}: {e}"
    if ds.n_features != model.encoding.dim:
        return (
            None,
            f"data set {ds.name} has {ds.n_features} features, the model reads {model.encoding.dim}",
        )
    return ds, ""


def spike_times(x: np.ndarray) -> np.ndarray:
    """Spike latency of every feature of ``x`` (..., D): the rank of its value among the
    distinct values, largest first (time 0); equal values fire together."""
    x = np.asarray(x)
    out = np.empty(x.shape, np.int64)
    for idx in np.ndindex(x.shape[:-1]):
        row = x[idx]
        distinct = np.unique(row)[::-1]
        out[idx] = np.searchsorted(-distinct, -row)
    return out


def classification_figures(inputs: ReportInputs, data: str | None) -> dict:
    """Accuracies, the confusion matrix (integer model via the golden model, else float)
    and the spike-time rows of the first test examples, or ``{"missing": reason}``."""
    model = inputs.model
    ds, reason = resolve_dataset(model, data)
    if ds is None:
        return {"missing": reason}
    X, y = ds.X_test, ds.y_test
    pred = int_predict(model, X) if model.is_integer else model.float_predict(X)
    k = model.n_classes
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)
    out = {
        "data": ds.name,
        "n": len(y),
        "which": "integer (golden model)" if model.is_integer else "float",
        "accuracy": float(np.mean(pred == y)),
        "confusion": cm.tolist(),
        "class_names": list(model.class_names or [str(c) for c in range(k)]),
    }
    if model.is_integer:
        out["int_accuracy"] = out["accuracy"]
        if inputs.float_model is not None:
            out["float_accuracy"] = float(np.mean(inputs.float_model.float_predict(X) == y))
    else:
        out["float_accuracy"] = out["accuracy"]
    feats = model.encoding.encode_int(X) if model.is_integer else model.encoding.encode_float(X)
    out["raster"] = _raster_rows(feats, y, pred, out["class_names"])
    return out


def _raster_rows(feats: np.ndarray, y: np.ndarray, pred: np.ndarray, names: list) -> list[dict]:
    """The spike times, true and predicted class of the first :data:`RASTER_EXAMPLES`."""
    return [
        {
            "index": i,
            "label": names[int(y[i])],
            "predicted": names[int(pred[i])],
            "times": spike_times(feats[i]).tolist(),
        }
        for i in range(min(RASTER_EXAMPLES, len(y)))
    ]


def device_memories(manifest: dict) -> tuple[int, int, int] | None:
    """``(block RAMs, SPRAMs, logic cells)`` of the manifest's target device, or None for
    an unknown target."""
    target = TARGETS.get(manifest.get("target", ""))
    if target is None:
        return None
    return target.block_rams, target.sprams, target.logic_cells


def energy_figures(inputs: ReportInputs) -> dict | None:
    """Energy per inference: the board build's estimate from its cells
    (:func:`~spikelut.compiler.analysis.energy.build_energy` of its ``board.json``, under
    ``"build"``) and the builds of an ``energy.json`` (``bench/energy_per_inference.py
    --json``: e.g. the LUT core and the MAC core from simulated switching, under
    ``"compared"``), with both methods; None without either."""
    if inputs.board is None and inputs.energy is None:
        return None
    compared = (inputs.energy or {}).get("builds")
    if compared is not None and not isinstance(compared, list):
        raise ReportError(f"{inputs.energy_path}: 'builds' is not a list; write it again with "
                          "python bench/energy_per_inference.py ... --json FILE")  # fmt: skip
    return {
        "build": None if inputs.board is None else build_energy(inputs.board),
        "compared": compared,
        "method": METHOD,
        "method_activity": METHOD_ACTIVITY,
        "elasticai_uj": ELASTICAI_UJ_PER_INFERENCE,
    }
