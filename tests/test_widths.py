"""Width inference: the golden model's values never exceed the inferred widths."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.golden import lut_indices, lut_rows, run_classifier
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.passes.widths import WidthError, infer_widths, signed_range, signed_width


def test_signed_width_edges():
    assert signed_width(0, 0) == 1
    assert signed_width(-1, 0) == 1
    assert signed_width(0, 1) == 2
    assert signed_width(-128, 127) == 8
    assert signed_width(-129, 0) == 9
    assert signed_width(0, 128) == 9
    assert signed_range(8) == (-128, 127)
    with pytest.raises(ValueError):
        signed_width(1, 0)


@st.composite
def integer_networks(draw):
    """Random integer classifiers: shapes, table widths, N_C 1..12, residual on and off."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    in_bits = draw(st.integers(2, 12))
    dim = draw(st.integers(2, 12))
    n_layers = draw(st.integers(1, 3))
    layers, quant = [], []
    for k in range(n_layers):
        n_c = draw(st.integers(1, 12))
        n_t = draw(st.integers(1, 4 if n_c > 8 else 8))
        residual = draw(st.booleans()) and k < n_layers - 1
        out_dim = dim if residual else draw(st.integers(2, 3 if n_c > 8 else 10))
        bits = draw(st.integers(2, 16))
        lim = 1 << (bits - 1)
        layer = LUTLayer.random(
            in_dim=dim, out_dim=out_dim, n_tables=n_t, n_c=n_c, rng=rng, residual=residual
        )
        tables = rng.integers(-lim, lim, size=layer.tables.shape)
        # make the extremes likely: some columns pinned at the range ends
        tables[:, 0, :] = rng.choice([-lim, lim - 1], size=(n_t, out_dim))
        layers.append(layer.with_tables(tables))
        quant.append(LayerQuant(bits, draw(st.integers(0, 3)), 0))
        dim = out_dim
    enc = InputEncoding.identity(layers[0].in_dim, bits=in_bits)
    return ClassifierMLP(encoding=enc, layers=layers, n_classes=dim, quant=quant), seed


def _inputs(model, rng, n=64):
    lo, hi = signed_range(model.encoding.bits)
    x = rng.integers(lo, hi + 1, size=(n, model.encoding.dim))
    x[0] = lo
    x[1] = hi
    return x


@settings(max_examples=60, deadline=None)
@given(integer_networks())
def test_golden_values_fit_inferred_widths(net):
    model, seed = net
    widths = infer_widths(model, max_width=64)
    rng = np.random.default_rng(seed + 1)
    x = _inputs(model, rng)
    trace = run_classifier(model, x)
    prev = x
    for k, (layer, q, w) in enumerate(zip(model.layers, model.quant, widths, strict=True)):
        lo, hi = signed_range(w.in_width)
        assert lo <= prev.min() and prev.max() <= hi
        lo, hi = signed_range(w.compare_width)
        shifted = prev >> q.in_shift
        assert lo <= shifted.min() and shifted.max() <= hi
        y = trace.outputs[k]
        assert np.all(y >= np.array(w.col_lo)) and np.all(y <= np.array(w.col_hi))
        lo, hi = signed_range(w.out_width)
        assert lo <= y.min() and y.max() <= hi
        # every partial sum, in a random table order, with the residual input first or last
        rows = lut_rows(layer, trace.indices[k])[:, rng.permutation(layer.n_tables)]
        partial = np.cumsum(rows, axis=1)
        lo, hi = signed_range(w.acc_width)
        assert w.acc_lo >= lo and w.acc_hi <= hi
        assert partial.min() >= w.acc_lo and partial.max() <= w.acc_hi
        if layer.residual:
            with_x = partial + prev[:, None, :]
            assert with_x.min() >= w.acc_lo and with_x.max() <= w.acc_hi
        assert np.array_equal(trace.indices[k], lut_indices(layer, prev, q.in_shift))
        prev = y


@settings(max_examples=30, deadline=None)
@given(integer_networks())
def test_bounds_are_reached_by_some_row_choice(net):
    """The column bounds are exact for the table contents: choosing each table's extreme row
    attains them (ignoring which index combinations inputs can reach)."""
    model, _ = net
    widths = infer_widths(model, max_width=64)
    layer, w = model.layers[0], widths[0]
    t = layer.tables
    extra_lo = w.in_lo if layer.residual else 0
    extra_hi = w.in_hi if layer.residual else 0
    assert list(w.col_hi) == list(t.max(axis=1).sum(axis=0) + extra_hi)
    assert list(w.col_lo) == list(t.min(axis=1).sum(axis=0) + extra_lo)


def test_too_wide_is_refused_naming_the_layer():
    rng = np.random.default_rng(1)
    l0 = LUTLayer.random(in_dim=4, out_dim=4, n_tables=2, n_c=2, rng=rng)
    l1 = LUTLayer.random(in_dim=4, out_dim=3, n_tables=64, n_c=2, rng=rng)
    l0 = l0.with_tables(np.full(l0.tables.shape, 100, np.int64))
    l1 = l1.with_tables(np.full(l1.tables.shape, -32768, np.int64))
    model = ClassifierMLP(
        encoding=InputEncoding.identity(4, bits=8),
        layers=[l0, l1],
        n_classes=3,
        quant=[LayerQuant(8, 0, 0), LayerQuant(16, 0, 0)],
    )
    assert infer_widths(model)[1].acc_width == 22
    with pytest.raises(WidthError, match=r"layer 1: the accumulator needs 22 bits"):
        infer_widths(model, max_width=20)


def test_float_network_is_refused():
    rng = np.random.default_rng(0)
    layer = LUTLayer.random(in_dim=4, out_dim=3, n_tables=2, n_c=2, rng=rng)
    model = ClassifierMLP(encoding=InputEncoding.identity(4), layers=[layer], n_classes=3)
    with pytest.raises(ValueError, match="quantize"):
        infer_widths(model)
