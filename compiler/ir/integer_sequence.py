"""The IR of quantised (integer) sequence models: the integer spiking RNN.

:class:`IntegerRNN` is :class:`spikelut.compiler.ir.sequence.SpikingRNN` with integers: an
integer embedding ``(V, D)``, an integer cell LUT ``D -> D`` and an integer unembedder LUT
``D -> V``. Its semantics are in :func:`spikelut.compiler.ir.golden.run_rnn`:

- ``h_{-1} = 0``; ``h_t = emb[tok_t] + sum_i cell.tables[i, j_i(h_{t-1} >> cell_shift)]``;
- ``logits_t = sum_i unembedder.tables[i, j_i(h_t >> unembedder_shift)]``;
- the prediction of ``tok_{t+1}`` is the argmax of ``logits_t``, ties to the lowest byte.

The recurrent state is one stream: the embedding and the cell's tables add into it, so they
share one scale (``cell_quant.out_scale_log2``; the embedding is stored at that scale with
``embedding_bits`` signed bits). The unembedder's scale is free (only the order of the
logits matters for the argmax; ``unembedder_quant.out_scale_log2`` recovers float logits
for a loss).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from spikelut.compiler.ir.classifier import LayerQuant
from spikelut.compiler.ir.lut import IRError, LUTLayer
from spikelut.compiler.ir.sequence import MAX_CONTEXT, EmbeddedSequence
from spikelut.hdl.params import check_int


def _check_int_table(name: str, arr: np.ndarray, bits: int) -> None:
    if not np.issubdtype(arr.dtype, np.integer):
        raise IRError(f"{name} of an integer model must be integers, not {arr.dtype}")
    lim = 1 << (bits - 1)
    if arr.size and (arr.min() < -lim or arr.max() >= lim):
        raise IRError(f"{name} has entries outside the {bits}-bit signed range")


@dataclass(eq=False)
class IntegerRNN(EmbeddedSequence):
    """A quantised spiking RNN (see the module docstring for its exact semantics)."""

    ARCH: ClassVar[str] = "rnn-int"

    embedding: np.ndarray
    cell: LUTLayer
    unembedder: LUTLayer
    cell_quant: LayerQuant
    unembedder_quant: LayerQuant
    embedding_bits: int = 8
    context: int = 32
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        emb = np.asarray(self.embedding)
        if emb.ndim != 2:
            raise IRError(f"the embedding must be (V, D), not {emb.shape!r}")
        self.embedding_bits = check_int("embedding_bits", self.embedding_bits, 2, 32, error=IRError)
        _check_int_table("the embedding", emb, self.embedding_bits)
        self.embedding = emb.astype(np.int64, copy=False)
        vocab, dim = emb.shape
        if self.cell.in_dim != dim or self.cell.out_dim != dim or self.cell.residual:
            raise IRError(f"the cell must be a non-residual LUT {dim} -> {dim}")
        if self.unembedder.in_dim != dim or self.unembedder.out_dim != vocab:
            raise IRError(f"the unembedder must be a LUT {dim} -> {vocab}")
        if self.unembedder.residual:
            raise IRError("the unembedder must not be residual")
        _check_int_table("the cell tables", self.cell.tables, self.cell_quant.table_bits)
        _check_int_table(
            "the unembedder tables", self.unembedder.tables, self.unembedder_quant.table_bits
        )
        self.context = check_int("context", self.context, 2, MAX_CONTEXT, error=IRError)

    @property
    def is_integer(self) -> bool:
        """Always True."""
        return True

    @property
    def logit_scale_log2(self) -> int:
        """Integer logits ``l`` stand for the float logits ``l * 2**logit_scale_log2``
        (what a temperature applies to)."""
        return -self.unembedder_quant.out_scale_log2

    @property
    def embedding_memory_bits(self) -> int:
        """Bits the embedding occupies: ``V * D * embedding_bits``."""
        return self.embedding.size * self.embedding_bits

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Header (JSON-able) and arrays that :meth:`from_arrays` rebuilds exactly."""
        arrays = {"embedding": self.embedding}
        for name in ("cell", "unembedder"):
            lut = getattr(self, name)
            arrays[f"{name}/a"] = lut.a
            arrays[f"{name}/b"] = lut.b
            arrays[f"{name}/tables"] = lut.tables
        header = {
            "context": self.context,
            "embedding_bits": self.embedding_bits,
            "cell_quant": dataclasses.asdict(self.cell_quant),
            "unembedder_quant": dataclasses.asdict(self.unembedder_quant),
            "meta": self.meta,
        }
        return header, arrays

    @classmethod
    def from_arrays(cls, header: dict, arrays: dict[str, np.ndarray]) -> IntegerRNN:
        """Rebuild from :meth:`to_arrays` output; raises IRError/KeyError when inconsistent."""
        emb = arrays["embedding"]
        dim = emb.shape[1] if emb.ndim == 2 else 2
        luts = {
            name: LUTLayer(
                a=arrays[f"{name}/a"],
                b=arrays[f"{name}/b"],
                tables=arrays[f"{name}/tables"],
                in_dim=dim,
            )
            for name in ("cell", "unembedder")
        }
        return cls(
            embedding=emb,
            cell=luts["cell"],
            unembedder=luts["unembedder"],
            cell_quant=LayerQuant(**header["cell_quant"]),
            unembedder_quant=LayerQuant(**header["unembedder_quant"]),
            embedding_bits=header["embedding_bits"],
            context=header["context"],
            meta=header["meta"],
        )


# -- the transformer -----------------------------------------------------------------------


def storage_dtype(bits: int) -> np.dtype:
    """The narrowest numpy integer type holding signed ``bits``-bit table entries."""
    return np.dtype(np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32)


