"""Converting a trained dense ANN (:class:`spikelut.compiler.frontend.ann.DenseNet`) into a LUT classifier.

The method (one LUT layer per dense layer):

1. **Anchors.** ``random`` (as native training) or ``weights``: table ``i`` of layer ``k``
   serves ANN unit(s) ``u = i mod out`` (round robin); each of its pairs draws ``a`` among the
   inputs with positive weight into ``u`` and ``b`` among those with negative weight, with
   probability proportional to ``(|w| * spread) ** anchor_power`` (``spread``: the input's
   standard deviation, so that a weight is measured by the input's typical contribution
   whatever its units), so that the comparison ``x[a] > x[b]`` moves ``u``'s pre-activation
   the most.
2. **Transfer set.** The training inputs plus ``augment`` times as many mixtures of two of
   them (at most ``mix`` of the second); the ANN labels every one (that is what a teacher
   is for), the true labels are used on the original inputs only.
3. **Layer-wise distillation.** Layer ``k`` is trained to reproduce the ANN's activations of
   dense layer ``k`` (normalised by their overall standard deviation) from the LUT network's
   *own* outputs of layer ``k - 1``, by MSE on the activations. With the inputs fixed, the
   layer's output is linear in the one-hot row selections, so the Manifesto's row rule on
   this MSE is SGD on a least-squares problem; ``fit="lstsq"`` (default) solves it directly
   (ridge-regularised), then ``layer_epochs`` of the row rule
   (:func:`spikelut.compiler.train.engine.lut_backward`) may follow; ``fit="sgd"`` starts from
   zero tables and uses the rule alone.
4. **End-to-end fine-tuning** of all layers, backpropagating through the LUT rule, against
   the ANN's output distribution at ``temperature`` (soft targets) and, where given, the true
   labels (weight ``label_weight``). Each batch leaves out a random fraction ``drop`` of
   every layer's tables (the rest scaled up to the full count), a dropout over tables that
   keeps the network from fitting the transfer set with a few of them.

The result is a float :class:`ClassifierMLP` whose hidden values are on the normalised scale
and whose last layer is on the ANN's logit scale; ``meta["conversion"]`` records provenance
(source file and SHA-256, format, method, settings, ANN and converted accuracies).
Conversion is deterministic for a seed.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from spikelut.compiler.frontend.ann import DenseNet, softmax
from spikelut.compiler.frontend.encoding import choose_encoding
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding
from spikelut.compiler.ir.fixed_point import fit_scale
from spikelut.compiler.ir.lut import LUTLayer, comparisons, indices_from_u
from spikelut.compiler.train.engine import kept_tables as _kept_tables
from spikelut.compiler.train.engine import lut_backward, lut_forward, threshold_anchors
from spikelut.compiler.train.engine import table_subset as _table_subset

ANCHOR_MODES = ("random", "weights")
# table width of the integer model the default shape is chosen for (convert's --bits default)
INT_TABLE_BITS = 4
TARGETS = ("pre", "post")
FITS = ("lstsq", "sgd")


class ConvertError(ValueError):
    """The conversion cannot run as asked; the message names the problem and the fix."""


@dataclass(frozen=True)
class ConvertSettings:
    """Hyper-parameters of :func:`convert_ann` (defaults chosen on digits, see the report).

    ``n_tables`` and ``n_c``: per layer (an int for all, or one per dense layer; None = the
    default shape of :func:`default_shape`: hidden layers ``min(4 * out, 128)`` tables of
    ``N_C = 5``, the output layer ``min(max(16, in), 64)`` tables of ``N_C = 6``).
    ``anchors``: ``weights`` or ``random``; ``weights`` draws inputs with probability proportional to their contribution
    (``|w|`` times the input's standard deviation) to the power ``anchor_power``. 3 by
    default: a unit's tables compare a few dozen inputs at most, and with many inputs
    (``bench/accuracy_panel.py``'s syn-2000x400-3c: 400 features, 20 informative and 10
    redundant) drawing them in proportion spreads those few over noise. Through
    :func:`~spikelut.compiler.passes.recipes.convert_auto` at seed 0 the conversion's gap to
    its MLP there went from 9.0 / 10.0 points (sklearn / PyTorch) at power 1 to -2.2 / 2.0
    at 3 (4.0 / 4.4 at 2; -3.0 / -0.2 at 5; at 3 over seeds 0-2, 1.1 / 0.9); on digits and
    syn-3000x50-10c the powers moved it by no more than the test split's noise.
    ``target``: distil the ``pre``- or ``post``-activations of hidden layers.
    ``fit``: start each layer from the least-squares tables (``lstsq``, regulariser
    ``ridge``) or from zero (``sgd``); then ``layer_epochs`` of the LUT rule on the MSE
    (row rate ``lr / N_T`` per sample, batches of ``layer_batch_size``).
    ``finetune_epochs`` of end-to-end training (row rate ``finetune_lr / N_T``, batches of
    ``batch_size``, leaving out ``drop`` of each layer's tables per batch) on soft targets
    at ``temperature`` mixed with the labels at ``label_weight``. ``augment``: extra transfer
    inputs per training sample (mixtures of two samples, at most ``mix`` of the second, plus
    ``noise`` standard deviations of noise), labelled by the ANN alone. 8 by default: on the
    six set/exporter pairs of ``bench/accuracy_panel.py`` that converted worst with 4 (3
    seeds each, through :func:`~spikelut.compiler.passes.recipes.convert_auto`), the
    converted network's mean gap to its MLP's test accuracy went from 1.66 points with 4 to
    1.20 with 8, at 1.5 to 2 times the conversion time. All rates decay as a cosine.
    ``quant_bits`` (0: off): the last ``quant_epochs`` of fine-tuning run the forward pass
    through the tables rounded to a ``quant_bits``-wide grid (:func:`snap_tables`; the row rule
    moves the float tables), and the result is left on that grid, so that
    :func:`~spikelut.compiler.passes.quantize_classifier.quantize_classifier` at ``quant_bits``
    with its clip-free scale rounds no table entry. Off by default: on digits it measured no
    better than quantising after training, at twice the conversion time.
    """

    n_tables: int | tuple[int, ...] | None = None
    n_c: int | tuple[int, ...] | None = None
    anchors: str = "weights"
    anchor_power: float = 3.0
    target: str = "pre"
    normalize: str = "global"
    fit: str = "lstsq"
    ridge: float = 30.0
    layer_epochs: int = 0
    lr: float = 0.5
    layer_batch_size: int = 4
    finetune_epochs: int = 20
    finetune_lr: float = 0.1
    batch_size: int = 16
    temperature: float = 2.0
    quant_bits: int = 0
    quant_epochs: int = 5
    drop: float = 0.3
    label_weight: float = 0.5
    augment: int = 8
    mix: float = 0.3
    noise: float = 0.0
    constants: int = 0
    threshold_fraction: float = 0.5
    patience: int = 5
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`ConvertError` for an out-of-range setting."""
        if self.anchors not in ANCHOR_MODES:
            raise ConvertError(f"anchors must be one of {ANCHOR_MODES}, not {self.anchors!r}")
        if self.target not in TARGETS:
            raise ConvertError(f"target must be one of {TARGETS}, not {self.target!r}")
        if self.normalize not in ("global", "unit"):
            raise ConvertError(f"normalize must be 'global' or 'unit', not {self.normalize!r}")
        if self.fit not in FITS:
            raise ConvertError(f"fit must be one of {FITS}, not {self.fit!r}")
        if (
            self.layer_epochs < 0
            or self.finetune_epochs < 0
            or min(self.batch_size, self.layer_batch_size) < 1
        ):
            raise ConvertError("epochs must be >= 0 and the batch size >= 1")
        if not (self.lr > 0 and self.finetune_lr >= 0 and self.temperature > 0):
            raise ConvertError("learning rates and the temperature must be positive")
        if (self.quant_bits and not 2 <= self.quant_bits <= 16) or self.quant_epochs < 0:
            raise ConvertError(
                f"quant_bits must be 0 (off) or 2..16 and quant_epochs >= 0, not "
                f"{self.quant_bits!r}, {self.quant_epochs!r}"
            )
        if not 0.0 <= self.drop < 1.0:
            raise ConvertError(f"drop must be in 0..1 (exclusive), not {self.drop!r}")
        if not 0.0 <= self.label_weight <= 1.0:
            raise ConvertError(f"label_weight must be in 0..1, not {self.label_weight!r}")
        self._validate_recipe()

    def _validate_recipe(self) -> None:
        if not self.anchor_power > 0:
            raise ConvertError(f"anchor_power must be positive, not {self.anchor_power!r}")
        if self.constants < 0 or not 0.0 <= self.threshold_fraction <= 1.0 or self.patience < 1:
            raise ConvertError(
                "constants must be >= 0, threshold_fraction in 0..1 and patience >= 1, not "
                f"{self.constants!r}, {self.threshold_fraction!r}, {self.patience!r}"
            )


def default_shape(ann: DenseNet, n_samples: int | None = None) -> tuple[list[int], list[int]]:
    """Default ``(n_tables, n_c)`` per layer: hidden layers ``min(4 * out, 128)`` tables of
    ``N_C = 5`` (fewer, down to 3, when ``n_samples`` training samples would leave under 32
    per table row); the output layer ``min(max(16, in), 64)`` tables of ``N_C = 6``.

    Measured on digits (the 64-32-10 MLP of ``bench/compare_mac.py``, test split, the other
    settings at their defaults then, ``augment`` 4): quantised at :data:`INT_TABLE_BITS` = 4,
    the network reads 17,664 table bits per inference (``sum N_T * Y * table_bits``) against the
    8-bit MAC core's 21,328, and its accuracy is 0.27 points below the MLP's on average over
    seeds 0-4 (worst seed 0.89; seed 0 is 0.44 points above). Without table dropout (``drop=0``)
    the same shape is 1.56 points below on average (worst 2.67); 96 hidden tables read 13,568
    bits at 1.38 points below. ``bench/compare_mac.py --no-build --seeds 5`` prints the
    default's figures per seed, ``--explore`` those of other settings.
    """
    hidden_nc = 5
    if n_samples is not None:
        while hidden_nc > 3 and n_samples < 32 << hidden_nc:
            hidden_nc -= 1
    nts, ncs = [], []
    for k, layer in enumerate(ann.layers):
        d_in, d_out = layer.W.shape
        if k < len(ann.layers) - 1:
            nts.append(min(4 * d_out, 128))
            ncs.append(hidden_nc)
        else:
            nts.append(min(max(16, d_in), 64))
            ncs.append(6)
    return nts, ncs


def _per_layer(name: str, value, n: int) -> list[int]:
    if isinstance(value, (int, np.integer)):
        return [int(value)] * n
    value = [int(v) for v in value]
    if len(value) != n:
        raise ConvertError(f"{name} needs one entry per dense layer ({n}), not {value!r}")
    return value


# -- anchors --------------------------------------------------------------------------------


def weight_anchors(
    W: np.ndarray, n_tables: int, n_c: int, rng: np.random.Generator, power: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Anchor pairs ``(a, b)`` of shape (n_tables, n_c) chosen from the weights ``W`` (in, out).

    Table ``i`` serves units ``i, i + n_tables, ...`` (mod out); pair ``r`` serves the
    ``r``-th of them (cyclically) and draws ``a`` among inputs with positive weight into it,
    ``b`` among inputs with negative weight, both with probability proportional to
    ``|w| ** power``. A unit without weights of both signs falls back to random pairs. Pairs are
    distinct within a table where possible.
    """
    d_in, d_out = W.shape
    a = np.empty((n_tables, n_c), np.int64)
    b = np.empty((n_tables, n_c), np.int64)
    for i in range(n_tables):
        units = list(range(i % d_out, d_out, n_tables)) or [i % d_out]
        seen: set[tuple[int, int]] = set()
        for r in range(n_c):
            w = W[:, units[r % len(units)]]
            pos, neg = np.maximum(w, 0.0) ** power, np.maximum(-w, 0.0) ** power
            for _ in range(8):
                if pos.sum() > 0 and neg.sum() > 0:
                    ai = int(rng.choice(d_in, p=pos / pos.sum()))
                    bi = int(rng.choice(d_in, p=neg / neg.sum()))
                else:
                    ai = int(rng.integers(d_in))
                    bi = int((ai + rng.integers(1, d_in)) % d_in)
                if (ai, bi) not in seen:
                    break
            seen.add((ai, bi))
            a[i, r], b[i, r] = ai, bi
    return a, b


def make_layer(
    W: np.ndarray,
    n_tables: int,
    n_c: int,
    mode: str,
    rng: np.random.Generator,
    *,
    n_constants: int = 0,
    threshold_fraction: float = 0.5,
    spread: np.ndarray | None = None,
    power: float = 1.0,
) -> LUTLayer:
    """A LUT layer of zero tables for dense weights ``W`` (in, out), anchors by ``mode``.

    ``spread`` (in,): the standard deviation of each input the weights multiply; in
    ``weights`` mode the anchors are drawn by ``(|w| * spread) ** power``, each input's typical
    contribution (a scaler folded into ``W`` makes the raw weight of a feature in large
    units small, and of one in small units large, whatever its use to the network).
    ``n_constants``: the layer's input ends in that many constant inputs (layer 0 of an
    encoding with constants); a ``threshold_fraction`` of the pairs then compare a feature
    (in ``weights`` mode the one of the pair's two inputs with the larger contribution into
    the table's unit) with a random constant.
    """
    if spread is not None:
        W = W * np.asarray(spread, np.float64)[:, None]
    d_in, d_out = W.shape
    width = d_in + n_constants
    tables = np.zeros((n_tables, 1 << n_c, d_out), np.float32)
    if mode == "weights":
        a, b = weight_anchors(W, n_tables, n_c, rng, power)
    else:
        a, b = threshold_anchors(n_tables, n_c, d_in, 0, rng)
    if n_constants:
        thr = rng.uniform(size=a.shape) < threshold_fraction
        if mode == "weights":  # the feature of a threshold pair: the stronger of a and b
            col = np.arange(n_tables)[:, None] % d_out
            a = np.where(thr & (np.abs(W[b, col]) > np.abs(W[a, col])), b, a)
        b = np.where(thr, d_in + rng.integers(0, n_constants, size=a.shape), b)
    return LUTLayer(a=a, b=b, tables=tables, in_dim=width)


# -- layer-wise distillation ----------------------------------------------------------------


def lstsq_tables(layer: LUTLayer, x: np.ndarray, target: np.ndarray, ridge: float) -> np.ndarray:
    """Tables minimising ``|y - target|**2 + ridge * |S|**2`` for the layer's fixed anchors.

    ``y = sum_i S[i, j_i]`` is linear in the one-hot selections, so this is ridge regression
    on ``N_T * 2**N_C`` binary features (solved in its primal or dual form, whichever is
    smaller). Returns float32 tables (N_T, 2**N_C, Y).
    """
    n = len(x)
    rows = 1 << layer.n_c
    j = indices_from_u(comparisons(layer, x)) + np.arange(layer.n_tables) * rows  # (n, N_T)
    n_feat = layer.n_tables * rows
    t = np.asarray(target, np.float64)

    def onehot(sel: np.ndarray) -> np.ndarray:
        A = np.zeros((len(sel), n_feat), np.float32)  # counts are exact in float32
        A[np.arange(len(sel))[:, None], sel] = 1.0
        return A

    if n_feat <= n:
        gram = np.zeros((n_feat, n_feat))
        rhs = np.zeros((n_feat, t.shape[1]))
        for start in range(0, n, 4096):  # bounded memory for large transfer sets
            A = onehot(j[start : start + 4096])
            gram += A.T @ A
            rhs += A.T @ t[start : start + 4096]
        S = np.linalg.solve(gram + ridge * np.eye(n_feat), rhs)
    else:
        A = onehot(j).astype(np.float64)
        S = A.T @ np.linalg.solve(A @ A.T + ridge * np.eye(n), t)
    return S.reshape(layer.n_tables, rows, -1).astype(np.float32)


def _mse_epochs(
    layer: LUTLayer,
    x: np.ndarray,
    target: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch: int,
    rng: np.random.Generator,
) -> None:
    n = len(x)
    for epoch in range(epochs):
        rate = lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            y, cache = lut_forward(layer, x[idx])
            lut_backward(layer, cache, y - target[idx], rate, need_dx=False)


def transfer_samples(
    X: np.ndarray, n: int, noise: float, rng: np.random.Generator, mix: float = 1.0
) -> np.ndarray:
    """``n`` extra transfer inputs: mixtures ``lam * x1 + (1 - lam) * x2`` of random pairs
    of rows of ``X`` (``lam`` uniform in ``1 - mix .. 1``), plus Gaussian noise of ``noise``
    standard deviations per feature. The ANN labels them (soft targets only)."""
    i = rng.integers(len(X), size=n)
    j = rng.integers(len(X), size=n)
    lam = 1.0 - mix * rng.uniform(size=(n, 1))
    out = lam * X[i] + (1.0 - lam) * X[j]
    if noise:
        out += rng.normal(size=out.shape) * (noise * X.std(axis=0))
    return out


# -- end-to-end fine-tuning -----------------------------------------------------------------


def snap_tables(tables: np.ndarray, bits: int) -> np.ndarray:
    """``tables`` rounded to a ``bits``-wide signed grid ``k * 2**-s`` with ``|k| <=
    2**(bits - 1) - 1``, the power-of-two step ``s`` chosen for the least squared error
    (large entries may clip), as float32. Tables on such a grid are exact under
    :func:`spikelut.compiler.passes.quantize_classifier.quantize_classifier` at ``bits``."""
    t = np.asarray(tables, np.float64)
    top = (1 << (bits - 1)) - 1
    s0 = fit_scale(float(np.max(np.abs(t))), bits)
    best, best_err = t, math.inf
    for s in range(s0 - 1, s0 + 4):
        q = np.clip(np.rint(t * 2.0**s), -top, top) * 2.0**-s
        err = float(np.sum((q - t) ** 2))
        if err < best_err:
            best, best_err = q, err
    return best.astype(np.float32)


def _finetune_batch(layers, x0, idx, q, labels, out_scale, s, rng, rate, qat) -> None:
    """One batch of fine-tuning (table dropout, optional quantisation-aware forward)."""
    T = s.temperature
    alpha = s.label_weight if labels is not None else 0.0
    h, caches, subs = x0[idx], [], []
    for layer in layers:
        keep = _kept_tables(layer.n_tables, s.drop, rng)
        sub = _table_subset(layer, keep)
        # quantisation-aware: forward through the tables as the integer model will
        # hold them, move the float tables (straight-through)
        fwd = sub
        if qat:
            fwd = sub.with_tables(snap_tables(layer.tables, s.quant_bits)[keep])
        h, cache = lut_forward(fwd, h)
        gain = layer.n_tables / len(keep)
        h = h * gain if gain != 1 else h
        caches.append(cache)
        subs.append((sub, keep, gain))
    logits = h.astype(np.float64) * out_scale
    soft = softmax(logits, T) - q[idx]
    if alpha:
        lab = labels[idx]
        has = lab >= 0
        grad = np.where(has, 1.0 - alpha, 1.0)[:, None] * T * soft
        p = softmax(logits[has])
        p[np.arange(int(has.sum())), lab[has]] -= 1.0
        grad[has] += alpha * p
    else:
        grad = T * soft
    dy = grad * out_scale
    for k in range(len(layers) - 1, -1, -1):
        sub, keep, gain = subs[k]
        lr_k = rate / layers[k].n_tables
        dy = lut_backward(sub, caches[k], dy * gain, lr_k, need_dx=k > 0)
        if sub is not layers[k]:
            layers[k].tables[keep] = sub.tables


def _predict(layers: list[LUTLayer], x: np.ndarray) -> np.ndarray:
    for layer in layers:
        x = layer.forward(x)
    return np.argmax(x, 1)


def _finetune(
    layers: list[LUTLayer],
    x0: np.ndarray,
    soft_logits: np.ndarray,
    labels: np.ndarray | None,
    out_scale: float,
    s: ConvertSettings,
    rng: np.random.Generator,
    progress: Callable[[dict], None] | None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
) -> int | None:
    """Cross-entropy against the ANN's softened outputs (and labels), through all layers.

    ``val``: held-out encoded inputs and the ANN's predictions on them; the tables of the
    epoch that agrees most there are kept (epoch 0: the distilled tables), training stops
    after ``s.patience`` epochs without a better one, and that epoch is returned.
    """
    n = len(x0)
    q = softmax(soft_logits, s.temperature)
    epochs = s.finetune_epochs
    best = None
    if val is not None:
        best = (float(np.mean(_predict(layers, val[0]) == val[1])), 0,
                [layer.tables.copy() for layer in layers])  # fmt: skip
    for epoch in range(epochs):
        rate = s.finetune_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        order = rng.permutation(n)
        qat = s.quant_bits and epoch >= epochs - s.quant_epochs
        for start in range(0, n, s.batch_size):
            idx = order[start : start + s.batch_size]
            _finetune_batch(layers, x0, idx, q, labels, out_scale, s, rng, rate, qat)
        record = {"stage": "finetune", "epoch": epoch + 1}
        if val is not None:
            agree = float(np.mean(_predict(layers, val[0]) == val[1]))
            record["val_agreement"] = agree
            if agree > best[0]:
                best = (agree, epoch + 1, [layer.tables.copy() for layer in layers])
        if progress is not None:
            train_pred = _predict(layers, x0)
            record["train_agreement"] = float(np.mean(train_pred == np.argmax(soft_logits, 1)))
            progress(record)
        if best is not None and epoch + 1 - best[1] >= s.patience:
            break
    if best is None:
        return None
    for layer, tables in zip(layers, best[2], strict=True):
        layer.tables[...] = tables
    return best[1]


# -- the conversion -------------------------------------------------------------------------


def _check_conversion(ann: DenseNet, X, y, s: ConvertSettings):
    """The checked features, labels (or None) and per-layer ``(N_T, N_C)``; ConvertError
    naming a bad setting or input."""
    s.validate()
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[1] != ann.in_dim:
        raise ConvertError(f"the ANN reads {ann.in_dim} features; the data has shape {X.shape!r}")
    if ann.n_outputs < 2:
        raise ConvertError("the ANN has one output; convert needs one output per class")
    labels = None
    if y is not None:
        labels = np.asarray(y, np.int64)
        if labels.shape != (len(X),) or labels.min() < 0 or labels.max() >= ann.n_outputs:
            raise ConvertError(f"labels must be {len(X)} class indices 0..{ann.n_outputs - 1}")
    n_layers = len(ann.layers)
    default_nt, default_nc = default_shape(ann, len(X))
    nts = _per_layer("n_tables", default_nt if s.n_tables is None else s.n_tables, n_layers)
    ncs = _per_layer("n_c", default_nc if s.n_c is None else s.n_c, n_layers)
    for k in range(n_layers):
        if nts[k] < 1 or not 1 <= ncs[k] <= 12:
            raise ConvertError(f"layer {k}: N_T must be >= 1 and N_C 1..12, not {nts[k]}, {ncs[k]}")
    return X, labels, nts, ncs


def _layer_target(pre, post, last: bool, s: ConvertSettings) -> tuple[np.ndarray, float]:
    """What LUT layer ``k`` learns: the dense layer's pre- (or post-) activations,
    normalised, and their overall standard deviation."""
    t = pre if (s.target == "pre" or last) else post
    sigma = float(t.std()) or 1.0
    if s.normalize == "unit" and not last:
        sd = t.std(axis=0)
        t = (t - t.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    else:
        t = t / sigma
    return t.astype(np.float32), sigma


def _distil(ann, ann_acts, X_raw, x, nts, ncs, s, rng, progress, n_constants=0):
    """Layer-wise distillation (step 3 of the module docstring): the LUT layers and the
    scale of every dense layer's target."""
    layers: list[LUTLayer] = []
    scales: list[float] = []
    for k, dense in enumerate(ann.layers):
        t, sigma = _layer_target(*ann_acts[k], k == len(ann.layers) - 1, s)
        layer = make_layer(
            dense.W, nts[k], ncs[k], s.anchors, rng,
            n_constants=n_constants if k == 0 else 0, threshold_fraction=s.threshold_fraction,
            spread=(X_raw if k == 0 else ann_acts[k - 1][1]).std(axis=0), power=s.anchor_power,
        )  # fmt: skip
        if s.fit == "lstsq":
            layer = layer.with_tables(lstsq_tables(layer, x, t, s.ridge))
        _mse_epochs(
            layer, x, t, epochs=s.layer_epochs, lr=s.lr / nts[k], batch=s.layer_batch_size, rng=rng
        )
        layers.append(layer)
        scales.append(sigma)
        x = layer.forward(x)
        if progress is not None:
            rmse = float(np.sqrt(np.mean((x - t) ** 2)))
            progress({"stage": "layer", "layer": k, "rmse": rmse, "target_sigma": sigma})
    return layers, scales


def convert_ann(
    ann: DenseNet,
    X: np.ndarray,
    y: np.ndarray | None = None,
    *,
    settings: ConvertSettings | None = None,
    encoding: InputEncoding | None = None,
    class_names: list[str] | None = None,
    progress: Callable[[dict], None] | None = None,
    X_val: np.ndarray | None = None,
) -> ClassifierMLP:
    """Convert ``ann`` into a float LUT classifier, using raw features ``X`` (n, in_dim) and
    optional labels ``y`` (n,) as the transfer set (see the module docstring).

    ``X_val``: held-out raw features (not trained on). With them, fine-tuning keeps the
    tables of the epoch whose predictions agree most with the ANN's on ``X_val`` and stops
    after ``settings.patience`` epochs without a better one; the agreement is recorded.

    ``encoding``: the LUT network's input encoding (default: chosen from ``X`` as native
    training does). ``progress`` gets a dict after every stage/epoch. Raises
    :class:`ConvertError` on bad settings or data.
    """
    s = settings or ConvertSettings()
    X, labels, nts, ncs = _check_conversion(ann, X, y, s)
    rng = np.random.default_rng(s.seed)
    encoding = encoding or choose_encoding(X, constants=s.constants)
    n_orig = len(X)
    if s.augment:
        X = np.concatenate([X, transfer_samples(X, s.augment * n_orig, s.noise, rng, s.mix)])
        if labels is not None:
            labels = np.concatenate([labels, np.full(s.augment * n_orig, -1, np.int64)])
    ann_acts = ann.forward(X)
    x0 = encoding.encode_float(X)
    layers, scales = _distil(
        ann, ann_acts, X, x0, nts, ncs, s, rng, progress, n_constants=encoding.constants.size
    )
    val = None
    if X_val is not None:
        val = (encoding.encode_float(X_val), ann.predict(np.asarray(X_val, np.float64)))
    best_epoch = None
    if s.finetune_epochs:
        best_epoch = _finetune(
            layers, x0, ann_acts[-1][1], labels, scales[-1], s, rng, progress, val=val
        )
    if not all(np.all(np.isfinite(layer.tables)) for layer in layers):
        raise ConvertError("training diverged (non-finite tables); lower the learning rates")
    gain = scales[-1]  # the last layer on the ANN's logit scale; hidden layers normalised
    if s.quant_bits:
        layers = [layer.with_tables(snap_tables(layer.tables, s.quant_bits)) for layer in layers]
        gain = 2.0 ** round(math.log2(gain))  # a power of two keeps the grid
    layers[-1] = layers[-1].with_tables((layers[-1].tables * gain).astype(np.float32))
    model = ClassifierMLP(
        encoding=encoding, layers=layers, n_classes=ann.n_outputs, class_names=class_names
    )
    X, labels = X[:n_orig], None if labels is None else labels[:n_orig]
    ann_pred = ann.predict(X)
    lut_pred = model.float_predict(X)
    info = {
        "source": dict(ann.source),
        "ann": {"dims": ann.dims, "activations": [layer.activation for layer in ann.layers]},
        "method": "layerwise-distillation+finetune",
        "settings": {**asdict(s), "n_tables": nts, "n_c": ncs},
        "target_scales": scales,
        "transfer_samples": n_orig * (1 + s.augment),
        "train_agreement": float(np.mean(ann_pred == lut_pred)),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if labels is not None:
        info["ann_train_accuracy"] = float(np.mean(ann_pred == labels))
        info["train_accuracy"] = float(np.mean(lut_pred == labels))
    if val is not None:
        info["validation"] = {
            "n": len(val[1]),
            "float_agreement": float(np.mean(model.float_predict(X_val) == val[1])),
            "best_epoch": best_epoch,
        }
    model.meta = {"trainer": "spikelut.compiler.train.convert", "conversion": info}
    return model
