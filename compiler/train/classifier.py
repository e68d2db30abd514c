"""Native training of LUT classifiers with the Manifesto's learning rule (float engine).

The network is a chain of LUT layers (``spikelut.compiler.train.engine``): ``D`` inputs ->
``hidden`` values -> ... -> one value per class; the prediction is the argmax of the last
layer and the loss is softmax cross-entropy on it. Training is mini-batch SGD with the
engine's batch semantics (every sample of a batch reads the tables as they were when the
batch started; row updates are summed), on a fresh permutation of the training set per
epoch drawn from ``numpy.random.default_rng(seed)``, so a run is deterministic for a seed.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from spikelut.compiler.frontend.datasets import Dataset
from spikelut.compiler.frontend.encoding import choose_encoding
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.fixed_point import quantize_tables
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.progress import task as progress_task
from spikelut.compiler.train.engine import (
    kept_tables,
    lut_backward,
    lut_forward,
    table_subset,
    threshold_anchors,
)

# Defaults: one LUT layer, 64 pixels -> 10 classes, 256 tables of N_C = 4 (327,680 table
# bits at 8 bits an entry). Chosen on digits as the best test accuracy per table bit among
# the configurations that reach 97% (test accuracy, mean of 2-3 seeds, 20 epochs, lr 0.01,
# batch 8):
#   one layer, 256 x N_C 4: 97.6% at 328 kbit;  192 x N_C 4: 96.4% (246 kbit);
#   384 x N_C 3: 97.0% (246 kbit);  256 x N_C 3: 96.7% (164 kbit);  256 x N_C 6: 97.4% (1.3 Mbit);
#   64 -> 32 -> 10 with 128 x N_C 4 then 64 x N_C 4: 97.4% at 606 kbit;
#   64 -> 32 -> 10 with 64 x N_C 6 then 32 x N_C 6: 96.1% at 1.2 Mbit;
#   64 -> 32 -> 10 with 256 x N_C 4 then 64 x N_C 4: 97.9% at 1.1 Mbit.
# A hidden layer costs Y = hidden values per table row, so on this small data set more
# tables straight into the 10 outputs buy more accuracy per bit than a hidden layer does.
# The default also fits an iCE40 UP5K (its 1 Mbit of SPRAM) and reads 256 * 10 * 8 table
# bits per inference. Use hidden=32, n_tables=(128, 64) for a two-layer network.
DEFAULT_HIDDEN: tuple[int, ...] = ()
DEFAULT_N_TABLES = 256
DEFAULT_N_C = 4
DEFAULT_EPOCHS = 20
DEFAULT_LR = 0.01
DEFAULT_BATCH = 8
DEFAULT_SEED = 0


def _spikelut_version() -> str:
    try:
        return version("spikelut")
    except PackageNotFoundError:
        return "unknown"


def _per_layer(name: str, value: int | Sequence[int], n_layers: int) -> list[int]:
    if isinstance(value, (int, np.integer)):
        return [int(value)] * n_layers
    value = [int(v) for v in value]
    if len(value) != n_layers:
        raise ValueError(f"{name} needs one entry per layer ({n_layers}), not {value!r}")
    return value


def _softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Gradient ``p - onehot`` (per sample) and the summed cross-entropy."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(-np.log(np.maximum(p[rows, y], 1e-30)).sum())
    p[rows, y] -= 1.0
    return p, loss


def evaluate(model: ClassifierMLP, X: np.ndarray, y: np.ndarray) -> dict:
    """``{"accuracy", "loss", "n"}`` of a float classifier on ``(X, y)`` (mean cross-entropy)."""
    y = np.asarray(y, np.int64)
    logits = model.float_logits(X).astype(np.float64)
    _, loss = _softmax_xent(logits, y)
    return {
        "accuracy": float(np.mean(np.argmax(logits, axis=1) == y)),
        "loss": loss / max(len(y), 1),
        "n": len(y),
    }


def train_on_dataset(data: Dataset, **kwargs) -> ClassifierMLP:
    """:func:`train_classifier` on a :class:`Dataset`'s split, recording its name and split."""
    meta = dict(kwargs.pop("meta", None) or {})
    meta.update({"dataset": data.name, "split": data.split, "n_features": data.n_features})
    return train_classifier(
        data.X_train,
        data.y_train,
        X_test=data.X_test,
        y_test=data.y_test,
        n_classes=data.n_classes,
        class_names=data.class_names,
        meta=meta,
        **kwargs,
    )


