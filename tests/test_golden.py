"""The integer golden model: hardware semantics of the classifier, the RNN, the transformer."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.golden import (
    argmax_lowest,
    lut_indices,
    lut_layer,
    run_classifier,
    run_rnn,
)
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.sequence import SpikingRNN
from spikelut.compiler.passes.evaluate import rnn_float_logits
from spikelut.compiler.passes.quantize_sequence import quantize_rnn
from spikelut.compiler.passes.widths import rnn_widths, signed_range


def _hand_layer(residual=False):
    # table 0 compares (0, 1) then (2, 0); table 1 compares (1, 2) then (2, 1)
    a = np.array([[0, 2], [1, 2]])
    b = np.array([[1, 0], [2, 1]])
    tables = np.arange(2 * 4 * 3).reshape(2, 4, 3)
    return LUTLayer(a=a, b=b, tables=tables, in_dim=3, residual=residual)


def test_index_bit_order_and_strict_comparison():
    layer = _hand_layer()
    x = np.array([[5, 1, 7], [1, 1, 1], [0, 3, -2]])
    # row 0: 5>1 -> bit 0, 7>5 -> bit 1: j0 = 3; 1>7 no, 7>1 -> bit 1: j1 = 2
    # row 1: all ties -> 0; row 2: 0>3 no, -2>0 no -> 0; 3>-2 -> bit 0: j1 = 1
    assert lut_indices(layer, x).tolist() == [[3, 2], [0, 0], [0, 1]]
    y = lut_layer(layer, x)
    t = layer.tables
    assert y.tolist() == [(t[0, 3] + t[1, 2]).tolist(), (t[0, 0] + t[1, 0]).tolist(),
                          (t[0, 0] + t[1, 1]).tolist()]  # fmt: skip


def test_arithmetic_shift_creates_ties_and_residual_uses_unshifted_input():
    layer = _hand_layer(residual=True)
    x = np.array([[-3, -4, -8]])
    assert lut_indices(layer, x).tolist() == [[1, 1]]  # -3 > -4; -8 > -3 no; -4 > -8
    # >> 1 (floor): -2, -2, -4: the first pair ties, so its bit becomes 0
    assert lut_indices(layer, x, 1).tolist() == [[0, 1]]
    y = lut_layer(layer, x, 1)
    t = layer.tables
    assert y.tolist() == [(t[0, 0] + t[1, 1] + x[0]).tolist()]


def test_argmax_ties_to_lowest_index():
    v = np.array([[1, 3, 3, 0], [-2, -2, -2, -2], [0, 0, 5, 5]])
    assert argmax_lowest(v).tolist() == [1, 0, 2]


def _int_classifier(rng, residual_first):
    l0 = LUTLayer.random(in_dim=6, out_dim=6, n_tables=4, n_c=3, rng=rng, residual=residual_first)
    l1 = LUTLayer.random(in_dim=6, out_dim=4, n_tables=3, n_c=5, rng=rng)
    l0 = l0.with_tables(rng.integers(-128, 128, l0.tables.shape))
    l1 = l1.with_tables(rng.integers(-128, 128, l1.tables.shape))
    return ClassifierMLP(
        encoding=InputEncoding.identity(6, bits=8),
        layers=[l0, l1],
        n_classes=4,
        quant=[LayerQuant(8, 0, 0), LayerQuant(8, 0, 0)],
    )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 12),
    st.integers(-1000, 1000),
    st.booleans(),
)
def test_only_order_matters(seed, n_c, shift, residual):
    """Adding a constant to every input of a layer with in_shift 0 changes nothing, unless
    the layer is residual, where the output moves by exactly that constant."""
    rng = np.random.default_rng(seed)
    layer = LUTLayer.random(in_dim=7, out_dim=7, n_tables=3, n_c=n_c, rng=rng, residual=residual)
    layer = layer.with_tables(rng.integers(-100, 100, layer.tables.shape))
    x = rng.integers(-50, 50, size=(32, 7))
    y0, y1 = lut_layer(layer, x), lut_layer(layer, x + shift)
    assert np.array_equal(lut_indices(layer, x), lut_indices(layer, x + shift))
    assert np.array_equal(y1 - y0, np.full_like(y0, shift if residual else 0))


def test_classifier_trace_is_consistent_and_deterministic():
    rng = np.random.default_rng(4)
    for residual_first in (False, True):
        model = _int_classifier(rng, residual_first)
        x = rng.integers(-128, 128, size=(50, 6))
        tr = run_classifier(model, x)
        tr2 = run_classifier(model, x.copy())
        assert np.array_equal(tr.inputs, x)
        h = x
        for k, layer in enumerate(model.layers):
            assert np.array_equal(tr.indices[k], lut_indices(layer, h))
            h = lut_layer(layer, h)
            assert np.array_equal(tr.outputs[k], h)
            assert np.array_equal(tr.outputs[k], tr2.outputs[k])
        assert np.array_equal(tr.predictions, np.argmax(h, axis=1))
        assert tr.logits is tr.outputs[-1]


def test_classifier_refuses_float_network():
    rng = np.random.default_rng(0)
    layer = LUTLayer.random(in_dim=4, out_dim=3, n_tables=2, n_c=2, rng=rng)
    model = ClassifierMLP(encoding=InputEncoding.identity(4), layers=[layer], n_classes=3)
    with pytest.raises(ValueError, match="quantize first"):
        run_classifier(model, np.zeros((1, 4), np.int64))


# -- spiking RNN -----------------------------------------------------------------------------


def _float_rnn(rng, dim=8, vocab=12, n_t=4, n_c=3, dyadic=None):
    m = SpikingRNN.create(rng=rng, context=6, vocab=vocab, dim=dim, n_tables=n_t, n_c=n_c)
    if dyadic is None:
        m.cell.tables[:] = rng.normal(0, 0.4, m.cell.tables.shape)
        m.unembedder.tables[:] = rng.normal(0, 0.4, m.unembedder.tables.shape)
    else:
        # embedding, cell and unembedder entries exactly representable in 8 bits
        scale = 2.0**dyadic
        m.embedding[:] = rng.integers(-127, 128, m.embedding.shape) / scale
        m.embedding[0, 0] = 127 / scale
        m.cell.tables[:] = rng.integers(-127, 128, m.cell.tables.shape) / scale
        m.unembedder.tables[:] = rng.integers(-127, 128, m.unembedder.tables.shape) / scale
        m.unembedder.tables[0, 0, 0] = 127 / scale
    return m


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_rnn_exact_tables_match_float_semantics(seed, n_c):
    rng = np.random.default_rng(seed)
    m = _float_rnn(rng, n_c=n_c, n_t=2 if n_c > 8 else 4, dyadic=4)
    q = quantize_rnn(m, table_bits=8)
    assert q.cell_quant.out_scale_log2 == 4 == q.unembedder_quant.out_scale_log2
    tokens = rng.integers(0, m.vocab, size=(10, 7))
    tr = run_rnn(q, tokens)
    np.testing.assert_array_equal(tr.logits, rnn_float_logits(m, tokens) * 16)
    assert np.array_equal(tr.predictions, np.argmax(tr.logits, axis=-1))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 16), st.integers(0, 2), st.integers(1, 12))
def test_rnn_values_fit_inferred_widths(seed, bits, shift, n_c):
    rng = np.random.default_rng(seed)
    m = _float_rnn(rng, n_c=n_c, n_t=2 if n_c > 8 else 4)
    q = quantize_rnn(m, table_bits=bits, shifts={"cell": shift, "unembedder": shift})
    w = rnn_widths(q, max_width=64)
    tr = run_rnn(q, rng.integers(0, m.vocab, size=(16, 20)))
    assert np.all(tr.states >= np.array(w.state_lo)) and np.all(tr.states <= np.array(w.state_hi))
    lo, hi = signed_range(w.state_width)
    assert lo <= tr.states.min() and tr.states.max() <= hi
    lo, hi = signed_range(w.unembedder.out_width)
    assert lo <= tr.logits.min() and tr.logits.max() <= hi
    assert np.all(tr.logits >= np.array(w.unembedder.col_lo))
    assert np.all(tr.logits <= np.array(w.unembedder.col_hi))
    lo, hi = signed_range(w.cell.compare_width)
    assert lo <= (tr.states >> shift).min() and (tr.states >> shift).max() <= hi


def test_rnn_state_carries_over():
    """Generation carries h: two runs chained by h0 equal one run over both windows."""
    rng = np.random.default_rng(9)
    q = quantize_rnn(_float_rnn(rng), table_bits=6)
    tokens = rng.integers(0, q.vocab, size=(5, 12))
    whole = run_rnn(q, tokens)
    first = run_rnn(q, tokens[:, :7])
    second = run_rnn(q, tokens[:, 7:], h0=first.states[:, -1])
    assert np.array_equal(np.concatenate([first.logits, second.logits], 1), whole.logits)
    assert np.array_equal(whole.cell_indices[:, 0], np.zeros_like(whole.cell_indices[:, 0]))
    with pytest.raises(ValueError, match="tokens must be in"):
        run_rnn(q, np.array([[q.vocab]]))


def test_integer_rnn_round_trips(tmp_path):
    from spikelut.compiler.ir.modelfile import load_model, save_model

    rng = np.random.default_rng(1)
    q = quantize_rnn(_float_rnn(rng), table_bits=5, shifts={"cell": 1})
    save_model(q, tmp_path / "r.lutnet")
    back = load_model(tmp_path / "r.lutnet")
    assert isinstance(back, IntegerRNN)
    assert back.cell_quant == q.cell_quant and back.unembedder_quant == q.unembedder_quant
    tokens = rng.integers(0, q.vocab, size=(4, 9))
    assert np.array_equal(run_rnn(back, tokens).logits, run_rnn(q, tokens).logits)
    from spikelut.compiler.passes.widths import WidthError

    w = rnn_widths(q)
    with pytest.raises(WidthError, match=r"^rnn "):
        rnn_widths(q, max_width=w.cell_acc_width - 1)
    wide = dataclasses.replace(
        q,
        unembedder=q.unembedder.with_tables(np.full(q.unembedder.tables.shape, -(1 << 15))),
        unembedder_quant=LayerQuant(16, 0, 0),
    )
    assert rnn_widths(wide).unembedder.acc_width == 18  # 4 tables of -2**15
    with pytest.raises(WidthError, match=r"^rnn unembedder: the accumulator needs 18 bits"):
        rnn_widths(wide, max_width=17)


def test_rnn_golden_agrees_with_the_float_engine():
    """On exactly representable tables the integer RNN is the float engine's RNN, scaled."""
    from spikelut.compiler.train.lm_engine import RNNEngine

    rng = np.random.default_rng(12)
    m = _float_rnn(rng, dim=10, vocab=256, n_t=3, n_c=4, dyadic=4)
    q = quantize_rnn(m, table_bits=8)
    tokens = rng.integers(0, 256, size=9)
    out, h = RNNEngine(m).logits(tokens)
    tr = run_rnn(q, tokens[None, :])
    np.testing.assert_array_equal(tr.logits[0], out.astype(np.float64) * 16)
    np.testing.assert_array_equal(tr.states[0], h.astype(np.float64) * 16)


