"""Reading the ONNX graphs the common exporters write, made by the exporters themselves:
skl2onnx (scikit-learn), torch.onnx (TorchScript and dynamo exporters) and tf2onnx (Keras,
kept as files in tests/data: TensorFlow is not installed for the tests). Every extracted
network must reproduce the source's probabilities (or logits) to 1e-5, and onnxruntime's."""

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

from spikelut.compiler.frontend.ann import ANNError, from_onnx, load_ann, run_onnx

DATA = Path(__file__).resolve().parent / "data"


def _ort(model: onnx.ModelProto, X: np.ndarray) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})


def _data(n=240, d=7, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, size=d) + rng.normal(size=d) * 5
    y = (np.argsort(X @ rng.normal(size=(d, k)), axis=1)[:, -1]).astype(np.int64)
    return X, y


def _mlp(X, y, hidden, activation="relu", scaler=None):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPClassifier(hidden, activation=activation, max_iter=60, random_state=0)
    model = make_pipeline(scaler or StandardScaler(), mlp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


# -- skl2onnx -------------------------------------------------------------------------------

SKL_CASES = [
    # (hidden layers, activation, classes, scaler, zipmap, input dtype)
    ((8,), "relu", 3, "standard", True, np.float32),
    ((8, 6), "tanh", 3, "minmax", False, np.float32),
    ((8, 6, 5), "logistic", 4, "maxabs", "columns", np.float32),
    ((8, 6, 5, 4), "identity", 3, "standard", False, np.float64),
    ((8,), "relu", 2, "standard", True, np.float32),  # binary: Sigmoid, Sub, Concat head
    ((6, 5), "tanh", 2, "minmax", False, np.float64),
]


@pytest.mark.parametrize(("hidden", "act", "k", "scaler", "zipmap", "dtype"), SKL_CASES)
def test_skl2onnx_mlp_reproduces_predict_proba(hidden, act, k, scaler, zipmap, dtype):
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

    sc = {"standard": StandardScaler, "minmax": MinMaxScaler, "maxabs": MaxAbsScaler}[scaler]()
    X, y = _data(k=k)
    model = _mlp(X, y, hidden, act, sc)
    proto = to_onnx(model, X[:1].astype(dtype), options={"zipmap": zipmap})
    # the graph holds the label head the issue names: Cast, ArgMax, ArrayFeatureExtractor
    ops = {n.op_type for n in proto.graph.node}
    assert {"Cast", "ArgMax", "ArrayFeatureExtractor"} <= ops
    net = from_onnx(proto)
    # identity activations fold into one dense layer
    assert net.n_outputs == k and net.dims[1:-1] == ([] if act == "identity" else list(hidden))
    assert net.source["producer"].startswith("skl2onnx")
    np.testing.assert_allclose(net.predict_proba(X), model.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(net.predict(X), model.predict(X))
    # onnxruntime's probabilities (the last output, or a column per class) and run_onnx's
    outs = _ort(proto, X.astype(dtype))
    probs = np.column_stack(outs[1:]) if zipmap == "columns" else outs[1]
    if zipmap is True:
        probs = np.array([[row[c] for c in range(k)] for row in probs])
    np.testing.assert_allclose(net.predict_proba(X), probs, atol=1e-5)
    np.testing.assert_allclose(run_onnx(proto, X), net.predict_proba(X), atol=1e-5)


def test_skl2onnx_file_through_load_ann(tmp_path):
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx

    X, y = _data(k=3)
    model = _mlp(X, y, (8,))
    path = tmp_path / "mlp.onnx"
    path.write_bytes(to_onnx(model, X[:1].astype(np.float32)).SerializeToString())
    net = load_ann(path)
    assert net.source["file"] == "mlp.onnx" and net.output == "softmax"
    np.testing.assert_allclose(net.predict_proba(X), model.predict_proba(X), atol=1e-5)


def test_skl2onnx_other_estimator_names_its_node():
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = _data(k=3)
    proto = to_onnx(LogisticRegression(max_iter=200).fit(X, y), X[:1].astype(np.float32))
    with pytest.raises(ANNError) as err:
        from_onnx(proto)
    msg = str(err.value)
    assert "\n" not in msg
    assert "LinearClassifier" in msg and "in node" in msg and "supported: " in msg


# -- torch.onnx -----------------------------------------------------------------------------


def _torch_models(torch):
    nn = torch.nn
    torch.manual_seed(0)

    class ViewNet(nn.Module):  # a hand-written forward: view, functional relu, batch norm
        def __init__(self):
            super().__init__()
            self.fc1, self.bn, self.fc2 = nn.Linear(12, 9), nn.BatchNorm1d(9), nn.Linear(9, 4)

        def forward(self, x):
            x = x.view(x.size(0), -1)
            return torch.softmax(self.fc2(self.bn(torch.relu(self.fc1(x)))), dim=1)

    models = {
        "relu1": (nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3)), (12,)),
        "bn-leaky-tanh-sigmoid-4": (
            nn.Sequential(
                nn.Linear(12, 10), nn.BatchNorm1d(10), nn.LeakyReLU(0.1), nn.Dropout(0.3),
                nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 7), nn.Sigmoid(),
                nn.Linear(7, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 5),
                nn.Softmax(dim=1),
            ),
            (12,),
        ),
        "view-bn": (ViewNet(), (3, 4)),
        "flatten-binary": (
            nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 1), nn.Sigmoid()),
            (2, 6),
        ),
    }  # fmt: skip
    for model, _ in models.values():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):  # running statistics as after training
                with torch.no_grad():
                    m.running_mean.normal_()
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.normal_()
                    m.bias.normal_()
        model.eval()
    return models


