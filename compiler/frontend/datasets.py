"""Classification data sets: by scikit-learn name, from a ``.npz`` or ``.csv`` file, or arrays.

Every data set is split the same fixed way,
``train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)``, so accuracies are
comparable across runs and tools. Labels are mapped to ``0..n_classes-1`` in sorted order of
their original values, which become the class names.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikelut.compiler.errors import UserError

SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer")
DEFAULT_DATASET = "digits"
TEST_SIZE = 0.25
SPLIT_SEED = 0


@dataclass
class Dataset:
    """A data set after the fixed split.

    ``X_*``: float64 arrays (n, n_features); ``y_*``: int64 labels in ``0..n_classes-1``;
    ``class_names[k]`` names label ``k``; ``name`` says where the data came from.
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    name: str

    @property
    def n_features(self) -> int:
        """The number of features per sample."""
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)

    @property
    def split(self) -> dict:
        """The split's description, for a model's training metadata."""
        return {
            "method": "sklearn.model_selection.train_test_split",
            "test_size": TEST_SIZE,
            "random_state": SPLIT_SEED,
            "stratify": True,
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
        }


def load_dataset(source: str | os.PathLike | tuple | None = None) -> Dataset:
    """Load and split a data set.

    ``source`` is a scikit-learn name (``digits``, the default, ``iris``, ``wine``,
    ``breast_cancer``), a path to a ``.npz`` file with arrays ``X`` and ``y`` or to a
    ``.csv`` file whose last column is the label (a header row is optional), or an
    ``(X, y)`` pair of arrays. Raises :class:`UserError` (one line) on bad input.
    """
    if source is None:
        source = DEFAULT_DATASET
    if isinstance(source, tuple):
        if len(source) != 2:
            raise UserError(f"data arrays must be a pair (X, y), not a {len(source)}-tuple")
        X, y, cnames = _labels(*source, what="the (X, y) arrays")
        return _split(X, y, cnames, "arrays")
    text = os.fspath(source)
    if text in SKLEARN_DATASETS:
        X, y, cnames = _from_sklearn(text)
        return _split(X, y, cnames, text)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise UserError(
            f"unknown data set {text!r}; use one of {', '.join(SKLEARN_DATASETS)} "
            "or a .npz (arrays X, y) or .csv (label in the last column) file"
        )
    if not path.is_file():
        raise UserError(f"data file {text!r} not found; check the path")
    X, y, cnames = _from_npz(path) if suffix == ".npz" else _from_csv(path)
    # the path as given (absolute stays absolute): models record it to find the data again
    return _split(X, y, cnames, text)


def _from_sklearn(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    names = [str(n) for n in getattr(bunch, "target_names", np.unique(bunch.target))]
    X, y, _ = _labels(bunch.data, bunch.target, what=name)
    return X, y, names


def _from_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("X", "y") if k not in data.files]
            if missing:
                raise UserError(
                    f"{path}: no array {' or '.join(missing)}; save the file with "
                    "np.savez(path, X=features, y=labels)"
                )
            X, y = data["X"], data["y"]
    except UserError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npz file ({e}); save it with np.savez") from None
    return _labels(X, y, what=str(path))


def _from_csv(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the CSV file ({e})") from None
    if rows and not _all_numbers(rows[0][:-1]):
        rows = rows[1:]  # a header row
    if not rows:
        raise UserError(f"{path}: no data rows; put one sample per row, the label last")
    width = len(rows[0])
    if width < 2:
        raise UserError(f"{path}: rows need at least one feature and a label, not {width} column")
    for n, row in enumerate(rows, 1):
        if len(row) != width:
            raise UserError(
                f"{path}: data row {n} has {len(row)} columns, the first has {width}; "
                "every row needs the same columns"
            )
    try:
        X = np.array([[float(c) for c in r[:-1]] for r in rows], np.float64)
    except ValueError as e:
        raise UserError(
            f"{path}: a feature is not a number ({e}); features must be numeric"
        ) from None
    labels = [r[-1].strip() for r in rows]
    return _labels(X, np.array(labels), what=str(path))


def _all_numbers(cells: list[str]) -> bool:
    try:
        for c in cells:
            float(c)
    except ValueError:
        return False
    return True


_KINDS = {
    "c": "complex numbers",
    "U": "text",
    "S": "bytes",
    "O": "Python objects",
    "M": "dates",
    "m": "time spans",
    "V": "records",
}


def real_features(X, *, what: str) -> np.ndarray:
    """``X`` as a float64 array; :class:`UserError` unless it holds real numbers (booleans,
    integers, floats): complex values would lose their imaginary part, text and objects
    would be parsed or fail half-way."""
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as e:
        raise UserError(f"{what}: features are not numeric ({e})") from None
    if arr.dtype.kind not in "biuf":
        kind = _KINDS.get(arr.dtype.kind, f"dtype {arr.dtype}")
        raise UserError(
            f"{what}: features must be real numbers, not {kind} ({arr.dtype}); convert them first"
        )
    return arr.astype(np.float64, copy=False)


def _labels(X, y, *, what: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate features and map labels to 0..K-1 (sorted by original value)."""
    X = real_features(X, what=what)
    y = np.asarray(y)
    if y.dtype.kind in "cOV":
        raise UserError(
            f"{what}: labels must be integers or text, not {_KINDS[y.dtype.kind]} ({y.dtype})"
        )
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] < 2:
        raise UserError(
            f"{what}: features must be a 2-D array (samples, >= 2 features), not shape {X.shape!r}"
        )
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise UserError(
            f"{what}: labels must be a vector of {X.shape[0]} entries, not shape {y.shape!r}"
        )
    if not np.all(np.isfinite(X)):
        raise UserError(f"{what}: features contain NaN or infinity; clean or impute them first")
    if y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    values, y_idx = np.unique(y, return_inverse=True)
    if len(values) < 2:
        raise UserError(f"{what}: needs at least two classes, found {len(values)}")
    counts = np.bincount(y_idx)
    if counts.min() < 2:
        k = int(np.argmin(counts))
        raise UserError(
            f"{what}: class {str(values[k])!r} has only {counts[k]} sample; the stratified split "
            "needs at least 2 per class"
        )
    return X, y_idx.astype(np.int64), [str(v) for v in values]


def _split(X: np.ndarray, y: np.ndarray, class_names: list[str], name: str) -> Dataset:
    from sklearn.model_selection import train_test_split

    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y
        )
    except ValueError as e:
        raise UserError(
            f"{name}: cannot split the data ({e}); use more samples per class"
        ) from None
    return Dataset(X_train, X_test, y_train, y_test, class_names, name)
