"""``spikelut eval MODEL [--data NAME|FILE]``: a classifier's accuracy on the fixed split.

A float classifier runs its float forward pass; a quantised (integer) one the integer golden
model (:mod:`spikelut.compiler.ir.golden`), i.e. exactly what the hardware must compute. The data set
defaults to the one recorded in the model's metadata.
"""

from __future__ import annotations

import argparse

import numpy as np

from spikelut.cli import output
from spikelut.cli.common import dataset_of, load_classifier
from spikelut.compiler.ir.operations import table_memory_bits
from spikelut.compiler.passes.evaluate import predict_labels


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
    output.add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, evaluate, report."""
    model = load_classifier(args.model)
    data = dataset_of(model, args.data, args.model)
    result = {
        "model": str(args.model),
        "kind": "integer" if model.is_integer else "float",
        "dataset": data.name,
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "train_accuracy": float(np.mean(predict_labels(model, data.X_train) == data.y_train)),
        "test_accuracy": float(np.mean(predict_labels(model, data.X_test) == data.y_test)),
        "table_bits": table_memory_bits(model),
    }
    output.emit(args, result, _human)
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
