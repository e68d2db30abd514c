"""The quantisation pass: formats, shared scales, exactness, calibration, narrowing, files."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding
from spikelut.compiler.ir.fixed_point import fit_scale, quantize_tables
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.narrowing import apply_shifts
from spikelut.compiler.passes.quantize_classifier import quantize_classifier, scale_groups
from spikelut.compiler.passes.scales import QuantizeError
from spikelut.compiler.passes.widths import WidthError, infer_widths, signed_range, signed_width


@st.composite
def float_networks(draw, dyadic_frac=None):
    """Random float classifiers over integer inputs (N_C 1..12, residual on and off).

    With ``dyadic_frac``, every table entry is a multiple of ``2**-dyadic_frac`` that fits
    8-bit integers at that scale, so 8-bit quantisation is exact.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dim = draw(st.integers(2, 10))
    n_layers = draw(st.integers(1, 3))
    layers = []
    for k in range(n_layers):
        n_c = draw(st.integers(1, 12))
        residual = draw(st.booleans()) and k < n_layers - 1
        out_dim = dim if residual else draw(st.integers(2, 3 if n_c > 8 else 8))
        layer = LUTLayer.random(
            in_dim=dim, out_dim=out_dim, n_tables=draw(st.integers(1, 3 if n_c > 8 else 6)),
            n_c=n_c, rng=rng, residual=residual,
        )  # fmt: skip
        if dyadic_frac is None:
            tables = rng.normal(0, draw(st.floats(0.01, 100)), layer.tables.shape)
        else:
            tables = rng.integers(-127, 128, layer.tables.shape) / 2.0**dyadic_frac
            tables[0, 0, 0] = 127 / 2.0**dyadic_frac  # pins the fit scale
        layers.append(layer.with_tables(tables.astype(np.float32)))
        dim = out_dim
    enc = InputEncoding(offset=np.zeros(layers[0].in_dim), gain=np.ones(layers[0].in_dim), bits=6)
    model = ClassifierMLP(encoding=enc, layers=layers, n_classes=dim)
    raw = rng.integers(0, 17, size=(200, layers[0].in_dim)).astype(np.float64)
    return model, raw


def test_fit_scale_and_tables():
    assert fit_scale(1.0, 8) == 6  # 127 / 1 -> 2**6 = 64 fits, 128 would not
    assert fit_scale(127 / 8, 8) == 3
    assert fit_scale(0.0, 8) == 0
    q = quantize_tables(np.array([1.0, -1.0, 0.3, 5.0, -5.0]), 6, 8)
    assert q.tolist() == [64, -64, 19, 127, -128]
    assert scale_groups([_layer(False), _layer(True), _layer(True), _layer(False)]) == [
        [0, 1, 2],
        [3],
    ]
    assert scale_groups([_layer(True), _layer(False)]) == [[0], [1]]


def _layer(residual):
    return LUTLayer.random(
        in_dim=4, out_dim=4, n_tables=1, n_c=1, rng=np.random.default_rng(0), residual=residual
    )


@settings(max_examples=40, deadline=None)
@given(float_networks(), st.integers(2, 16), st.booleans())
def test_quantised_network_is_well_formed(net, bits, calibrate):
    model, raw = net
    q = quantize_classifier(model, table_bits=bits, calib_raw=raw if calibrate else None)
    lo, hi = signed_range(bits)
    for layer, lq in zip(q.layers, q.quant, strict=True):
        assert layer.is_integer and lq.table_bits == bits
        assert layer.tables.min() >= lo and layer.tables.max() <= hi
    # one scale per stream: every residual layer shares the scale of the stream it adds into
    for group in scale_groups(model.layers):
        assert len({q.quant[k].out_scale_log2 for k in group}) == 1
    if model.layers[0].residual:
        assert q.encoding.frac_bits == q.quant[0].out_scale_log2
    else:
        assert (q.encoding.bits, q.encoding.frac_bits) == (6, 0)
    infer_widths(q)  # within the default maximum
    # deterministic
    q2 = quantize_classifier(model, table_bits=bits, calib_raw=raw if calibrate else None)
    for a, b in zip(q.layers, q2.layers, strict=True):
        assert np.array_equal(a.tables, b.tables)
    assert np.array_equal(int_predict(q, raw), int_predict(q2, raw))


@settings(max_examples=40, deadline=None)
@given(float_networks(dyadic_frac=3))
def test_exactly_representable_tables_quantise_exactly(net):
    """Tables that are multiples of 1/8 within 8 bits: the integer logits are the float
    logits times 2**scale, bit for bit, and the predictions equal."""
    model, raw = net
    q = quantize_classifier(model, table_bits=8, calib_raw=raw)
    trace = run_classifier(q, q.encoding.encode_int(raw))
    s = q.quant[-1].out_scale_log2
    np.testing.assert_array_equal(trace.logits, model.float_logits(raw) * 2.0**s)
    assert np.array_equal(trace.predictions, model.float_predict(raw))


