"""What the commands share: loading models with one-line errors, reading data sets, checking
the files a command writes, and the argparse types of numeric options.

Every command loads its model through :func:`load_model_file` (or one of the typed loaders
built on it), so a missing, truncated, corrupt or wrong-kind file gives the same one-line
:class:`~spikelut.compiler.errors.UserError` whichever command read it. Every command that
writes files calls :func:`check_outputs` with its inputs and outputs before it starts: no
command overwrites one of its inputs, and an output that cannot be written is refused before
any work is done.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.ann import ANNError, DenseNet, load_ann
from spikelut.compiler.frontend.datasets import SKLEARN_DATASETS, Dataset, load_dataset
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.integer_sequence import (
    INTEGER_LANGUAGE_MODELS,
    IntegerRNN,
    IntegerTransformer,
)
from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.ir.modelfile import ModelFileError, load_model
from spikelut.compiler.ir.sequence import SpikingRNN, TransformerLM

__all__ = [
    "PICKLE_SUFFIXES",
    "add_board_core_flag",
    "check_outputs",
    "check_pickle_trusted",
    "dataset_of",
    "finite_float",
    "load_ann_file",
    "load_board_model",
    "load_classifier",
    "load_integer_classifier",
    "load_language_model",
    "load_model_file",
    "non_negative_float",
    "non_negative_int",
    "nonzero_seed",
    "positive_float",
    "positive_int",
    "same_path",
    "seed_int",
    "utf8_text",
]

LANGUAGE_MODELS = (TransformerLM, SpikingRNN, *INTEGER_LANGUAGE_MODELS)


def load_model_file(path: str) -> Any:
    """Any model from ``path``; UserError naming the file and the problem."""
    if not os.fspath(path):
        raise UserError("the model file name is empty; give a .lutnet file")
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


def load_board_model(path: str) -> ClassifierMLP | IntegerRNN | IntegerTransformer:
    """What a board runs, from ``path``: an integer classifier or an integer language model
    (spiking RNN or transformer), or UserError."""
    model = load_model_file(path)
    if isinstance(model, INTEGER_LANGUAGE_MODELS) or (
        isinstance(model, ClassifierMLP) and model.is_integer
    ):
        return model
    if isinstance(model, ClassifierMLP | SpikingRNN | TransformerLM):
        raise UserError(f"{path} is not an integer model; run spikelut quantize first")
    raise UserError(
        f"{path}: a {model.ARCH} model; a board runs an integer classifier or language model"
    )


def load_language_model(path: str) -> Any:
    """A transformer or RNN language model (float or integer) from ``path``, or UserError."""
    model = load_model_file(path)
    if not isinstance(model, LANGUAGE_MODELS):
        raise UserError(f"{path}: a {model.ARCH} model, not a language model (transformer or rnn)")
    return model


# -- the files a command writes -------------------------------------------------------------


def same_path(a: str | os.PathLike | None, b: str | os.PathLike | None) -> bool:
    """True when ``a`` and ``b`` name the same file (existing or not); False for None."""
    if a is None or b is None:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _within(path: str, directory: str) -> bool:
    """True when ``path`` is ``directory`` or lies somewhere below it."""
    p, d = os.path.realpath(path), os.path.realpath(directory)
    return p == d or p.startswith(d.rstrip(os.sep) + os.sep)


def _check_writable(flag: str, path: str) -> None:
    """UserError unless a file or directory can be created at ``path``: its nearest existing
    ancestor must be a directory in which a file can be made (tried with an unnamed
    temporary file, so nothing is left behind)."""
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {flag} {path}: {parent} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UserError(
            f"cannot write {flag} {path}: cannot create files in {parent} ({reason}); "
            "choose another place"
        ) from None


def check_outputs(
    inputs: Iterable[str | os.PathLike | None],
    files: dict[str, str | os.PathLike | None] | None = None,
    dirs: dict[str, str | os.PathLike | None] | None = None,
) -> None:
    """Refuse, with one line, outputs that would overwrite an input or cannot be written.

    ``inputs``: the files and directories the command reads; ``files``: the files it writes
    and ``dirs`` the directories it writes into, keyed by the option that names them
    (``{"-o": path}``); None entries, and inputs that do not exist (data set names), are
    skipped. An output may not be empty; an output file may not be an input, an
    existing directory or another output; an output directory may not be an existing file,
    an input or hold an input; every output's place must be writable. Call it before any
    work is done.
    """
    ins = [os.fspath(i) for i in inputs if i is not None and os.path.exists(i)]
    outs: list[tuple[str, str, bool]] = [
        (flag, os.fspath(path), is_dir)
        for group, is_dir in ((files or {}, False), (dirs or {}, True))
        for flag, path in group.items()
        if path is not None
    ]
    for n, (flag, out, is_dir) in enumerate(outs):
        if not out:
            what = "directory" if is_dir else "file name"
            raise UserError(f"{flag} is empty; give a {what}")
        for inp in ins:
            if same_path(out, inp):
                raise UserError(
                    f"{flag} {out} is the input {inp}; write to another "
                    f"{'directory' if is_dir else 'file'} (spikelut never overwrites its inputs)"
                )
            if is_dir and _within(inp, out):
                raise UserError(
                    f"{flag} {out} holds the input {inp}; write to a directory that holds "
                    "none of the inputs"
                )
        for other_flag, other, _ in outs[:n]:
            if same_path(out, other):
                raise UserError(f"{other_flag} and {flag} both name {out}; give each its own path")
        if is_dir and os.path.exists(out) and not os.path.isdir(out):
            raise UserError(f"{flag} {out} is a file, not a directory; give a directory")
        if not is_dir and os.path.isdir(out):
            raise UserError(f"{flag} {out} is a directory; give a file name")
        _check_writable(flag, out)


# -- pickled ANN files --------------------------------------------------------------------

# the ANN formats :func:`~spikelut.compiler.frontend.ann.load_ann` reads by unpickling
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth")

TRUST_PICKLE_HELP = (
    "load a pickled ANN (.pkl, .pickle, .joblib, .pt, .pth): unpickling runs any code the "
    "file holds, so give this only for files you trust"
)


def check_pickle_trusted(path: str | os.PathLike, trusted: bool) -> None:
    """UserError when ``path`` is a pickle and the user did not opt in with --trust-pickle."""
    if not trusted and Path(path).suffix.lower() in PICKLE_SUFFIXES:
        raise UserError(
            f"{path} is a pickle, and loading one runs any code it holds; pass --trust-pickle "
            "if you trust this file (or export the network to ONNX)"
        )


def load_ann_file(path: str | os.PathLike, trusted: bool) -> DenseNet:
    """The ANN in ``path`` (pickles only with ``trusted``), or UserError."""
    check_pickle_trusted(path, trusted)
    try:
        return load_ann(path)
    except ANNError as e:
        raise UserError(str(e)) from None


# -- argparse types of numeric options ----------------------------------------------------


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def finite_float(text: str) -> float:
    """argparse type: a finite float (no NaN, no infinity)."""
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0."""
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, not {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {text!r}")
    return value


def utf8_text(text: str) -> str:
    """argparse type: text that is UTF-8 (command-line bytes that are not arrive as lone
    surrogates, which cannot be encoded)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not UTF-8 text") from None
    return text


MAX_SEED = 2**32 - 1


def seed_int(text: str) -> int:
    """argparse type: a random seed, 0..2**32-1 (what every random generator used accepts)."""
    value = _number(text, int)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..{MAX_SEED}, not {text!r}")
    return value


def nonzero_seed(text: str) -> int:
    """argparse type: the seed of a hardware random source, 1..2**32-1 (xorshift's state
    cannot be 0)."""
    value = seed_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_SEED} (0 is xorshift's fixed point)")
    return value


def dataset_of(model: ClassifierMLP, data: str | None, model_path: str) -> Dataset:
    """The data set to evaluate ``model`` on: ``data`` (a name or file) or the one its
    metadata records, checked against the model's features and classes; UserError
    otherwise."""
    source = data or model.meta.get("dataset")
    if not source:
        raise UserError(f"{model_path} records no data set; pass one with --data")
    if data is None and source not in SKLEARN_DATASETS and not os.path.isfile(source):
        raise UserError(
            f"{model_path} was trained on the file {source!r}, which is not there; pass its "
            "path with --data"
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


# the core kinds a board's host link can drive (it sends whole vectors: no temporal core)
BOARD_CORES = ("auto", "parallel", "serial", "frozen")


def add_board_core_flag(p: argparse.ArgumentParser, what: str) -> None:
    """Add ``--core`` (alias ``--indexer``, dest ``indexer``) choosing a board design's core
    kind; ``what`` says where it applies (e.g. ``"--port sim"``)."""
    p.add_argument(
        "--core",
        "--indexer",
        dest="indexer",
        choices=BOARD_CORES,
        default="auto",
        help=f"{what}: comparators all at once, or a few per clock at the same table rate, or "
        "every table in logic, one inference per clock, not reloadable (frozen) (auto: "
        "whichever of parallel and serial the logic estimate finds smaller)",
    )