# (model, exporter, opset): the TorchScript exporter at the opsets in use, the dynamo
# exporter (torch's default since 2.9) at its default and 18
TORCH_CASES = [
    ("relu1", "torchscript", 11),
    ("bn-leaky-tanh-sigmoid-4", "torchscript", 13),
    ("view-bn", "torchscript", 17),
    ("flatten-binary", "torchscript", 14),
    ("bn-leaky-tanh-sigmoid-4", "dynamo", None),
    ("view-bn", "dynamo", 18),
    ("flatten-binary", "dynamo", None),
]


@pytest.fixture(scope="module")
def torch_models():
    torch = pytest.importorskip("torch")
    return torch, _torch_models(torch)


@pytest.mark.parametrize(("name", "exporter", "opset"), TORCH_CASES)
def test_torch_onnx_export_reproduces_the_module(torch_models, name, exporter, opset, tmp_path):
    torch, models = torch_models
    model, shape = models[name]
    if exporter == "dynamo":
        pytest.importorskip("onnxscript")
    x = torch.tensor(np.random.default_rng(1).normal(size=(16, *shape)), dtype=torch.float32)
    path = tmp_path / f"{name}.onnx"
    logging.getLogger("torch").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch = torch.export.Dim("batch")
            torch.onnx.export(model, (x,), path, opset_version=opset, dynamic_shapes=({0: batch},))
        else:
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset,
                              dynamic_axes={"input": {0: "batch"}}, input_names=["input"])  # fmt: skip
    net = load_ann(path)
    ref = model(x).detach().double().numpy()
    X = x.numpy().reshape(len(x), -1)
    if net.source.get("head") == "sigmoid":  # one sigmoid output: P(class 1)
        assert net.n_outputs == 2
        ref = np.column_stack([1 - ref[:, 0], ref[:, 0]])
    got = net.predict_proba(X) if net.output == "softmax" else net.logits(X)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    (ort_out,) = _ort(onnx.load(str(path)), x.numpy())
    np.testing.assert_allclose(run_onnx(onnx.load(str(path)), x.numpy()), ort_out, atol=1e-5)


def test_torch_unsupported_operator_is_one_line_naming_the_node(torch_models, tmp_path):
    torch, _ = torch_models
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.GELU(), torch.nn.Linear(5, 3))
    path = tmp_path / "gelu.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(2, 4),), path, dynamo=False, opset_version=13)
    with pytest.raises(ANNError) as err:
        load_ann(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert "unsupported ONNX operator" in msg and "in node '/1/" in msg
    assert "supported: " in msg and "Relu" in msg and "Gemm" in msg


# -- tf2onnx (Keras) ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["softmax", "binary"])
def test_keras_tf2onnx_graphs(name):
    proto = onnx.load(str(DATA / f"keras_{name}.onnx"))
    ref = np.load(DATA / f"keras_{name}.npz")
    net = from_onnx(proto)
    P = ref["P"].astype(np.float64)
    if P.shape[1] == 1:
        P = np.column_stack([1 - P[:, 0], P[:, 0]])
    np.testing.assert_allclose(net.predict_proba(ref["X"]), P, atol=1e-5)
    assert net.source["producer"].startswith("tf2onnx")


def test_constants_left_as_inputs_are_named():
    proto = onnx.load(str(DATA / "keras_softmax.onnx"))
    extra = onnx.helper.make_tensor_value_info("mean", onnx.TensorProto.FLOAT, [6])
    proto.graph.input.append(extra)
    with pytest.raises(ANNError, match=r"exactly one data input, not 2 \(.*mean\)"):
        from_onnx(proto)


def test_torch_sequential_module_directly(torch_models):
    """``from_torch`` (a saved ``nn.Sequential``) folds the same layers as the ONNX path."""
    torch, models = torch_models
    from spikelut.compiler.frontend.ann import from_torch

    for name in ("bn-leaky-tanh-sigmoid-4", "flatten-binary"):
        model, shape = models[name]
        x = torch.tensor(np.random.default_rng(2).normal(size=(8, *shape)), dtype=torch.float32)
        net = from_torch(model)
        ref = model(x).detach().double().numpy()
        if ref.shape[1] == 1:
            ref = np.column_stack([1 - ref[:, 0], ref[:, 0]])
        np.testing.assert_allclose(net.predict_proba(x.numpy().reshape(8, -1)), ref, atol=1e-5)