@dataclass(eq=False)
class IntegerTransformer:
    """A quantised LUT transformer (:class:`spikelut.compiler.ir.sequence.TransformerLM`).

    Same arrays and shapes as the float model, with integer ``embedding``, ``attn_tables``,
    ``ffn_tables`` (all at the residual stream's scale ``stream_scale_log2``, signed
    ``table_bits`` wide) and ``unemb_tables`` (scale ``unemb_scale_log2``, ``unemb_bits``
    wide), and ``pe_bits`` (L, H, C, N_T, P) in {0, 1}: the float encodings' signs
    (``pe > 0``), all the hardware needs of them. Tables are stored in the narrowest integer
    type. Semantics: :func:`spikelut.compiler.ir.golden.run_transformer`.
    """

    ARCH: ClassVar[str] = "transformer-int"

    embedding: np.ndarray
    attn_a: np.ndarray
    attn_b: np.ndarray
    attn_tables: np.ndarray
    pe_bits: np.ndarray
    ffn_a: np.ndarray
    ffn_b: np.ndarray
    ffn_tables: np.ndarray
    unemb_a: np.ndarray
    unemb_b: np.ndarray
    unemb_tables: np.ndarray
    table_bits: int = 8
    unemb_bits: int = 8
    stream_scale_log2: int = 0
    unemb_scale_log2: int = 0
    meta: dict = field(default_factory=dict)

    _ARRAYS: ClassVar[tuple[str, ...]] = (
        "embedding", "attn_a", "attn_b", "attn_tables", "pe_bits", "ffn_a", "ffn_b",
        "ffn_tables", "unemb_a", "unemb_b", "unemb_tables",
    )  # fmt: skip
    _SCALARS: ClassVar[tuple[str, ...]] = (
        "table_bits", "unemb_bits", "stream_scale_log2", "unemb_scale_log2",
    )  # fmt: skip

    def __post_init__(self) -> None:
        self.table_bits = check_int("table_bits", self.table_bits, 2, 16, error=IRError)
        self.unemb_bits = check_int("unemb_bits", self.unemb_bits, 2, 16, error=IRError)
        emb = np.asarray(self.embedding)
        if emb.ndim != 2:
            raise IRError(f"the embedding must be (V, E), not {emb.shape!r}")
        vocab, dim = emb.shape
        l_, h_, n_t, n_c = np.shape(self.attn_a)
        c_, p_ = np.shape(self.pe_bits)[2], np.shape(self.pe_bits)[4]
        shapes = {
            "attn_b": (l_, h_, n_t, n_c),
            "attn_tables": (l_, h_, n_t, 1 << (2 * n_c + p_), dim),
            "pe_bits": (l_, h_, c_, n_t, p_),
            "ffn_a": (l_, n_t, n_c),
            "ffn_b": (l_, n_t, n_c),
            "ffn_tables": (l_, n_t, 1 << n_c, dim),
            "unemb_a": (n_t, n_c),
            "unemb_b": (n_t, n_c),
            "unemb_tables": (n_t, 1 << n_c, vocab),
        }
        for name, shape in shapes.items():
            if np.shape(getattr(self, name)) != shape:
                raise IRError(
                    f"{name} must have shape {shape!r}, not {np.shape(getattr(self, name))!r}"
                )
        bits_of = {"embedding": self.table_bits, "attn_tables": self.table_bits,
                   "ffn_tables": self.table_bits, "unemb_tables": self.unemb_bits}  # fmt: skip
        for name, bits in bits_of.items():
            _check_int_table(name, np.asarray(getattr(self, name)), bits)
        for name in ("attn_a", "attn_b", "ffn_a", "ffn_b", "unemb_a", "unemb_b"):
            arr = np.asarray(getattr(self, name))
            if arr.size and (arr.min() < 0 or arr.max() >= dim):
                raise IRError(f"{name} has anchors outside 0..{dim - 1}")
        if not np.all((np.asarray(self.pe_bits) == 0) | (np.asarray(self.pe_bits) == 1)):
            raise IRError("pe_bits must be 0 or 1")

    @property
    def vocab(self) -> int:
        """V."""
        return self.embedding.shape[0]

    @property
    def dim(self) -> int:
        """E."""
        return self.embedding.shape[1]

    @property
    def context(self) -> int:
        """C."""
        return self.pe_bits.shape[2]

    @property
    def is_integer(self) -> bool:
        """Always True."""
        return True

    @property
    def logit_scale_log2(self) -> int:
        """Integer logits ``l`` stand for the float logits ``l * 2**logit_scale_log2``
        (what a temperature applies to)."""
        return -self.unemb_scale_log2

    @property
    def embedding_bits(self) -> int:
        """Bits of an embedding entry: the residual stream's tables' ``table_bits``."""
        return self.table_bits

    @property
    def embedding_memory_bits(self) -> int:
        """Bits the embedding occupies: ``V * D * embedding_bits``."""
        return self.embedding.size * self.embedding_bits

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Header (JSON-able) and arrays that :meth:`from_arrays` rebuilds exactly."""
        header = {name: getattr(self, name) for name in self._SCALARS}
        header["meta"] = self.meta
        return header, {name: np.asarray(getattr(self, name)) for name in self._ARRAYS}

    @classmethod
    def from_arrays(cls, header: dict, arrays: dict[str, np.ndarray]) -> IntegerTransformer:
        """Rebuild from :meth:`to_arrays` output; raises IRError/KeyError when inconsistent."""
        return cls(
            **{name: arrays[name] for name in cls._ARRAYS},
            **{name: header[name] for name in cls._SCALARS},
            meta=header["meta"],
        )


# the integer models a language-model core runs (what ``isinstance`` checks take)
INTEGER_LANGUAGE_MODELS = (IntegerRNN, IntegerTransformer)
