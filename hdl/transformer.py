"""The LUT transformer in gateware: attention without multiplications, with a V-index cache.

Semantics: :func:`spikelut.compiler.ir.golden.run_transformer`. Per layer, with ``x`` the
stream entering it, head ``h`` adds, for every earlier position ``pos1 < pos`` of the
window, row ``(jQ(x[pos]) << (N_C + P)) | (jK(x[pos1]) << P) | jPE(pos - pos1)`` of each of
its ``N_T`` tables into ``z[pos]``; then the FFN LUT adds its rows; after the last layer the
unembedder gives the logits. ``jQ`` and ``jK`` are the same comparisons (anchors
``a``, ``b`` of the head) on different positions, so a position's indices are computed
once, when its token passes, and kept: the **V-index cache** (one word of ``H * N_T * N_C``
bits per position and layer). A token then costs one pass over the earlier positions of
its window, reading the cache and the attention tables, never a recomputation of an
earlier position.

Windows: a token flagged ``first`` starts one (position 0); positions count up to the
context ``C``, and the token after position ``C - 1`` starts the next window, so a stream
of tokens is cut into windows of ``C`` as :func:`run_transformer` sees them.

Table lanes (the memory interface an off-chip lane could replace): a head's tables are
one :class:`~spikelut.hdl.storage.TableMemory` of ``P`` lanes (``G = ceil(N_T / P)``
groups, ``B = ceil(E / L)`` beats, ``G * B * 2**(2 N_C + P)`` words of ``L`` entries per
lane): the reader presents ``rd_indices``, ``rd_step`` and ``rd_en`` and takes
``rd_rows`` exactly one cycle later, one read a cycle; it writes through ``w_stream``
(:func:`~spikelut.hdl.storage.write_layout`) between tokens. A lane with a longer or
variable latency would need a valid flag on ``rd_rows``; nothing else of the reader
depends on the memory. The heads of a layer read in parallel, each from its own lanes, and
their rows add into one :class:`~spikelut.hdl.accumulator.RowAccumulator`; a token at
position ``pos`` reads for ``hdl.layer_params.attention_cycles(pos, ...)`` cycles. The
anchors and the positional bits (a small read-only memory per layer) are fixed when the
core is built, as every core's comparator wiring is; the tables load through write ports.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.accumulator import RowAccumulator
from spikelut.hdl.layer import Layer
from spikelut.hdl.layer_params import LayerParams, attention_cycles, bank_geometry
from spikelut.hdl.layouts import chunk_layout, vector_layout
from spikelut.hdl.params import check_anchors, check_int, check_tables
from spikelut.hdl.recurrent import (
    Embedding,
    LanguageModelCore,
    check_embedding,
    embedding_geometry,
    embedding_write_layout,
    output_layout,
    tap_signature,
    token_layout,
)
from spikelut.hdl.selector import NextByte, check_exp_table, selector_config_layout
from spikelut.hdl.storage import Storage, TableMemory, write_layout

__all__ = [
    "AttentionParams",
    "TransformerBlock",
    "TransformerCore",
    "position_layout",
]


def position_layout(width: int, dim: int, context: int) -> data.StructLayout:
    """One position of the residual stream: ``z`` (``dim`` values of ``width`` signed
    bits) and its position ``pos`` in the window (0..context-1)."""
    return data.StructLayout({"z": vector_layout(width, dim), "pos": range(context)})


@dataclass(frozen=True, eq=False)
class AttentionParams:
    """The attention heads of one transformer layer as hardware.

    ``anchors_a``, ``anchors_b``: (H, N_T, N_C) comparator inputs of every head (the same
    for the query and the key side); ``tables``: (H, N_T, 2**(2 N_C + P), E) integers of
    ``table_width`` signed bits; ``pe_bits``: (H, C, N_T, P) in {0, 1}, the positional bits
    of table ``i`` of head ``h`` at distance ``d``; ``storage`` (LUTRAM, BRAM or SPRAM),
    ``tables_per_cycle`` P (default 1) and ``lanes`` L (default E) of every head's table
    memory. The constructor raises ``ValueError`` naming the first bad value.
    """

    anchors_a: np.ndarray
    anchors_b: np.ndarray
    tables: np.ndarray
    pe_bits: np.ndarray
    table_width: int
    storage: Storage = Storage.BRAM
    tables_per_cycle: int | None = None
    lanes: int | None = None

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        t = np.asarray(self.tables)
        if t.ndim != 4:
            raise ValueError(f"attention tables must be (H, N_T, R, E), not {t.shape!r}")
        heads, n_t, rows, dim = t.shape
        a, b = np.asarray(self.anchors_a), np.asarray(self.anchors_b)
        if a.ndim != 3 or a.shape[:2] != (heads, n_t) or a.shape != b.shape:
            raise ValueError(f"anchors must be (H, N_T, N_C) = ({heads}, {n_t}, N_C) each")
        n_c = a.shape[2]
        a2, b2 = check_anchors(a.reshape(heads * n_t, n_c), b.reshape(heads * n_t, n_c), dim)
        put("anchors_a", a2.reshape(a.shape))
        put("anchors_b", b2.reshape(b.shape))
        pe = np.asarray(self.pe_bits)
        if pe.ndim != 4 or pe.shape[0] != heads or pe.shape[2] != n_t:
            raise ValueError(f"pe_bits must be (H, C, N_T, P) = ({heads}, C, {n_t}, P)")
        if not np.all((pe == 0) | (pe == 1)):
            raise ValueError("pe_bits must be 0 or 1")
        check_int("context", pe.shape[1], 2)
        if rows != 1 << (2 * n_c + pe.shape[3]):
            raise ValueError(
                f"attention tables need 2**(2 N_C + P) = {1 << (2 * n_c + pe.shape[3])} rows, "
                f"not {rows}"
            )
        put("pe_bits", pe.astype(np.int64))
        put("table_width", check_int("table_width", self.table_width, 2, 32))
        put("tables", check_tables(t.reshape(heads * n_t, rows, dim), self.table_width))
        put("tables", self.tables.reshape(t.shape))
        put("storage", Storage(self.storage))
        if self.storage == Storage.LOGIC:
            raise ValueError("attention tables are memories: LUTRAM, BRAM or SPRAM")
        p = 1 if self.tables_per_cycle is None else self.tables_per_cycle
        put("tables_per_cycle", check_int("tables_per_cycle", p, 1, n_t))
        put("lanes", check_int("lanes", dim if self.lanes is None else self.lanes, 1, dim))

    @property
    def n_heads(self) -> int:
        """H."""
        return self.tables.shape[0]

    @property
    def n_tables(self) -> int:
        """N_T, tables per head."""
        return self.tables.shape[1]

    @property
    def n_c(self) -> int:
        """N_C, comparisons per table and side."""
        return self.anchors_a.shape[2]

    @property
    def n_p(self) -> int:
        """P, positional bits per table."""
        return self.pe_bits.shape[3]

    @property
    def index_width(self) -> int:
        """Bits of a row index: ``2 N_C + P``."""
        return 2 * self.n_c + self.n_p

    @property
    def context(self) -> int:
        """C, positions of a window."""
        return self.pe_bits.shape[1]

    @property
    def dim(self) -> int:
        """E, the stream's length."""
        return self.tables.shape[3]

    @property
    def geometry(self) -> tuple[int, int, int]:
        """``(groups G, beats B, depth)`` of one head's table memory."""
        return bank_geometry(
            self.n_tables, self.index_width, self.dim, self.tables_per_cycle, self.lanes
        )

    def cycles(self, earlier: int) -> int:
        """Table-read cycles of a token with ``earlier`` positions before it
        (:func:`~spikelut.hdl.layer_params.attention_cycles`; the heads read in parallel)."""
        return attention_cycles(earlier, self.n_tables, self.dim, self.tables_per_cycle, self.lanes)

    @property
    def write_layout(self) -> data.StructLayout:
        """The payload of a head's table write port."""
        return write_layout(self.table_width, self.tables_per_cycle, self.lanes, self.geometry[2])

    @property
    def memory_bits(self) -> int:
        """Table bits of all heads' lanes: ``H * P * depth * L * table_width``."""
        return (
            self.n_heads
            * self.tables_per_cycle
            * self.geometry[2]
            * self.lanes
            * (self.table_width)
        )

    @property
    def cache_bits(self) -> int:
        """Bits of the layer's V-index cache: ``C * H * N_T * N_C``."""
        return self.context * self.n_heads * self.n_tables * self.n_c


