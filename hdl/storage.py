"""Where a layer's tables live, and one lane of table memory.

:class:`Storage` names the kinds: constant logic, distributed RAM (LUTRAM), block RAM
(initialised by the bitstream) and iCE40 UP5K SPRAM (not initialised: loaded at run time,
see :mod:`spikelut.hdl.spram`). A memory-backed bank reads ``P`` tables per cycle, each
from its own :class:`TableLane`.

Memory organisation (what :func:`bank_image` computes and a bank's ``w_stream`` writes):
table ``i`` lives in lane ``p = i % P``, group ``g = i // P``; lane ``p`` has
``depth = G * B * 2**N_C`` words (``G = ceil(N_T/P)``, ``B = ceil(Y/L)``), word
``(g * B + b) * 2**N_C + j`` holding ``T[g*P + p, j, b*L : b*L + L]`` (zeros past ``N_T``
or ``Y``). The cycle counter is the word address's high part and the row index its low
part, so addressing needs no multiplier.

A lane's interface is deliberately narrow (address, read enable, data one cycle later; a
write port) so that a lane backed by another memory (say, external SDRAM behind a cache)
can replace it without touching the cores.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layouts import vector_layout
from spikelut.hdl.spram import SPRAMLane

__all__ = ["Storage", "TableLane", "TableMemory", "bank_image", "write_layout"]


class Storage(enum.Enum, shape=2):
    """Where a bank keeps its tables."""

    LOGIC = 0
    LUTRAM = 1
    BRAM = 2
    SPRAM = 3


def bank_image(tables, *, tables_per_cycle: int, lanes: int) -> np.ndarray:
    """The memory contents of a bank, int64 of shape (P, depth, L): ``[lane, addr, entry]``.

    Host code loads a memory-backed bank by sending, for every lane and address, one
    ``w_stream`` transfer with ``lane``, ``addr`` and ``data = image[lane, addr]``.
    """
    t = np.asarray(tables, np.int64)
    n_t, rows, y = t.shape
    p, l_ = tables_per_cycle, lanes
    g, b = -(-n_t // p), -(-y // l_)
    padded = np.zeros((g * p, rows, b * l_), np.int64)
    padded[:n_t, :, :y] = t
    image = padded.reshape(g, p, rows, b, l_).transpose(1, 0, 3, 2, 4)
    return image.reshape(p, g * b * rows, l_)


def write_layout(table_width: int, tables_per_cycle: int, lanes: int, depth: int):
    """Payload of a bank's ``w_stream``: ``lane``, ``addr`` and ``data`` (``lanes`` entries)."""
    return data.StructLayout(
        {
            "lane": range(tables_per_cycle),
            "addr": range(depth),
            "data": vector_layout(table_width, lanes),
        }
    )


class TableLane(wiring.Component):
    """One lane of table memory: ``depth`` words of ``L`` signed ``table_width``-bit entries.

    ``image`` (depth, L) is the initial contents (ignored by SPRAM, which starts empty);
    ``storage`` is LUTRAM, BRAM or SPRAM. Ports: ``rd_addr`` and ``rd_en`` (``rd_data`` is
    the word read, valid the cycle after ``rd_en`` and held while it is low); ``w_addr``,
    ``w_data``, ``w_en`` (a write; it takes priority over a read in the same cycle).
    """

    def __init__(self, *, storage: Storage, image, table_width: int):
        self._storage = Storage(storage)
        if self._storage == Storage.LOGIC:
            raise ValueError("a table lane is memory: LUTRAM, BRAM or SPRAM, not LOGIC")
        self._image = np.asarray(image, np.int64)
        depth, lanes = self._image.shape
        self._shape = vector_layout(table_width, lanes)
        super().__init__(
            {
                "rd_addr": In(range(depth)),
                "rd_en": In(1),
                "rd_data": Out(self._shape),
                "w_addr": In(range(depth)),
                "w_data": In(self._shape),
                "w_en": In(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        depth = self._image.shape[0]
        if self._storage == Storage.SPRAM:
            m.submodules.spram = lane = SPRAMLane(shape=self._shape, depth=depth)
            m.d.comb += [
                lane.addr.eq(Mux(self.w_en, self.w_addr, self.rd_addr)),
                lane.rd_en.eq(self.rd_en),
                lane.wr_en.eq(self.w_en),
                lane.wr_data.eq(self.w_data),
                self.rd_data.eq(lane.rd_data),
            ]
            return m
        m.submodules.mem = mem = memory.Memory(
            shape=self._shape, depth=depth, init=self._image.tolist()
        )
        wp = mem.write_port()
        m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data), wp.en.eq(self.w_en)]
        if self._storage == Storage.BRAM:
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(self.rd_addr), rp.en.eq(self.rd_en), self.rd_data.eq(rp.data)]
            return m
        # distributed RAM: an asynchronous read, registered here
        rp = mem.read_port(domain="comb")
        out = Signal(self._shape)
        m.d.comb += [rp.addr.eq(self.rd_addr), self.rd_data.eq(out)]
        with m.If(self.rd_en):
            m.d.sync += out.eq(rp.data)
        return m


class TableMemory(wiring.Component):
    """The ``P`` :class:`TableLane` s of one memory-backed layer, read and written together.

    Parameters: ``storage``, ``tables`` (N_T, 2**N_C, Y) (the initial contents; SPRAM starts
    empty), ``table_width``, ``tables_per_cycle`` P, ``lanes`` L. Reading: ``rd_indices``
    (``P`` row indices of ``N_C`` bits, lane 0's in the low bits), ``rd_step`` (the read
    ``g * B + b`` of a vector) and ``rd_en``: lane ``p`` reads word
    ``(rd_step << N_C) | rd_indices[p]`` and shows it on ``rd_rows[p]`` the next cycle.
    Writing: ``w_stream`` (:func:`write_layout`), accepted while ``w_allow`` is high.
    """

    def __init__(
        self, *, storage: Storage, tables, table_width: int, tables_per_cycle: int, lanes: int
    ):
        self._storage = Storage(storage)
        self._image = bank_image(tables, tables_per_cycle=tables_per_cycle, lanes=lanes)
        self._table_width = table_width
        n_c = np.asarray(tables).shape[1].bit_length() - 1
        depth = self._image.shape[1]
        self._n_c = n_c
        super().__init__(
            {
                "rd_indices": In(n_c * tables_per_cycle),
                "rd_step": In(range(max(1, depth >> n_c))),
                "rd_en": In(1),
                "rd_rows": Out(
                    data.ArrayLayout(vector_layout(table_width, lanes), tables_per_cycle)
                ),
                "w_stream": In(
                    stream.Signature(write_layout(table_width, tables_per_cycle, lanes, depth))
                ),
                "w_allow": In(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        w, n_c = self.w_stream, self._n_c
        m.d.comb += w.ready.eq(self.w_allow)
        for q, image in enumerate(self._image):
            m.submodules[f"lane{q}"] = lane = TableLane(
                storage=self._storage, image=image, table_width=self._table_width
            )
            m.d.comb += [
                lane.rd_addr.eq(Cat(self.rd_indices[q * n_c : (q + 1) * n_c], self.rd_step)),
                lane.rd_en.eq(self.rd_en),
                lane.w_addr.eq(w.payload.addr),
                lane.w_data.eq(w.payload.data),
                lane.w_en.eq(w.valid & w.ready & (w.payload.lane == q)),
                self.rd_rows[q].eq(lane.rd_data),
            ]
        return m
