"""Reading ANNs: ONNX (numpy executor checked against onnxruntime), scikit-learn, PyTorch."""

import pickle
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spikelut.compiler.frontend.ann import (
    ANNError,
    DenseNet,
    from_onnx,
    from_sklearn,
    load_ann,
    run_onnx,
    softmax,
)


def _tiny_onnx(rng, *, extra_nodes=(), softmax_out=True, name_unsupported=None):
    """(N, 2, 3) -> Flatten -> Sub -> Gemm(transB) -> Relu -> MatMul -> Add -> Softmax."""
    w1 = rng.normal(size=(5, 6)).astype(np.float32)  # transB: (out, in)
    b1 = rng.normal(size=5).astype(np.float32)
    mean = rng.normal(size=(1, 2, 3)).astype(np.float32)
    w2 = rng.normal(size=(5, 4)).astype(np.float32)
    b2 = rng.normal(size=4).astype(np.float32)
    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(mean, "mean"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(b2, "b2"),
    ]
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["xc"], name="center"),
        helper.make_node("Flatten", ["xc"], ["f"], name="flat", axis=1),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        helper.make_node("MatMul", ["r", "w2"], ["m"], name="fc2"),
        helper.make_node("Add", ["m", "b2"], ["z"], name="bias2"),
    ]
    out = "z"
    if name_unsupported:
        nodes.append(helper.make_node(name_unsupported, ["z"], ["u"], name="weird"))
        out = "u"
    if softmax_out:
        nodes.append(helper.make_node("Softmax", [out], ["p"], name="sm", axis=-1))
        out = "p"
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 4])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_numpy_executor_matches_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(1)
    model = _tiny_onnx(rng)
    onnx.checker.check_model(model)
    x = rng.normal(size=(7, 2, 3)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (ref,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(run_onnx(model, x), ref, rtol=1e-5, atol=1e-6)


def test_onnx_extraction_reproduces_the_graph():
    rng = np.random.default_rng(2)
    model = _tiny_onnx(rng)
    net = from_onnx(model)
    assert net.dims == [6, 5, 4]
    assert [layer.activation for layer in net.layers] == ["relu", "identity"]
    assert net.output == "softmax"
    x = rng.normal(size=(9, 2, 3))
    np.testing.assert_allclose(softmax(net.logits(x)), run_onnx(model, x), rtol=1e-4, atol=1e-6)
    assert net.macs == 6 * 5 + 5 * 4


def test_onnx_without_softmax():
    rng = np.random.default_rng(3)
    model = _tiny_onnx(rng, softmax_out=False)
    net = from_onnx(model)
    assert net.output == "identity"
    x = rng.normal(size=(4, 2, 3))
    np.testing.assert_allclose(net.logits(x), run_onnx(model, x), rtol=1e-4, atol=1e-5)


def test_unsupported_operator_names_op_and_node():
    model = _tiny_onnx(np.random.default_rng(4), name_unsupported="Abs")
    with pytest.raises(ANNError, match=r"Abs.*'weird'"):
        from_onnx(model)
    with pytest.raises(ANNError, match="Abs"):
        run_onnx(model, np.zeros((1, 2, 3), np.float32))


def test_softmax_must_be_last():
    rng = np.random.default_rng(5)
    model = _tiny_onnx(rng)
    model.graph.node.append(helper.make_node("Relu", ["p"], ["q"], name="after"))
    model.graph.output[0].name = "q"
    with pytest.raises(ANNError, match="softmax must be the last"):
        from_onnx(model)


def test_branching_graph_is_refused():
    w = numpy_helper.from_array(np.eye(3, dtype=np.float32), "w")
    # a skip connection across a nonlinearity (a linear one folds: x @ w + x = x @ (w + I))
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="m1"),
        helper.make_node("Relu", ["a"], ["r"], name="r1"),
        helper.make_node("Add", ["r", "x"], ["b"], name="skip"),
    ]
    graph = helper.make_graph(
        nodes,
        "branch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 3])],
        initializer=[w],
    )
    with pytest.raises(ANNError, match="'skip'"):
        from_onnx(helper.make_model(graph))


def _fit_mlp(X, y, **kw):
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier(hidden_layer_sizes=(6,), max_iter=300, random_state=0, **kw).fit(X, y)


def test_sklearn_mlp_matches_predict_proba():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    mlp = _fit_mlp(X, y)
    net = from_sklearn(mlp)
    np.testing.assert_array_equal(net.predict(X), mlp.predict(X))
    np.testing.assert_allclose(softmax(net.logits(X)), mlp.predict_proba(X), atol=1e-9)
    assert net.source["format"] == "sklearn"


def test_sklearn_pipeline_scaler_is_folded():
    from sklearn.datasets import load_wine
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    X, y = load_wine(return_X_y=True)
    for scaler in (StandardScaler(), MinMaxScaler()):
        pipe = make_pipeline(scaler, _fit_mlp(scaler.fit_transform(X), y))
        net = from_sklearn(pipe)
        np.testing.assert_allclose(softmax(net.logits(X)), pipe.predict_proba(X), atol=1e-9)


def test_sklearn_binary_becomes_two_outputs():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = X / X.max(axis=0)
    mlp = _fit_mlp(X, y)
    net = from_sklearn(mlp)
    assert net.n_outputs == 2
    np.testing.assert_allclose(softmax(net.logits(X)), mlp.predict_proba(X), atol=1e-9)


def test_sklearn_refuses_other_estimators():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ANNError, match="LogisticRegression"):
        from_sklearn(LogisticRegression())


def test_load_ann_files_and_provenance(tmp_path):
    import hashlib

    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    mlp = _fit_mlp(X, y)
    pkl = tmp_path / "mlp.pkl"
    pkl.write_bytes(pickle.dumps(mlp))
    net = load_ann(pkl)
    np.testing.assert_array_equal(net.predict(X), mlp.predict(X))
    assert net.source["sha256"] == hashlib.sha256(pkl.read_bytes()).hexdigest()
    model = _tiny_onnx(np.random.default_rng(6))
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    assert load_ann(path).source["format"] == "onnx"
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(ANNError, match="unknown ANN format"):
        load_ann(tmp_path / "x.h5")
    with pytest.raises(ANNError, match="no such file"):
        load_ann(tmp_path / "missing.onnx")


def test_densenet_validates_shapes():
    with pytest.raises(ANNError, match="layer 1 reads 3"):
        DenseNet([(np.zeros((2, 4)), np.zeros(4), "relu"), (np.zeros((3, 2)), 0.0, "identity")])
    with pytest.raises(ANNError, match="activation"):
        DenseNet([(np.zeros((2, 4)), np.zeros(4), "gelu")])


def test_torch_sequential(tmp_path):
    # torch is an optional extra: where it is installed the real path is checked; where it
    # is not, reading a PyTorch file must say so in one line.
    try:
        import torch
    except ImportError:
        (tmp_path / "net.pt").write_bytes(b"not loaded")
        with pytest.raises(ANNError, match="needs torch installed"):
            load_ann(tmp_path / "net.pt")
        return
    seq = torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3), torch.nn.Softmax(dim=1)
    )
    from spikelut.compiler.frontend.ann import from_torch

    net = from_torch(seq)
    x = np.random.default_rng(0).normal(size=(6, 4))
    ref = seq(torch.tensor(x, dtype=torch.float64).float()).detach().numpy()
    np.testing.assert_allclose(softmax(net.logits(x)), ref, atol=1e-5)
