"""What the commands share: loading models with one-line errors, and reading data sets.

Every command loads its model through :func:`load_model_file` (or one of the typed loaders
built on it), so a missing, truncated, corrupt or wrong-kind file gives the same one-line
:class:`~spikelut.compiler.errors.UserError` whichever command read it.
"""

from __future__ import annotations

from typing import Any

from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.datasets import SKLEARN_DATASETS, Dataset, load_dataset
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.ir.modelfile import ModelFileError, load_model
from spikelut.compiler.ir.sequence import SpikingRNN, TransformerLM

__all__ = [
    "dataset_of",
    "load_classifier",
    "load_integer_classifier",
    "load_language_model",
    "load_model_file",
]

LANGUAGE_MODELS = (TransformerLM, SpikingRNN, IntegerRNN, IntegerTransformer)


def load_model_file(path: str) -> Any:
    """Any model from ``path``; UserError naming the file and the problem."""
    try:
        return load_model(path)
    except (ModelFileError, IRError, OSError) as e:
        raise UserError(f"cannot read {path}: {e}") from None


def load_classifier(path: str) -> ClassifierMLP:
    """A float or integer classifier from ``path``, or UserError."""
    model = load_model_file(path)
    if not isinstance(model, ClassifierMLP):
        raise UserError(
            f"{path} holds a {model.ARCH} model, not a classifier "
            "(use `spikelut sample` for language models)"
        )
    return model


def load_integer_classifier(path: str) -> ClassifierMLP:
    """An integer (quantised) classifier from ``path``, or UserError."""
    model = load_model_file(path)
    if not isinstance(model, ClassifierMLP) or not model.is_integer:
        raise UserError(f"{path} is not an integer classifier; run spikelut quantize first")
    return model


def load_language_model(path: str) -> Any:
    """A transformer or RNN language model (float or integer) from ``path``, or UserError."""
    model = load_model_file(path)
    if not isinstance(model, LANGUAGE_MODELS):
        raise UserError(f"{path}: a {model.ARCH} model, not a language model (transformer or rnn)")
    return model


def dataset_of(model: ClassifierMLP, data: str | None, model_path: str) -> Dataset:
    """The data set to evaluate ``model`` on: ``data`` (a name or file) or the one its
    metadata records, checked against the model's features and classes; UserError
    otherwise."""
    source = data or model.meta.get("dataset")
    if not source:
        raise UserError(f"{model_path} records no data set; pass one with --data")
    if data is None and source not in SKLEARN_DATASETS:
        raise UserError(
            f"{model_path} was trained on the file {source!r}; pass its path with --data"
        )
    ds = load_dataset(source)
    if ds.n_features != model.encoding.dim:
        raise UserError(
            f"data set {ds.name} has {ds.n_features} features, the model reads "
            f"{model.encoding.dim}; pass the model's data with --data"
        )
    if ds.n_classes != model.n_classes:
        raise UserError(
            f"data set {ds.name} has {ds.n_classes} classes, the model {model.n_classes}; "
            "pass the model's data with --data"
        )
    return ds
