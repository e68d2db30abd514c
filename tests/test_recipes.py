"""Constant inputs (thresholds), early stopping, and the recipes that choose by measurement on
a held-out split: native training (fit_classifier) and ANN conversion (convert_auto)."""

import json
import warnings

import numpy as np
import pytest

from spikelut.cli.main import main
from spikelut.compiler.frontend.ann import from_sklearn
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.frontend.encoding import choose_encoding
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.passes.recipes import (
    AUTO_CANDIDATES,
    MAX_CANDIDATE_SEEDS,
    MAX_TRANSFER,
    SELECTION_MIXTURES,
    candidate_seeds,
    convert_auto,
    fit_classifier,
    holdout_split,
    native_candidates,
    selection_set,
)
from spikelut.compiler.train.classifier import train_classifier
from spikelut.compiler.train.convert import ConvertError


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris")


def test_encoding_appends_constant_inputs():
    X = np.array([[1.5, 10.0], [3.5, 30.0], [5.5, 50.0]])
    enc = choose_encoding(X, constants=3)
    assert enc.dim == 2 and enc.width == 5
    np.testing.assert_allclose(enc.constants, [-1.5, 0.0, 1.5])
    f = enc.encode_float(X)
    np.testing.assert_allclose(f[:, 2:], np.tile([-1.5, 0.0, 1.5], (3, 1)))
    i = enc.encode_int(X)
    np.testing.assert_array_equal(i[:, 2:], np.tile([-48, 0, 48], (3, 1)))  # 5 frac bits
    # pixels: integer constants strictly inside the range
    pix = choose_encoding(np.array([[0.0, 16.0], [8.0, 4.0]]), constants=3)
    np.testing.assert_array_equal(pix.constants, [4, 8, 12])
    assert choose_encoding(X).width == 2  # none by default: old behaviour


def test_constants_survive_the_model_file_and_old_files_load(tmp_path, iris):
    model = train_classifier(iris.X_train, iris.y_train, n_tables=16, epochs=2, constants=5)
    assert model.layers[0].in_dim == iris.n_features + 5
    # layer 0 compares features with constants: thresholds
    assert np.any(model.layers[0].b >= iris.n_features)
    save_model(model, tmp_path / "m.lutnet")
    again = load_model(tmp_path / "m.lutnet")
    np.testing.assert_array_equal(again.encoding.constants, model.encoding.constants)
    np.testing.assert_array_equal(
        again.float_predict(iris.X_test), model.float_predict(iris.X_test)
    )
    # a model without constants writes no constants array (files as before) and loads
    plain = train_classifier(iris.X_train, iris.y_train, n_tables=8, epochs=1)
    header, arrays = plain.to_arrays()
    assert "encoding/constants" not in arrays
    assert ClassifierMLP.from_arrays(header, arrays).encoding.width == iris.n_features


def test_integer_network_with_constants_is_the_golden_model(iris):
    """The host encodes features and constants; the integer network (golden model, and so
    the hardware) sees one integer vector of ``width`` values."""
    model = train_classifier(iris.X_train, iris.y_train, n_tables=32, epochs=3, constants=7)
    q = quantize_classifier(model, table_bits=8, calib_raw=iris.X_train)
    x = q.encoding.encode_int(iris.X_test)
    assert x.shape == (len(iris.X_test), iris.n_features + 7)
    assert len(np.unique(x[:, iris.n_features :], axis=0)) == 1  # the same for every sample
    np.testing.assert_array_equal(run_classifier(q, x).predictions, int_predict(q, iris.X_test))
    with pytest.raises(IRError, match="constant inputs must be finite"):
        InputEncoding(offset=np.zeros(2), gain=np.ones(2), constants=[np.inf])


def test_early_stopping_keeps_the_best_epoch(iris):
    Xf, yf = iris.X_train[:80], iris.y_train[:80]
    Xv, yv = iris.X_train[80:], iris.y_train[80:]
    seen = []
    model = train_classifier(Xf, yf, n_tables=32, epochs=30, X_val=Xv, y_val=yv, patience=3,
                             constants=7, progress=seen.append)  # fmt: skip
    val = model.meta["validation"]
    assert val["epochs_run"] == len(seen) <= 30
    best = max(r["val_accuracy"] for r in seen)
    assert val["accuracy"] == best == np.mean(model.float_predict(Xv) == yv)
    assert val["epochs_run"] - val["best_epoch"] <= 3


def test_native_recipe_sizes_to_the_data_and_chooses_on_held_out_data(iris):
    small, large = native_candidates(100, 4, 3), native_candidates(20_000, 100, 10)
    assert (
        max(c["n_tables"] * c["n_c"] for c in small)
        <= 256
        < max(c["n_tables"] * c["n_c"] for c in large)
    )
    assert all(2 ** c["n_c"] <= 100 / 8 for c in small)
    fit, held = holdout_split(iris.X_train, iris.y_train, 0.2, 0)
    assert len(set(fit) & set(held)) == 0 and len(fit) + len(held) == len(iris.y_train)
    model = fit_classifier(iris.X_train, iris.y_train, seed=0, max_epochs=10, patience=3)
    sel = model.meta["selection"]
    assert sel["n_heldout"] == len(held) and len(sel["candidates"]) >= 3
    assert sel["heldout_accuracy"] == max(c["val_accuracy"] for c in sel["candidates"])
    assert np.mean(model.float_predict(iris.X_test) == iris.y_test) >= 0.89


