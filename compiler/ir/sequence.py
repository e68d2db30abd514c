"""The typed IR of the sequence models: LUT transformer and spiking (LUT) RNN.

Both are byte-level language models built from the LUT layer of :mod:`spikelut.compiler.ir.lut`. They share
four parts:

- :class:`TokenEmbedding`: a fixed table ``(V, E)``; token ``t`` becomes ``table[t]``.
- :class:`AttentionHead`: one LUT whose index concatenates a query index, a key index and a
  positional index (layout below), plus its learned positional encodings.
- FFN and unembedder: plain :class:`~spikelut.compiler.ir.lut.LUTLayer` objects (the FFN adds
  its output into the residual stream, the unembedder gives the logits).
- :class:`RecurrentCell`: the RNN's ``h_t = LUT(h_{t-1}) + z_t``.

Attention index layout (the reference's): with ``jQ = H(x[pos])`` and ``jK = H(x[pos1])``
(the same ``N_C`` anchors for both) and ``jPE`` the ``P``-bit index whose bit ``r`` is
``pe[pos - pos1][i][r] > 0``, table ``i`` of the head reads row
``(jQ << (N_C + P)) | (jK << P) | jPE`` of ``tables[i]``, which has ``2**(2 N_C + P)`` rows.

The architectures store their parameters as stacked arrays (one array per kind, e.g. all
attention tables as ``(L, H, N_T, R, E)``) so the training kernels can use them without
copying the ~3 GB of the default transformer; the per-part objects are views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from spikelut.compiler.ir.lut import MAX_N_C, IRError, LUTLayer
from spikelut.hdl.params import check_anchors, check_int

# The longest context a model may have: generation and training allocate work arrays of
# context x width per layer, and an RNN's context is a number in its header, backed by no
# array; 65536 bytes of context is 2048 times the reference's 32.
MAX_CONTEXT = 1 << 16

# ---------------------------------------------------------------------------------------
# validation helpers


def _check_anchors(name: str, a: np.ndarray, b: np.ndarray, dim: int, n_c: int) -> None:
    """Anchors of shape (..., N_C), integer, in 0..dim-1, a != b; errors quote the value."""
    if a.shape != b.shape or a.shape[-1:] != (n_c,):
        raise IRError(
            f"{name} anchors a and b must both have shape (..., N_C={n_c}), "
            f"not {a.shape!r} and {b.shape!r}"
        )
    check_anchors(a, b, dim, names=(f"{name} anchor a", f"{name} anchor b"), error=IRError)


def _check_float(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != shape:
        raise IRError(f"{name} must have shape {shape!r}, not {arr.shape!r}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise IRError(f"{name} must be float, not {arr.dtype}")
    return arr


def _random_anchors(
    rng: np.random.Generator, shape: tuple[int, ...], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Anchors uniform over 0..dim-1 with ``b`` uniform over the other ``dim - 1`` values."""
    a = rng.integers(0, dim, size=shape)
    b = (a + rng.integers(1, dim, size=shape)) % dim
    return a.astype(np.int32), b.astype(np.int32)


# ---------------------------------------------------------------------------------------
# parts


class EmbeddedSequence:
    """Shared by the recurrent models (float and integer): the sizes their ``embedding``
    table of shape (V, D) implies."""

    @property
    def vocab(self) -> int:
        """V."""
        return self.embedding.shape[0]

    @property
    def dim(self) -> int:
        """D, the number of hidden neurons."""
        return self.embedding.shape[1]


@dataclass(frozen=True, eq=False)
class TokenEmbedding:
    """A fixed token embedding: ``table`` of shape (V, E); token ``t`` -> ``table[t]``.

    The reference draws it uniform in [-1, 1] and never trains it.
    """

    table: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.table)
        if t.ndim != 2 or t.shape[0] < 2 or t.shape[1] < 2:
            raise IRError(f"token embedding must have shape (V >= 2, E >= 2), not {t.shape!r}")
        if not np.issubdtype(t.dtype, np.floating):
            raise IRError(f"token embedding must be float, not {t.dtype}")

    @property
    def vocab(self) -> int:
        """V, the number of tokens."""
        return self.table.shape[0]

    @property
    def dim(self) -> int:
        """E, the embedding length."""
        return self.table.shape[1]


