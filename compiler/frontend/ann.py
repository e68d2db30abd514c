"""Reading trained feed-forward ANNs into one dense-network form, :class:`DenseNet`.

Sources:

- an ONNX file (:func:`from_onnx`): a chain of ``Gemm`` / ``MatMul`` (+ ``Add``), ``Relu``,
  ``Flatten``, a final ``Softmax`` or none; also the no-ops ``Identity``/``Dropout``,
  elementwise ``Add``/``Sub``/``Mul``/``Div`` by constants (input scaling, folded into the
  next dense layer), ``Tanh``/``Sigmoid`` activations, ``LogSoftmax`` at the end. Any other
  operator raises :class:`ANNError` naming it and its node. :func:`run_onnx` executes such a
  graph with numpy (the reference the extraction is checked against).
- a scikit-learn ``MLPClassifier`` (:func:`from_sklearn`), alone or as the last step of a
  ``Pipeline`` after ``StandardScaler``/``MinMaxScaler``/``MaxAbsScaler`` steps (folded into
  the first layer); a pickled or joblib file of one (:func:`load_ann`).
- a PyTorch ``nn.Sequential`` of ``Linear``/``ReLU`` (:func:`from_torch`), only when torch is
  installed; torch is never imported otherwise.

A :class:`DenseNet` is a list of :class:`DenseLayer` ``(W, b, activation)`` with ``W`` of shape
(in, out): layer ``k`` computes ``act(x @ W + b)``; the last layer's output is the logits
(``output`` says whether the source ended in a softmax; argmax is the same either way).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

ACTIVATIONS = ("relu", "identity", "tanh", "logistic")


class ANNError(ValueError):
    """The ANN cannot be read: unsupported operator, layer or file; the message is one line."""


class DenseLayer(NamedTuple):
    """One dense layer: ``act(x @ W + b)``; ``W`` (in, out) and ``b`` (out,) float64."""

    W: np.ndarray
    b: np.ndarray
    activation: str


def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
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
        for k, (W, b, act) in enumerate(self.layers):
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
            fixed.append(DenseLayer(W, b, act))
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
        for W, b, act in self.layers:
            z = x @ W + b
            x = _act(act, z)
            out.append((z, x))
        return out

    def logits(self, X: np.ndarray) -> np.ndarray:
        """The last layer's output (before any final softmax), shape (n, n_outputs)."""
        return self.forward(X)[-1][1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class indices (argmax, lowest index on ties)."""
        return np.argmax(self.logits(X), axis=1)

    def as_list(self) -> list[tuple[np.ndarray, np.ndarray, str]]:
        """The layers as plain ``(W, b, activation)`` tuples."""
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


# -- PyTorch (optional) ---------------------------------------------------------------------


def from_torch(module: Any) -> DenseNet:
    """A PyTorch ``nn.Sequential`` of ``Linear``, ``ReLU``, ``Flatten``, ``Identity``,
    ``Dropout`` and a final ``Softmax`` (torch must be installed; it is imported here only)."""
    import torch  # noqa: F401  (only callers holding a torch module get here)

    layers: list[DenseLayer] = []
    output = "identity"
    children = list(module.children()) if type(module).__name__ == "Sequential" else [module]
    pending: tuple[np.ndarray, np.ndarray] | None = None
    for k, child in enumerate(children):
        name = type(child).__name__
        if name == "Linear":
            if pending is not None:
                layers.append(DenseLayer(*pending, "identity"))
            W = child.weight.detach().cpu().double().numpy().T
            b = (
                np.zeros(W.shape[1])
                if child.bias is None
                else child.bias.detach().cpu().double().numpy()
            )
            pending = (W, b)
        elif name in ("ReLU", "Tanh", "Sigmoid"):
            if pending is None:
                raise ANNError(f"module {k} ({name}) does not follow a Linear layer")
            act = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "logistic"}[name]
            layers.append(DenseLayer(*pending, act))
            pending = None
        elif name in ("Softmax", "LogSoftmax") and k == len(children) - 1:
            output = "softmax"
        elif name in ("Flatten", "Identity", "Dropout"):
            continue
        else:
            raise ANNError(f"unsupported PyTorch module {name} at position {k}")
    if pending is not None:
        layers.append(DenseLayer(*pending, "identity"))
    return DenseNet(layers, output=output, source={"format": "torch"})


# -- ONNX -----------------------------------------------------------------------------------

_ONNX_OPS = (
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Tanh", "Sigmoid", "Flatten",
    "Softmax", "LogSoftmax", "Identity", "Dropout", "Constant",
)  # fmt: skip


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _node_name(node: Any, k: int) -> str:
    return repr(node.name) if node.name else f"#{k}"


def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            attrs = _attrs(node)
            if "value" not in attrs:
                raise ANNError(f"Constant node {node.name!r}: only a 'value' tensor is supported")
            consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
    return consts


def _check_ops(graph: Any) -> None:
    for k, node in enumerate(graph.node):
        if node.op_type not in _ONNX_OPS or node.domain not in ("", "ai.onnx"):
            raise ANNError(
                f"unsupported ONNX operator {node.op_type} in node {_node_name(node, k)}; "
                "supported: " + ", ".join(_ONNX_OPS)
            )


def _graph_input(graph: Any, consts: dict) -> Any:
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ANNError(f"the ONNX graph must have exactly one data input, not {len(inputs)}")
    return inputs[0]


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


# op -> f(inputs, attributes) -> output, the numpy semantics of every supported operator
_EVAL = {
    "Gemm": _eval_gemm,
    "MatMul": lambda ins, attrs: ins[0] @ ins[1],
    "Add": lambda ins, attrs: ins[0] + ins[1],
    "Sub": lambda ins, attrs: ins[0] - ins[1],
    "Mul": lambda ins, attrs: ins[0] * ins[1],
    "Div": lambda ins, attrs: ins[0] / ins[1],
    "Relu": lambda ins, attrs: np.maximum(ins[0], 0),
    "Tanh": lambda ins, attrs: np.tanh(ins[0]),
    "Sigmoid": lambda ins, attrs: 1 / (1 + np.exp(-ins[0])),
    "Flatten": _eval_flatten,
    "Softmax": _eval_softmax,
    "LogSoftmax": lambda ins, attrs: _eval_softmax(ins, attrs, log=True),
    "Identity": lambda ins, attrs: ins[0],
    "Dropout": lambda ins, attrs: ins[0],  # inference
}


def run_onnx(model: Any, X: np.ndarray) -> np.ndarray:
    """Execute an ONNX model of the supported operators with numpy; returns its first output.

    ``model`` is an ``onnx.ModelProto`` or a path. Raises :class:`ANNError` on any other
    operator.
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    graph = model.graph
    _check_ops(graph)
    values = dict(_constants(graph))
    values[_graph_input(graph, values).name] = np.asarray(X, np.float32)
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        ins = [values[n] if n else None for n in node.input]
        y = _EVAL[node.op_type](ins, _attrs(node))
        values[node.output[0]] = np.asarray(y, np.float32)
    return values[graph.output[0].name]


class _Affine:
    """The data tensor as an affine map of the last nonlinearity's output ``base``:
    ``value = base @ A + c`` with ``A`` a matrix or a scalar (times identity)."""

    def __init__(self) -> None:
        self.A: np.ndarray | float = 1.0
        self.c: np.ndarray | float = 0.0

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
        self.c = self.c * g

    def shift(self, k: np.ndarray) -> None:
        self.c = self.c + np.asarray(k, np.float64)

    def dense(self, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
        A = np.eye(_need(dim)) * self.A if np.isscalar(self.A) else self.A
        return A, np.broadcast_to(self.c, (A.shape[1],)).copy()


def _need(dim: int | None) -> int:
    if dim is None:
        raise ANNError("the ONNX input has no static shape; give the input a fixed feature size")
    return dim


# ONNX activation operator -> the activation of the dense layer it closes
_ONNX_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "logistic"}


class _Chain:
    """Folding an ONNX chain into dense layers: the tensor the chain has reached
    (``current``), the pending affine map since the last nonlinearity, the feature count and
    shape of the data, the layers made so far."""

    def __init__(self, consts: dict, inp: Any) -> None:
        self.consts = consts
        dims = [
            d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim
        ]
        self.shape = tuple(dims[1:]) if len(dims) > 1 else None
        self.dim = int(np.prod(self.shape)) if self.shape and None not in self.shape else None
        self.current = inp.name
        self.state = _Affine()
        self.layers: list[DenseLayer] = []
        self.output = "identity"
        self.finished = False

    def emit(self, act: str) -> None:
        """Close the pending affine map into a dense layer with activation ``act``."""
        W, b = self.state.dense(self.dim)
        self.layers.append(DenseLayer(W, b, act))
        self.dim = W.shape[1]
        self.state = _Affine()

    def const(self, name: str) -> np.ndarray:
        return np.asarray(self.consts[name], np.float64)

    def step(self, node: Any, where: str) -> None:
        """Fold one operator into the chain; ANNError naming ``where`` when it cannot."""
        data, others = self.operands(node, where)
        op, attrs = node.op_type, _attrs(node)
        if op in _ONNX_ACTIVATIONS:
            self.emit(_ONNX_ACTIVATIONS[op])
        elif op in ("Softmax", "LogSoftmax"):
            if attrs.get("axis", -1) not in (-1, 1):
                raise ANNError(f"{where}: softmax must run over the class axis (-1 or 1)")
            self.output, self.finished = "softmax", True
        elif op in ("Gemm", "MatMul"):
            self.linear(node, attrs, data, where)
        elif op in ("Add", "Sub", "Mul", "Div"):
            self.elementwise(op, data, others, where)
        elif op == "Flatten":
            if attrs.get("axis", 1) != 1:
                raise ANNError(f"{where}: only axis=1 is supported")
            known = self.shape is not None and None not in self.shape
            self.shape = (int(np.prod(self.shape)),) if known else None
        self.current = node.output[0]

    def operands(self, node: Any, where: str) -> tuple[list[int], list[str]]:
        """Which inputs of ``node`` are the chain's data (their positions) and which are
        constants (their names); ANNError when the node is not the chain's next step."""
        if self.finished:
            raise ANNError(f"{where} follows the final softmax; softmax must be the last operator")
        data = [i for i, n in enumerate(node.input) if n == self.current]
        others = [n for n in node.input if n and n != self.current]
        if not data:
            raise ANNError(f"{where} does not read the previous operator's output; not a chain")
        if any(n not in self.consts for n in others):
            raise ANNError(
                f"{where} reads two data tensors; only feed-forward chains are supported"
            )
        return data, others

    def linear(self, node: Any, attrs: dict, data: list[int], where: str) -> None:
        """Gemm (``alpha * A @ B + beta * C``) or MatMul with a constant matrix."""
        if node.op_type == "Gemm":
            if data != [0] or attrs.get("transA", 0):
                raise ANNError(f"{where}: the data must be input A, untransposed")
            W = self.const(node.input[1])
            W = attrs.get("alpha", 1.0) * (W.T if attrs.get("transB", 0) else W)
        else:
            if data != [0] or np.asarray(self.consts[node.input[1]]).ndim != 2:
                raise ANNError(f"{where}: only data @ constant matrix is supported")
            W = self.const(node.input[1])
        self.state.matmul(W)
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
            self.state.shift(attrs.get("beta", 1.0) * self.const(node.input[2]))
        self.dim = self.dim if self.dim is not None else W.shape[0]
        self.shape = (W.shape[1],)

    def elementwise(self, op: str, data: list[int], others: list[str], where: str) -> None:
        """An elementwise operation with one constant operand (linear in the data)."""
        if len(data) != 1:
            raise ANNError(f"{where}: needs one constant operand")
        k_val = self.const(others[0])
        if self.shape is not None and k_val.ndim:
            try:
                k_val = np.broadcast_to(k_val, (1, *self.shape)).reshape(-1)
            except ValueError:
                raise ANNError(f"{where}: constant shape {k_val.shape} does not fit") from None
        elif k_val.ndim:
            k_val = k_val.reshape(-1)
        first = data == [0]
        if op == "Add":
            self.state.shift(k_val)
        elif op == "Sub":
            if not first:
                self.state.scale(-1.0, self.dim)
            self.state.shift(-k_val if first else k_val)
        elif op == "Mul":
            self.state.scale(k_val, self.dim)
        elif first:
            self.state.scale(1.0 / k_val, self.dim)
        else:
            raise ANNError(f"{where}: constant / data is not linear")


def from_onnx(model: Any) -> DenseNet:
    """The dense layers of an ONNX feed-forward network (``onnx.ModelProto`` or path).

    The graph must be one chain from its single data input to its output; constants are
    initializers or ``Constant`` nodes. Elementwise constant operations and consecutive
    linear operators are folded into one dense layer per nonlinearity. Raises
    :class:`ANNError` naming the node for anything else.
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    graph = model.graph
    _check_ops(graph)
    consts = _constants(graph)
    chain = _Chain(consts, _graph_input(graph, consts))
    for k, node in enumerate(graph.node):
        if node.op_type != "Constant":
            chain.step(node, f"{node.op_type} node {_node_name(node, k)}")
    if chain.current != graph.output[0].name:
        raise ANNError("the graph's output is not the end of the operator chain")
    if not chain.state.is_identity or not chain.layers:
        chain.emit("identity")
    return DenseNet(chain.layers, output=chain.output, source={"format": "onnx"})
