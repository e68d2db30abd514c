"""The spiking RNN in gateware: token embedding, recurrent LUT cell, and the whole core.

The cell computes ``h_t = LUT(h_{t-1}) + z_t`` with the integer semantics of
:func:`spikelut.compiler.ir.golden.lut_layer` (``in_shift`` applied to ``h_{t-1}`` before the
comparators); ``h_{-1} = 0`` at the start of every sequence (a transfer flagged ``first``).
:class:`RNNCore` chains embedding, cell, a chunked unembedder and the next-byte selector:
one token in, the chosen next token out, bit-exact with
:func:`spikelut.compiler.ir.golden.rnn_choices`. Its LUTs are the classifier cores' layers
(parallel :class:`~spikelut.hdl.layer.Layer` or serial
:class:`~spikelut.hdl.serial_core.SerialLayer`), so tables sit in logic, distributed RAM,
block RAM or SPRAM as for a classifier, and load through the same write ports.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layer import Layer, check_chain
from spikelut.hdl.layer_params import LayerParams, check_serial
from spikelut.hdl.layouts import chunk_layout, vector_layout
from spikelut.hdl.params import check_int, signed_width, sum_range
from spikelut.hdl.selector import NextByte, check_exp_table, selector_config_layout
from spikelut.hdl.serial_core import SerialLayer
from spikelut.hdl.storage import Storage, TableLane, bank_image, write_layout

__all__ = [
    "Embedding",
    "LanguageModelCore",
    "RNNCore",
    "RecurrentCell",
    "check_cell",
    "check_embedding",
    "embedding_geometry",
    "embedding_image",
    "embedding_write_layout",
    "output_layout",
    "step_layout",
    "tap_signature",
    "token_layout",
]


def token_layout(vocab: int) -> data.StructLayout:
    """One token: ``token`` (0..vocab-1) and ``first`` (it starts a sequence)."""
    return data.StructLayout({"token": range(vocab), "first": 1})


def step_layout(width: int, dim: int) -> data.StructLayout:
    """One time step's input of a cell: ``z`` (``dim`` values) and ``first``."""
    return data.StructLayout({"z": vector_layout(width, dim), "first": 1})


def check_embedding(table, width: int) -> tuple[np.ndarray, int]:
    """An embedding ``table`` (V, D) of integers within ``width`` signed bits, checked:
    ``(table as int64, width)``; ``ValueError`` naming what is wrong."""
    width = check_int("width", width, 1, 64)
    t = np.asarray(table)
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 1 or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(
            f"table must be an integer array of shape (V, D), not {t.shape!r} {t.dtype}"
        )
    lim = 1 << (width - 1)
    if t.min() < -lim or t.max() >= lim:
        raise ValueError(f"table entries {int(t.min())}..{int(t.max())} do not fit width={width!r}")
    return t.astype(np.int64), width