@dataclass(frozen=True, eq=False)
class AttentionHead:
    """One attention head: anchors (N_T, N_C), tables (N_T, 2**(2 N_C + P), E), pe (C, N_T, P).

    ``pe[d][i]`` is table ``i``'s positional encoding of the distance ``d = pos - pos1``
    (``1 <= d < C``; ``pe[0]`` is never read). Row layout: see the module docstring.
    """

    a: np.ndarray
    b: np.ndarray
    tables: np.ndarray
    pe: np.ndarray

    def __post_init__(self) -> None:
        a, b, tables, pe = (np.asarray(v) for v in (self.a, self.b, self.tables, self.pe))
        if a.ndim != 2:
            raise IRError(f"attention anchors must have shape (N_T, N_C), not {a.shape!r}")
        n_t, n_c = a.shape
        check_int("attention N_T", n_t, 1, error=IRError)
        check_int("attention N_C", n_c, 1, MAX_N_C, error=IRError)
        if tables.ndim != 3:
            raise IRError(f"attention tables must have shape (N_T, R, E), not {tables.shape!r}")
        dim = tables.shape[2]
        _check_anchors("attention", a, b, dim, n_c)
        if pe.ndim != 3 or pe.shape[1] != n_t:
            raise IRError(
                f"positional encodings must have shape (C, N_T={n_t}, P), not {pe.shape!r}"
            )
        n_pe = pe.shape[2]
        check_int("P (positional bits)", n_pe, 1, MAX_N_C, error=IRError)
        _check_float("attention tables", tables, (n_t, 1 << (2 * n_c + n_pe), dim))
        _check_float("positional encodings", pe, pe.shape)

    @property
    def n_c(self) -> int:
        """N_C, anchor pairs per table (bits of jQ and of jK)."""
        return self.a.shape[1]

    @property
    def n_pe(self) -> int:
        """P, positional bits per table."""
        return self.pe.shape[2]

    def row(self, jq: int, jk: int, jpe: int) -> int:
        """The table row for query index ``jq``, key index ``jk``, positional index ``jpe``."""
        return (jq << (self.n_c + self.n_pe)) | (jk << self.n_pe) | jpe


@dataclass(frozen=True, eq=False)
class RecurrentCell:
    """The spiking RNN's recurrence ``h_t = LUT(h_{t-1}) + z_t``: a square, non-residual LUT."""

    lut: LUTLayer

    def __post_init__(self) -> None:
        if self.lut.out_dim != self.lut.in_dim or self.lut.residual:
            raise IRError(
                f"a recurrent cell needs a square non-residual LUT, not {self.lut.in_dim} -> "
                f"{self.lut.out_dim} (residual={self.lut.residual})"
            )


# ---------------------------------------------------------------------------------------
# architectures


def _lut_header(n_t: int, n_c: int) -> dict:
    return {"n_tables": n_t, "n_c": n_c}


