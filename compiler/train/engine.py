"""The float training engine: forward (with a cache) and backward of LUT layers in numpy, vectorised over a batch.

Semantics are those of :mod:`spikelut.compiler.ir.lut` and of the Manifesto's C reference:

- ``u[b, i, r] = x[b, a[i, r]] - x[b, b[i, r]]``; bit ``r`` of ``j[b, i]`` is ``u > 0``
  (strict: a tie gives 0); ``y[b] = sum_i S[i, j[b, i]]`` (``+ x[b]`` when residual).
- backward, per sample and table: ``r*`` is the pair with the smallest ``|u|`` (the first
  one on ties), ``jbar = j XOR (1 << r*)``, ``g = <dL/dy, S[i, jbar] - S[i, j]>``,
  ``v = g * U'(u[r*])`` with ``U'(u) = -0.5 * sign(u) / (1 + |u|)**2`` and ``sign(0) = -1``;
  ``dL/dx[a[i, r*]] += v``, ``dL/dx[b[i, r*]] -= v``; a residual layer also passes ``dL/dy``
  straight to ``dL/dx``; then the selected row learns: ``S[i, j] -= lr * dL/dy``.

Batches: every sample of a batch reads the tables as they were when the batch started
(forward and ``g``), and the row updates of the batch are *summed*: row ``S[i, k]`` moves by
``-lr * sum(dL/dy[b] for b with j[b, i] == k)`` (unbuffered ``np.add.at``), so several
samples selecting the same row all count. With a batch of one sample this is exactly the
reference's per-sample update order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikelut.compiler.ir.lut import LUTLayer, comparisons, indices_from_u


@dataclass
class LayerCache:
    """What the forward pass of one layer keeps for its backward pass (batch of B samples).

    ``x``: (B, D) input; ``j``: (B, N_T) selected rows; ``r_star``: (B, N_T) least certain
    pair of every table; ``u_star``: (B, N_T) its ``u``.
    """

    x: np.ndarray
    j: np.ndarray
    r_star: np.ndarray
    u_star: np.ndarray


def surrogate_grad(u: np.ndarray) -> np.ndarray:
    """``U'(u) = -0.5 * sign(u) / (1 + |u|)**2`` with ``sign(0) = -1`` (so ``U'(0) = +0.5``)."""
    u = np.asarray(u)
    sign = np.where(u > 0, 1.0, -1.0)
    return (-0.5 * sign / np.square(1.0 + np.abs(u))).astype(u.dtype, copy=False)


def least_certain(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(r_star, u_star)``: the pair with the smallest ``|u|`` per table (first on ties)."""
    r_star = np.argmin(np.abs(u), axis=-1)  # argmin returns the first minimum
    u_star = np.take_along_axis(u, r_star[..., None], axis=-1)[..., 0]
    return r_star, u_star


def lut_forward(layer: LUTLayer, x: np.ndarray) -> tuple[np.ndarray, LayerCache]:
    """Output ``y`` (B, Y) of a float layer for inputs ``x`` (B, D), and the backward cache."""
    x = layer.as_input(x)
    u = comparisons(layer, x)
    j = indices_from_u(u)
    r_star, u_star = least_certain(u)
    y = layer.tables[np.arange(layer.n_tables), j].sum(axis=1)
    if layer.residual:
        y = y + x
    return y, LayerCache(x=x, j=j, r_star=r_star, u_star=u_star)


def lut_backward(
    layer: LUTLayer,
    cache: LayerCache,
    dy: np.ndarray,
    lr: float,
    *,
    need_dx: bool = True,
) -> np.ndarray | None:
    """Backward pass of one layer; updates ``layer.tables`` in place and returns ``dL/dx``.

    ``dy`` is ``dL/dy`` (B, Y). ``g`` is read from the tables before any row moves; the rows
    then move by ``-lr * dy``, summed over the batch (see the module docstring). With
    ``need_dx=False`` the input gradient is not computed (first layer) and None is returned.
    """
    tables = layer.tables
    dy = np.asarray(dy, dtype=tables.dtype)
    batch, n_t = cache.j.shape
    if dy.shape != (batch, layer.out_dim):
        raise ValueError(f"dL/dy must have shape ({batch}, {layer.out_dim}), not {dy.shape!r}")
    t_idx = np.arange(n_t)
    dx = None
    if need_dx:
        jbar = cache.j ^ np.left_shift(np.int64(1), cache.r_star)
        diff = tables[t_idx, jbar] - tables[t_idx, cache.j]  # (B, N_T, Y)
        g = np.einsum("bty,by->bt", diff, dy)
        v = g * surrogate_grad(cache.u_star)
        a_star = np.take_along_axis(layer.a[None, :, :], cache.r_star[..., None], axis=2)[..., 0]
        b_star = np.take_along_axis(layer.b[None, :, :], cache.r_star[..., None], axis=2)[..., 0]
        d = layer.in_dim
        base = (np.arange(batch) * d)[:, None]
        flat = np.bincount((base + a_star).ravel(), weights=v.ravel(), minlength=batch * d)
        flat -= np.bincount((base + b_star).ravel(), weights=v.ravel(), minlength=batch * d)
        dx = flat.reshape(batch, d).astype(tables.dtype)
        if layer.residual:
            dx += dy
    if lr:
        step = np.broadcast_to((-lr * dy)[:, None, :], (batch, n_t, layer.out_dim))
        t_rep = np.broadcast_to(t_idx[None, :], (batch, n_t))
        np.add.at(tables, (t_rep, cache.j), step)
    return dx


def threshold_anchors(
    n_tables: int,
    n_c: int,
    n_features: int,
    n_constants: int,
    rng: np.random.Generator,
    *,
    threshold_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Random anchor pairs ``(a, b)`` (N_T, N_C) for a first layer whose input is
    ``n_features`` features followed by ``n_constants`` constant inputs: each pair is, with
    probability ``threshold_fraction``, a threshold (``a`` a feature, ``b`` a constant), else
    two different features. Without constants every pair is two different inputs."""
    d = n_features + n_constants
    a = rng.integers(0, n_features if n_constants else d, size=(n_tables, n_c))
    b = (a + rng.integers(1, n_features, size=(n_tables, n_c))) % n_features
    if n_constants:
        thr = rng.uniform(size=(n_tables, n_c)) < threshold_fraction
        b = np.where(thr, n_features + rng.integers(0, n_constants, size=(n_tables, n_c)), b)
    return a, b


def kept_tables(n_tables: int, drop: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the tables a training batch uses under table dropout: all, or a random
    ``1 - drop`` of them (at least one), sorted."""
    if not drop:
        return np.arange(n_tables)
    n_keep = max(1, round(n_tables * (1.0 - drop)))
    return np.sort(rng.choice(n_tables, size=n_keep, replace=False))


def table_subset(layer: LUTLayer, keep: np.ndarray) -> LUTLayer:
    """The layer itself when ``keep`` is every table, else a layer of those tables (a copy;
    write its tables back with ``layer.tables[keep] = sub.tables``)."""
    if len(keep) == layer.n_tables:
        return layer
    return LUTLayer(
        a=layer.a[keep], b=layer.b[keep], tables=layer.tables[keep], in_dim=layer.in_dim,
        residual=layer.residual,
    )  # fmt: skip