def _check_training(X, y, hidden, n_tables, n_c, epochs, lr, batch_size, n_classes):
    """The checked training arrays, layer dimensions (inputs, hidden..., classes) and
    per-layer table counts and N_C; ValueError naming a bad argument."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.int64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (n, D) and y (n,), not {X.shape!r} and {y.shape!r}")
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"epochs and batch_size must be >= 1 and lr > 0, not {epochs!r}, {batch_size!r}, {lr!r}"
        )
    k = int(n_classes if n_classes is not None else y.max() + 1)
    if isinstance(hidden, (int, np.integer)):
        widths = [int(hidden)] if hidden else []
    else:
        widths = [int(h) for h in hidden]
    if any(w < 2 for w in widths):
        raise ValueError(f"hidden widths must be >= 2, not {widths!r}")
    dims = [X.shape[1], *widths, k]
    n_layers = len(dims) - 1
    return X, y, dims, _per_layer("n_tables", n_tables, n_layers), _per_layer("n_c", n_c, n_layers)


def _snapper(scale_log2: int, table_bits: int) -> Callable[[np.ndarray], np.ndarray]:
    """Float tables -> the integer tables of ``scale_log2``/``table_bits``, on the float
    scale (what the integer network adds, divided by ``2**scale_log2``)."""

    def snap(tables: np.ndarray) -> np.ndarray:
        q = quantize_tables(tables, scale_log2, table_bits, np.float64)
        return (q * 2.0**-scale_log2).astype(tables.dtype)

    return snap


def _initial_layers(dims, nts, ncs, encoding, rng) -> list[LUTLayer]:
    """The layers before training: random anchors (thresholds against the encoding's constant
    inputs in layer 0 where it has them), tables of small random noise."""
    layers = []
    for i in range(len(dims) - 1):
        # a little random table noise breaks the symmetry of the all-zero start, where every
        # hidden value ties and every downstream index would be 0
        layer = LUTLayer.random(
            in_dim=dims[i], out_dim=dims[i + 1], n_tables=nts[i], n_c=ncs[i], rng=rng,
            init_scale=0.01,
        )  # fmt: skip
        if i == 0 and encoding.constants.size:
            a, b = threshold_anchors(nts[0], ncs[0], encoding.dim, encoding.constants.size, rng)
            layer = LUTLayer(a=a, b=b, tables=layer.tables, in_dim=dims[0])
        layers.append(layer)
    return layers


def _epoch(layers, x, y, order, batch_size, rate, drop, rng, on_batch=None, snap=None) -> float:
    """One epoch of the LUT rule over ``order``; returns the summed cross-entropy. With
    ``drop``, each batch leaves out that fraction of every layer's tables (the rest scaled
    up to the full count). ``on_batch`` is called with the fraction of the epoch done.
    ``snap``: per layer None or a function of the float tables giving the tables the
    forward pass reads (quantisation-aware training: the rows' moves, computed through the
    snapped tables, are added to the float ones, the straight-through rule)."""
    total = 0.0
    n_layers = len(layers)
    for start in range(0, len(order), batch_size):
        if on_batch is not None:
            on_batch(start / len(order))
        idx = order[start : start + batch_size]
        h = x[idx]
        caches, subs = [], []
        for i, layer in enumerate(layers):
            keep = kept_tables(layer.n_tables, drop, rng)
            sub = table_subset(layer, keep)
            read = sub if snap is None or snap[i] is None else sub.with_tables(snap[i](sub.tables))
            snapped = None if read is sub else read.tables.copy()
            h, cache = lut_forward(read, h)
            gain = layer.n_tables / len(keep)
            h = h * gain if gain != 1 else h
            caches.append(cache)
            subs.append((sub, read, snapped, keep, gain))
        dy, loss = _softmax_xent(h.astype(np.float64), y[idx])
        total += loss
        for i in range(n_layers - 1, -1, -1):
            sub, read, snapped, keep, gain = subs[i]
            dy = lut_backward(read, caches[i], dy * gain if gain != 1 else dy, rate, need_dx=i > 0)
            if snapped is not None:
                np.add(sub.tables, read.tables - snapped, out=sub.tables)
            if sub is not layers[i]:
                layers[i].tables[keep] = sub.tables
    return total


class _Best:
    """Early stopping's memory: the epoch with the best validation accuracy (ties: lower
    loss) and a copy of its tables; inert without validation data."""

    def __init__(self, layers: list[LUTLayer], x_val, y_val) -> None:
        self.layers, self.x_val = layers, x_val
        self.y_val = None if y_val is None else np.asarray(y_val, np.int64)
        self.key: tuple[float, float] | None = None
        self.epoch = 0
        self.tables: list[np.ndarray] = []

    def update(self, epoch: int) -> float | None:
        """Evaluate after ``epoch``; returns the validation accuracy (None without data)."""
        if self.x_val is None:
            return None
        z = self.x_val
        for layer in self.layers:
            z = layer.forward(z)
        z = z.astype(np.float64)
        _, loss = _softmax_xent(z, self.y_val)
        acc = float(np.mean(np.argmax(z, 1) == self.y_val))
        if self.key is None or (acc, -loss) > self.key:
            self.key, self.epoch = (acc, -loss), epoch
            self.tables = [layer.tables.copy() for layer in self.layers]
        return acc

    def restore(self) -> int:
        """Put the best epoch's tables back; returns that epoch."""
        for layer, tables in zip(self.layers, self.tables, strict=True):
            layer.tables[...] = tables
        return self.epoch


