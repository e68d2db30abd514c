"""The table address space a board exposes to LOAD_TABLES and to its boot loader.

A memory-backed layer ``k`` (see :mod:`spikelut.hdl.bank`) has ``P`` lane memories of
``depth`` words of ``L * table_width`` bits. The host link moves *chunks* of ``chunk_bits``
bits (the link's ``table_word_bits``); a bank word is sent as ``2**slot_bits`` consecutive
chunks, low bits first, padded with zeros. Chunk ``s`` of word ``addr`` of lane ``p`` of layer
``k`` has the host address::

    ((p << addr_bits) | addr) << slot_bits | s

so every lane is one contiguous run of ``depth << slot_bits`` chunks from
``p << (addr_bits + slot_bits)``. The gateware writes a bank word when its last slot arrives.

A language model's table space (:func:`lm_table_layers`, the write port of each layer:
:func:`lm_write_ports`) starts with layer 0, the embedding (one lane; its "tables" are the
embedding as one table of ``V`` rows, ``table[None]``), and ends with the unembedder's
tables. Between them, an :class:`~spikelut.hdl.recurrent.RNNCore` has one layer, the cell's
tables; a :class:`~spikelut.hdl.transformer.TransformerCore` has, per transformer layer,
one layer per attention head (its tables, ``N_T`` of ``2**(2 N_C + P)`` rows) and then the
FFN's (a layer number even when the FFN is logic, which the link cannot write).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikelut.hdl.recurrent import RNNCore, embedding_geometry
from spikelut.hdl.storage import Storage, bank_image
from spikelut.hdl.transformer import TransformerCore

__all__ = [
    "LayerTables",
    "MemoryShape",
    "TableSpace",
    "embedding_shape",
    "lm_embedding_shape",
    "lm_table_layers",
    "lm_write_ports",
    "table_space",
    "transformer_memories",
]

MAX_CHUNK_BITS = 32


def _clog2(n: int) -> int:
    return max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class LayerTables:
    """Geometry of one memory-backed layer's tables on the host link."""

    layer: int
    storage: Storage
    lanes: int  # P
    depth: int
    entries: int  # L, table entries per bank word
    table_width: int
    tables_per_cycle: int
    slot_bits: int

    @property
    def word_bits(self) -> int:
        """Bits of one bank word."""
        return self.entries * self.table_width

    @property
    def addr_bits(self) -> int:
        """Bits of a word address within a lane."""
        return _clog2(self.depth)

    @property
    def lane_bits(self) -> int:
        """Bits of the lane number."""
        return _clog2(self.lanes)

    @property
    def slots(self) -> int:
        """Chunks per bank word."""
        return 1 << self.slot_bits

    def lane_offset(self, lane: int) -> int:
        """Host address of the first chunk of ``lane``."""
        return lane << (self.addr_bits + self.slot_bits)


@dataclass(frozen=True)
class TableSpace:
    """Every memory-backed layer of a network, and the link's chunk and address widths."""

    layers: tuple[LayerTables, ...]
    chunk_bits: int
    addr_bits: int
    n_layers: int

    @property
    def chunk_bytes(self) -> int:
        """Bytes of one chunk on the wire (and in the flash image)."""
        return (self.chunk_bits + 7) // 8

    def layer(self, k: int) -> LayerTables:
        """The geometry of network layer ``k``; KeyError when its tables are logic."""
        for lt in self.layers:
            if lt.layer == k:
                return lt
        raise KeyError(f"layer {k} has no table memory")

    def chunks(self, k: int, tables) -> np.ndarray:
        """Chunks of layer ``k`` for ``tables`` (N_T, 2**N_C, Y): shape (P, depth * slots),
        lane ``p``'s row to be sent from :meth:`LayerTables.lane_offset` ``(p)``."""
        lt = self.layer(k)
        image = bank_image(tables, tables_per_cycle=lt.tables_per_cycle, lanes=lt.entries)
        mask = (1 << lt.table_width) - 1
        words = np.zeros(image.shape[:2], dtype=object)
        for e in range(lt.entries):
            words = words | ((image[:, :, e] & mask).astype(object) << (e * lt.table_width))
        cmask = (1 << self.chunk_bits) - 1
        out = np.zeros((lt.lanes, lt.depth, lt.slots), dtype=np.uint64)
        for s in range(lt.slots):
            part = (words >> (s * self.chunk_bits)) & cmask
            out[:, :, s] = part.astype(np.uint64)
        return out.reshape(lt.lanes, lt.depth * lt.slots)


