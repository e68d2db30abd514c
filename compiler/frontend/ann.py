"""Reading trained feed-forward ANNs into one dense-network form, :class:`DenseNet`.

Sources:

- an ONNX file (:func:`from_onnx`) as the common exporters write it: torch.onnx (both the
  TorchScript and the dynamo exporter), skl2onnx and tf2onnx (Keras). Dense layers
  (``Gemm``, ``MatMul`` + ``Add``), activations ``Relu``, ``Tanh``, ``Sigmoid``, ``LeakyRelu``,
  batch normalisation, scalers and elementwise constant operations (folded into the dense
  layers), no-ops (``Identity``, ``Dropout``, float ``Cast``, ``Flatten``, ``Reshape``), a final
  ``Softmax``/``LogSoftmax`` or a binary classifier's sigmoid head; scikit-learn's label head
  (``ArgMax``, ``ArrayFeatureExtractor``, ``ZipMap``) is recognised and dropped. Anything else
  raises :class:`ANNError` naming the operator and its node. :func:`run_onnx` executes the
  same graphs with numpy (the reference the extraction is checked against).
- a scikit-learn ``MLPClassifier`` (:func:`from_sklearn`), alone or as the last step of a
  ``Pipeline`` after ``StandardScaler``/``MinMaxScaler``/``MaxAbsScaler`` steps (folded into
  the first layer); a pickled or joblib file of one (:func:`load_ann`).
- a PyTorch ``nn.Sequential`` (:func:`from_torch`), only when torch is installed; torch is
  never imported otherwise.

A :class:`DenseNet` is a list of :class:`DenseLayer` ``(W, b, activation, alpha)`` with ``W``
of shape (in, out): layer ``k`` computes ``act(x @ W + b)``; the last layer's output is the
logits (``output`` says whether the source ended in a softmax; argmax is the same either
way). A binary classifier's one sigmoid output ``sigmoid(z)`` becomes the two logits
``(-z/2, z/2)``, whose softmax is the same probabilities.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

ACTIVATIONS = ("relu", "identity", "tanh", "logistic", "leaky_relu")


class ANNError(ValueError):
    """The ANN cannot be read: unsupported operator, layer or file; the message is one line."""


class DenseLayer(NamedTuple):
    """One dense layer: ``act(x @ W + b)``; ``W`` (in, out) and ``b`` (out,) float64;
    ``alpha``: the slope of ``leaky_relu`` below zero (unused by the other activations)."""

    W: np.ndarray
    b: np.ndarray
    activation: str
    alpha: float = 0.0


def _act(name: str, z: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, alpha * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    return z


def softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``z / temperature``."""
    z = np.asarray(z, np.float64) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(eq=False)
