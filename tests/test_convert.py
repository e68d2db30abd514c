"""ANN -> LUT conversion: anchors, least squares, determinism, figures, the CLI, digits."""

import hashlib
import json
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spikelut.cli.main import main
from spikelut.compiler.analysis.conversion import conversion_report
from spikelut.compiler.frontend.ann import DenseNet, from_sklearn
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import load_model
from spikelut.compiler.ir.operations import classifier_operations, dense_operations
from spikelut.compiler.train.convert import (
    ConvertError,
    ConvertSettings,
    convert_ann,
    lstsq_tables,
    make_layer,
    snap_tables,
    weight_anchors,
)

FAST = ConvertSettings(augment=1, finetune_epochs=2)


def _mlp(X, y, hidden=(8,), max_iter=400, scale=False):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPClassifier(hidden_layer_sizes=hidden, max_iter=max_iter, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (make_pipeline(StandardScaler(), mlp) if scale else mlp).fit(X, y)


@pytest.fixture(scope="module")
def wine():
    from spikelut.compiler.frontend.datasets import load_dataset

    ds = load_dataset("wine")
    return ds, from_sklearn(_mlp(ds.X_train, ds.y_train, max_iter=1000, scale=True))


def test_weight_anchors_follow_the_sign_of_the_weights():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(20, 5))
    a, b = weight_anchors(W, 10, 4, rng)
    assert a.shape == b.shape == (10, 4)
    for i in range(10):
        u = i % 5  # 10 tables, 5 units: table i serves unit i mod 5
        assert np.all(W[a[i], u] > 0) and np.all(W[b[i], u] < 0)
        assert len(set(zip(a[i], b[i], strict=True))) == 4  # distinct pairs


def test_weight_anchors_weigh_each_input_by_its_spread():
    # a scaler folded into W: features 0 and 1 are in units 4,000 times larger, so their raw
    # weights are tiny though their contributions (weight x spread: 4) are the largest (the
    # others: 0.5); the anchors follow the contributions
    rng = np.random.default_rng(3)
    W = np.vstack([np.full((1, 2), 1e-3), np.full((1, 2), -1e-3), rng.choice([-0.5, 0.5], (18, 2))])
    spread = np.r_[4000.0, 4000.0, np.ones(18)]
    weighed = make_layer(W, 12, 4, "weights", np.random.default_rng(4), spread=spread)
    assert np.mean(weighed.a == 0) > 0.25 and np.mean(weighed.b == 1) > 0.25
    raw = make_layer(W, 12, 4, "weights", np.random.default_rng(4))
    assert np.mean(raw.a == 0) < 0.05 and np.mean(raw.b == 1) < 0.05
    # a higher power draws the strongest contributions more often
    sharp = make_layer(W, 12, 4, "weights", np.random.default_rng(4), spread=spread, power=3.0)
    assert np.mean(sharp.a == 0) > np.mean(weighed.a == 0) + 0.2


def test_conversion_does_not_depend_on_the_units_of_the_features(wine):
    # each feature in other units (powers of two: exact), the scaler folded into the ANN's
    # first layer: the same encoded inputs, the same anchors, the same tables
    from spikelut.compiler.frontend.ann import DenseLayer

    ds, ann = wine
    units = 2.0 ** np.random.default_rng(5).integers(-6, 7, size=ds.n_features)
    W, b, act, alpha = ann.layers[0]
    rescaled = DenseNet([DenseLayer(W / units[:, None], b, act, alpha), *ann.layers[1:]],
                        output=ann.output)  # fmt: skip
    m1 = convert_ann(ann, ds.X_train, ds.y_train, settings=FAST)
    m2 = convert_ann(rescaled, ds.X_train * units, ds.y_train, settings=FAST)
    for l1, l2 in zip(m1.layers, m2.layers, strict=True):
        np.testing.assert_array_equal(l1.a, l2.a)
        np.testing.assert_array_equal(l1.b, l2.b)
        np.testing.assert_allclose(l1.tables, l2.tables, rtol=1e-4, atol=1e-5)


def test_weight_anchors_fall_back_to_random_without_both_signs():
    rng = np.random.default_rng(1)
    W = np.abs(rng.normal(size=(6, 2)))
    a, b = weight_anchors(W, 4, 3, rng)
    assert np.all(a != b) and a.max() < 6 and b.max() < 6


def test_lstsq_tables_recover_a_representable_target():
    rng = np.random.default_rng(2)
    layer = LUTLayer.random(in_dim=8, out_dim=3, n_tables=3, n_c=2, rng=rng, init_scale=1.0)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    target = layer.forward(x)
    fitted = layer.with_tables(lstsq_tables(layer, x, target, ridge=1e-6))
    np.testing.assert_allclose(fitted.forward(x), target, atol=1e-3)