# -- transformer ---------------------------------------------------------------------------


def _float_transformer(rng, n_c=3, n_pe=2, dyadic=None):
    from spikelut.compiler.ir.sequence import TransformerLM

    m = TransformerLM.create(rng=rng, context=6, vocab=256, dim=8, n_layers=2, n_heads=2,
                             n_tables=3, n_c=n_c, n_pe=n_pe)  # fmt: skip
    for name in ("embedding", "attn_tables", "ffn_tables", "unemb_tables"):
        arr = getattr(m, name)
        if dyadic is None:
            arr[:] = rng.normal(0, 0.5, arr.shape)
        else:
            arr[:] = rng.integers(-127, 128, arr.shape) / 2.0**dyadic
            arr.reshape(-1)[0] = 127 / 2.0**dyadic
    return m


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 3))
def test_transformer_golden_agrees_with_the_float_engine(seed, n_c, n_pe):
    """On exactly representable tables the integer transformer is the float engine's, scaled."""
    from spikelut.compiler.ir.golden import run_transformer
    from spikelut.compiler.passes.evaluate import transformer_float_logits
    from spikelut.compiler.passes.quantize_sequence import quantize_transformer

    rng = np.random.default_rng(seed)
    m = _float_transformer(rng, n_c=n_c, n_pe=n_pe, dyadic=4)
    q = quantize_transformer(m, table_bits=8)
    assert (q.stream_scale_log2, q.unemb_scale_log2) == (4, 4)
    windows = rng.integers(0, 256, size=(4, 6))
    tr = run_transformer(q, windows)
    np.testing.assert_array_equal(tr.logits, transformer_float_logits(m, windows) * 16)
    # a shorter window is a prefix of a longer one (causal attention)
    short = run_transformer(q, windows[:, :4])
    np.testing.assert_array_equal(short.logits, tr.logits[:, :4])


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 16))
def test_transformer_values_fit_inferred_widths(seed, bits):
    from spikelut.compiler.ir.golden import run_transformer
    from spikelut.compiler.passes.quantize_sequence import quantize_transformer
    from spikelut.compiler.passes.widths import transformer_widths

    rng = np.random.default_rng(seed)
    q = quantize_transformer(_float_transformer(rng), table_bits=bits)
    w = transformer_widths(q, max_width=64)
    tr = run_transformer(q, rng.integers(0, 256, size=(8, 6)))
    lo, hi = signed_range(w.stream_width)
    for z in tr.streams:
        assert lo <= z.min() and z.max() <= hi
    for l_ in range(2):
        lo, hi = signed_range(w.layer_in_widths[l_])
        assert lo <= tr.streams[2 * l_].min() and tr.streams[2 * l_].max() <= hi
        lo, hi = signed_range(w.ffn_in_widths[l_])
        assert lo <= tr.streams[2 * l_ + 1].min() and tr.streams[2 * l_ + 1].max() <= hi
    assert np.all(tr.logits >= np.array(w.unembedder.col_lo))
    assert np.all(tr.logits <= np.array(w.unembedder.col_hi))


def test_integer_transformer_round_trips_and_refuses_wide(tmp_path):
    from spikelut.compiler.ir.golden import run_transformer
    from spikelut.compiler.ir.integer_sequence import IntegerTransformer
    from spikelut.compiler.ir.modelfile import load_model, save_model
    from spikelut.compiler.passes.quantize_sequence import quantize_transformer
    from spikelut.compiler.passes.widths import WidthError, transformer_widths

    rng = np.random.default_rng(3)
    q = quantize_transformer(_float_transformer(rng), table_bits=6)
    assert q.attn_tables.dtype == np.int8
    save_model(q, tmp_path / "t.lutnet")
    back = load_model(tmp_path / "t.lutnet")
    assert isinstance(back, IntegerTransformer)
    w = rng.integers(0, 256, size=(3, 6))
    assert np.array_equal(run_transformer(back, w).logits, run_transformer(q, w).logits)
    with pytest.raises(WidthError, match=r"^transformer layer 0"):
        transformer_widths(q, max_width=8)
