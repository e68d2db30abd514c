"""``spikelut eval MODEL [--data NAME|FILE]``: a classifier's accuracy on the fixed split.

A float classifier runs on the float engine; a quantised (integer) one on the integer golden
model (``spikelut.sim.golden``), i.e. exactly what the hardware must compute. The data set
defaults to the one recorded in the model's metadata.
"""

from __future__ import annotations

import argparse

import numpy as np

from . import report_out
from .datasets import SKLEARN_DATASETS, load_dataset
from .errors import UserError
from .ir import ClassifierMLP
from .modelfile import ModelFileError, load_model
from .train_classifier import predict, table_bits


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``spikelut eval``."""
    p = sub.add_parser(
        "eval",
        help="accuracy of a classifier on its data set's fixed split",
        description="Evaluate a float or quantised LUT classifier on the fixed 75/25 split.",
    )
    p.add_argument("model", help="classifier model file (.lutnet)")
    p.add_argument(
        "--data",
        default=None,
        metavar="NAME|FILE",
        help="data set (default: the one recorded in the model)",
    )
    report_out.add_json_flag(p)
    p.set_defaults(func=run)


def classifier_predict(model: ClassifierMLP, X: np.ndarray) -> np.ndarray:
    """Labels predicted for raw features: float engine, or the golden model when integer."""
    if model.is_integer:
        from spikelut.sim.golden import run_classifier

        return run_classifier(model, model.encoding.encode_int(X)).predictions
    return predict(model, X)


def run(args: argparse.Namespace) -> int:
    """Load, evaluate, report."""
    try:
        model = load_model(args.model)
    except ModelFileError as e:
        raise UserError(str(e)) from None
    if not isinstance(model, ClassifierMLP):
        raise UserError(
            f"{args.model} holds a {model.ARCH} model; eval takes classifiers "
            "(use `spikelut sample` for language models)"
        )
    source = args.data or model.meta.get("dataset")
    if not source:
        raise UserError(f"{args.model} records no data set; pass one with --data")
    if args.data is None and source not in SKLEARN_DATASETS:
        raise UserError(
            f"{args.model} was trained on the file {source!r}; pass its path with --data"
        )
    data = load_dataset(source)
    if data.n_features != model.encoding.dim:
        raise UserError(
            f"data set {data.name} has {data.n_features} features, the model reads "
            f"{model.encoding.dim}; pass the model's data with --data"
        )
    if data.n_classes != model.n_classes:
        raise UserError(
            f"data set {data.name} has {data.n_classes} classes, the model {model.n_classes}; "
            "pass the model's data with --data"
        )
    result = {
        "model": str(args.model),
        "kind": "integer" if model.is_integer else "float",
        "dataset": data.name,
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "train_accuracy": float(np.mean(classifier_predict(model, data.X_train) == data.y_train)),
        "test_accuracy": float(np.mean(classifier_predict(model, data.X_test) == data.y_test)),
        "table_bits": table_bits(model),
    }
    report_out.emit(args, result, _human)
    return 0


def _human(r: dict) -> str:
    return "\n".join(
        [
            f"model          {r['model']} ({r['kind']})",
            f"data           {r['dataset']} ({r['n_train']} train / {r['n_test']} test)",
            f"train accuracy {100 * r['train_accuracy']:.2f}%",
            f"test accuracy  {100 * r['test_accuracy']:.2f}%",
            f"table memory   {r['table_bits']} bits",
        ]
    )