def test_conversion_is_deterministic_and_records_provenance(wine):
    ds, ann = wine
    ann.source = {"format": "sklearn", "file": "m.pkl", "sha256": "ab" * 32}
    m1 = convert_ann(ann, ds.X_train, ds.y_train, settings=FAST)
    m2 = convert_ann(ann, ds.X_train, ds.y_train, settings=FAST)
    m3 = convert_ann(
        ann, ds.X_train, ds.y_train, settings=ConvertSettings(augment=1, finetune_epochs=2, seed=1)
    )
    for l1, l2 in zip(m1.layers, m2.layers, strict=True):
        np.testing.assert_array_equal(l1.a, l2.a)
        np.testing.assert_array_equal(l1.tables, l2.tables)
    assert any(not np.array_equal(l1.a, l3.a) for l1, l3 in zip(m1.layers, m3.layers, strict=True))
    assert [layer.out_dim for layer in m1.layers] == ann.dims[1:]
    conv = m1.meta["conversion"]
    assert conv["source"]["sha256"] == "ab" * 32
    assert conv["settings"]["anchors"] == "weights" and conv["settings"]["seed"] == 0
    assert conv["method"] == "layerwise-distillation+finetune"
    assert 0.0 <= conv["ann_train_accuracy"] <= 1.0


def test_conversion_learns_the_ann(wine):
    ds, ann = wine
    model = convert_ann(ann, ds.X_train, ds.y_train)
    r = conversion_report(ann, model, ds.X_test, ds.y_test)
    # a faithful conversion agrees with the ANN on most held-out samples (0.91 measured)
    assert r["float_agreement"] >= 0.85
    assert r["ann_accuracy"] >= 0.85


def test_quantisation_aware_tables_quantise_exactly(wine):
    from spikelut.compiler.passes.quantize_classifier import quantize_classifier

    ds, ann = wine
    settings = ConvertSettings(augment=1, finetune_epochs=2, quant_bits=4, quant_epochs=1)
    model = convert_ann(ann, ds.X_train, ds.y_train, settings=settings)
    snapped = snap_tables(model.layers[0].tables, 4)
    np.testing.assert_array_equal(snapped, model.layers[0].tables)  # left on the grid
    qmodel = quantize_classifier(model, table_bits=4)  # the clip-free scale: exact
    for layer, qlayer, q in zip(model.layers, qmodel.layers, qmodel.quant, strict=True):
        assert np.abs(qlayer.tables).max() <= 8
        np.testing.assert_array_equal(qlayer.tables * 2.0**-q.out_scale_log2, layer.tables)
    with pytest.raises(ConvertError, match="quant_bits"):
        convert_ann(ann, ds.X_train, settings=ConvertSettings(quant_bits=1))


def test_bad_settings_and_data(wine):
    ds, ann = wine
    with pytest.raises(ConvertError, match="anchors"):
        convert_ann(ann, ds.X_train, settings=ConvertSettings(anchors="best"))
    with pytest.raises(ConvertError, match="anchor_power must be positive"):
        convert_ann(ann, ds.X_train, settings=ConvertSettings(anchor_power=0.0))
    with pytest.raises(ConvertError, match="drop"):
        convert_ann(ann, ds.X_train, settings=ConvertSettings(drop=1.0))
    with pytest.raises(ConvertError, match="reads 13 features"):
        convert_ann(ann, ds.X_train[:, :3])
    one = DenseNet([(np.ones((13, 1)), np.zeros(1), "identity")])
    with pytest.raises(ConvertError, match="one output"):
        convert_ann(one, ds.X_train)


def test_operation_counts(wine):
    ds, ann = wine
    model = convert_ann(
        ann, ds.X_train, settings=ConvertSettings(augment=0, finetune_epochs=0, n_tables=(5, 7))
    )
    ops = classifier_operations(model)["total"]
    n_c = [layer.n_c for layer in model.layers]
    assert ops["comparisons"] == 5 * n_c[0] + 7 * n_c[1] + 2
    assert ops["table_rows_read"] == 12
    assert ops["additions"] == 4 * 8 + 6 * 3  # (N_T - 1) * Y per layer
    assert ops["multiplications"] == 0
    a = dense_operations([layer.W.shape for layer in ann.layers])
    assert a["multiply_accumulates"] == 13 * 8 + 8 * 3
    r = conversion_report(ann, model, ds.X_test, None)
    assert r["ann_accuracy"] is None and r["table_memory_bits"] == 8 * sum(
        layer.tables.size for layer in model.layers
    )