def embedding_geometry(vocab: int, dim: int, lanes: int) -> tuple[int, int]:
    """``(beats B, depth)`` of an embedding memory read ``lanes`` values a clock."""
    beats = -(-dim // lanes)
    return beats, beats * vocab


def embedding_image(table, lanes: int) -> np.ndarray:
    """The memory contents (depth, L) of an embedding ``table`` (V, D) read ``lanes``
    values a clock: word ``b * V + token`` holds values ``b*L ..`` of the token's row."""
    return bank_image(np.asarray(table, np.int64)[None], tables_per_cycle=1, lanes=lanes)[0]


def embedding_write_layout(vocab: int, dim: int, width: int, lanes: int):
    """The payload of an embedding's write port (``lane`` always 0)."""
    return write_layout(width, 1, lanes, embedding_geometry(vocab, dim, lanes)[1])


class Embedding(wiring.Component):
    """Token embedding lookup: ``z = table[token]``, passing ``first`` along.

    Parameters: ``table`` int array (V, D), entries within ``width`` signed bits;
    ``storage`` (LUTRAM, BRAM or SPRAM) and ``lanes`` L: the table is one memory lane of
    ``B * V`` words of ``L`` values (``B = ceil(D / L)``; word ``b * V + token`` holds
    values ``b*L .. b*L + L - 1`` of the token's row: the layout of
    :func:`~spikelut.hdl.storage.bank_image` for a one-table bank of ``V`` rows), read one
    word a clock into ``z``. ``i_stream``: ``token_layout(V)``; ``o_stream``:
    ``step_layout(width, D)``; ``w_stream``: :func:`~spikelut.hdl.storage.write_layout`
    (one lane) rewrites a word, accepted between lookups. SPRAM starts empty (load it).
    """

    def __init__(self, *, table, width: int, storage: Storage = Storage.BRAM, lanes=None):
        self._table, self._width = check_embedding(table, width)
        v, d = self._table.shape
        self._storage = Storage(storage)
        if self._storage == Storage.LOGIC:
            raise ValueError("the embedding is a memory: LUTRAM, BRAM or SPRAM")
        self._lanes = check_int("lanes", d if lanes is None else lanes, 1, d)
        self._beats, _ = embedding_geometry(v, d, self._lanes)
        super().__init__(
            {
                "i_stream": In(stream.Signature(token_layout(v))),
                "o_stream": Out(stream.Signature(step_layout(self._width, d))),
                "w_stream": In(stream.Signature(self.write_layout)),
            }
        )

    @property
    def write_layout(self):
        """The ``w_stream`` payload (:func:`embedding_write_layout`)."""
        return embedding_write_layout(self.vocab, self.dim, self._width, self._lanes)

    @property
    def table(self) -> np.ndarray:
        """The initial table (a copy)."""
        return self._table.copy()

    @property
    def vocab(self) -> int:
        """V, the number of tokens."""
        return self._table.shape[0]

    @property
    def dim(self) -> int:
        """D, the embedding length."""
        return self._table.shape[1]

    @property
    def width(self) -> int:
        """Signed width of an embedding value."""
        return self._width

    @property
    def lanes(self) -> int:
        """L, values read per clock."""
        return self._lanes

    @property
    def depth(self) -> int:
        """Words of the memory: ``B * V``."""
        return embedding_geometry(self.vocab, self.dim, self._lanes)[1]

    @property
    def image(self) -> np.ndarray:
        """The memory contents (depth, L) of the table (what ``w_stream`` loads)."""
        return embedding_image(self._table, self._lanes)

    def elaborate(self, platform):
        m = Module()
        i, o, w = self.i_stream, self.o_stream, self.w_stream
        v, d, lanes, beats = self.vocab, self.dim, self._lanes, self._beats
        m.submodules.lane = lane = TableLane(
            storage=self._storage, image=self.image, table_width=self._width
        )
        # Word 0 is read in the cycle the token is taken (its address straight from the
        # payload) and the row leaves in the cycle the last word arrives on the memory's
        # output, which holds it while the row waits on o_stream: one cycle a word, no
        # more (a generated token's embedding is on the critical loop of every token).
        take = i.valid & i.ready
        busy = Signal()  # reading words 1 .. B-1 of a token
        beat = Signal(range(beats))
        s1 = Signal()  # a word read last cycle: its data is on rd_data
        s1_beat = Signal(range(beats))
        addr = Signal(range(self.depth))
        held = Signal()  # the row waits on o_stream
        first = Signal()
        done = s1 & (s1_beat == beats - 1)
        idle = ~busy & ~s1 & ~held
        m.d.comb += [
            o.valid.eq(done | held),
            i.ready.eq(idle),
            # a write waits while a token is offered: the token's first read is this cycle
            w.ready.eq(idle & ~i.valid),
            lane.w_addr.eq(w.payload.addr),
            lane.w_data.eq(w.payload.data),
            lane.w_en.eq(w.valid & w.ready),
            lane.rd_addr.eq(Mux(take, i.payload.token, addr)),
            lane.rd_en.eq(take | busy),
        ]
        with m.If(take):
            m.d.sync += [first.eq(i.payload.first), addr.eq(i.payload.token + v)]
            if beats > 1:
                m.d.sync += [busy.eq(1), beat.eq(1)]
        with m.If(busy):
            m.d.sync += [beat.eq(beat + 1), addr.eq(addr + v)]
            with m.If(beat == beats - 1):
                m.d.sync += busy.eq(0)
        m.d.sync += [s1.eq(take | busy), s1_beat.eq(Mux(busy, beat, 0))]
        m.d.sync += held.eq(o.valid & ~o.ready)
        # words 0 .. B-2 into registers; the last one is read off the memory's output
        early = [
            Signal(vector_layout(self._width, lanes), name=f"word{b}") for b in range(beats - 1)
        ]
        with m.If(s1):
            for b, word in enumerate(early):
                with m.If(s1_beat == b):
                    m.d.sync += word.eq(lane.rd_data)
        z = [word[c] for word in [*early, lane.rd_data] for c in range(lanes)]
        m.d.comb += [o.payload.first.eq(first)]
        m.d.comb += [o.payload.z[k].eq(z[k]) for k in range(d)]
        return m


def check_cell(lut: LayerParams, in_width: int, z_bounds=None) -> None:
    """Raise ``ValueError`` unless ``lut`` can be a recurrent cell's LUT: it maps the state
    to itself (``Y == D``, input and output ``state_width`` wide), is not residual, and
    every LUT sum plus a ``z`` within ``z_bounds`` (``(lo, hi)``; default: the full
    ``in_width`` range) fits the state width."""
    check_int("in_width", in_width, 1, 64)
    if lut.out_dim != lut.in_dim or lut.in_width != lut.out_width:
        raise ValueError(
            f"a recurrent cell maps the state to itself: Y == D and in_width == out_width, not "
            f"Y={lut.out_dim}, D={lut.in_dim}, in_width={lut.in_width}, out_width={lut.out_width}"
        )
    if lut.residual:
        raise ValueError("a recurrent cell's LUT is not residual: the cell adds z, not the state")
    if z_bounds is None:
        z_bounds = (-(1 << (in_width - 1)), (1 << (in_width - 1)) - 1)
    z_lo, z_hi = (np.asarray(b, np.int64) for b in z_bounds)
    lo, hi = sum_range(lut.tables)
    need = signed_width(int((lo + z_lo).min()), int((hi + z_hi).max()))
    if lut.out_width < need:
        raise ValueError(
            f"state width {lut.out_width} cannot hold LUT sums plus z; use at least {need}"
        )


class RecurrentCell(wiring.Component):
    """The recurrent LUT cell ``h_t = LUT(h_{t-1}) + z_t`` of the spiking RNN.

    ``lut``: the LUT's :class:`~spikelut.hdl.layer_params.LayerParams` (state to state;
    :func:`check_cell`); ``in_width``: signed width of ``z``; ``z_bounds``: the values ``z``
    takes (default its full range); ``serial``: index the LUT with the serial core's
    :class:`~spikelut.hdl.serial_core.SerialLayer` (a few comparators a clock) instead of a
    parallel :class:`~spikelut.hdl.layer.Layer`. ``i_stream``: ``step_layout(in_width, D)``;
    ``o_stream``: ``vector_layout(state_width, D)``, one ``h_t`` per ``z_t``; ``w_stream``
    for tables in memory: the LUT's table write port. Time steps are sequential (each needs
    the previous state).

    The state is the cell's one register of ``D`` values, also its output (it changes only
    after the output was taken); ``z`` is read from the input, which is accepted with the
    new state. A ``chunked`` LUT (memory tables) keeps its sums in memory and hands them
    over ``L`` at a time: each chunk plus its ``z`` values shifts into the state, so no
    register holds the sums (:class:`~spikelut.hdl.accumulator.ChunkAccumulator`).
    """

    def __init__(self, lut: LayerParams, *, in_width: int, z_bounds=None, serial: bool = False):
        check_cell(lut, in_width, z_bounds)
        if serial:
            check_serial(lut)
        self._lut = lut
        self._in_width = in_width
        self._serial = bool(serial)
        dim = lut.out_dim
        ports = {
            "i_stream": In(stream.Signature(step_layout(in_width, dim))),
            "o_stream": Out(stream.Signature(vector_layout(lut.out_width, dim))),
        }
        if lut.storage != Storage.LOGIC:
            ports["w_stream"] = In(lut.write_signature)
        super().__init__(ports)

    @property
    def lut(self) -> LayerParams:
        """The LUT's parameters."""
        return self._lut

    @property
    def dim(self) -> int:
        """D, the state length."""
        return self._lut.out_dim

    @property
    def state_width(self) -> int:
        """Signed width of a state value."""
        return self._lut.out_width

    def _chunked_state(self, m, sums):
        """The state of a chunked cell: ``B`` chunk registers, the beat counter and the
        statements that shift the chunk of ``sums`` plus its ``z`` values in at the end
        (the others move down, so after ``B`` chunks, in beat order, it is in order)."""
        d, lanes = self.dim, self._lut.lanes
        beats = -(-d // lanes)
        chunks = [
            Signal(vector_layout(self.state_width, lanes), name=f"h{b}") for b in range(beats)
        ]
        beat = Signal(range(beats))
        z = self.i_stream.payload.z
        z_chunk = Signal(vector_layout(self._in_width, lanes))
        with m.Switch(beat):
            for b in range(beats):
                with m.Case(b):
                    m.d.comb += [
                        z_chunk[c].eq(z[b * lanes + c]) for c in range(lanes) if b * lanes + c < d
                    ]
        shift_in = [dst.eq(src) for dst, src in itertools.pairwise(chunks)]
        shift_in += [chunks[-1][c].eq(sums[c] + z_chunk[c]) for c in range(lanes)]
        return chunks, beat, shift_in

    def elaborate(self, platform):
        m = Module()
        m.submodules.lut = lut = SerialLayer(self._lut) if self._serial else Layer(self._lut)
        i, o = self.i_stream, self.o_stream
        if self._lut.storage != Storage.LOGIC:
            wiring.connect(m, wiring.flipped(self.w_stream), lut.w_stream)
        d, w = self.dim, self.state_width
        if self._lut.chunked:
            chunks, beat, shift_in = self._chunked_state(m, lut.o_stream.payload.values)
            h = Cat(c.as_value() for c in chunks)[: d * w]
        else:
            h = Signal(vector_layout(w, d))
        m.d.comb += [lut.i_stream.payload.eq(h), o.payload.eq(h)]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"), m.If(i.valid & (~o.valid | o.ready)):
                with m.If(i.payload.first):
                    m.d.sync += [c.eq(0) for c in chunks] if self._lut.chunked else h.eq(0)
                m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += lut.i_stream.valid.eq(1)
                with m.If(lut.i_stream.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += lut.o_stream.ready.eq(1)
                if self._lut.chunked:
                    with m.If(lut.o_stream.valid):
                        m.d.sync += [*shift_in, beat.eq(beat + 1)]
                        with m.If(lut.o_stream.payload.last):
                            m.d.comb += i.ready.eq(1)
                            m.d.sync += [beat.eq(0), o.valid.eq(1)]
                            m.next = "IDLE"
                else:
                    m.d.comb += i.ready.eq(lut.o_stream.valid)
                    with m.If(lut.o_stream.valid):
                        z = i.payload.z
                        m.d.sync += [h[k].eq(lut.o_stream.payload[k] + z[k]) for k in range(d)]
                        m.d.sync += o.valid.eq(1)
                        m.next = "IDLE"
        return m


def tap_signature(shape) -> wiring.Signature:
    """An observation port: ``valid`` and ``payload`` of the transfers of an internal
    stream, with no ``ready`` (a tap cannot hold the design back)."""
    return wiring.Signature({"valid": Out(1), "payload": Out(shape)})


def output_layout(vocab: int) -> data.StructLayout:
    """A language-model core's answer: the chosen next token ``index``."""
    return data.StructLayout({"index": range(vocab)})


class LanguageModelCore:
    """What a language-model core (:class:`RNNCore`,
    :class:`~spikelut.hdl.transformer.TransformerCore`) tells of its embedding and selector,
    from its ``_emb`` table, ``_emb_width``, ``_emb_storage``, ``_emb_lanes`` and ``_exp``."""

    @property
    def embedding_image(self) -> np.ndarray:
        """The embedding memory's contents (what ``w_embedding`` loads)."""
        return embedding_image(self._emb, self._emb_lanes)

    @property
    def embedding_storage(self) -> Storage:
        """Where the embedding lives."""
        return self._emb_storage

    @property
    def embedding_width(self) -> int:
        """Signed width of an embedding value."""
        return self._emb_width

    @property
    def embedding_lanes(self) -> int:
        """Embedding values read a clock (the width of an embedding memory word)."""
        return self._emb_lanes

    @property
    def vocab(self) -> int:
        """V, the number of tokens."""
        return self._emb.shape[0]

    @property
    def dim(self) -> int:
        """D, the embedding's (and the stream's) length."""
        return self._emb.shape[1]

    @property
    def exp_entries(self) -> int:
        """Entries of the selector's exponential table (what ``w_exp`` addresses)."""
        return len(self._exp)


class RNNCore(LanguageModelCore, wiring.Component):
    """A spiking-RNN core: token -> :class:`Embedding` -> :class:`RecurrentCell` ->
    chunked unembedder -> :class:`~spikelut.hdl.selector.NextByte` -> the next token.

    ``embedding``: int (V, D) table of ``embedding_width`` signed bits
    (:func:`check_embedding`), in ``embedding_storage`` read ``embedding_lanes`` values a
    clock; ``cell``: the cell LUT's parameters (:func:`check_cell`, with ``z`` bounded by
    the embedding's values); ``unembedder``: the unembedder's parameters (state to V
    logits, ``chunked``); ``serial``: both LUTs indexed by the serial core's layers (else
    parallel layers); ``exp``, ``greedy``, ``seed``: the selector's initial exponential
    table, rule and random state (:class:`~spikelut.hdl.selector.NextByte`).

    Ports: ``i_stream`` ``token_layout(V)`` (``first`` starts a sequence, ``h = 0``); one
    answer per token on ``o_stream`` (:func:`output_layout`); ``o_logits``, a tap
    (:func:`tap_signature`) of the unembedder's logit chunks as the selector takes them; ``cfg_stream`` and ``w_exp`` (the selector's); ``w_embedding``,
    ``w_cell`` (tables in memory), ``w_unembedder``: the table write ports.
    """

    def __init__(
        self,
        *,
        embedding,
        embedding_width: int,
        cell: LayerParams,
        unembedder: LayerParams,
        serial: bool = False,
        embedding_storage: Storage = Storage.BRAM,
        embedding_lanes: int | None = None,
        exp=(1, 0),
        greedy: bool = True,
        seed: int = 1,
    ):
        self._emb, self._emb_width = check_embedding(embedding, embedding_width)
        if self._emb.shape[1] != cell.in_dim:
            raise ValueError(
                f"the embedding gives {self._emb.shape[1]} values, the cell's state has "
                f"{cell.in_dim}"
            )
        self._z_bounds = (self._emb.min(axis=0), self._emb.max(axis=0))
        check_cell(cell, embedding_width, self._z_bounds)
        # the unembedder reads the state (a chunked cell still hands over whole states)
        check_chain([dataclasses.replace(cell, chunked=False), unembedder])
        if not unembedder.chunked:
            raise ValueError("the unembedder streams its logits in chunks: make it chunked")
        if serial:
            check_serial(cell, 0)
            check_serial(unembedder, 1)
        vocab = self._emb.shape[0]
        if unembedder.out_dim != vocab:
            raise ValueError(f"the unembedder gives {unembedder.out_dim} logits, not V={vocab}")
        self._cell, self._unemb, self._serial = cell, unembedder, bool(serial)
        self._emb_storage = Storage(embedding_storage)
        self._emb_lanes = check_int(
            "embedding_lanes", cell.in_dim if embedding_lanes is None else embedding_lanes, 1,
            cell.in_dim,
        )  # fmt: skip
        self._exp = check_exp_table(exp, 16)
        self._greedy, self._seed = bool(greedy), seed
        chunk = chunk_layout(unembedder.out_width, unembedder.lanes)
        ports = {
            "i_stream": In(stream.Signature(token_layout(vocab))),
            "o_stream": Out(stream.Signature(output_layout(vocab))),
            "o_logits": Out(tap_signature(chunk)),
            "cfg_stream": In(stream.Signature(selector_config_layout())),
            "w_exp": In(
                stream.Signature(data.StructLayout({"addr": range(len(self._exp)), "data": 16}))
            ),
            "w_embedding": In(
                stream.Signature(
                    embedding_write_layout(vocab, cell.in_dim, embedding_width, self._emb_lanes)
                )
            ),
            "w_unembedder": In(unembedder.write_signature),
        }
        if cell.storage != Storage.LOGIC:
            ports["w_cell"] = In(cell.write_signature)
        super().__init__(ports)

    @property
    def cell(self) -> LayerParams:
        """The cell LUT's parameters."""
        return self._cell

    @property
    def unembedder(self) -> LayerParams:
        """The unembedder's parameters."""
        return self._unemb

    @property
    def serial(self) -> bool:
        """Whether the LUTs are indexed by serial-core layers."""
        return self._serial

    @property
    def table_cycles_per_token(self) -> int:
        """The memories' bandwidth floor of one generated token: the embedding's reads, the
        cell's and then the unembedder's (a generated token is the next input, so none of
        them overlap)."""
        beats, _ = embedding_geometry(self._emb.shape[0], self._emb.shape[1], self._emb_lanes)
        return beats + self._cell.bank_cycles + self._unemb.bank_cycles

    def elaborate(self, platform):
        m = Module()
        m.submodules.embedding = emb = Embedding(
            table=self._emb,
            width=self._emb_width,
            storage=self._emb_storage,
            lanes=self._emb_lanes,
        )
        m.submodules.cell = cell = RecurrentCell(
            self._cell, in_width=self._emb_width, z_bounds=self._z_bounds, serial=self._serial
        )
        u = self._unemb
        m.submodules.unembedder = unemb = SerialLayer(u) if self._serial else Layer(u)
        m.submodules.select = sel = NextByte(
            vocab=u.out_dim,
            width=u.out_width,
            lanes=u.lanes,
            exp=self._exp,
            greedy=self._greedy,
            seed=self._seed,
        )
        wiring.connect(m, wiring.flipped(self.i_stream), emb.i_stream)
        wiring.connect(m, emb.o_stream, cell.i_stream)
        wiring.connect(m, cell.o_stream, unemb.i_stream)
        wiring.connect(m, unemb.o_stream, sel.i_stream)
        wiring.connect(m, sel.o_stream, wiring.flipped(self.o_stream))
        wiring.connect(m, wiring.flipped(self.cfg_stream), sel.cfg_stream)
        wiring.connect(m, wiring.flipped(self.w_exp), sel.w_exp)
        wiring.connect(m, wiring.flipped(self.w_embedding), emb.w_stream)
        wiring.connect(m, wiring.flipped(self.w_unembedder), unemb.w_stream)
        if self._cell.storage != Storage.LOGIC:
            wiring.connect(m, wiring.flipped(self.w_cell), cell.w_stream)
        tap = unemb.o_stream
        m.d.comb += [
            self.o_logits.valid.eq(tap.valid & tap.ready),
            self.o_logits.payload.eq(tap.payload),
        ]
        return m
