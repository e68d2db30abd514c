"""Classifier training: the digits target, determinism, encodings, evaluation."""

import numpy as np
import pytest

from spikelut.compiler.frontend.encoding import choose_encoding
from spikelut.compiler.ir.operations import table_memory_bits
from spikelut.compiler.train.classifier import (
    DEFAULT_N_C,
    DEFAULT_N_TABLES,
    evaluate,
    train_classifier,
)


@pytest.mark.slow
def test_default_digits_reaches_97_percent_quickly(digits, digits_training):
    model, epochs, seconds = digits_training.model, digits_training.epochs, digits_training.seconds
    assert seconds < 60
    acc = float(np.mean(model.float_predict(digits.X_test) == digits.y_test))
    assert acc >= 0.97
    assert model.meta["test_accuracy"] == acc == epochs[-1]["test_accuracy"]
    assert [r["epoch"] for r in epochs] == list(range(1, len(epochs) + 1))
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert model.meta["dataset"] == "digits" and model.meta["split"]["n_test"] == 450
    hp = model.meta["hyperparameters"]
    assert hp["n_tables"] == [DEFAULT_N_TABLES] and hp["n_c"] == [DEFAULT_N_C]
    assert table_memory_bits(model) == DEFAULT_N_TABLES * 2**DEFAULT_N_C * 10 * 8
    assert model.class_names == [str(k) for k in range(10)]


def _small(digits, seed, hidden=16):
    return train_classifier(
        digits.X_train[:300],
        digits.y_train[:300],
        hidden=hidden,
        n_tables=(24, 12) if hidden else 24,
        n_c=4,
        epochs=3,
        seed=seed,
        n_classes=10,
    )


def test_deterministic_for_a_seed(digits):
    m1, m2, m3 = _small(digits, 5), _small(digits, 5), _small(digits, 6)
    for l1, l2 in zip(m1.layers, m2.layers, strict=True):
        np.testing.assert_array_equal(l1.tables, l2.tables)
        np.testing.assert_array_equal(l1.a, l2.a)
    assert not np.array_equal(m1.layers[0].a, m3.layers[0].a)
    assert m1.meta["seed"] == 5 and m1.meta["hyperparameters"]["hidden"] == [16]


def test_two_layer_network_learns_through_the_hidden_layer(digits):
    model = _small(digits, 0)
    assert [lay.out_dim for lay in model.layers] == [16, 10]
    # the hidden tables start within +-0.01 and move only through layer 1's backward rule
    assert np.abs(model.layers[0].tables).max() > 0.02
    acc = float(np.mean(model.float_predict(digits.X_test) == digits.y_test))
    assert acc > 0.6  # chance is 0.1


def test_digits_encoding_is_the_raw_pixels(digits):
    enc = choose_encoding(digits.X_train)
    assert (enc.bits, enc.frac_bits) == (6, 0)
    np.testing.assert_array_equal(enc.encode_int(digits.X_test), digits.X_test.astype(np.int64))
    np.testing.assert_array_equal(enc.encode_float(digits.X_test), digits.X_test)


def test_real_features_are_standardised():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * [0.001, 1.0, 1000.0] + [5.0, -2.0, 1e4]
    X[:, 1] = 3.0  # a constant feature
    enc = choose_encoding(X)
    x = enc.encode_float(X)
    np.testing.assert_allclose(x[:, [0, 2]].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x[:, [0, 2]].std(axis=0), 1, atol=1e-4)
    np.testing.assert_array_equal(x[:, 1], 0)
    assert enc.frac_bits >= 4
    xi = enc.encode_int(X)
    # the integer encoding keeps 1/2**frac_bits of a standard deviation
    assert np.abs(xi / 2**enc.frac_bits - x).max() <= 0.5 / 2**enc.frac_bits + 1e-6


def test_evaluate_and_predict_agree(digits):
    model = _small(digits, 1, hidden=())
    assert len(model.layers) == 1
    res = evaluate(model, digits.X_test, digits.y_test)
    pred = model.float_predict(digits.X_test)
    assert res["n"] == 450
    assert res["accuracy"] == pytest.approx(np.mean(pred == digits.y_test))
    logits = model.float_logits(digits.X_test[:5])
    assert logits.shape == (5, 10)
    np.testing.assert_array_equal(np.argmax(logits, 1), pred[:5])
    assert res["loss"] > 0


def test_bad_hyperparameters(digits):
    with pytest.raises(ValueError, match="one entry per layer"):
        train_classifier(digits.X_train, digits.y_train, hidden=8, n_tables=(4, 4, 4))
    with pytest.raises(ValueError, match="epochs"):
        train_classifier(digits.X_train, digits.y_train, epochs=0)
    with pytest.raises(ValueError, match=r"N_C must be 1\.\.16"):
        train_classifier(digits.X_train, digits.y_train, n_c=17, epochs=1)