@dataclass(frozen=True)
class MemoryShape:
    """The shape :func:`table_space` reads of a table memory that is not a LUT layer's bank
    (an RNN's embedding): ``storage``, ``lanes`` entries a word of ``table_width`` bits,
    ``depth`` words, in ``tables_per_cycle`` lane memories."""

    storage: Storage
    lanes: int
    table_width: int
    depth: int
    tables_per_cycle: int = 1


def embedding_shape(storage: Storage, lanes: int, width: int, vocab: int, dim: int):
    """The :class:`MemoryShape` of an embedding of ``vocab`` rows of ``dim`` values of
    ``width`` bits read ``lanes`` values a clock."""
    return MemoryShape(storage, lanes, width, embedding_geometry(vocab, dim, lanes)[1])


def transformer_memories(embedding, attention, ffn, unembedder) -> list[tuple[str, object]]:
    """``(write port, shape)`` of every table-space layer of a transformer core whose
    embedding memory has the shape ``embedding``, with per layer ``attention``
    (:class:`~spikelut.hdl.transformer.AttentionParams`) and ``ffn``, and ``unembedder``."""
    middle = []
    for k, (attn, layer) in enumerate(zip(attention, ffn, strict=True)):
        head = MemoryShape(
            attn.storage, attn.lanes, attn.table_width, attn.geometry[2], attn.tables_per_cycle
        )
        middle += [(f"w_attn{k}_{h}", head) for h in range(attn.n_heads)]
        middle.append((f"w_ffn{k}", layer))
    return [("w_embedding", embedding), *middle, ("w_unembedder", unembedder)]


def lm_embedding_shape(core) -> MemoryShape:
    """The embedding memory's shape of a language-model core."""
    return embedding_shape(
        core.embedding_storage, core.embedding_lanes, core.embedding_width, core.vocab, core.dim
    )


def _lm_memories(core) -> list[tuple[str, object]]:
    """``(write port, shape)`` of every table-space layer of a language-model core."""
    emb = lm_embedding_shape(core)
    if isinstance(core, TransformerCore):
        return transformer_memories(emb, core.attention, core.ffn, core.unembedder)
    if isinstance(core, RNNCore):
        return [("w_embedding", emb), ("w_cell", core.cell), ("w_unembedder", core.unembedder)]
    raise TypeError(f"not a language-model core: {type(core).__name__}")


def lm_table_layers(core) -> list:
    """The table-space layers of a language-model core ``core`` (an
    :class:`~spikelut.hdl.recurrent.RNNCore` or a
    :class:`~spikelut.hdl.transformer.TransformerCore`; see the module docstring): the
    embedding's :class:`MemoryShape`, then each LUT's
    :class:`~spikelut.hdl.layer_params.LayerParams` or its memory's :class:`MemoryShape`."""
    return [shape for _, shape in _lm_memories(core)]


def lm_write_ports(core) -> list[str]:
    """The name of the write port of each of :func:`lm_table_layers` ``(core)``."""
    return [port for port, _ in _lm_memories(core)]


def table_space(layers) -> TableSpace:
    """The :class:`TableSpace` of a network core's ``layers``: one
    :class:`~spikelut.hdl.layer_params.LayerParams` per layer (or a shape whose ``storage``
    is LOGIC, which the link cannot write)."""
    geo = [(k, p) for k, p in enumerate(layers) if p.storage != Storage.LOGIC]
    chunk_bits, out = 1, []
    slot_bits = {}
    for k, bank in geo:
        word = bank.lanes * bank.table_width
        s = 0
        while -(-word // (1 << s)) > MAX_CHUNK_BITS:
            s += 1
        slot_bits[k] = s
        chunk_bits = max(chunk_bits, -(-word // (1 << s)))
    for k, bank in geo:
        out.append(
            LayerTables(
                layer=k,
                storage=bank.storage,
                lanes=bank.tables_per_cycle,
                depth=bank.depth,
                entries=bank.lanes,
                table_width=bank.table_width,
                tables_per_cycle=bank.tables_per_cycle,
                slot_bits=slot_bits[k],
            )
        )
    addr_bits = max([1, *(lt.lane_bits + lt.addr_bits + lt.slot_bits for lt in out)])
    return TableSpace(tuple(out), chunk_bits, addr_bits, len(layers))
