"""The integer golden model: the one oracle every hardware test compares against.

Integer semantics (docs/semantics.md): values are int64 here (the hardware's widths are
inferred so that no value ever exceeds them); comparisons are signed and strict; the layer
input is arithmetic-right-shifted by ``in_shift`` before the comparators (the residual add
uses the unshifted input); argmax ties resolve to the lowest index. Everything is
vectorised over a batch (leading axis).

Models: the classifier (:func:`run_classifier`), the spiking RNN (:func:`run_rnn`, for
:class:`spikelut.compiler.ir.integer_sequence.IntegerRNN`) and the transformer (:func:`run_transformer`,
for :class:`spikelut.compiler.ir.integer_sequence.IntegerTransformer`). Each returns a trace of its
intermediate values so that a hardware mismatch can be located to a layer and a table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.selection import Selection, Xorshift32, select_byte


def lut_indices(layer: LUTLayer, x: np.ndarray, in_shift: int = 0) -> np.ndarray:
    """Row index of every table, shape (B, N_T), for integer inputs ``x`` of shape (B, D).

    Bit ``r`` of ``j[i]`` is 1 iff ``(x >> in_shift)[a[i, r]] > (x >> in_shift)[b[i, r]]``.
    """
    x = np.asarray(x, np.int64) >> in_shift
    bits = x[:, layer.a] > x[:, layer.b]  # (B, N_T, N_C)
    weights = np.left_shift(np.int64(1), np.arange(layer.n_c, dtype=np.int64))
    return (bits.astype(np.int64) * weights).sum(axis=2)


def lut_rows(layer: LUTLayer, indices: np.ndarray) -> np.ndarray:
    """The selected rows, shape (B, N_T, Y), for indices of shape (B, N_T)."""
    return layer.tables[np.arange(layer.n_tables)[None, :], indices].astype(np.int64)


def lut_layer(layer: LUTLayer, x: np.ndarray, in_shift: int = 0) -> np.ndarray:
    """Integer output of one layer, shape (B, Y): sum of selected rows (+ x if residual)."""
    x = np.asarray(x, np.int64)
    y = lut_rows(layer, lut_indices(layer, x, in_shift)).sum(axis=1)
    return y + x if layer.residual else y


def argmax_lowest(values: np.ndarray) -> np.ndarray:
    """Argmax over the last axis; ties resolve to the lowest index (as the hardware does)."""
    return np.argmax(values, axis=-1)  # numpy returns the first maximum


@dataclass
class ClassifierTrace:
    """Everything the golden model computed for a batch, to locate a hardware mismatch.

    ``inputs``: (B, D) integer inputs; ``indices[k]``: (B, N_T) table rows of layer ``k``;
    ``outputs[k]``: (B, Y) accumulated output of layer ``k``; ``predictions``: (B,) argmax
    of the last layer's output.
    """

    inputs: np.ndarray
    indices: list[np.ndarray]
    outputs: list[np.ndarray]
    predictions: np.ndarray

    @property
    def logits(self) -> np.ndarray:
        """The last layer's output, shape (B, n_classes)."""
        return self.outputs[-1]


def run_classifier(model: ClassifierMLP, x_int: np.ndarray) -> ClassifierTrace:
    """Run a quantised classifier on integer inputs of shape (B, D) (see InputEncoding)."""
    if not model.is_integer:
        raise ValueError("the golden model runs quantised (integer) networks; quantize first")
    x = np.atleast_2d(np.asarray(x_int, np.int64))
    inputs = x
    indices, outputs = [], []
    for layer, q in zip(model.layers, model.quant, strict=True):
        j = lut_indices(layer, x, q.in_shift)
        y = lut_rows(layer, j).sum(axis=1)
        if layer.residual:
            y = y + x
        indices.append(j)
        outputs.append(y)
        x = y
    return ClassifierTrace(inputs, indices, outputs, argmax_lowest(x))


# -- the spiking RNN -----------------------------------------------------------------------


@dataclass
class RNNTrace:
    """Everything the integer RNN computed for a batch of token windows (B, T).

    ``states``: (B, T, D) ``h_t``; ``cell_indices``: (B, T, N_T) rows the cell read to make
    ``h_t`` (from ``h_{t-1}``); ``unembedder_indices``: (B, T, N_T); ``logits``: (B, T, V)
    integer logits of ``tok_{t+1}``; ``predictions``: (B, T) their argmax (lowest on ties).
    """

    states: np.ndarray
    cell_indices: np.ndarray
    unembedder_indices: np.ndarray
    logits: np.ndarray
    predictions: np.ndarray