def _onnx_of(ann: DenseNet) -> onnx.ModelProto:
    nodes, inits, cur = [], [], "x"
    for k, (W, b, act, *_) in enumerate(ann.layers):
        inits += [
            numpy_helper.from_array(W.astype(np.float32), f"W{k}"),
            numpy_helper.from_array(b.astype(np.float32), f"b{k}"),
        ]
        nodes.append(helper.make_node("Gemm", [cur, f"W{k}", f"b{k}"], [f"z{k}"], name=f"fc{k}"))
        cur = f"z{k}"
        if act == "relu":
            nodes.append(helper.make_node("Relu", [cur], [f"r{k}"], name=f"relu{k}"))
            cur = f"r{k}"
    nodes.append(helper.make_node("Softmax", [cur], ["p"], name="softmax"))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", ann.in_dim])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", ann.n_outputs])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_cli_convert_onnx_with_calibration_file(wine, tmp_path, capsys):
    ds, ann = wine
    path = tmp_path / "mlp.onnx"
    onnx.save(_onnx_of(ann), str(path))
    calib = tmp_path / "calib.npz"
    np.savez(calib, X=ds.X_train, y=ds.y_train)
    out, out_int = tmp_path / "conv.lutnet", tmp_path / "conv-int.lutnet"
    argv = ["convert", str(path), "-o", str(out), "--calib", str(calib), "--epochs", "1"]
    argv += ["--augment", "1", "--anchor-power", "2", "--int-output", str(out_int), "--json"]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("ann_accuracy", "float_accuracy", "int_accuracy", "int_agreement", "lut_ops"):
        assert r[key] is not None
    assert r["ann_ops"]["multiply_accumulates"] == ann.macs
    model = load_model(out)
    assert not model.is_integer and load_model(out_int).is_integer
    conv = model.meta["conversion"]
    assert conv["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert conv["source"]["format"] == "onnx"
    assert conv["settings"]["anchor_power"] == 2.0
    assert conv["evaluation"]["split"].startswith("calibration")
    # the human report names every figure
    assert main(argv[:-1]) == 0
    text = capsys.readouterr().out
    assert "agreement with the ANN" in text and "multiplications per inference" in text


def test_cli_errors(wine, tmp_path, capsys):
    _ds, ann = wine
    path = tmp_path / "mlp.onnx"
    onnx.save(_onnx_of(ann), str(path))
    out = str(tmp_path / "x.lutnet")
    assert main(["convert", str(path), "-o", out, "--data", "digits"]) == 2
    assert "reads 13 features" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nope.onnx"), "-o", out, "--data", "wine"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_digits_conversion_reads_fewer_bits_than_the_mac_core():
    """The issue's targets on digits, for the default conversion at the default seed: the
    integer LUT network (4-bit tables) within 1 percentage point of the source MLP's
    accuracy, and fewer table bits read per inference than the MAC core's 8-bit weights,
    with no multiplications (the 5-seed figures come from ``bench/compare_mac.py``)."""
    from spikelut.compiler.backend.mac import mac_figures, mac_params, quantize_for
    from spikelut.compiler.frontend.datasets import load_dataset
    from spikelut.compiler.passes.quantize_classifier import quantize_classifier
    from spikelut.compiler.train.convert import INT_TABLE_BITS

    ds = load_dataset("digits")
    mlp = _mlp(ds.X_train, ds.y_train, hidden=(32,), max_iter=500)
    ann = from_sklearn(mlp)
    model = convert_ann(ann, ds.X_train, ds.y_train)
    qmodel = quantize_classifier(model, table_bits=INT_TABLE_BITS, calib_raw=ds.X_train)
    r = conversion_report(ann, model, ds.X_test, ds.y_test, int_model=qmodel)
    assert r["ann_accuracy"] == pytest.approx(mlp.score(ds.X_test, ds.y_test))
    assert r["int_accuracy"] >= r["ann_accuracy"] - 0.01
    assert r["int_agreement"] >= 0.94
    assert r["table_bits"] == [INT_TABLE_BITS] * 2
    assert r["table_bits_read"] == sum(
        layer.n_tables * layer.out_dim * INT_TABLE_BITS for layer in model.layers
    )
    net, _ = quantize_for(ann, "digits")
    assert r["table_bits_read"] < mac_figures(mac_params(net, macs=8))["weight_bits_read"]
    assert r["lut_ops"]["multiplications"] == 0