def _check_ffn(ffn: LayerParams, attn: AttentionParams, width: int) -> None:
    if ffn.in_dim != attn.dim or ffn.out_dim != attn.dim:
        raise ValueError(f"the FFN maps the stream to itself: {attn.dim} -> {attn.dim}")
    if ffn.residual or ffn.chunked or ffn.in_shift:
        raise ValueError(
            "the FFN is a plain LUT (not residual, chunked or shifted): the block adds"
        )
    if ffn.in_width != width or ffn.out_width > width:
        raise ValueError(
            f"the FFN reads the {width}-bit stream and adds at most {width} bits, not "
            f"in_width={ffn.in_width} out_width={ffn.out_width}"
        )


class TransformerBlock(wiring.Component):
    """One transformer layer: its attention heads (with their V-index cache) and its FFN.

    ``attn``: :class:`AttentionParams`; ``ffn``: the FFN LUT's
    :class:`~spikelut.hdl.layer_params.LayerParams` (stream to stream, not residual,
    ``in_width == width``); ``width``: signed width of ``z`` and of every partial sum of
    the layer (the caller's exact bound, ``stream_acc_width`` of the widths pass).

    Ports: ``i_stream`` and ``o_stream`` :func:`position_layout` (a position's ``z`` in,
    the same position after the layer out; positions of a window in order);
    ``o_heads``, a tap of ``z`` after the heads (before the FFN); ``w_attn{h}``: head
    ``h``'s table write port; ``w_ffn`` for FFN tables in memory. Writes are taken
    between tokens.
    """

    def __init__(self, attn: AttentionParams, ffn: LayerParams, *, width: int):
        self._w = check_int("width", width, 2, 64)
        _check_ffn(ffn, attn, self._w)
        self._a, self._f = attn, ffn
        layout = position_layout(self._w, attn.dim, attn.context)
        ports = {
            "i_stream": In(stream.Signature(layout)),
            "o_stream": Out(stream.Signature(layout)),
            "o_heads": Out(tap_signature(vector_layout(self._w, attn.dim))),
        }
        for h in range(attn.n_heads):
            ports[f"w_attn{h}"] = In(stream.Signature(attn.write_layout))
        if ffn.storage != Storage.LOGIC:
            ports["w_ffn"] = In(ffn.write_signature)
        super().__init__(ports)

    @property
    def attention(self) -> AttentionParams:
        """The heads' parameters."""
        return self._a

    @property
    def ffn(self) -> LayerParams:
        """The FFN's parameters."""
        return self._f

    def _indices(self, z) -> list:
        """Per head, the ``N_T * N_C`` comparison bits of ``z`` (table 0's in the low bits)."""
        a = self._a
        return [
            Cat(
                z[int(a.anchors_a[h, t, r])] > z[int(a.anchors_b[h, t, r])]
                for t in range(a.n_tables)
                for r in range(a.n_c)
            )
            for h in range(a.n_heads)
        ]

    def _pe_image(self) -> list[int]:
        a = self._a
        words = []
        for d in range(a.context):
            bits = a.pe_bits[:, d].reshape(-1)  # (H * N_T * P,), head-major
            words.append(sum(int(v) << k for k, v in enumerate(bits)))
        return words

    def elaborate(self, platform):  # noqa: PLR0915 (one FSM over the layer's passes)
        m = Module()
        a, f, width = self._a, self._f, self._w
        heads, n_t, n_c, n_p, ctx = a.n_heads, a.n_tables, a.n_c, a.n_p, a.context
        p, lanes = a.tables_per_cycle, a.lanes
        groups, beats, _ = a.geometry
        steps = groups * beats
        i, o = self.i_stream, self.o_stream

        z = Signal(vector_layout(width, a.dim))
        pos = Signal(range(ctx))
        jq = [Signal(n_t * n_c, name=f"jq{h}") for h in range(heads)]
        pos1 = Signal(range(ctx))
        step = Signal(range(steps))
        g = Signal(range(groups))
        b = Signal(range(beats))

        m.submodules.cache = cache = memory.Memory(
            shape=unsigned(heads * n_t * n_c), depth=ctx, init=[]
        )
        cw = cache.write_port()
        cr = cache.read_port()
        if n_p:
            m.submodules.pe = pe_mem = memory.Memory(
                shape=unsigned(heads * n_t * n_p), depth=ctx, init=self._pe_image()
            )
            pr = pe_mem.read_port()
            pe_word = pr.data
        else:
            pe_word = Const(0, 1)

        m.submodules.ffn = ffn = Layer(f)
        if f.storage != Storage.LOGIC:
            wiring.connect(m, wiring.flipped(self.w_ffn), ffn.w_stream)
        m.submodules.acc = acc = RowAccumulator(
            out_dim=a.dim, lanes=lanes, beats=beats, rows=heads * p,
            table_width=a.table_width, width=width,
        )  # fmt: skip
        reading = Signal()
        idle = Signal()
        for h in range(heads):
            m.submodules[f"attn{h}"] = mem = TableMemory(
                storage=a.storage, tables=a.tables[h], table_width=a.table_width,
                tables_per_cycle=p, lanes=lanes,
            )  # fmt: skip
            wiring.connect(m, wiring.flipped(getattr(self, f"w_attn{h}")), mem.w_stream)

            def index(t, h=h):
                if t >= n_t:
                    return Const(0, a.index_width)  # a padding table of the last group
                off = h * n_t + t
                jk = cr.data[off * n_c : (off + 1) * n_c]
                q = jq[h][t * n_c : (t + 1) * n_c]
                if not n_p:
                    return Cat(jk, q)
                return Cat(pe_word[off * n_p : (off + 1) * n_p], jk, q)

            per_group = Array(Cat(index(gg * p + q) for q in range(p)) for gg in range(groups))
            m.d.comb += [
                mem.rd_indices.eq(per_group[g]),
                mem.rd_step.eq(step),
                mem.rd_en.eq(reading),
                mem.w_allow.eq(idle),
            ]
            m.d.comb += [acc.i_rows[h * p + q].eq(mem.rd_rows[q]) for q in range(p)]

        last_step = step == steps - 1
        last_pos1 = pos1 == pos - 1
        # the cache and the positional bits are read a cycle ahead: the address is the
        # position the next table read needs
        pos1_next = Signal(range(ctx))
        m.d.comb += [cr.addr.eq(pos1_next), cw.addr.eq(i.payload.pos)]
        m.d.comb += cw.data.eq(Cat(self._indices(i.payload.z)))
        if n_p:
            m.d.comb += pr.addr.eq(Mux(idle, i.payload.pos, pos) - pos1_next)
        m.d.sync += [
            acc.i_valid.eq(reading),
            acc.i_clear.eq(reading & (pos1 == 0) & (g == 0)),
            acc.i_last.eq(reading & last_step & last_pos1),
        ]
        m.d.comb += acc.o_stream.ready.eq(1)
        heads_z = Signal(vector_layout(width, a.dim))  # z after the heads, into the FFN
        summed = [z[k] + acc.o_stream.payload[k] for k in range(a.dim)]
        m.d.comb += [ffn.i_stream.payload.eq(heads_z), self.o_heads.payload.eq(heads_z)]
        m.d.comb += [o.payload.z.eq(z), o.payload.pos.eq(pos)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [idle.eq(1), i.ready.eq(1), pos1_next.eq(0)]
                with m.If(i.valid):
                    m.d.comb += cw.en.eq(1)
                    idx = self._indices(i.payload.z)
                    m.d.sync += [z.eq(i.payload.z), pos.eq(i.payload.pos)]
                    m.d.sync += [jq[h].eq(idx[h]) for h in range(heads)]
                    m.d.sync += [pos1.eq(0), step.eq(0), g.eq(0), b.eq(0)]
                    with m.If(i.payload.pos == 0):
                        m.next = "FFN"
                    with m.Else():
                        m.next = "ATTN"
            with m.State("ATTN"):
                m.d.comb += [reading.eq(1), pos1_next.eq(Mux(last_step, pos1 + 1, pos1))]
                m.d.sync += step.eq(Mux(last_step, 0, step + 1))
                with m.If(b == beats - 1):
                    m.d.sync += [b.eq(0), g.eq(Mux(g == groups - 1, 0, g + 1))]
                with m.Else():
                    m.d.sync += b.eq(b + 1)
                with m.If(last_step):
                    m.d.sync += pos1.eq(pos1 + 1)
                    with m.If(last_pos1):
                        m.next = "SUM"
            with m.State("SUM"):
                # the heads' sums go into the FFN the cycle they arrive (if it is ready)
                m.d.comb += pos1_next.eq(pos1)
                m.d.comb += [heads_z[k].eq(v) for k, v in enumerate(summed)]
                with m.If(acc.o_stream.valid):
                    m.d.sync += [z[k].eq(v) for k, v in enumerate(summed)]
                    m.d.comb += ffn.i_stream.valid.eq(1)
                    with m.If(ffn.i_stream.ready):
                        m.d.comb += self.o_heads.valid.eq(1)
                        m.next = "FFN_SUM"
                    with m.Else():
                        m.next = "FFN"
            with m.State("FFN"):
                m.d.comb += [pos1_next.eq(pos1), ffn.i_stream.valid.eq(1), heads_z.eq(z)]
                with m.If(ffn.i_stream.ready):
                    m.d.comb += self.o_heads.valid.eq(1)
                    m.next = "FFN_SUM"
            with m.State("FFN_SUM"):
                m.d.comb += [pos1_next.eq(pos1), ffn.o_stream.ready.eq(1)]
                with m.If(ffn.o_stream.valid):
                    m.d.sync += [z[k].eq(z[k] + ffn.o_stream.payload[k]) for k in range(a.dim)]
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [pos1_next.eq(pos1), o.valid.eq(1)]
                with m.If(o.ready):
                    m.next = "IDLE"
        return m


class TransformerCore(LanguageModelCore, wiring.Component):
    """A LUT-transformer language-model core: token -> embedding -> layers
    (:class:`TransformerBlock`) -> chunked unembedder -> next-byte selector -> the next token.

    ``embedding``: int (V, E) table of ``embedding_width`` signed bits, in
    ``embedding_storage`` read ``embedding_lanes`` values a clock; ``attention`` and
    ``ffn``: per layer, :class:`AttentionParams` and the FFN's
    :class:`~spikelut.hdl.layer_params.LayerParams`; ``unembedder``: its LayerParams
    (stream to V logits, ``chunked``, ``in_width == width``); ``width``: signed width of
    the residual stream and every partial sum added into it; ``exp``, ``greedy``,
    ``seed``: the selector's (:class:`~spikelut.hdl.selector.NextByte`).

    Ports: ``i_stream`` ``token_layout(V)`` (``first`` starts a window; see the module
    docstring); one answer per token on ``o_stream`` (``output_layout(V)``); ``o_logits``,
    a tap of the logit chunks; ``o_heads{l}`` and ``o_layer{l}``, taps of ``z`` after layer
    ``l``'s heads and after its FFN (to locate a divergence); ``cfg_stream``, ``w_exp``
    (the selector's); table write ports ``w_embedding``, ``w_attn{l}_{h}``, ``w_ffn{l}``
    (FFN tables in memory), ``w_unembedder``.
    """

    def __init__(
        self,
        *,
        embedding,
        embedding_width: int,
        attention,
        ffn,
        unembedder: LayerParams,
        width: int,
        embedding_storage: Storage = Storage.BRAM,
        embedding_lanes: int | None = None,
        exp=(1, 0),
        greedy: bool = True,
        seed: int = 1,
    ):
        self._emb, self._emb_width = check_embedding(embedding, embedding_width)
        vocab, dim = self._emb.shape
        self._w = check_int("width", width, embedding_width, 64)
        self._attn, self._ffn = tuple(attention), tuple(ffn)
        if not self._attn or len(self._attn) != len(self._ffn):
            raise ValueError("give one AttentionParams and one FFN LayerParams per layer")
        for k, (at, fp) in enumerate(zip(self._attn, self._ffn, strict=True)):
            if at.dim != dim or at.context != self._attn[0].context:
                raise ValueError(f"layer {k}: attention over {dim} values and one context")
            try:
                _check_ffn(fp, at, self._w)
            except ValueError as e:
                raise ValueError(f"layer {k}: {e}") from None
        u = unembedder
        if not u.chunked or u.in_dim != dim or u.out_dim != vocab or u.in_width != self._w:
            raise ValueError(
                f"the unembedder is a chunked LUT from the {self._w}-bit stream of {dim} "
                f"values to V={vocab} logits"
            )
        self._unemb = u
        self._emb_storage = Storage(embedding_storage)
        self._emb_lanes = check_int(
            "embedding_lanes", dim if embedding_lanes is None else embedding_lanes, 1, dim
        )
        self._exp = check_exp_table(exp, 16)
        self._greedy, self._seed = bool(greedy), seed
        ports = {
            "i_stream": In(stream.Signature(token_layout(vocab))),
            "o_stream": Out(stream.Signature(output_layout(vocab))),
            "o_logits": Out(tap_signature(chunk_layout(u.out_width, u.lanes))),
            "cfg_stream": In(stream.Signature(selector_config_layout())),
            "w_exp": In(
                stream.Signature(data.StructLayout({"addr": range(len(self._exp)), "data": 16}))
            ),
            "w_embedding": In(
                stream.Signature(
                    embedding_write_layout(vocab, dim, embedding_width, self._emb_lanes)
                )
            ),
            "w_unembedder": In(u.write_signature),
        }
        vec = vector_layout(self._w, dim)
        for k, (at, fp) in enumerate(zip(self._attn, self._ffn, strict=True)):
            ports[f"o_heads{k}"] = Out(tap_signature(vec))
            ports[f"o_layer{k}"] = Out(tap_signature(vec))
            for h in range(at.n_heads):
                ports[f"w_attn{k}_{h}"] = In(stream.Signature(at.write_layout))
            if fp.storage != Storage.LOGIC:
                ports[f"w_ffn{k}"] = In(fp.write_signature)
        super().__init__(ports)

    @property
    def context(self) -> int:
        """C, positions of a window."""
        return self._attn[0].context

    @property
    def n_layers(self) -> int:
        """Transformer layers."""
        return len(self._attn)

    @property
    def attention(self) -> tuple[AttentionParams, ...]:
        """Per layer, the heads' parameters."""
        return self._attn

    @property
    def ffn(self) -> tuple[LayerParams, ...]:
        """Per layer, the FFN's parameters."""
        return self._ffn

    @property
    def unembedder(self) -> LayerParams:
        """The unembedder's parameters."""
        return self._unemb

    def table_cycles(self, pos: int) -> int:
        """The memories' bandwidth floor of a token at position ``pos`` of its window: the
        embedding's beats, per layer the attention reads of ``pos`` earlier positions and
        the FFN's bank, then the unembedder's bank (nothing overlaps: a generated token
        is the next input)."""
        beats, _ = embedding_geometry(self.vocab, self._emb.shape[1], self._emb_lanes)
        layers = sum(
            at.cycles(pos) + fp.bank_cycles for at, fp in zip(self._attn, self._ffn, strict=True)
        )
        return beats + layers + self._unemb.bank_cycles

    @property
    def window_table_cycles(self) -> float:
        """:meth:`table_cycles` averaged over the ``C`` positions of a full window."""
        return sum(self.table_cycles(q) for q in range(self.context)) / self.context

    def elaborate(self, platform):
        m = Module()
        ctx, dim = self.context, self._emb.shape[1]
        m.submodules.embedding = emb = Embedding(
            table=self._emb, width=self._emb_width, storage=self._emb_storage,
            lanes=self._emb_lanes,
        )  # fmt: skip
        blocks = []
        for k, (at, fp) in enumerate(zip(self._attn, self._ffn, strict=True)):
            m.submodules[f"layer{k}"] = blk = TransformerBlock(at, fp, width=self._w)
            for h in range(at.n_heads):
                wiring.connect(m, wiring.flipped(getattr(self, f"w_attn{k}_{h}")),
                               getattr(blk, f"w_attn{h}"))  # fmt: skip
            if fp.storage != Storage.LOGIC:
                wiring.connect(m, wiring.flipped(getattr(self, f"w_ffn{k}")), blk.w_ffn)
            wiring.connect(m, blk.o_heads, wiring.flipped(getattr(self, f"o_heads{k}")))
            tap = getattr(self, f"o_layer{k}")
            m.d.comb += [
                tap.valid.eq(blk.o_stream.valid & blk.o_stream.ready),
                tap.payload.eq(blk.o_stream.payload.z),
            ]
            blocks.append(blk)
        u = self._unemb
        m.submodules.unembedder = unemb = Layer(u)
        m.submodules.select = sel = NextByte(
            vocab=u.out_dim, width=u.out_width, lanes=u.lanes, exp=self._exp,
            greedy=self._greedy, seed=self._seed,
        )  # fmt: skip
        wiring.connect(m, wiring.flipped(self.i_stream), emb.i_stream)
        # positions: a token flagged first, or after the last position, starts a window
        last = Signal(range(ctx), init=ctx - 1)
        pos = Mux(emb.o_stream.payload.first | (last == ctx - 1), 0, last + 1)
        b0 = blocks[0].i_stream
        m.d.comb += [
            b0.valid.eq(emb.o_stream.valid),
            emb.o_stream.ready.eq(b0.ready),
            b0.payload.pos.eq(pos),
        ]
        m.d.comb += [b0.payload.z[k].eq(emb.o_stream.payload.z[k]) for k in range(dim)]
        with m.If(b0.valid & b0.ready):
            m.d.sync += last.eq(pos)
        for src, dst in itertools.pairwise(blocks):
            wiring.connect(m, src.o_stream, dst.i_stream)
        end = blocks[-1].o_stream
        m.d.comb += [
            unemb.i_stream.valid.eq(end.valid),
            end.ready.eq(unemb.i_stream.ready),
            unemb.i_stream.payload.eq(end.payload.z),
        ]
        wiring.connect(m, unemb.o_stream, sel.i_stream)
        wiring.connect(m, sel.o_stream, wiring.flipped(self.o_stream))
        wiring.connect(m, wiring.flipped(self.cfg_stream), sel.cfg_stream)
        wiring.connect(m, wiring.flipped(self.w_exp), sel.w_exp)
        wiring.connect(m, wiring.flipped(self.w_embedding), emb.w_stream)
        wiring.connect(m, wiring.flipped(self.w_unembedder), unemb.w_stream)
        tap = unemb.o_stream
        m.d.comb += [
            self.o_logits.valid.eq(tap.valid & tap.ready),
            self.o_logits.payload.eq(tap.payload),
        ]
        return m
