"""IR validation: every bad shape or parameter is refused with a message quoting it."""

import numpy as np
import pytest

from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.lut import IRError, LUTLayer


def _layer(n_t=2, n_c=3, d=5, y=4, **kw):
    a = np.arange(n_t * n_c).reshape(n_t, n_c) % d
    b = (a + 1) % d
    kw.setdefault("tables", np.zeros((n_t, 1 << n_c, y), np.float32))
    return dict(a=a, b=b, in_dim=d, **kw)


def _raises(match, **kw):
    with pytest.raises(IRError, match=match) as info:
        LUTLayer(**kw)
    assert "\n" not in str(info.value)


def test_valid_layer_properties():
    layer = LUTLayer(**_layer())
    assert (layer.n_tables, layer.n_c, layer.out_dim, layer.in_dim) == (2, 3, 4, 5)
    assert not layer.is_integer and not layer.residual


def test_anchor_out_of_range():
    kw = _layer()
    kw["a"] = kw["a"].copy()
    kw["a"][1, 2] = 5
    _raises(r"a\[1\]\[2\] = 5 is out of range 0\.\.4", **kw)
    kw = _layer()
    kw["b"] = kw["b"].copy()
    kw["b"][0, 0] = -1
    _raises(r"b\[0\]\[0\] = -1", **kw)


def test_anchor_pair_compares_neuron_with_itself():
    kw = _layer()
    kw["b"] = kw["b"].copy()
    kw["b"][1, 0] = kw["a"][1, 0]
    _raises(r"anchor pair \(1, 0\) compares neuron 3 with itself", **kw)


@pytest.mark.parametrize("n_c", [0, 17])
def test_n_c_out_of_range(n_c):
    a = np.zeros((1, n_c), np.int64)
    b = np.ones((1, n_c), np.int64)
    _raises(rf"N_C must be 1\.\.16, not {n_c}", a=a, b=b, in_dim=2, tables=np.zeros((1, 1, 1)))


def test_random_refuses_bad_n_c():
    with pytest.raises(IRError, match=r"N_C must be 1\.\.16, not 20"):
        LUTLayer.random(in_dim=4, out_dim=2, n_tables=1, n_c=20, rng=np.random.default_rng(0))


def test_inconsistent_shapes():
    kw = _layer()
    kw["b"] = kw["b"][:, :2]
    _raises(r"must both have shape \(N_T, N_C\)", **kw)
    _raises(
        r"tables must have shape \(N_T=2, 2\*\*N_C=8, Y\), not \(2, 4, 4\)",
        **_layer(tables=np.zeros((2, 4, 4))),
    )
    _raises(r"tables must have shape", **_layer(tables=np.zeros((3, 8, 4))))
    _raises(r"anchors must be integers", **{**_layer(), "a": np.zeros((2, 3))})


def test_residual_needs_y_equal_d():
    _raises(r"residual layer needs Y == D, not Y=4 and D=5", **_layer(residual=True))
    layer = LUTLayer(**_layer(y=5, residual=True))
    assert layer.residual


def test_random_layer_anchors_valid():
    layer = LUTLayer.random(
        in_dim=3, out_dim=2, n_tables=50, n_c=6, rng=np.random.default_rng(1), init_scale=0.5
    )
    assert np.all(layer.a != layer.b)
    assert layer.a.min() >= 0 and max(layer.a.max(), layer.b.max()) <= 2
    assert np.abs(layer.tables).max() <= 0.5 and layer.tables.std() > 0


def _classifier(**kw):
    rng = np.random.default_rng(0)
    layers = [
        LUTLayer.random(in_dim=4, out_dim=6, n_tables=2, n_c=2, rng=rng),
        LUTLayer.random(in_dim=6, out_dim=3, n_tables=2, n_c=2, rng=rng),
    ]
    args = dict(encoding=InputEncoding.identity(4), layers=layers, n_classes=3)
    args.update(kw)
    return ClassifierMLP(**args)


def test_classifier_chain_checks():
    assert _classifier().n_classes == 3
    with pytest.raises(IRError, match="layer 0 reads 4 inputs but the encoding gives 5"):
        _classifier(encoding=InputEncoding.identity(5))
    with pytest.raises(IRError, match="the last layer gives 3 values for 4 classes"):
        _classifier(n_classes=4)
    good = _classifier()
    with pytest.raises(IRError, match="layer 1 reads 4 values but layer 0 gives 6"):
        _classifier(layers=[good.layers[0], good.layers[0]])
    with pytest.raises(IRError, match="2 class names for 3 classes"):
        _classifier(class_names=["a", "b"])
    with pytest.raises(IRError, match="at least one LUT layer"):
        _classifier(layers=[])


def test_quantised_classifier_checks():
    good = _classifier()
    int_layers = [lay.with_tables(np.full(lay.tables.shape, 7, np.int64)) for lay in good.layers]
    quant = [LayerQuant(table_bits=4), LayerQuant(table_bits=4)]
    assert _classifier(layers=int_layers, quant=quant).is_integer
    with pytest.raises(IRError, match="non-integer tables"):
        _classifier(quant=quant)
    with pytest.raises(IRError, match="outside 3-bit range"):
        _classifier(layers=int_layers, quant=[LayerQuant(table_bits=3)] * 2)
    with pytest.raises(IRError, match="quant has 1 entries for 2 layers"):
        _classifier(layers=int_layers, quant=quant[:1])
    with pytest.raises(IRError, match=r"table_bits must be 2\.\.16, not 1"):
        LayerQuant(table_bits=1)


def test_input_encoding():
    enc = InputEncoding(offset=[1.0, 0.0], gain=[2.0, 0.5], bits=6, frac_bits=1)
    np.testing.assert_allclose(enc.encode_float([[2.0, 4.0]]), [[2.0, 2.0]])
    # x * 2**frac_bits, clipped to the signed 6-bit range -32..31
    np.testing.assert_array_equal(
        enc.encode_int([[2.0, 4.0], [100.0, -200.0]]), [[4, 4], [31, -32]]
    )
    with pytest.raises(IRError, match="inputs must have 2 features, not 3"):
        enc.encode_float(np.zeros((1, 3)))
    with pytest.raises(IRError, match="finite"):
        InputEncoding(offset=[np.nan], gain=[1.0])
