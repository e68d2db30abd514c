"""Evaluating models: predictions, agreement and next-byte losses, float and integer.

Integer figures always come from the golden model (:mod:`spikelut.compiler.ir.golden`),
float ones from the IR's forward pass or the language models' training engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikelut.compiler.frontend.text import windows
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.golden import run_classifier, run_rnn, run_transformer
from spikelut.compiler.ir.integer_sequence import IntegerRNN

__all__ = [
    "LM_CALIB_WINDOWS",
    "LM_TRANSFORMER_CALIB_WINDOWS",
    "LM_TRANSFORMER_VAL_WINDOWS",
    "agreement",
    "int_predict",
    "int_val_loss",
    "next_token_loss",
    "predict_labels",
    "rnn_float_logits",
    "rnn_int_logits",
    "transformer_float_logits",
    "transformer_int_logits",
]


def int_predict(model: ClassifierMLP, raw: np.ndarray) -> np.ndarray:
    """Integer (golden-model) predictions for raw features (B, dim)."""
    return run_classifier(model, model.encoding.encode_int(np.atleast_2d(raw))).predictions


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of equal predictions."""
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def rnn_float_logits(model, tokens: np.ndarray) -> np.ndarray:
    """Float logits (B, T, V) of a :class:`~spikelut.compiler.ir.sequence.SpikingRNN` on token
    windows (B, T), from ``h_{-1} = 0`` (the semantics of its docstring)."""
    tokens = np.atleast_2d(np.asarray(tokens, np.int64))
    h = np.zeros((tokens.shape[0], model.dim), np.float32)
    out = []
    for t in range(tokens.shape[1]):
        h = model.embedding[tokens[:, t]] + model.cell.forward(h)
        out.append(model.unembedder.forward(h))
    return np.stack(out, axis=1)


def rnn_int_logits(model, tokens: np.ndarray) -> np.ndarray:
    """Integer logits of an :class:`~spikelut.compiler.ir.integer_sequence.IntegerRNN` divided by the
    unembedder's scale (float, comparable with :func:`rnn_float_logits`)."""
    return run_rnn(model, tokens).logits / 2.0**model.unembedder_quant.out_scale_log2


def next_token_loss(logits: np.ndarray, windows: np.ndarray, *, last_only: bool = True) -> float:
    """Mean ``-ln p`` (nats) of the next token: ``logits`` (B, T, V) for windows (B, T + 1).

    With ``last_only`` (the validation figure), only the token after the last position counts;
    otherwise every position's next token does.
    """
    windows = np.asarray(windows, np.int64)
    if last_only:
        logits, targets = logits[:, -1:], windows[:, -1:]
    else:
        targets = windows[:, 1:]
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return float(-picked.mean())


def transformer_float_logits(model, windows: np.ndarray) -> np.ndarray:
    """Float logits (B, C, V) of a :class:`~spikelut.compiler.ir.sequence.TransformerLM` for
    windows (B, C) of exactly ``C`` tokens, from its compiled engine."""
    # numba kernels: imported when a transformer is evaluated (see tests/test_imports.py)
    from spikelut.compiler.train.lm_engine import TransformerEngine

    engine = TransformerEngine(model)
    return np.stack([engine.logits(w) for w in np.atleast_2d(windows)])


def transformer_int_logits(model, windows: np.ndarray) -> np.ndarray:
    """Integer logits of an :class:`~spikelut.compiler.ir.integer_sequence.IntegerTransformer` divided by
    the unembedder's scale (float, comparable with :func:`transformer_float_logits`)."""
    return run_transformer(model, windows).logits / 2.0**model.unemb_scale_log2


def predict_labels(model: ClassifierMLP, X: np.ndarray) -> np.ndarray:
    """Labels predicted for raw features: the float forward pass, or the golden model when
    the classifier is integer (exactly what the hardware computes)."""
    return int_predict(model, X) if model.is_integer else model.float_predict(X)


# Calibration and validation windows for language models. The transformer's integer forward
# runs in numpy, so it is evaluated on the first LM_TRANSFORMER_VAL_WINDOWS validation windows
# unless --val-windows says otherwise.
LM_CALIB_WINDOWS = 512
LM_TRANSFORMER_CALIB_WINDOWS = 64
LM_TRANSFORMER_VAL_WINDOWS = 1000


def int_val_loss(qmodel: Any, data: np.ndarray, starts: np.ndarray, chunk: int = 500) -> float:
    """Mean -ln p of the byte after each window, from the integer golden model."""
    logits_of = rnn_int_logits if isinstance(qmodel, IntegerRNN) else transformer_int_logits
    total = 0.0
    for i in range(0, len(starts), chunk):
        w = windows(data, starts[i : i + chunk], qmodel.context)
        total += next_token_loss(logits_of(qmodel, w[:, :-1]), w) * len(w)
    return total / len(starts)
