"""Sequence blocks of the spiking RNN: the token embedding and the recurrent LUT cell.

The cell computes ``h_t = LUT(h_{t-1}) + z_t`` with the integer semantics of
``spikelut.sim.golden.lut_layer`` (``in_shift`` applied to ``h_{t-1}`` before the
comparators); ``h_{-1} = 0`` at the start of every sequence (a transfer flagged ``first``).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .bank import Storage
from .layer import Layer, _in_port
from .layouts import vector_layout
from .params import check_int, check_tables, discard, signed_width, silent_on_error, sum_range

__all__ = ["Embedding", "RecurrentCell", "step_layout", "token_layout"]


def token_layout(vocab: int) -> data.StructLayout:
    """One token: ``token`` (0..vocab-1) and ``first`` (it starts a sequence)."""
    return data.StructLayout({"token": range(vocab), "first": 1})


def step_layout(width: int, dim: int) -> data.StructLayout:
    """One time step's input of a cell: ``z`` (``dim`` values) and ``first``."""
    return data.StructLayout({"z": vector_layout(width, dim), "first": 1})


class Embedding(wiring.Component):
    """Token embedding lookup: ``z = table[token]``, passing ``first`` along.

    Parameters: ``table`` int array (V, D), entries within ``width`` signed bits.
    ``i_stream``: ``token_layout(V)``; ``o_stream``: ``step_layout(width, D)``;
    ``w_stream``: ``{"addr": range(V), "data": vector_layout(width, D)}`` rewrites a row
    (accepted while no lookup is waiting). Block RAM with ``init``, one token per clock.
    """

    @silent_on_error
    def __init__(self, *, table, width: int):
        self._width = check_int("width", width, 1, 64)
        t = np.asarray(table)
        if (
            t.ndim != 2
            or t.shape[0] < 1
            or t.shape[1] < 1
            or not np.issubdtype(t.dtype, np.integer)
        ):
            raise ValueError(
                f"table must be an integer array of shape (V, D), not {t.shape!r} {t.dtype}"
            )
        lim = 1 << (self._width - 1)
        if t.min() < -lim or t.max() >= lim:
            raise ValueError(
                f"table entries {int(t.min())}..{int(t.max())} do not fit width={width!r}"
            )
        self._table = t.astype(np.int64)
        v, d = t.shape
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


class RecurrentCell(wiring.Component):
    """The recurrent LUT cell ``h_t = LUT(h_{t-1}) + z_t`` of the spiking RNN.

    Parameters: ``anchors_a``, ``anchors_b`` (N_T, N_C) into the state; ``tables``
    (N_T, 2**N_C, D); ``table_width``; ``in_width`` (signed width of ``z``); ``state_width``
    (signed width of ``h``, at least the exact width of table sums plus ``z``); ``in_shift``;
    ``storage``, ``tables_per_cycle``, ``lanes`` (see :class:`~.bank.LUTBank`).
    ``i_stream``: ``step_layout(in_width, D)``; ``o_stream``: ``vector_layout(state_width, D)``,
    one ``h_t`` per ``z_t``; ``w_stream`` for memory storage (the LUT's table write port).
    Time steps are sequential (each needs the previous state).
    """

    @silent_on_error
    def __init__(
        self,
        *,
        anchors_a,
        anchors_b,
        tables,
        table_width: int,
        in_width: int,
        state_width: int,
        in_shift: int = 0,
        storage: Storage = Storage.BRAM,
        tables_per_cycle: int | None = None,
        lanes: int | None = None,
    ):
        self._in_width = check_int("in_width", in_width, 1, 64)
        self._state_width = check_int("state_width", state_width, 1, 64)
        t = check_tables(tables, check_int("table_width", table_width, 2, 32))
        dim = t.shape[2]
        if dim < 2:
            raise ValueError(f"the state needs at least 2 values, not {dim!r}")
        lo, hi = sum_range(t)
        half = 1 << (self._in_width - 1)
        need = signed_width(int(lo.min()) - half, int(hi.max()) + half - 1)
        if self._state_width < need:
            raise ValueError(
                f"state_width={state_width!r} cannot hold LUT sums plus z; use at least {need}"
            )
        self._lut = Layer(
            anchors_a=anchors_a,
            anchors_b=anchors_b,
            tables=t,
            in_dim=dim,
            in_width=self._state_width,
            table_width=table_width,
            out_width=self._state_width,
            in_shift=in_shift,
            storage=storage,
            tables_per_cycle=tables_per_cycle,
            lanes=lanes,
        )
        ports = {
            "i_stream": In(stream.Signature(step_layout(self._in_width, dim))),
            "o_stream": Out(stream.Signature(vector_layout(self._state_width, dim))),
        }
        if "w_stream" in self._lut.signature.members:
            ports["w_stream"] = In(_in_port(self._lut, "w_stream"))
        super().__init__(ports)
        discard(self._lut)

    @property
    def lut(self) -> Layer:
        """The LUT layer sub-component."""
        return self._lut

    @property
    def dim(self) -> int:
        """D, the state length."""
        return self._lut.out_dim

    @property
    def state_width(self) -> int:
        """Signed width of a state value."""
        return self._state_width

    def elaborate(self, platform):
        m = Module()
        m.submodules.lut = lut = self._lut
        i, o = self.i_stream, self.o_stream
        if "w_stream" in self.signature.members:
            wiring.connect(m, wiring.flipped(self.w_stream), lut.w_stream)
        h = Signal(vector_layout(self._state_width, self.dim))
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
