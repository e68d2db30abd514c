"""The spiking RNN in gateware: token embedding, recurrent LUT cell, and the whole core.

The cell computes ``h_t = LUT(h_{t-1}) + z_t`` with the integer semantics of
:func:`spikelut.compiler.ir.golden.lut_layer` (``in_shift`` applied to ``h_{t-1}`` before the
comparators); ``h_{-1} = 0`` at the start of every sequence (a transfer flagged ``first``).
:class:`RNNCore` chains embedding, cell, unembedder and argmax: bit-exact with
:func:`spikelut.compiler.ir.golden.run_rnn`.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layer import Layer, check_chain
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.layouts import label_layout, vector_layout
from spikelut.hdl.params import check_int, signed_width, sum_range
from spikelut.hdl.storage import Storage
from spikelut.hdl.vector import Argmax

__all__ = [
    "Embedding",
    "RNNCore",
    "RecurrentCell",
    "check_cell",
    "check_embedding",
    "step_layout",
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


class Embedding(wiring.Component):
    """Token embedding lookup: ``z = table[token]``, passing ``first`` along.

    Parameters: ``table`` int array (V, D), entries within ``width`` signed bits.
    ``i_stream``: ``token_layout(V)``; ``o_stream``: ``step_layout(width, D)``;
    ``w_stream``: ``{"addr": range(V), "data": vector_layout(width, D)}`` rewrites a row
    (accepted while no lookup is waiting). Block RAM with ``init``, one token per clock.
    """

    def __init__(self, *, table, width: int):
        self._table, self._width = check_embedding(table, width)
        v, d = self._table.shape
        super().__init__(
            {
                "i_stream": In(stream.Signature(token_layout(v))),
                "o_stream": Out(stream.Signature(step_layout(self._width, d))),
                "w_stream": In(
                    stream.Signature(
                        data.StructLayout({"addr": range(v), "data": vector_layout(self._width, d)})
                    )
                ),
            }
        )

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

    def elaborate(self, platform):
        m = Module()
        i, o, w = self.i_stream, self.o_stream, self.w_stream
        shape = vector_layout(self._width, self.dim)
        m.submodules.mem = mem = memory.Memory(
            shape=shape, depth=self.vocab, init=self._table.tolist()
        )
        rp = mem.read_port()  # holds its data while en is low: the payload stays stable
        wp = mem.write_port()
        take = i.valid & i.ready
        m.d.comb += [
            i.ready.eq(~o.valid | o.ready),
            rp.addr.eq(i.payload.token),
            rp.en.eq(take),
            o.payload.z.eq(rp.data),
            w.ready.eq(~o.valid),
            wp.addr.eq(w.payload.addr),
            wp.data.eq(w.payload.data),
            wp.en.eq(w.valid & w.ready),
        ]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(take):
            m.d.sync += [o.valid.eq(1), o.payload.first.eq(i.payload.first)]
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
    takes (default its full range). ``i_stream``: ``step_layout(in_width, D)``;
    ``o_stream``: ``vector_layout(state_width, D)``, one ``h_t`` per ``z_t``; ``w_stream``
    for tables in memory: the LUT's table write port. Time steps are sequential (each needs
    the previous state).
    """

    def __init__(self, lut: LayerParams, *, in_width: int, z_bounds=None):
        check_cell(lut, in_width, z_bounds)
        self._lut = lut
        self._in_width = in_width
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

    def elaborate(self, platform):
        m = Module()
        m.submodules.lut = lut = Layer(self._lut)
        i, o = self.i_stream, self.o_stream
        if self._lut.storage != Storage.LOGIC:
            wiring.connect(m, wiring.flipped(self.w_stream), lut.w_stream)
        h = Signal(vector_layout(self.state_width, self.dim))
        z = Signal(vector_layout(self._in_width, self.dim))
        m.d.comb += lut.i_stream.payload.eq(h)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += i.ready.eq(~o.valid | o.ready)
                with m.If(i.valid & i.ready):
                    m.d.sync += z.eq(i.payload.z)
                    with m.If(i.payload.first):
                        m.d.sync += h.eq(0)
                    m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += lut.i_stream.valid.eq(1)
                with m.If(lut.i_stream.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += lut.o_stream.ready.eq(1)
                with m.If(lut.o_stream.valid):
                    nxt = [lut.o_stream.payload[k] + z[k] for k in range(self.dim)]
                    m.d.sync += [h[k].eq(v) for k, v in enumerate(nxt)]
                    m.d.sync += [o.payload[k].eq(v) for k, v in enumerate(nxt)]
                    m.d.sync += o.valid.eq(1)
                    m.next = "IDLE"
        return m


class RNNCore(wiring.Component):
    """A spiking-RNN core: token -> :class:`Embedding` -> :class:`RecurrentCell` ->
    unembedder :class:`~spikelut.hdl.layer.Layer` -> :class:`~spikelut.hdl.vector.Argmax`.

    ``embedding``: int (V, D) table of ``embedding_width`` signed bits
    (:func:`check_embedding`); ``cell``: the cell LUT's parameters (:func:`check_cell`, with
    ``z`` bounded by the embedding's values); ``unembedder``: the unembedder's parameters
    (state to V logits, reading what the cell gives). ``i_stream``:
    ``token_layout(V)`` (``first`` starts a sequence, ``h = 0``); ``o_stream``:
    ``label_layout(V, W)``, the next token's logits and their argmax.
    """

    def __init__(
        self, *, embedding, embedding_width: int, cell: LayerParams, unembedder: LayerParams
    ):
        self._emb, self._emb_width = check_embedding(embedding, embedding_width)
        if self._emb.shape[1] != cell.in_dim:
            raise ValueError(
                f"the embedding gives {self._emb.shape[1]} values, the cell's state has "
                f"{cell.in_dim}"
            )
        self._z_bounds = (self._emb.min(axis=0), self._emb.max(axis=0))
        check_cell(cell, embedding_width, self._z_bounds)
        check_chain([cell, unembedder])  # the unembedder reads the state
        self._cell, self._unemb = cell, unembedder
        vocab = self._emb.shape[0]
        super().__init__(
            {
                "i_stream": In(stream.Signature(token_layout(vocab))),
                "o_stream": Out(
                    stream.Signature(label_layout(unembedder.out_dim, unembedder.out_width))
                ),
            }
        )

    @property
    def cycles_per_token(self) -> int:
        """Cycles between tokens at full rate: the cell's step (the unembedder overlaps)."""
        return 3 + self._cell.cycles_per_inference + self._cell.bank_cycles

    def elaborate(self, platform):
        m = Module()
        m.submodules.embedding = emb = Embedding(table=self._emb, width=self._emb_width)
        m.submodules.cell = cell = RecurrentCell(
            self._cell, in_width=self._emb_width, z_bounds=self._z_bounds
        )
        m.submodules.unembedder = unemb = Layer(self._unemb)
        u = self._unemb
        m.submodules.argmax = head = Argmax(dim=u.out_dim, width=u.out_width)
        wiring.connect(m, wiring.flipped(self.i_stream), emb.i_stream)
        wiring.connect(m, emb.o_stream, cell.i_stream)
        wiring.connect(m, cell.o_stream, unemb.i_stream)
        wiring.connect(m, unemb.o_stream, head.i_stream)
        wiring.connect(m, head.o_stream, wiring.flipped(self.o_stream))
        return m