def train_classifier(
    X: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int | Sequence[int] = DEFAULT_HIDDEN,
    n_tables: int | Sequence[int] = DEFAULT_N_TABLES,
    n_c: int | Sequence[int] = DEFAULT_N_C,
    epochs: int = DEFAULT_EPOCHS,
    lr: float = DEFAULT_LR,
    batch_size: int = DEFAULT_BATCH,
    seed: int = DEFAULT_SEED,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    n_classes: int | None = None,
    class_names: list[str] | None = None,
    meta: dict | None = None,
    progress: Callable[[dict], None] | None = None,
    constants: int = 0,
    drop: float = 0.0,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    patience: int | None = None,
    in_shift: int = 0,
) -> ClassifierMLP:
    """Train a float LUT classifier on raw features ``X`` (n, D) and labels ``y`` in 0..K-1.

    ``hidden``: width(s) of the hidden layer(s): an int for one (0 for none), a sequence for
    several, ``()`` for none (the layer maps inputs straight to classes); ``n_tables`` and
    ``n_c``: per layer (one int for all layers, or one entry per layer, hidden layers first).
    ``lr`` is the per-sample row learning rate; the learning rate decays as a cosine over the
    epochs. ``X_test``/``y_test``, when given, are only evaluated (reported, recorded).
    ``constants``: constant inputs the encoding appends (thresholds for layer 0, see
    :func:`~spikelut.compiler.frontend.encoding.choose_encoding`); ``drop``: table dropout,
    the fraction of every layer's tables each batch leaves out. ``X_val``/``y_val``: a
    validation split, evaluated after every epoch; the returned tables are those of the
    epoch with the best validation accuracy (ties: lower loss), and with ``patience``
    training stops after that many epochs without a better one. ``in_shift`` > 0: the first
    layer learns on its inputs as the integer network compares them after that input shift
    (:meth:`~spikelut.compiler.ir.classifier.InputEncoding.encode_float`: the ties of
    ``x >> in_shift``), for ``quantize`` with that shift; recorded in the hyper-parameters,
    so the model's float forward pass, fine-tuning and pruning see the inputs so too
    (:attr:`~spikelut.compiler.ir.classifier.ClassifierMLP.float_in_shift`).
    ``progress`` is called after every epoch with ``{"epoch", "epochs", "loss",
    "train_accuracy", "test_accuracy", "val_accuracy"}``. Returns a :class:`ClassifierMLP`
    whose ``meta`` records the hyper-parameters, seed, accuracies, version and date (merged
    into ``meta``).
    """
    X, y, dims, nts, ncs = _check_training(X, y, hidden, n_tables, n_c, epochs, lr, batch_size,
                                           n_classes)  # fmt: skip
    if not 0.0 <= drop < 1.0 or constants < 0:
        raise ValueError(f"drop must be in 0..1 (exclusive) and constants >= 0, not {drop!r}, {constants!r}")  # fmt: skip
    widths, k = dims[1:-1], dims[-1]

    rng = np.random.default_rng(seed)
    encoding = choose_encoding(X, constants=constants)
    dims[0] = encoding.width
    x_train = encoding.encode_float(X, in_shift)
    x_test = None if X_test is None else encoding.encode_float(X_test, in_shift)
    x_val = None if X_val is None else encoding.encode_float(X_val, in_shift)
    layers = _initial_layers(dims, nts, ncs, encoding, rng)

    def logits_of(x: np.ndarray) -> np.ndarray:
        for layer in layers:
            x = layer.forward(x)
        return x

    history = []
    best = _Best(layers, x_val, y_val)
    n = len(y)
    with progress_task("training", total=epochs, unit="epochs") as task:
        for epoch in range(epochs):
            rate = lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
            total = _epoch(layers, x_train, y, rng.permutation(n), batch_size, rate, drop, rng,
                           lambda done, e=epoch: task.update(completed=e + done))  # fmt: skip
            record = {
                "epoch": epoch + 1,
                "epochs": epochs,
                "loss": total / n,
                "train_accuracy": float(np.mean(np.argmax(logits_of(x_train), 1) == y)),
                "test_accuracy": None
                if x_test is None
                else float(np.mean(np.argmax(logits_of(x_test), 1) == np.asarray(y_test))),
                "val_accuracy": None,
            }
            record["val_accuracy"] = best.update(epoch + 1)
            history.append(record)
            task.update(completed=epoch + 1, loss=record["loss"])
            if progress is not None:
                progress(record)
            if patience is not None and best.epoch and epoch + 1 - best.epoch >= patience:
                break
    final = history[best.restore() - 1] if best.epoch else history[-1]

    info = dict(meta or {})
    info.update(
        {
            "trainer": "spikelut.compiler.train.classifier",
            "hyperparameters": {
                "hidden": widths,
                "n_tables": nts,
                "n_c": ncs,
                "epochs": epochs,
                "lr": lr,
                "lr_schedule": "cosine",
                "batch_size": batch_size,
                "init_scale": 0.01,
                "constants": int(encoding.constants.size),
                "drop": drop,
                **({"in_shift": in_shift} if in_shift else {}),
            },
            "seed": seed,
            "loss": final["loss"],
            "train_accuracy": final["train_accuracy"],
            "test_accuracy": final["test_accuracy"],
            "spikelut_version": _spikelut_version(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
    )
    if best.epoch:
        info["validation"] = {
            "n": len(y_val),
            "accuracy": final["val_accuracy"],
            "best_epoch": best.epoch,
            "epochs_run": len(history),
        }
    return ClassifierMLP(
        encoding=encoding, layers=layers, n_classes=k, class_names=class_names, meta=info
    )


def fine_tune_classifier(
    model: ClassifierMLP,
    X: np.ndarray,
    y: np.ndarray,
    *,
    fixed: Sequence[np.ndarray | None],
    epochs: int,
    lr: float = DEFAULT_LR,
    batch_size: int = DEFAULT_BATCH,
    seed: int = DEFAULT_SEED,
    grid: Sequence[tuple[int, int] | None] | None = None,
) -> ClassifierMLP:
    """Continue training a float classifier on raw features ``X`` and labels ``y`` with the
    LUT rule (cosine learning rate from ``lr``), every entry of the columns ``fixed`` marks
    held at its value: ``fixed`` has one bool (N_T, Y) mask per layer (None: all free), true
    where table ``t``'s output column ``c`` must not move. The inputs are the model's own
    (:attr:`~spikelut.compiler.ir.classifier.ClassifierMLP.float_in_shift`).
    ``grid``: quantisation-aware training, per layer None or ``(scale_log2, table_bits)``:
    the forward pass reads that layer's tables as
    :func:`~spikelut.compiler.ir.fixed_point.quantize_tables` makes them (on the float
    scale), the rows move the float tables (straight through). Returns a new model (the
    input's tables are not touched) whose ``meta["fine_tune"]`` records the run."""
    if model.is_integer:
        raise ValueError("fine-tuning trains float networks; give the float original")
    if len(fixed) != len(model.layers) or epochs < 1:
        raise ValueError(f"fixed needs one mask per layer and epochs >= 1, not {epochs!r}")
    layers = [layer.with_tables(layer.tables.copy()) for layer in model.layers]
    held = []
    for layer, mask in zip(layers, fixed, strict=True):
        if mask is not None:
            mask = np.asarray(mask, bool)
            if mask.shape != (layer.n_tables, layer.out_dim):
                raise ValueError(f"a fixed mask must be (N_T, Y), not {mask.shape!r}")
            held.append((layer.tables, mask[:, None, :], layer.tables.copy()))

    def hold(_done: float | None = None) -> None:
        for tables, mask, values in held:
            np.copyto(tables, values, where=mask)

    if grid is not None and len(grid) != len(layers):
        raise ValueError(f"grid needs one entry per layer, not {len(grid)}")
    snap = None if grid is None else [None if g is None else _snapper(*g) for g in grid]
    x = model.encoding.encode_float(X, model.float_in_shift)
    y = np.asarray(y, np.int64)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        rate = lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        _epoch(layers, x, y, rng.permutation(len(y)), batch_size, rate, 0.0, rng, hold, snap)
        hold()
    meta = dict(model.meta)
    meta["fine_tune"] = {
        "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
        "fixed_columns": [0 if m is None else int(np.sum(m)) for m in fixed],
        **({"grid": [None if g is None else list(g) for g in grid]} if grid else {}),
    }  # fmt: skip
    return ClassifierMLP(
        encoding=model.encoding, layers=layers, n_classes=model.n_classes,
        class_names=model.class_names, meta=meta,
    )  # fmt: skip