def test_residual_layer_zero_rescales_the_input():
    rng = np.random.default_rng(3)
    l0 = LUTLayer.random(in_dim=6, out_dim=6, n_tables=4, n_c=3, rng=rng, residual=True)
    l1 = LUTLayer.random(in_dim=6, out_dim=3, n_tables=4, n_c=3, rng=rng)
    l0 = l0.with_tables((rng.integers(-127, 128, l0.tables.shape) / 16).astype(np.float32))
    l1 = l1.with_tables(rng.normal(size=l1.tables.shape).astype(np.float32))
    enc = InputEncoding(offset=np.zeros(6), gain=np.ones(6), bits=6)
    model = ClassifierMLP(encoding=enc, layers=[l0, l1], n_classes=3)
    raw = rng.integers(0, 17, size=(100, 6)).astype(np.float64)
    q = quantize_classifier(model, table_bits=8)
    assert q.quant[0].out_scale_log2 == 4 == q.encoding.frac_bits
    assert q.encoding.bits == 10  # same resolution relative to the range
    # layer 0's output is exactly the float output at scale 2**4
    y_int = run_classifier(q, q.encoding.encode_int(raw)).outputs[0]
    x = enc.encode_float(raw)

    np.testing.assert_array_equal(y_int, l0.forward(x) * 16)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    model, raw = _small_model(rng)
    q = quantize_classifier(model, table_bits=6, calib_raw=raw, shifts={1: 1})
    path = tmp_path / "q.lutnet"
    save_model(q, path)
    back = load_model(path)
    assert back.quant == q.quant
    assert (back.encoding.bits, back.encoding.frac_bits) == (q.encoding.bits, q.encoding.frac_bits)
    for a, b in zip(back.layers, q.layers, strict=True):
        assert np.array_equal(a.tables, b.tables) and a.tables.dtype == np.int64
    assert back.meta["quantization"] == q.meta["quantization"]
    assert np.array_equal(int_predict(back, raw), int_predict(q, raw))


def _small_model(rng):
    l0 = LUTLayer.random(in_dim=8, out_dim=8, n_tables=6, n_c=4, rng=rng, init_scale=1.0)
    l1 = LUTLayer.random(in_dim=8, out_dim=4, n_tables=6, n_c=4, rng=rng, init_scale=1.0)
    enc = InputEncoding(offset=np.zeros(8), gain=np.ones(8), bits=6)
    model = ClassifierMLP(encoding=enc, layers=[l0, l1], n_classes=4)
    return model, rng.integers(0, 17, size=(300, 8)).astype(np.float64)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 5))
def test_calibration_never_agrees_less_than_the_range_scale(seed, bits):
    """With one scale group, calibration picks among candidates that include the range
    scale, so it agrees with the float network at least as often on its data."""
    rng = np.random.default_rng(seed)
    model, raw = _small_model(rng)
    model = ClassifierMLP(
        encoding=model.encoding, layers=[model.layers[0].with_tables(
            model.layers[0].tables[..., :4])], n_classes=4,
    )  # fmt: skip
    ref = model.float_predict(raw)
    plain = quantize_classifier(model, table_bits=bits)
    cal = quantize_classifier(model, table_bits=bits, calib_raw=raw)
    g_plain = np.mean(int_predict(plain, raw) == ref)
    g_cal = cal.meta["quantization"]["groups"][0]["calib_agreement"]
    assert g_cal >= g_plain
    assert g_cal == np.mean(int_predict(cal, raw) == ref)


def test_shift_search_respects_tolerance_and_is_recorded():
    rng = np.random.default_rng(11)
    model, raw = _small_model(rng)
    ref = model.float_predict(raw)
    base = quantize_classifier(model, table_bits=8, calib_raw=raw)
    q = quantize_classifier(model, table_bits=8, calib_raw=raw, search_shift=True,
                            shift_tolerance=0.02)  # fmt: skip
    searched = q.meta["quantization"]["shifts"]["searched"]
    assert set(searched) == {"0", "1"}
    assert [q.quant[k].in_shift for k in range(2)] == [
        searched["0"]["shift"],
        searched["1"]["shift"],
    ]
    unshifted = np.mean(int_predict(base, raw) == ref)
    assert searched["0"]["agreement_unshifted_network"] == pytest.approx(unshifted)
    # the total loss of all searched shifts stays within the tolerance
    assert np.mean(int_predict(q, raw) == ref) >= unshifted - 0.02 - 1e-12
    assert searched["1"]["agreement"] == pytest.approx(np.mean(int_predict(q, raw) == ref))
    # a shift narrows the comparators: the shifted input bounds set their width
    for w in infer_widths(q):
        assert w.compare_width == signed_width(w.in_lo >> w.in_shift, w.in_hi >> w.in_shift)
        assert w.compare_width <= w.in_width
    # explicit shifts win
    q2 = quantize_classifier(model, table_bits=8, calib_raw=raw, search_shift=True,
                             shifts={1: 0}, shift_tolerance=1.0)  # fmt: skip
    assert q2.quant[1].in_shift == 0
    assert "1" not in q2.meta["quantization"]["shifts"]["searched"]
    assert q2.quant[0].in_shift == 5  # tolerance 1.0 takes the widest shift, in_width 6 - 1
    assert apply_shifts(q2, {0: 2}).quant[0].in_shift == 2


def test_refusals_name_the_problem():
    rng = np.random.default_rng(2)
    model, _ = _small_model(rng)
    with pytest.raises(QuantizeError, match=r"table bits must be 2\.\.16"):
        quantize_classifier(model, table_bits=17)
    with pytest.raises(QuantizeError, match=r"layers 0\.\.1"):
        quantize_classifier(model, shifts={2: 1})
    with pytest.raises(QuantizeError, match="calibration"):
        quantize_classifier(model, search_shift=True)
    with pytest.raises(WidthError, match=r"^layer 0: the accumulator"):
        quantize_classifier(model, table_bits=16, max_width=16)
    q = quantize_classifier(model)
    with pytest.raises(QuantizeError, match="already quantised"):
        quantize_classifier(q)
