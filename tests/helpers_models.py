"""Small integer classifiers shared by the tests, and placements for them."""

from __future__ import annotations

import numpy as np

from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.storage import Storage


def random_model(rng, bits=6):
    shapes = [(16, 8, 6, 4, False), (8, 8, 4, 3, True), (8, 4, 5, 5, False)]
    layers = []
    for d_in, d_out, n_t, n_c, residual in shapes:
        layer = LUTLayer.random(
            in_dim=d_in, out_dim=d_out, n_tables=n_t, n_c=n_c, rng=rng, residual=residual
        )
        layers.append(layer.with_tables(rng.integers(-16, 16, layer.tables.shape)))
    quant = [LayerQuant(table_bits=5, in_shift=s) for s in (1, 0, 2)]
    return ClassifierMLP(InputEncoding.identity(16, bits=bits), layers, 4, quant=quant)


SPRAM_PLANS = [LayerPlan(Storage.SPRAM, 2, 3), LayerPlan(Storage.BRAM, 2, 4)]


def tiny_model(seed=0, *, table_bits=4, d=8, hidden=6, classes=4):
    """A two-layer integer classifier small enough to build and simulate in seconds."""
    rng = np.random.default_rng(seed)
    lim = 1 << (table_bits - 1)
    l0 = LUTLayer.random(in_dim=d, out_dim=hidden, n_tables=6, n_c=3, rng=rng)
    l0 = l0.with_tables(rng.integers(-lim, lim, l0.tables.shape))
    l1 = LUTLayer.random(in_dim=hidden, out_dim=classes, n_tables=5, n_c=2, rng=rng)
    l1 = l1.with_tables(rng.integers(-lim, lim, l1.tables.shape))
    quant = [LayerQuant(table_bits=table_bits), LayerQuant(table_bits=table_bits)]
    return ClassifierMLP(InputEncoding.identity(d, bits=5), [l0, l1], classes, quant=quant)


def retrained(model: ClassifierMLP, seed: int = 1) -> ClassifierMLP:
    """``model`` with other tables of the same shape: each table's rows shuffled, which keeps
    every column's bounds and so the exact widths (a retrained model of the same shape)."""
    rng = np.random.default_rng(seed)
    layers = []
    for layer in model.layers:
        tables = np.array(layer.tables)
        for t in tables:
            t[:] = t[rng.permutation(len(t))]
        layers.append(layer.with_tables(tables))
    return ClassifierMLP(model.encoding, layers, model.n_classes, quant=model.quant)


def mixed_model(seed: int = 5) -> ClassifierMLP:
    """A 4-layer integer classifier whose layers cover every storage kind and a residual."""
    rng = np.random.default_rng(seed)
    shapes = [
        (16, 12, 6, 4, False),
        (12, 12, 5, 3, True),
        (12, 8, 4, 5, False),
        (8, 6, 3, 3, False),
    ]
    layers = []
    for d_in, d_out, n_t, n_c, residual in shapes:
        layer = LUTLayer.random(
            in_dim=d_in, out_dim=d_out, n_tables=n_t, n_c=n_c, rng=rng, residual=residual
        )
        layers.append(layer.with_tables(rng.integers(-16, 16, layer.tables.shape)))
    quant = [LayerQuant(table_bits=5, in_shift=s) for s in (1, 0, 2, 0)]
    return ClassifierMLP(InputEncoding.identity(16, bits=6), layers, 6, quant=quant)


MIXED_PLANS = [
    LayerPlan(Storage.BRAM, 2, 4),
    LayerPlan(Storage.LUTRAM, 2, 6),
    LayerPlan(Storage.SPRAM, 1, 8),
    LayerPlan(Storage.LOGIC),
]


def pixel_data(n=120, d=8, k=4, seed=0, noise=0.0):
    """``(x, y)``: ``n`` samples of ``d`` pixel-like integer features 0..15, labelled by
    which of the first ``k`` differences ``x[i] - x[k + i]`` (plus Gaussian ``noise``) is
    largest: a task the first layer's comparisons can learn."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 16, (n, d)).astype(np.float64)
    y = np.argmax(x[:, :k] - x[:, k : 2 * k] + rng.normal(0, noise, (n, k)) * (noise > 0), axis=1)
    return x, y