class DenseNet:
    """A feed-forward network of dense layers (see the module docstring).

    ``output``: ``"softmax"`` when the source ends in a softmax, else ``"identity"``.
    ``source``: provenance (``format``, ``file``, ``sha256`` where read from a file).
    """

    layers: list[DenseLayer]
    output: str = "identity"
    source: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.layers:
            raise ANNError("the network has no dense layer")
        fixed = []
        for k, layer in enumerate(self.layers):
            W, b, act, alpha = DenseLayer(*layer)
            W = np.asarray(W, np.float64)
            b = np.broadcast_to(np.asarray(b, np.float64), (W.shape[-1],)).copy()
            if W.ndim != 2:
                raise ANNError(f"layer {k}: weights must be a matrix, not shape {W.shape!r}")
            if act not in ACTIVATIONS:
                raise ANNError(f"layer {k}: unsupported activation {act!r}; use {ACTIVATIONS}")
            if k and W.shape[0] != fixed[-1].W.shape[1]:
                raise ANNError(
                    f"layer {k} reads {W.shape[0]} values but layer {k - 1} gives "
                    f"{fixed[-1].W.shape[1]}"
                )
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ANNError(f"layer {k}: weights or biases are not finite")
            fixed.append(DenseLayer(W, b, act, float(alpha)))
        self.layers = fixed
        if self.output not in ("softmax", "identity"):
            raise ANNError(f"output must be 'softmax' or 'identity', not {self.output!r}")

    @property
    def in_dim(self) -> int:
        """The number of input features."""
        return self.layers[0].W.shape[0]

    @property
    def dims(self) -> list[int]:
        """Widths ``[in, hidden..., out]``."""
        return [self.in_dim] + [layer.W.shape[1] for layer in self.layers]

    @property
    def n_outputs(self) -> int:
        """The width of the last layer (the number of classes)."""
        return self.layers[-1].W.shape[1]

    @property
    def macs(self) -> int:
        """Multiply-accumulates per inference, ``sum of in * out``."""
        return sum(layer.W.size for layer in self.layers)

    @property
    def n_parameters(self) -> int:
        """Weights and biases."""
        return sum(layer.W.size + layer.b.size for layer in self.layers)

    def _flat(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float64)
        X = X.reshape(len(X), -1) if X.ndim != 2 else X
        if X.shape[1] != self.in_dim:
            raise ANNError(f"the network reads {self.in_dim} features, not {X.shape[1]}")
        return X

    def forward(self, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(pre-activation, activation)`` of every layer for inputs ``X`` (n, in_dim)."""
        x = self._flat(X)
        out = []
        for W, b, act, alpha in self.layers:
            z = x @ W + b
            x = _act(act, z, alpha)
            out.append((z, x))
        return out

    def logits(self, X: np.ndarray) -> np.ndarray:
        """The last layer's output (before any final softmax), shape (n, n_outputs)."""
        return self.forward(X)[-1][1]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities: the softmax of the logits (what the source's softmax, or a
        binary classifier's sigmoid head, computes)."""
        return softmax(self.logits(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class indices (argmax, lowest index on ties)."""
        return np.argmax(self.logits(X), axis=1)

    def as_list(self) -> list[tuple[np.ndarray, np.ndarray, str, float]]:
        """The layers as plain ``(W, b, activation, alpha)`` tuples."""
        return [tuple(layer) for layer in self.layers]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_ann(path: str | os.PathLike) -> DenseNet:
    """Read an ANN file: ``.onnx``, or a pickle/joblib file (``.pkl``, ``.pickle``,
    ``.joblib``) of a scikit-learn ``MLPClassifier`` (or ``Pipeline`` ending in one), or a
    PyTorch ``.pt``/``.pth`` file of an ``nn.Sequential`` (torch installed). Pickles execute
    code when loaded: only load files you trust. Raises :class:`ANNError`."""
    path = Path(path)
    if not path.is_file():
        raise ANNError(f"{path}: no such file")
    suffix = path.suffix.lower()
    source = {"file": path.name, "sha256": file_sha256(path)}
    if suffix == ".onnx":
        import onnx

        try:
            proto = onnx.load(str(path))
        except Exception as e:  # onnx raises several unrelated types on a bad file
            raise ANNError(f"{path}: not a readable ONNX file ({e})") from None
        net = from_onnx(proto)
    elif suffix in (".pkl", ".pickle", ".joblib"):
        obj = _unpickle(path)
        net = from_sklearn(obj)
    elif suffix in (".pt", ".pth"):
        try:
            import torch
        except ImportError:
            raise ANNError(f"{path}: reading PyTorch files needs torch installed") from None
        net = from_torch(torch.load(str(path), weights_only=False))
    else:
        raise ANNError(
            f"{path}: unknown ANN format {suffix!r}; give an .onnx file or a pickled/joblib "
            "scikit-learn MLPClassifier (.pkl, .joblib)"
        )
    net.source = {**net.source, **source}
    return net


def _unpickle(path: Path) -> Any:
    try:
        import joblib

        return joblib.load(path)
    except ImportError:
        pass
    except Exception as e:
        raise ANNError(f"{path}: cannot unpickle the file ({type(e).__name__}: {e})") from None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as e:
        raise ANNError(f"{path}: cannot unpickle the file ({type(e).__name__}: {e})") from None


# -- scikit-learn ---------------------------------------------------------------------------


def _scaler_affine(step: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(gain, offset)`` with ``step.transform(x) == x * gain + offset``."""
    name = type(step).__name__
    ones, zeros = np.ones(dim), np.zeros(dim)
    if name == "StandardScaler":
        mean = step.mean_ if getattr(step, "with_mean", True) and step.mean_ is not None else zeros
        scale = step.scale_ if getattr(step, "with_std", True) and step.scale_ is not None else ones
        return 1.0 / scale, -mean / scale
    if name == "MinMaxScaler":
        return np.asarray(step.scale_, np.float64), np.asarray(step.min_, np.float64)
    if name == "MaxAbsScaler":
        return 1.0 / np.asarray(step.scale_, np.float64), zeros
    raise ANNError(
        f"unsupported pipeline step {name}; only StandardScaler, MinMaxScaler and MaxAbsScaler "
        "may precede the MLPClassifier"
    )


def from_sklearn(obj: Any) -> DenseNet:
    """A fitted scikit-learn ``MLPClassifier`` (or a ``Pipeline`` of scalers ending in one).

    A binary classifier (one logistic output unit with logit ``z``) becomes two outputs
    ``(-z/2, z/2)``, whose softmax equals the classifier's probabilities.
    """
    prefix: list[Any] = []
    if type(obj).__name__ == "Pipeline":
        steps = [s for _, s in obj.steps if s is not None and s != "passthrough"]
        if not steps:
            raise ANNError("the pipeline is empty")
        prefix, obj = steps[:-1], steps[-1]
    if type(obj).__name__ != "MLPClassifier":
        raise ANNError(
            f"expected a scikit-learn MLPClassifier, got {type(obj).__name__}; "
            "fit an MLPClassifier or export the network to ONNX"
        )
    if not hasattr(obj, "coefs_"):
        raise ANNError("the MLPClassifier is not fitted; call fit() before saving it")
    act = obj.activation
    if act not in ACTIVATIONS:
        raise ANNError(f"unsupported MLPClassifier activation {act!r}; use one of {ACTIVATIONS}")
    Ws = [np.asarray(W, np.float64) for W in obj.coefs_]
    bs = [np.asarray(b, np.float64) for b in obj.intercepts_]
    for step in reversed(prefix):
        gain, offset = _scaler_affine(step, Ws[0].shape[0])
        bs[0] = bs[0] + offset @ Ws[0]
        Ws[0] = gain[:, None] * Ws[0]
    out_act = obj.out_activation_
    if out_act == "logistic" and Ws[-1].shape[1] == 1:
        Ws[-1] = np.concatenate([-Ws[-1] / 2, Ws[-1] / 2], axis=1)
        bs[-1] = np.concatenate([-bs[-1] / 2, bs[-1] / 2])
        out_act = "softmax"
    if out_act != "softmax":
        raise ANNError(
            f"unsupported MLPClassifier output {out_act!r} (multi-label?); "
            "convert needs one class per sample"
        )
    layers = [
        DenseLayer(W, b, act if k < len(Ws) - 1 else "identity")
        for k, (W, b) in enumerate(zip(Ws, bs, strict=True))
    ]
    kind = "sklearn-pipeline" if prefix else "sklearn"
    return DenseNet(layers, output="softmax", source={"format": kind})


# -- the binary classifier's head -----------------------------------------------------------


def _binary_head(layers: list[DenseLayer], output: str) -> tuple[list[DenseLayer], str, str]:
    """A binary classifier's sigmoid head as two logits: ``(layers, output, head)``.

    A last layer of one logistic unit (logit ``z``; Keras' ``Dense(1, "sigmoid")``, PyTorch's
    ``Sigmoid`` on one output), optionally followed by the affine map ``s -> (1 - s, s)``
    (skl2onnx's ``Sub``/``Concat``), becomes the two outputs ``(-z/2, z/2)`` with a softmax:
    the same probabilities, and one logit per class for conversion. ``head`` says which
    (``"sigmoid"`` or ``""``).
    """
    last = layers[-1]
    if (
        output == "identity"
        and len(layers) >= 2
        and last.activation == "identity"
        and last.W.shape == (1, 2)
        and np.allclose(last.W, [[-1.0, 1.0]], atol=1e-7)
        and np.allclose(last.b, [1.0, 0.0], atol=1e-7)
        and layers[-2].activation == "logistic"
    ):
        layers = layers[:-1]
        last = layers[-1]
    if output == "identity" and last.activation == "logistic" and last.W.shape[1] == 1:
        W = np.concatenate([-last.W / 2, last.W / 2], axis=1)
        b = np.concatenate([-last.b / 2, last.b / 2])
        return [*layers[:-1], DenseLayer(W, b, "identity")], "softmax", "sigmoid"
    return layers, output, ""


# -- PyTorch (optional) ---------------------------------------------------------------------

_TORCH_ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "logistic", "LeakyReLU": "leaky_relu"}  # fmt: skip


def _torch_modules(module: Any) -> list[Any]:
    """The leaf modules of nested ``nn.Sequential`` containers, in order."""
    if type(module).__name__ != "Sequential":
        return [module]
    return [leaf for child in module.children() for leaf in _torch_modules(child)]


def _torch_array(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _torch_affine(child: Any, state: _Affine, dim: int, k: int) -> None:
    """Fold a ``Linear`` or an eval-mode ``BatchNorm1d`` into the pending affine map."""
    if type(child).__name__ == "Linear":
        state.matmul(_torch_array(child.weight).T)
        if child.bias is not None:
            state.shift(_torch_array(child.bias))
        return
    if child.running_mean is None:
        raise ANNError(f"module {k} (BatchNorm1d) keeps no running statistics")
    g = 1.0 / np.sqrt(_torch_array(child.running_var) + child.eps)
    bias = 0.0
    if child.affine:
        g, bias = g * _torch_array(child.weight), _torch_array(child.bias)
    state.scale(g, dim)
    state.shift(bias - _torch_array(child.running_mean) * g)


def from_torch(module: Any) -> DenseNet:
    """A PyTorch ``nn.Sequential`` (nesting allowed) of ``Linear``, ``ReLU``, ``Tanh``,
    ``Sigmoid``, ``LeakyReLU``, ``BatchNorm1d`` (its running statistics, folded into the
    neighbouring dense layer), ``Flatten``, ``Identity``, ``Dropout`` (ignored) and a final
    ``Softmax``/``LogSoftmax``; a final ``Sigmoid`` on one output is a binary classifier's
    head (:func:`_binary_head`). torch must be installed; it is imported here only."""
    import torch  # noqa: F401  (only callers holding a torch module get here)

    children = _torch_modules(module)
    widths = [
        c.in_features if type(c).__name__ == "Linear" else c.num_features
        for c in children
        if type(c).__name__ in ("Linear", "BatchNorm1d")
    ]
    if not widths:
        raise ANNError("the PyTorch module has no Linear layer")
    layers: list[DenseLayer] = []
    state, dim, output = _Affine(), int(widths[0]), "identity"
    for k, child in enumerate(children):
        name = type(child).__name__
        if output == "softmax":
            raise ANNError(f"module {k} ({name}) follows the final softmax")
        if name in ("Linear", "BatchNorm1d"):
            _torch_affine(child, state, dim, k)
        elif name in _TORCH_ACTIVATIONS:
            W, b = state.dense(dim)
            alpha = float(child.negative_slope) if name == "LeakyReLU" else 0.0
            layers.append(DenseLayer(W, b, _TORCH_ACTIVATIONS[name], alpha))
            state, dim = _Affine(), W.shape[1]
        elif name in ("Softmax", "LogSoftmax") and k == len(children) - 1:
            output = "softmax"
        elif name not in ("Flatten", "Identity", "Dropout"):
            raise ANNError(
                f"unsupported PyTorch module {name} at position {k}; supported: Linear, "
                "ReLU, Tanh, Sigmoid, LeakyReLU, BatchNorm1d, Flatten, Identity, Dropout, "
                "a final Softmax"
            )
    if not state.is_identity or not layers:
        layers.append(DenseLayer(*state.dense(dim), "identity"))
    layers, output, head = _binary_head(layers, output)
    source = {"format": "torch"} | ({"head": head} if head else {})
    return DenseNet(layers, output=output, source=source)


# -- ONNX -----------------------------------------------------------------------------------
#
# Reading a graph: (1) choose the output that carries the class scores (a float tensor, or
# the input of a ZipMap) and drop the label head (outputs computed through an ArgMax);
# (2) keep the nodes that output needs; (3) walk them in graph order: a node whose inputs
# are all constants is evaluated (``_EVAL``), a node that reads the data is folded (``_FOLD``)
# into the pending affine map since the last nonlinearity, each nonlinearity closing one
# dense layer. ``run_onnx`` walks the same nodes with numpy arrays (``_EVAL`` alone).

# ops that only serve the predicted label (skl2onnx's head); outputs that need them are dropped
_LABEL_OPS = ("ArgMax", "ArrayFeatureExtractor", "ZipMap")
# ops that pass the class scores through unchanged on the way to a graph output
_PASS_OPS = ("Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Slice", "Gather", "Dropout")
# the batch size inside a shape tensor computed from the data (``Shape``)
_BATCH = -(1 << 40)
_FLOAT_ELEM = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _node_name(node: Any, k: int) -> str:
    return repr(node.name) if node.name else f"#{k}"


def _where(node: Any, k: int) -> str:
    return f"{node.op_type} node {_node_name(node, k)}"


def _np_dtype(onnx_type: int) -> np.dtype:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(onnx_type))


def _eval_constant(ins, attrs):
    from onnx import numpy_helper

    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):  # fmt: skip
        if key in attrs:
            return np.asarray(attrs[key], dtype)
    raise ANNError(f"Constant with {', '.join(attrs)}: only tensor and number values are supported")


def _eval_gemm(ins, attrs):
    a = ins[0].T if attrs.get("transA", 0) else ins[0]
    w = ins[1].T if attrs.get("transB", 0) else ins[1]
    y = attrs.get("alpha", 1.0) * (a @ w)
    if len(ins) > 2 and ins[2] is not None:
        y = y + attrs.get("beta", 1.0) * ins[2]
    return y


def _eval_flatten(ins, attrs):
    x = ins[0]
    axis = attrs.get("axis", 1) % max(x.ndim, 1)
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _eval_softmax(ins, attrs, log: bool = False):
    x = ins[0]
    axis = attrs.get("axis", -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    return np.log(y) if log else y


def _eval_reshape(ins, attrs):
    x, shape = ins[0], [int(v) for v in ins[1]]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def _axes(ins, attrs) -> list[int]:
    if len(ins) > 1 and ins[1] is not None:
        return [int(a) for a in np.ravel(ins[1])]
    return list(attrs.get("axes", []))


def _eval_unsqueeze(ins, attrs):
    x = ins[0]
    for a in sorted(a % (x.ndim + len(_axes(ins, attrs))) for a in _axes(ins, attrs)):
        x = np.expand_dims(x, a)
    return x


def _eval_squeeze(ins, attrs):
    axes = _axes(ins, attrs)
    return np.squeeze(ins[0], axis=tuple(axes) if axes else None)


def _eval_slice(ins, attrs):
    x = ins[0]
    if len(ins) > 1:
        starts, ends = ins[1], ins[2]
        axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
        steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    else:  # opset < 10: attributes
        starts, ends = attrs["starts"], attrs["ends"]
        axes = attrs.get("axes", range(len(starts)))
        steps = [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        index[int(a)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _eval_batchnorm(ins, attrs):
    x, scale, bias, mean, var = ins[:5]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    g = scale / np.sqrt(var + attrs.get("epsilon", 1e-5))
    return (x - mean.reshape(shape)) * g.reshape(shape) + bias.reshape(shape)


def _scaler_attrs(attrs) -> tuple[np.ndarray, np.ndarray]:
    offset = np.asarray(attrs.get("offset", [0.0]), np.float64)
    scale = np.asarray(attrs.get("scale", [1.0]), np.float64)
    return offset, scale


def _eval_scaler(ins, attrs):
    offset, scale = _scaler_attrs(attrs)
    return (ins[0] - offset) * scale


def _eval_concat(ins, attrs):
    return np.concatenate([np.atleast_1d(v) for v in ins], axis=attrs["axis"])


# op -> f(inputs, attributes) -> output, the numpy semantics of every supported operator
_EVAL = {
    "Constant": _eval_constant,
    "Gemm": _eval_gemm,
    "MatMul": lambda ins, attrs: ins[0] @ ins[1],
    "Add": lambda ins, attrs: ins[0] + ins[1],
    "Sub": lambda ins, attrs: ins[0] - ins[1],
    "Mul": lambda ins, attrs: ins[0] * ins[1],
    "Div": lambda ins, attrs: ins[0] / ins[1],
    "Neg": lambda ins, attrs: -ins[0],
    "Sqrt": lambda ins, attrs: np.sqrt(ins[0]),
    "Reciprocal": lambda ins, attrs: 1 / ins[0],
    "Relu": lambda ins, attrs: np.maximum(ins[0], 0),
    "LeakyRelu": lambda ins, attrs: np.where(ins[0] > 0, ins[0], attrs.get("alpha", 0.01) * ins[0]),
    "Tanh": lambda ins, attrs: np.tanh(ins[0]),
    "Sigmoid": lambda ins, attrs: 1 / (1 + np.exp(-ins[0])),
    "Flatten": _eval_flatten,
    "Softmax": _eval_softmax,
    "LogSoftmax": lambda ins, attrs: _eval_softmax(ins, attrs, log=True),
    "Identity": lambda ins, attrs: ins[0],
    "Dropout": lambda ins, attrs: ins[0],  # inference
    "Cast": lambda ins, attrs: np.asarray(ins[0]).astype(_np_dtype(attrs["to"])),
    "BatchNormalization": _eval_batchnorm,
    "Scaler": _eval_scaler,
    "Concat": _eval_concat,
    "Reshape": _eval_reshape,
    "Shape": lambda ins, attrs: np.asarray(ins[0].shape, np.int64)[
        attrs.get("start", 0) : attrs.get("end")
    ],
    "Gather": lambda ins, attrs: np.take(
        ins[0], ins[1].astype(np.int64), axis=attrs.get("axis", 0)
    ),
    "Unsqueeze": _eval_unsqueeze,
    "Squeeze": _eval_squeeze,
    "Slice": _eval_slice,
    "Transpose": lambda ins, attrs: np.transpose(ins[0], attrs.get("perm")),
}


def _check_domain(node: Any, k: int) -> None:
    if node.domain not in ("", "ai.onnx", "ai.onnx.ml"):
        raise ANNError(f"unsupported ONNX operator {node.domain}.{node.op_type} in node "
                       f"{_node_name(node, k)}; supported: {_supported()}")  # fmt: skip


def _supported() -> str:
    return (", ".join(sorted(_FOLD)) + "; and on constants: " + ", ".join(sorted(set(_EVAL) - set(_FOLD)))
            + "; the label head's " + ", ".join(_LABEL_OPS) + " is dropped")  # fmt: skip


def _unsupported(node: Any, k: int) -> ANNError:
    return ANNError(f"unsupported ONNX operator {node.op_type} in node {_node_name(node, k)}; "
                    f"supported: {_supported()}")  # fmt: skip


class _Plan(NamedTuple):
    """What reading an ONNX graph walks: its data input, the tensor of class scores, the
    nodes that tensor needs (graph order, with their index) and the initializers."""

    input: Any
    output: str
    nodes: list[tuple[int, Any]]
    inits: dict[str, np.ndarray]


def _producers(graph: Any) -> dict[str, Any]:
    """Tensor name -> the node that writes it."""
    return {o: node for node in graph.node for o in node.output if o}


def _upstream(name: str, producer: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The tensors ``name`` depends on (itself included) and the operators computing them."""
    tensors, ops, todo = set(), set(), [name]
    while todo:
        n = todo.pop()
        if n in tensors:
            continue
        tensors.add(n)
        if n in producer:
            ops.add(producer[n].op_type)
            todo.extend(i for i in producer[n].input if i)
    return tensors, ops


def _score_output(graph: Any, producer: dict[str, Any]) -> str:
    """The tensor of class scores: the graph's float output not computed through an
    ``ArgMax`` (the label), or a ``ZipMap``'s input; several outputs that are columns of one
    tensor (skl2onnx's ``zipmap="columns"``) give that tensor."""
    scores: list[str] = []
    for out in graph.output:
        name = out.name
        made_by = producer.get(name)
        if made_by is not None and made_by.op_type == "ZipMap":
            name = made_by.input[0]
        elif out.type.WhichOneof("value") != "tensor_type" or (
            out.type.tensor_type.elem_type not in _FLOAT_ELEM
        ):
            continue  # a label (integers, strings) or a sequence
        if name not in scores and "ArgMax" not in _upstream(name, producer)[1]:
            scores.append(name)
    if not scores:
        raise ANNError("the ONNX graph has no float output of class scores or probabilities")
    if len(scores) > 1:
        common = set()
        for name in scores:
            while name in producer and producer[name].op_type in _PASS_OPS:
                name = producer[name].input[0]
            common.add(name)
        if len(common) != 1:
            raise ANNError(
                f"the ONNX graph has {len(scores)} float outputs ({', '.join(scores)}); "
                "export one tensor of class scores"
            )
        scores = [common.pop()]
    return scores[0]


def _plan(model: Any) -> _Plan:
    """The :class:`_Plan` of an ``onnx.ModelProto`` (see the comment above ``_LABEL_OPS``)."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ANNError(
            f"the ONNX graph must have exactly one data input, not {len(inputs)} "
            f"({', '.join(i.name for i in inputs)}); constants exported as inputs (as tf2onnx "
            "does with a Keras Normalization layer) must be initializers"
        )
    producer = _producers(graph)
    output = _score_output(graph, producer)
    needed = _upstream(output, producer)[0]
    nodes = [(k, n) for k, n in enumerate(graph.node) if any(o in needed for o in n.output)]
    for k, node in nodes:
        _check_domain(node, k)
    return _Plan(inputs[0], output, nodes, inits)


def run_onnx(model: Any, X: np.ndarray) -> np.ndarray:
    """Execute an ONNX model of the supported operators with numpy; returns its class scores
    (the output :func:`from_onnx` reads: the probabilities of a scikit-learn graph, not its
    label).

    ``model`` is an ``onnx.ModelProto`` or a path. Raises :class:`ANNError` on any other
    operator.
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    plan = _plan(model)
    values: dict[str, Any] = dict(plan.inits)
    elem = plan.input.type.tensor_type.elem_type
    values[plan.input.name] = np.asarray(X, _np_dtype(elem) if elem in _FLOAT_ELEM else np.float32)
    for k, node in plan.nodes:
        if node.op_type not in _EVAL:
            raise _unsupported(node, k)
        ins = [values[n] if n else None for n in node.input]
        values[node.output[0]] = np.asarray(_EVAL[node.op_type](ins, _attrs(node)))
    return values[plan.output]


class _Affine:
    """The data tensor as an affine map of the last nonlinearity's output ``base``:
    ``value = base @ A + c`` with ``A`` a matrix or a scalar (times identity)."""

    def __init__(self) -> None:
        self.A: np.ndarray | float = 1.0
        self.c: np.ndarray | float = 0.0

    def copy(self) -> _Affine:
        new = _Affine()
        new.A, new.c = self.A, self.c
        return new

    @property
    def is_identity(self) -> bool:
        return np.isscalar(self.A) and self.A == 1.0 and np.isscalar(self.c) and self.c == 0.0

    def matmul(self, W: np.ndarray) -> None:
        self.A = self.A * W if np.isscalar(self.A) else self.A @ W
        self.c = (np.full(W.shape[0], self.c) if np.isscalar(self.c) else self.c) @ W

    def scale(self, g: np.ndarray, dim: int | None) -> None:
        g = np.asarray(g, np.float64)
        if np.isscalar(self.A) and g.ndim:
            self.A = np.diag(np.broadcast_to(self.A * g, (_need(dim),)))
        else:
            self.A = self.A * g
            self.A = float(self.A) if np.ndim(self.A) == 0 else self.A
        self.c = self.c * g
        self.c = float(self.c) if np.ndim(self.c) == 0 else self.c

    def shift(self, k: np.ndarray) -> None:
        self.c = self.c + np.asarray(k, np.float64)
        self.c = float(self.c) if np.ndim(self.c) == 0 else self.c

    def dense(self, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
        A = np.eye(_need(dim)) * self.A if np.isscalar(self.A) else self.A
        return A, np.broadcast_to(self.c, (A.shape[1],)).copy()


def _need(dim: int | None) -> int:
    if dim is None:
        raise ANNError("the ONNX input has no static shape; give the input a fixed feature size")
    return dim


# ONNX activation operator -> the activation of the dense layer it closes
_ONNX_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "logistic", "LeakyRelu": "leaky_relu"}  # fmt: skip


@dataclass
class _Sym:
    """A tensor that depends on the data: an affine map (:class:`_Affine`) of the output of
    dense layer ``base - 1`` (``base`` 0: the input); its per-sample ``shape`` (None when
    unknown); ``final`` once a softmax has run on it."""

    affine: _Affine
    shape: tuple[int, ...] | None
    base: int
    final: bool = False

    def like(self, affine: _Affine | None = None, shape: Any = "same") -> _Sym:
        return _Sym(affine or self.affine.copy(), self.shape if shape == "same" else shape,
                    self.base, self.final)  # fmt: skip


class _Chain:
    """Folding an ONNX graph into dense layers: the value of every tensor walked so far
    (:class:`_Sym` for data, numpy arrays for constants), the width of the current base
    (``dim``) and the layers made so far. One handler per operator (``_FOLD``)."""

    def __init__(self, plan: _Plan) -> None:
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in plan.input.type.tensor_type.shape.dim]  # fmt: skip
        shape = tuple(dims[1:]) if len(dims) > 1 else None
        shape = shape if shape and None not in shape else None
        self.dim = int(np.prod(shape)) if shape else None
        self.values: dict[str, Any] = dict(plan.inits)
        self.values[plan.input.name] = _Sym(_Affine(), shape, 0)
        self.layers: list[DenseLayer] = []

    def step(self, node: Any, k: int) -> None:
        """Evaluate (constants only) or fold (data) one node."""
        where = _where(node, k)
        ins = [self.values[n] if n else None for n in node.input]
        attrs = _attrs(node)
        if not any(isinstance(v, _Sym) for v in ins):
            if node.op_type not in _EVAL:
                raise _unsupported(node, k)
            self.values[node.output[0]] = np.asarray(_EVAL[node.op_type](ins, attrs))
            return
        if node.op_type not in _FOLD:
            raise _unsupported(node, k)
        syms = [v for v in ins if isinstance(v, _Sym)]
        if any(s.base != len(self.layers) for s in syms):
            raise ANNError(f"{where} reads a tensor from before the last nonlinearity; only "
                           "feed-forward networks are supported (no skip connections)")  # fmt: skip
        if any(s.final for s in syms) and node.op_type not in ("Identity", "Cast", "Dropout", "Reshape", "Flatten", "Squeeze"):  # fmt: skip
            raise ANNError(f"{where} follows the final softmax; softmax must be the last operator")
        self.values[node.output[0]] = _FOLD[node.op_type](self, node, attrs, ins, where)

    def emit(self, sym: _Sym, act: str, alpha: float = 0.0) -> _Sym:
        """Close ``sym``'s affine map into a dense layer with activation ``act``."""
        W, b = sym.affine.dense(self.dim)
        self.layers.append(DenseLayer(W, b, act, alpha))
        self.dim = W.shape[1]
        return _Sym(_Affine(), sym.shape if sym.shape else (self.dim,), len(self.layers))

    def finish(self, out: Any) -> tuple[list[DenseLayer], str]:
        """The layers and output kind for the class-score tensor ``out``."""
        if not isinstance(out, _Sym):
            raise ANNError("the graph's class scores do not depend on its input")
        if out.base != len(self.layers):
            raise ANNError("the graph's output reads a tensor from before the last nonlinearity")
        if not out.affine.is_identity or not self.layers:
            self.emit(out, "identity")
        return self.layers, "softmax" if out.final else "identity"

    # -- handlers: f(self, node, attrs, inputs, where) -> the output's value ---------------

    @staticmethod
    def _one(ins: list, where: str) -> _Sym:
        syms = [v for v in ins if isinstance(v, _Sym)]
        if len(syms) != 1 or not isinstance(ins[0], _Sym):
            raise ANNError(f"{where}: the data must be its first input, and the only one")
        return ins[0]

    def passthrough(self, node, attrs, ins, where) -> _Sym:
        sym = self._one(ins, where)
        if node.op_type == "Cast" and _np_dtype(attrs["to"]).kind != "f":
            raise ANNError(f"{where}: casts the data to {_np_dtype(attrs['to'])}; only float "
                           "casts are supported")  # fmt: skip
        return sym.like()

    def activation(self, node, attrs, ins, where) -> _Sym:
        sym = self._one(ins, where)
        alpha = float(attrs.get("alpha", 0.01)) if node.op_type == "LeakyRelu" else 0.0
        return self.emit(sym, _ONNX_ACTIVATIONS[node.op_type], alpha)

    def softmax(self, node, attrs, ins, where) -> _Sym:
        sym = self._one(ins, where)
        if attrs.get("axis", -1 if node.op_type != "Softmax" else 1) not in (-1, 1):
            raise ANNError(f"{where}: softmax must run over the class axis (-1 or 1)")
        if sym.shape is not None and len(sym.shape) != 1:
            raise ANNError(f"{where}: softmax over a {sym.shape} tensor; flatten it first")
        out = sym.like()
        out.final = True
        return out

    def linear(self, node, attrs, ins, where) -> _Sym:
        """Gemm (``alpha * A @ B + beta * C``) or MatMul with a constant matrix."""
        sym = self._one(ins, where)
        if attrs.get("transA", 0) or not isinstance(ins[1], np.ndarray) or ins[1].ndim != 2:
            raise ANNError(f"{where}: only data @ constant matrix is supported")
        if sym.shape is not None and len(sym.shape) != 1:
            raise ANNError(f"{where}: multiplies a {sym.shape} tensor; flatten it first")
        W = np.asarray(ins[1], np.float64)
        W = attrs.get("alpha", 1.0) * (W.T if attrs.get("transB", 0) else W)
        out = sym.like(shape=(W.shape[1],))
        if self.dim is None and np.isscalar(out.affine.A):
            self.dim = W.shape[0]
        out.affine.matmul(W)
        if len(ins) > 2 and ins[2] is not None:
            out.affine.shift(attrs.get("beta", 1.0) * np.asarray(ins[2], np.float64).reshape(-1))
        return out

    def _fit(self, sym: _Sym, k: np.ndarray, where: str) -> np.ndarray | float:
        """A constant operand as a per-feature vector (or a scalar) for ``sym``."""
        k = np.asarray(k, np.float64)
        if k.size == 1:
            return float(k.reshape(-1)[0])
        if sym.shape is None:
            return k.reshape(-1)
        try:
            return np.broadcast_to(k, (1, *sym.shape)).reshape(-1)
        except ValueError:
            raise ANNError(f"{where}: constant shape {k.shape} does not fit {sym.shape}") from None

    def elementwise(self, node, attrs, ins, where) -> _Sym:
        """Add/Sub of data and a constant or two data tensors; Mul/Div by a constant."""
        op = node.op_type
        a, b = ins[0], ins[1]
        if isinstance(a, _Sym) and isinstance(b, _Sym):
            if op not in ("Add", "Sub"):
                raise ANNError(f"{where}: {op} of two data tensors is not linear")
            return self.combine([a, b], [1.0, 1.0 if op == "Add" else -1.0], where)
        first = isinstance(a, _Sym)
        sym, k = (a, b) if first else (b, a)
        k = self._fit(sym, k, where)
        out = sym.like()
        if op == "Add":
            out.affine.shift(k)
        elif op == "Sub":
            if not first:
                out.affine.scale(-1.0, self.dim)
            out.affine.shift(-np.asarray(k) if first else k)
        elif op == "Mul":
            out.affine.scale(k, self.dim)
        elif first:
            out.affine.scale(1.0 / np.asarray(k), self.dim)
        else:
            raise ANNError(f"{where}: constant / data is not linear")
        return out

    def neg(self, node, attrs, ins, where) -> _Sym:
        out = self._one(ins, where).like()
        out.affine.scale(-1.0, self.dim)
        return out

    def combine(self, syms: list[_Sym], signs: list[float], where: str) -> _Sym:
        A = sum(s.affine.dense(self.dim)[0] * g for s, g in zip(syms, signs, strict=True))
        c = sum(s.affine.dense(self.dim)[1] * g for s, g in zip(syms, signs, strict=True))
        if A.shape[1] != syms[0].affine.dense(self.dim)[0].shape[1]:
            raise ANNError(f"{where}: operands of different widths")
        out = syms[0].like(_Affine())
        out.affine.A, out.affine.c = A, c
        return out

    def batchnorm(self, node, attrs, ins, where) -> _Sym:
        sym = self._one(ins, where)
        if attrs.get("training_mode", 0):
            raise ANNError(f"{where}: training mode; export the model in eval mode")
        scale, bias, mean, var = (np.asarray(v, np.float64) for v in ins[1:5])
        g = scale / np.sqrt(var + attrs.get("epsilon", 1e-5))
        per = (-1,) + (1,) * (len(sym.shape) - 1) if sym.shape else (-1,)
        out = sym.like()
        out.affine.scale(self._fit(sym, g.reshape(per), where), self.dim)
        out.affine.shift(self._fit(sym, (bias - mean * g).reshape(per), where))
        return out

    def scaler(self, node, attrs, ins, where) -> _Sym:
        offset, scale = _scaler_attrs(attrs)
        out = self._one(ins, where).like()
        out.affine.shift(-self._fit(out, offset, where))
        out.affine.scale(self._fit(out, scale, where), self.dim)
        return out

    def concat(self, node, attrs, ins, where) -> _Sym:
        if not all(isinstance(v, _Sym) for v in ins):
            raise ANNError(f"{where}: concatenates data with constants")
        if any(s.shape is not None and len(s.shape) != 1 for s in ins) or attrs["axis"] not in (
            1,
            -1,
        ):
            raise ANNError(f"{where}: only concatenation of feature vectors (axis 1) is supported")  # fmt: skip
        parts = [s.affine.dense(self.dim) for s in ins]
        out = ins[0].like(_Affine())
        out.affine.A = np.concatenate([A for A, _ in parts], axis=1)
        out.affine.c = np.concatenate([c for _, c in parts])
        out.shape = (out.affine.A.shape[1],)
        return out

    def flatten(self, node, attrs, ins, where) -> _Sym:
        sym = self._one(ins, where)
        if attrs.get("axis", 1) != 1:
            raise ANNError(f"{where}: only axis=1 is supported")
        return sym.like(shape=(int(np.prod(sym.shape)),) if sym.shape else None)

    def reshape(self, node, attrs, ins, where) -> _Sym:
        """A reshape that keeps the batch axis first (values keep their order)."""
        sym = self._one(ins, where)
        target = [int(v) for v in np.ravel(ins[1])]
        if len(target) < 2:
            raise ANNError(f"{where}: reshapes the data to {target}; keep the batch axis first")
        rest = [(sym.shape[i - 1] if sym.shape and i - 1 < len(sym.shape) else None)
                if v == 0 and not attrs.get("allowzero", 0) else v
                for i, v in enumerate(target) if i > 0]  # fmt: skip
        n = int(np.prod(sym.shape)) if sym.shape else self.dim
        if None in rest or (-1 in rest and n is None):
            return sym.like(shape=None)
        if -1 in rest:
            known = int(np.prod([v for v in rest if v != -1]))
            rest[rest.index(-1)] = n // known if known else 0
        if n is not None and int(np.prod(rest)) != n:
            raise ANNError(f"{where}: reshapes {n} features per sample to {rest}")
        return sym.like(shape=tuple(rest))

    def shape_of(self, node, attrs, ins, where) -> np.ndarray:
        sym = self._one(ins, where)
        if sym.shape is None:
            raise ANNError(f"{where}: the data's shape is not static")
        full = np.asarray([_BATCH, *sym.shape], np.int64)
        return full[attrs.get("start", 0) : attrs.get("end")]


# op -> the handler folding it when it reads the data
_FOLD = {
    "Identity": _Chain.passthrough,
    "Dropout": _Chain.passthrough,
    "Cast": _Chain.passthrough,
    "Relu": _Chain.activation,
    "Tanh": _Chain.activation,
    "Sigmoid": _Chain.activation,
    "LeakyRelu": _Chain.activation,
    "Softmax": _Chain.softmax,
    "LogSoftmax": _Chain.softmax,
    "Gemm": _Chain.linear,
    "MatMul": _Chain.linear,
    "Add": _Chain.elementwise,
    "Sub": _Chain.elementwise,
    "Mul": _Chain.elementwise,
    "Div": _Chain.elementwise,
    "Neg": _Chain.neg,
    "BatchNormalization": _Chain.batchnorm,
    "Scaler": _Chain.scaler,
    "Concat": _Chain.concat,
    "Flatten": _Chain.flatten,
    "Reshape": _Chain.reshape,
    "Squeeze": _Chain.passthrough,
    "Shape": _Chain.shape_of,
}


def from_onnx(model: Any) -> DenseNet:
    """The dense layers of an ONNX feed-forward network (``onnx.ModelProto`` or path).

    Reads the graphs of torch.onnx (TorchScript and dynamo exporters), skl2onnx (its
    ``Cast``, ``Scaler``, the label head ``ArgMax``/``ArrayFeatureExtractor``/``ZipMap``,
    dropped, and the binary classifier's ``Sigmoid``/``Sub``/``Concat`` head, made two
    logits) and tf2onnx (Keras). Linear operators, elementwise constant operations, batch
    normalisation and scalers are folded into one dense layer per nonlinearity (``Relu``,
    ``Tanh``, ``Sigmoid``, ``LeakyRelu``); shape computations on constants are evaluated.
    Raises :class:`ANNError` naming the node for anything else (one line).
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    plan = _plan(model)
    chain = _Chain(plan)
    for k, node in plan.nodes:
        chain.step(node, k)
    layers, output = chain.finish(chain.values[plan.output])
    layers, output, head = _binary_head(layers, output)
    source = {
        "format": "onnx",
        "producer": " ".join(
            v for v in (model.producer_name, model.producer_version) if v and v != "None"
        ),
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0),
    }  # fmt: skip
    if head:
        source["head"] = head
    return DenseNet(layers, output=output, source=source)