def run_rnn(model, tokens: np.ndarray, h0: np.ndarray | None = None) -> RNNTrace:
    """Run an integer RNN (:class:`spikelut.compiler.ir.integer_sequence.IntegerRNN`) on token windows.

    ``tokens``: (B, T) integers in ``0..V-1``; ``h0``: the state before the first token
    (default zeros, as in training). ``h_t = emb[tok_t] + cell(h_{t-1} >> cell_shift)``,
    ``logits_t = unembedder(h_t >> unembedder_shift)``.
    """
    tokens = np.atleast_2d(np.asarray(tokens, np.int64))
    if tokens.size and (tokens.min() < 0 or tokens.max() >= model.vocab):
        raise ValueError(f"tokens must be in 0..{model.vocab - 1}")
    batch, steps = tokens.shape
    h = np.zeros((batch, model.dim), np.int64) if h0 is None else np.asarray(h0, np.int64)
    states, jc, ju, logits = [], [], [], []
    for t in range(steps):
        j = lut_indices(model.cell, h, model.cell_quant.in_shift)
        h = model.embedding[tokens[:, t]] + lut_rows(model.cell, j).sum(axis=1)
        k = lut_indices(model.unembedder, h, model.unembedder_quant.in_shift)
        states.append(h)
        jc.append(j)
        ju.append(k)
        logits.append(lut_rows(model.unembedder, k).sum(axis=1))

    def stack(xs: list, shape: tuple) -> np.ndarray:
        return np.stack(xs, axis=1) if xs else np.zeros(shape, np.int64)

    out = stack(logits, (batch, 0, model.vocab))
    return RNNTrace(
        states=stack(states, (batch, 0, model.dim)),
        cell_indices=stack(jc, (batch, 0, model.cell.n_tables)),
        unembedder_indices=stack(ju, (batch, 0, model.unembedder.n_tables)),
        logits=out,
        predictions=argmax_lowest(out),
    )


def rnn_choices(model, tokens, selection: Selection) -> tuple[np.ndarray, np.ndarray]:
    """What an RNN core answers to a token sequence (one sequence, ``h = 0`` before its first
    token): for every token, the logits of the next byte (T, V) and the byte ``selection``
    chooses from them (T,), the random source carried from choice to choice."""
    trace = run_rnn(model, np.asarray(tokens, np.int64)[None, :])
    rng = Xorshift32(selection.seed)
    logits = trace.logits[0]
    return logits, np.array([select_byte(lg, selection, rng) for lg in logits], np.int64)


def generate_rnn(model, prompt, n: int, selection: Selection) -> bytes:
    """``n`` bytes an RNN generates after ``prompt`` (at least one byte): each chosen byte
    is the next token. Equal to :func:`rnn_choices` on the prompt and its continuation."""
    prompt = bytes(prompt)
    if not prompt:
        raise ValueError("generation needs a prompt of at least one byte")
    rng = Xorshift32(selection.seed)
    h = np.zeros((1, model.dim), np.int64)
    out = bytearray()
    token = None
    for step in range(len(prompt) + n - 1):
        token = prompt[step] if step < len(prompt) else out[-1]
        trace = run_rnn(model, np.array([[token]]), h0=h)
        h = trace.states[:, -1]
        choice = select_byte(trace.logits[0, -1], selection, rng)
        if step >= len(prompt) - 1:
            out.append(choice)
    return bytes(out[:n])


def generate_lm(model, prompt, n: int, selection: Selection) -> bytes:
    """``n`` bytes a language-model core generates after ``prompt``: :func:`generate_rnn`
    for an :class:`~spikelut.compiler.ir.integer_sequence.IntegerRNN`,
    :func:`generate_transformer` for an
    :class:`~spikelut.compiler.ir.integer_sequence.IntegerTransformer` (TypeError otherwise)."""
    if isinstance(model, IntegerRNN):
        return generate_rnn(model, prompt, n, selection)
    if isinstance(model, IntegerTransformer):
        return generate_transformer(model, prompt, n, selection)
    raise TypeError(f"not a language model: {type(model).__name__}")


# -- the transformer -----------------------------------------------------------------------


@dataclass
class TransformerTrace:
    """What the integer transformer computed for token windows (B, T).

    ``streams[0]``: (B, T, E) the embedded tokens; ``streams[2 l + 1]``: ``z`` after layer
    ``l``'s heads; ``streams[2 l + 2]``: after its FFN; ``logits``: (B, T, V) integer logits
    of the next token; ``predictions``: (B, T) their argmax (lowest on ties).
    """

    streams: list[np.ndarray]
    logits: np.ndarray
    predictions: np.ndarray