def _mlp(ds):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_pipeline(
            StandardScaler(), MLPClassifier((16,), max_iter=300, random_state=0)
        ).fit(ds.X_train, ds.y_train)


def test_conversion_recipe_reports_held_out_agreement(iris):
    mlp = _mlp(iris)
    ann = from_sklearn(mlp)
    model = convert_auto(ann, iris.X_train, iris.y_train, table_bits=4)
    conv = model.meta["conversion"]
    sel, held = conv["selection"], conv["heldout_agreement"]
    keys = ("constants", "anchors", "drop", "seed")
    settings = [{k: c[k] for k in keys} for c in sel["candidates"]]
    # small data: every setting at three conversion seeds (0, 1, 2), the seeds outermost
    assert sel["seeds"] == 3 and len(sel["candidates"]) == 3 * len(AUTO_CANDIDATES)
    assert [c["seed"] for c in sel["candidates"]] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert sel["chosen"] in settings
    chosen = sel["candidates"][settings.index(sel["chosen"])]
    assert model.meta["conversion"]["settings"]["seed"] == sel["chosen"]["seed"]
    # chosen on the selection set (held-out samples and their mixtures), the earlier on ties
    assert chosen["selection_int_agreement"] == max(
        c["selection_int_agreement"] for c in sel["candidates"]
    )
    # reported: the agreement on the held-out samples alone
    assert held["int"] == chosen["heldout_int_agreement"]
    assert held["n"] == sel["n_heldout"] < len(iris.y_train)
    assert sel["n_selection"] == (1 + SELECTION_MIXTURES) * sel["n_heldout"]
    # thresholds make low-dimensional data convertible: 4 features alone give 6 comparisons
    q = quantize_classifier(model, table_bits=4, calib_raw=iris.X_train)
    assert np.mean(int_predict(q, iris.X_test) == mlp.predict(iris.X_test)) >= 0.9


def test_selection_set_is_the_held_out_samples_and_their_mixtures():
    """Every selection sample is a held-out sample or a mixture of two (at most ``mix`` of
    the second): nothing from the training part or elsewhere enters the choice."""
    X_val = 10.0 * np.eye(6) + 3.0  # each row's own coordinate marks it
    sel = selection_set(X_val, 8, 0.3, seed=0)
    assert sel.shape == (9 * 6, 6)
    np.testing.assert_array_equal(sel[:6], X_val)
    weights = (sel[6:] - 3.0) / 10.0  # the mixture weights of the held-out rows
    assert np.all(weights >= -1e-12) and np.all(np.sum(weights > 1e-12, axis=1) <= 2)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert np.all(weights.max(axis=1) >= 0.7 - 1e-12)
    np.testing.assert_array_equal(selection_set(X_val, 8, 0.3, seed=0), sel)  # deterministic
    np.testing.assert_array_equal(selection_set(X_val, 0, 0.3, seed=0), X_val)
    with pytest.raises(ConvertError, match="selection_mixtures"):
        convert_auto(None, X_val, selection_mixtures=-1)


def test_candidate_seeds_spend_at_most_one_full_transfer_set_each():
    assert candidate_seeds(MAX_TRANSFER) == candidate_seeds(10 * MAX_TRANSFER) == 1
    assert candidate_seeds(MAX_TRANSFER // 2) == 2
    assert candidate_seeds(MAX_TRANSFER // 3) == candidate_seeds(1) == MAX_CANDIDATE_SEEDS == 3
    with pytest.raises(ConvertError, match="seeds must be a positive"):
        convert_auto(None, np.eye(6), seeds=0)


def test_cli_train_auto_and_convert_recipe(iris, tmp_path, capsys):
    out = tmp_path / "n.lutnet"
    assert main(["train", "classifier", "--data", "iris", "-o", str(out), "--auto", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["heldout_accuracy"] is not None and r["constant_inputs"] in (0, 7)
    assert "selection" in load_model(out).meta
    # convert: an skl2onnx graph through the recipe, the held-out agreement reported
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx

    onnx_path = tmp_path / "mlp.onnx"
    onnx_path.write_bytes(
        to_onnx(_mlp(iris), iris.X_train[:1].astype(np.float32)).SerializeToString()
    )
    argv = ["convert", str(onnx_path), "-o", str(tmp_path / "c.lutnet"), "--data", "iris",
            "--epochs", "3", "--json"]  # fmt: skip
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["heldout_agreement"]["n"] > 0 and r["heldout_agreement"]["table_bits"] == 4
    assert main(argv[:-1]) == 0
    assert "held-out" in capsys.readouterr().out