@dataclass(eq=False)
class TransformerLM:
    """The LUT transformer of the reference (``izhikevich/SNN``), byte vocabulary.

    Shapes (``L`` layers, ``H`` heads, ``C`` context, ``V`` vocabulary, ``E`` embedding):

    - ``embedding`` (V, E): fixed token embedding.
    - ``attn_a``, ``attn_b`` (L, H, N_T, N_C); ``attn_tables`` (L, H, N_T, 2**(2 N_C + P), E);
      ``pe`` (L, H, C, N_T, P).
    - ``ffn_a``, ``ffn_b`` (L, N_T, N_C); ``ffn_tables`` (L, N_T, 2**N_C, E).
    - ``unemb_a``, ``unemb_b`` (N_T, N_C); ``unemb_tables`` (N_T, 2**N_C, V).

    Forward on tokens ``t[0..C-1]``: ``z[pos] = embedding[t[pos]]``; per layer, every head
    indexes ``x = z`` (a copy taken before the layer's first head) and adds
    ``sum_{pos1 < pos} sum_i tables[i][row(jQ(x[pos]), jK(x[pos1]), jPE(pos-pos1))]`` into
    ``z[pos]``; then ``z[pos] += FFN(z[pos])``; finally ``logits[pos] = unembedder(z[pos])``
    predicts ``t[pos + 1]``. All anchors index E-vectors.
    """

    ARCH: ClassVar[str] = "transformer"

    embedding: np.ndarray
    attn_a: np.ndarray
    attn_b: np.ndarray
    attn_tables: np.ndarray
    pe: np.ndarray
    ffn_a: np.ndarray
    ffn_b: np.ndarray
    ffn_tables: np.ndarray
    unemb_a: np.ndarray
    unemb_b: np.ndarray
    unemb_tables: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        TokenEmbedding(self.embedding)
        vocab, dim = np.shape(self.embedding)
        a = np.asarray(self.attn_a)
        if a.ndim != 4:
            raise IRError(f"attn_a must have shape (L, H, N_T, N_C), not {a.shape!r}")
        n_layers, n_heads, n_t, n_c = a.shape
        check_int("number of layers", n_layers, 1, error=IRError)
        check_int("number of heads", n_heads, 1, error=IRError)
        check_int("N_T", n_t, 1, error=IRError)
        check_int("N_C", n_c, 1, MAX_N_C, error=IRError)
        pe = np.asarray(self.pe)
        if pe.ndim != 5 or pe.shape[:2] != (n_layers, n_heads) or pe.shape[3] != n_t:
            raise IRError(
                f"pe must have shape (L={n_layers}, H={n_heads}, C, N_T={n_t}, P), not {pe.shape!r}"
            )
        context, n_pe = pe.shape[2], pe.shape[4]
        check_int("context", context, 2, MAX_CONTEXT, error=IRError)
        check_int("P (positional bits)", n_pe, 1, MAX_N_C, error=IRError)
        if 2 * n_c + n_pe > 30:
            raise IRError(f"2 N_C + P must be at most 30, not {2 * n_c + n_pe!r}")
        _check_anchors("attention", a, np.asarray(self.attn_b), dim, n_c)
        _check_float(
            "attn_tables",
            self.attn_tables,
            (n_layers, n_heads, n_t, 1 << (2 * n_c + n_pe), dim),
        )
        _check_float("pe", pe, pe.shape)
        _check_anchors("FFN", np.asarray(self.ffn_a), np.asarray(self.ffn_b), dim, n_c)
        if np.shape(self.ffn_a) != (n_layers, n_t, n_c):
            raise IRError(
                f"ffn_a must have shape (L={n_layers}, N_T={n_t}, N_C={n_c}), "
                f"not {np.shape(self.ffn_a)!r}"
            )
        _check_float("ffn_tables", self.ffn_tables, (n_layers, n_t, 1 << n_c, dim))
        _check_anchors("unembedder", np.asarray(self.unemb_a), np.asarray(self.unemb_b), dim, n_c)
        if np.shape(self.unemb_a) != (n_t, n_c):
            raise IRError(
                f"unemb_a must have shape (N_T={n_t}, N_C={n_c}), not {np.shape(self.unemb_a)!r}"
            )
        _check_float("unemb_tables", self.unemb_tables, (n_t, 1 << n_c, vocab))

    # -- shape ---------------------------------------------------------------------------

    @property
    def vocab(self) -> int:
        """V."""
        return self.embedding.shape[0]

    @property
    def dim(self) -> int:
        """E."""
        return self.embedding.shape[1]

    @property
    def n_layers(self) -> int:
        """L."""
        return self.attn_a.shape[0]

    @property
    def n_heads(self) -> int:
        """H."""
        return self.attn_a.shape[1]

    @property
    def n_tables(self) -> int:
        """N_T (every LUT of the model has this many tables)."""
        return self.attn_a.shape[2]

    @property
    def n_c(self) -> int:
        """N_C (anchor pairs per table, every LUT)."""
        return self.attn_a.shape[3]

    @property
    def n_pe(self) -> int:
        """P, positional bits."""
        return self.pe.shape[4]

    @property
    def context(self) -> int:
        """C, the context length."""
        return self.pe.shape[2]

    @property
    def n_values(self) -> int:
        """Number of table values (attention + FFN + unembedder)."""
        return int(self.attn_tables.size + self.ffn_tables.size + self.unemb_tables.size)

    # -- parts (views) -------------------------------------------------------------------

    def token_embedding(self) -> TokenEmbedding:
        """The token embedding."""
        return TokenEmbedding(self.embedding)

    def head(self, layer: int, head: int) -> AttentionHead:
        """Attention head ``head`` of layer ``layer`` (views of the stacked arrays)."""
        return AttentionHead(
            self.attn_a[layer, head],
            self.attn_b[layer, head],
            self.attn_tables[layer, head],
            self.pe[layer, head],
        )

    def ffn(self, layer: int) -> LUTLayer:
        """Layer ``layer``'s FFN as a residual LUT layer."""
        return LUTLayer(
            a=self.ffn_a[layer],
            b=self.ffn_b[layer],
            tables=self.ffn_tables[layer],
            in_dim=self.dim,
            residual=True,
        )

    def unembedder(self) -> LUTLayer:
        """The unembedder LUT (E -> V logits)."""
        return LUTLayer(a=self.unemb_a, b=self.unemb_b, tables=self.unemb_tables, in_dim=self.dim)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        rng: np.random.Generator,
        context: int = 32,
        vocab: int = 256,
        dim: int = 32,
        n_layers: int = 6,
        n_heads: int = 4,
        n_tables: int = 16,
        n_c: int = 6,
        n_pe: int = 4,
    ) -> TransformerLM:
        """A fresh model initialised like the reference.

        Embedding and positional encodings uniform in [-1, 1], anchors uniform with
        ``a != b``, all tables zero.
        """
        context = check_int("context", context, 2, MAX_CONTEXT, error=IRError)
        vocab = check_int("vocab", vocab, 2, error=IRError)
        dim = check_int("embedding dim", dim, 2, error=IRError)
        n_layers = check_int("number of layers", n_layers, 1, error=IRError)
        n_heads = check_int("number of heads", n_heads, 1, error=IRError)
        n_tables = check_int("N_T", n_tables, 1, error=IRError)
        n_c = check_int("N_C", n_c, 1, MAX_N_C, error=IRError)
        n_pe = check_int("P (positional bits)", n_pe, 1, MAX_N_C, error=IRError)
        if 2 * n_c + n_pe > 30:
            raise IRError(f"2 N_C + P must be at most 30, not {2 * n_c + n_pe!r}")
        emb = rng.uniform(-1.0, 1.0, size=(vocab, dim)).astype(np.float32)
        attn_a, attn_b = _random_anchors(rng, (n_layers, n_heads, n_tables, n_c), dim)
        pe = rng.uniform(-1.0, 1.0, size=(n_layers, n_heads, context, n_tables, n_pe))
        ffn_a, ffn_b = _random_anchors(rng, (n_layers, n_tables, n_c), dim)
        un_a, un_b = _random_anchors(rng, (n_tables, n_c), dim)
        return cls(
            embedding=emb,
            attn_a=attn_a,
            attn_b=attn_b,
            attn_tables=np.zeros(
                (n_layers, n_heads, n_tables, 1 << (2 * n_c + n_pe), dim), np.float32
            ),
            pe=pe.astype(np.float32),
            ffn_a=ffn_a,
            ffn_b=ffn_b,
            ffn_tables=np.zeros((n_layers, n_tables, 1 << n_c, dim), np.float32),
            unemb_a=un_a,
            unemb_b=un_b,
            unemb_tables=np.zeros((n_tables, 1 << n_c, vocab), np.float32),
        )

    # -- serialisation -------------------------------------------------------------------

    _ARRAYS: ClassVar[tuple[str, ...]] = (
        "embedding",
        "attn_a",
        "attn_b",
        "attn_tables",
        "pe",
        "ffn_a",
        "ffn_b",
        "ffn_tables",
        "unemb_a",
        "unemb_b",
        "unemb_tables",
    )

    def shape_header(self) -> dict[str, int]:
        """The model's hyper-parameters as a dict."""
        return {
            "context": self.context,
            "vocab": self.vocab,
            "dim": self.dim,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "n_tables": self.n_tables,
            "n_c": self.n_c,
            "n_pe": self.n_pe,
        }

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Header (JSON-able) and arrays that :meth:`from_arrays` rebuilds exactly."""
        return (
            {"shape": self.shape_header(), "meta": self.meta},
            {name: getattr(self, name) for name in self._ARRAYS},
        )

    @classmethod
    def from_arrays(cls, header: dict, arrays: dict[str, np.ndarray]) -> TransformerLM:
        """Rebuild from :meth:`to_arrays` output; raises IRError/KeyError when inconsistent."""
        model = cls(**{name: arrays[name] for name in cls._ARRAYS}, meta=header["meta"])
        if model.shape_header() != header["shape"]:
            raise IRError(
                f"the arrays give shape {model.shape_header()!r}, the header {header['shape']!r}"
            )
        return model


@dataclass(eq=False)
class SpikingRNN(EmbeddedSequence):
    """A spiking (LUT) RNN language model over bytes.

    Exact semantics (float; the integer model follows it with integers):

    - ``z_t = embedding[tok_t]`` (``embedding`` (V, D), fixed, uniform in [-1, 1]).
    - ``h_{-1} = 0`` (all zeros, so ``cell`` selects row 0 of every table at ``t = 0``).
    - ``h_t = z_t + cell(h_{t-1})`` for ``t = 0, 1, ...``, computed as ``h_t = z_t`` then
      adding the ``N_T`` selected rows in table order; ``cell`` is a non-residual LUT D -> D.
    - ``logits_t = unembedder(h_t)`` (a LUT D -> V, rows added to zeros in table order)
      predicts ``tok_{t+1}``; the loss is the cross-entropy at every position.
    - training windows have ``context`` tokens and start from ``h_{-1} = 0``; generation
      carries ``h`` on for as long as it runs.

    Backward (one window): first the unembedder at ``t = 0..T-1`` (its rows updated as it
    goes), then the cell for ``t = T-1`` down to ``0`` with ``dL/dh_t`` as its output
    gradient, adding into ``dL/dh_{t-1}`` (discarded at ``t = 0``); the rule of
    :mod:`spikelut.compiler.train.engine` throughout.
    """

    ARCH: ClassVar[str] = "rnn"

    embedding: np.ndarray
    cell: LUTLayer
    unembedder: LUTLayer
    context: int = 32
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        TokenEmbedding(self.embedding)
        RecurrentCell(self.cell)
        dim = self.embedding.shape[1]
        if self.cell.in_dim != dim:
            raise IRError(f"the cell has {self.cell.in_dim} neurons, the embedding gives {dim}")
        if self.unembedder.in_dim != dim or self.unembedder.residual:
            raise IRError(
                f"the unembedder must read the {dim} hidden neurons (not {self.unembedder.in_dim})"
                " and not be residual"
            )
        if self.unembedder.out_dim != self.embedding.shape[0]:
            raise IRError(
                f"the unembedder gives {self.unembedder.out_dim} logits for "
                f"{self.embedding.shape[0]} tokens"
            )
        if self.cell.is_integer or self.unembedder.is_integer:
            raise IRError("SpikingRNN holds a float network; tables must be float")
        self.context = check_int("context", self.context, 2, MAX_CONTEXT, error=IRError)

    @property
    def n_values(self) -> int:
        """Number of table values."""
        return int(self.cell.tables.size + self.unembedder.tables.size)

    @classmethod
    def create(
        cls,
        *,
        rng: np.random.Generator,
        context: int = 32,
        vocab: int = 256,
        dim: int = 48,
        n_tables: int = 16,
        n_c: int = 6,
        unembed_tables: int | None = None,
        unembed_n_c: int | None = None,
    ) -> SpikingRNN:
        """A fresh RNN: embedding uniform in [-1, 1], random anchors, zero tables; the
        unembedder has ``unembed_tables`` tables of ``unembed_n_c`` comparisons (default: the
        cell's ``n_tables`` and ``n_c``)."""
        vocab = check_int("vocab", vocab, 2, error=IRError)
        dim = check_int("hidden dim", dim, 2, error=IRError)
        emb = rng.uniform(-1.0, 1.0, size=(vocab, dim)).astype(np.float32)
        cell = LUTLayer.random(in_dim=dim, out_dim=dim, n_tables=n_tables, n_c=n_c, rng=rng)
        unemb = LUTLayer.random(
            in_dim=dim,
            out_dim=vocab,
            n_tables=n_tables if unembed_tables is None else unembed_tables,
            n_c=n_c if unembed_n_c is None else unembed_n_c,
            rng=rng,
        )
        return cls(embedding=emb, cell=cell, unembedder=unemb, context=context)

    def shape_header(self) -> dict[str, int]:
        """The model's hyper-parameters as a dict."""
        return {
            "context": self.context,
            "vocab": self.vocab,
            "dim": self.dim,
            "cell": _lut_header(self.cell.n_tables, self.cell.n_c),
            "unembedder": _lut_header(self.unembedder.n_tables, self.unembedder.n_c),
        }

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Header (JSON-able) and arrays that :meth:`from_arrays` rebuilds exactly."""
        arrays = {"embedding": self.embedding}
        for name in ("cell", "unembedder"):
            lut = getattr(self, name)
            arrays[f"{name}/a"] = lut.a
            arrays[f"{name}/b"] = lut.b
            arrays[f"{name}/tables"] = lut.tables
        return {"shape": self.shape_header(), "meta": self.meta}, arrays

    @classmethod
    def from_arrays(cls, header: dict, arrays: dict[str, np.ndarray]) -> SpikingRNN:
        """Rebuild from :meth:`to_arrays` output; raises IRError/KeyError when inconsistent."""
        emb = arrays["embedding"]
        luts = {
            name: LUTLayer(
                a=arrays[f"{name}/a"],
                b=arrays[f"{name}/b"],
                tables=arrays[f"{name}/tables"],
                in_dim=emb.shape[1] if emb.ndim == 2 else 2,
            )
            for name in ("cell", "unembedder")
        }
        model = cls(
            embedding=emb,
            cell=luts["cell"],
            unembedder=luts["unembedder"],
            context=header["shape"]["context"],
            meta=header["meta"],
        )
        if model.shape_header() != header["shape"]:
            raise IRError(
                f"the arrays give shape {model.shape_header()!r}, the header {header['shape']!r}"
            )
        return model


def describe(model: Any) -> str:
    """A one-line summary of a sequence model's shape and size."""
    mib = 4 * model.n_values / 2**20
    if isinstance(model, TransformerLM):
        s = model.shape_header()
        return (
            f"transformer: context {s['context']}, vocab {s['vocab']}, embedding {s['dim']}, "
            f"{s['n_layers']} layers x {s['n_heads']} heads, N_T {s['n_tables']}, "
            f"N_C {s['n_c']}, P {s['n_pe']}; {model.n_values:,} table values ({mib:,.0f} MiB)"
        )
    return (
        f"rnn: hidden {model.dim}, vocab {model.vocab}, context {model.context}, "
        f"N_T {model.cell.n_tables}, N_C {model.cell.n_c}; "
        f"{model.n_values:,} table values ({mib:,.1f} MiB)"
    )


def ln_vocab(vocab: int) -> float:
    """The loss of a model that predicts uniformly: ``ln V`` nats."""
    return math.log(vocab)