def _table_indices(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Indices (..., N_T) of anchors ``a``, ``b`` (N_T, N_C) for inputs (..., D)."""
    bits = x[..., a] > x[..., b]
    weights = np.left_shift(np.int64(1), np.arange(a.shape[1], dtype=np.int64))
    return (bits.astype(np.int64) * weights).sum(axis=-1)


def _gather_sum(tables: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``sum_i tables[i, idx[..., i]]`` as int64, shape (..., Y)."""
    rows = tables[np.arange(tables.shape[0]), idx]
    return rows.astype(np.int64).sum(axis=-2)


def run_transformer(model, tokens: np.ndarray) -> TransformerTrace:
    """Run an integer transformer (:class:`spikelut.compiler.ir.integer_sequence.IntegerTransformer`).

    ``tokens``: (B, T) with ``T <= C``. ``z[pos] = emb[tok[pos]]``; per layer, with
    ``x = z`` taken before the first head, every head adds
    ``sum_{pos1 < pos} sum_i attn[i][(jQ(x[pos]) << (N_C + P)) | (jK(x[pos1]) << P) |
    jPE(pos - pos1)]`` into ``z[pos]`` (``jPE`` from ``pe_bits``, bit ``r`` of table ``i``
    at distance ``d`` is ``pe_bits[l, h, d, i, r]``); then ``z[pos] += FFN(z[pos])``;
    ``logits[pos] = unembedder(z[pos])``.
    """
    tokens = np.atleast_2d(np.asarray(tokens, np.int64))
    steps = tokens.shape[1]
    if steps > model.context:
        raise ValueError(f"windows must have at most {model.context} tokens, not {steps}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= model.vocab):
        raise ValueError(f"tokens must be in 0..{model.vocab - 1}")
    n_layers, n_heads, n_t, n_c = model.attn_a.shape
    n_p = model.pe_bits.shape[-1]
    pe_w = np.left_shift(np.int64(1), np.arange(n_p, dtype=np.int64))
    t_idx = np.arange(n_t)
    z = model.embedding[tokens].astype(np.int64)
    streams = [z.copy()]
    for l_ in range(n_layers):
        x = z.copy()
        for h in range(n_heads):
            jq = _table_indices(x, model.attn_a[l_, h], model.attn_b[l_, h])  # (B, T, N_T)
            jpe = (model.pe_bits[l_, h].astype(np.int64) * pe_w).sum(axis=-1)  # (C, N_T)
            tables = model.attn_tables[l_, h]
            for pos in range(1, steps):
                dist = pos - np.arange(pos)
                rows = (jq[:, pos, None, :] << (n_c + n_p)) | (jq[:, :pos, :] << n_p) | jpe[dist]
                z[:, pos] += tables[t_idx, rows].astype(np.int64).sum(axis=(1, 2))
        streams.append(z.copy())
        z = z + _gather_sum(
            model.ffn_tables[l_], _table_indices(z, model.ffn_a[l_], model.ffn_b[l_])
        )
        streams.append(z.copy())
    logits = _gather_sum(model.unemb_tables, _table_indices(z, model.unemb_a, model.unemb_b))
    return TransformerTrace(streams=streams, logits=logits, predictions=argmax_lowest(logits))


def transformer_choices(model, tokens, selection: Selection) -> tuple[np.ndarray, np.ndarray]:
    """What a transformer core answers to a token sequence fed from its first token: the
    sequence is cut into windows of ``C`` tokens (a token after a full window starts the
    next, as the core does) and each window run by :func:`run_transformer`; for every token
    the logits of the next byte (T, V) and the byte ``selection`` chooses (T,), the random
    source carried from choice to choice."""
    tokens = np.asarray(tokens, np.int64)
    ctx = model.context
    logits = np.zeros((len(tokens), model.vocab), np.int64)
    for lo in range(0, len(tokens), ctx):
        logits[lo : lo + ctx] = run_transformer(model, tokens[None, lo : lo + ctx]).logits[0]
    rng = Xorshift32(selection.seed)
    return logits, np.array([select_byte(lg, selection, rng) for lg in logits], np.int64)


def generate_transformer(model, prompt, n: int, selection: Selection) -> bytes:
    """``n`` bytes a transformer core generates after ``prompt`` (at least one byte), each
    chosen byte the next token, windows cut as in :func:`transformer_choices` (to which it
    is equal on the prompt and its continuation)."""
    prompt = bytes(prompt)
    if not prompt:
        raise ValueError("generation needs a prompt of at least one byte")
    rng = Xorshift32(selection.seed)
    fed = bytearray()
    out = bytearray()
    for step in range(len(prompt) + n - 1):
        fed.append(prompt[step] if step < len(prompt) else out[-1])
        lo = step - step % model.context
        window = np.frombuffer(bytes(fed[lo:]), np.uint8)[None]
        choice = select_byte(run_transformer(model, window).logits[0, -1], selection, rng)
        if step >= len(prompt) - 1:
            out.append(choice)
    return bytes(out[:n])
