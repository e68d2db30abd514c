"""LUT synapse bank: sums one selected row per table into ``Y`` accumulators.

For the ``N_T`` indices of one input vector the bank computes ``y[c] = sum_i T[i, j_i, c]``
exactly (``acc_width`` must hold every possible sum; the constructor checks it against the
tables it is given). Storage kinds (:class:`Storage`):

- ``LOGIC``: the tables are constant logic, every table is read at once, one inference per
  clock (one cycle of latency); no write port.
- ``LUTRAM`` (distributed RAM: asynchronous read, registered), ``BRAM`` (``lib.memory.Memory``
  initialised by the bitstream) and ``SPRAM`` (iCE40 UP5K SPRAM, not initialised: loaded at
  run time; see :mod:`.spram`). These read ``P`` tables per cycle (``tables_per_cycle``) and
  ``L`` outputs of a row per beat (``lanes``): ``ceil(N_T/P) * ceil(Y/L)`` cycles per
  inference, consecutive inferences back to back. They have a write port ``w_stream`` to
  (re)load the tables at run time.

Memory organisation (what :func:`bank_image` computes and ``w_stream`` writes): table ``i``
lives in lane ``p = i % P``, group ``g = i // P``; lane ``p`` has
``depth = G * B * 2**N_C`` words (``G = ceil(N_T/P)``, ``B = ceil(Y/L)``), word
``(g * B + b) * 2**N_C + j`` holding ``T[g*P + p, j, b*L : b*L + L]`` (zeros past ``N_T``
or ``Y``). The cycle counter is the word's high part, the index its low part: no multiplier.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import index_layout, vector_layout
from .params import (
    check_int,
    check_tables,
    signed_width,
    silent_on_error,
    sum_range,
    tree_sum,
)
from .spram import SPRAMLane

__all__ = ["LUTBank", "Storage", "bank_geometry", "bank_image", "write_layout"]


class Storage(enum.Enum, shape=2):
    """Where a bank keeps its tables."""

    LOGIC = 0
    LUTRAM = 1
    BRAM = 2
    SPRAM = 3


def bank_geometry(n_tables: int, n_c: int, out_dim: int, tables_per_cycle: int, lanes: int):
    """``(groups G, beats B, depth)`` of a memory-backed bank (see the module docstring)."""
    groups = -(-n_tables // tables_per_cycle)
    beats = -(-out_dim // lanes)
    return groups, beats, groups * beats << n_c


def bank_image(tables, *, tables_per_cycle: int, lanes: int) -> np.ndarray:
    """The memory contents of a bank, int64 of shape (P, depth, L): ``[lane, addr, entry]``.

    Host code loads a memory-backed bank by sending, for every lane and address, one
    ``w_stream`` transfer with ``lane``, ``addr`` and ``data = image[lane, addr]``.
    """
    t = np.asarray(tables, np.int64)
    n_t, rows, y = t.shape
    p, l_ = tables_per_cycle, lanes
    g, b, depth = bank_geometry(n_t, rows.bit_length() - 1, y, p, l_)
    padded = np.zeros((g * p, rows, b * l_), np.int64)
    padded[:n_t, :, :y] = t
    image = padded.reshape(g, p, rows, b, l_).transpose(1, 0, 3, 2, 4)
    return image.reshape(p, depth, l_)


def write_layout(table_width: int, tables_per_cycle: int, lanes: int, depth: int):
    """Payload of a bank's ``w_stream``: ``lane``, ``addr`` and ``data`` (``lanes`` entries)."""
    return data.StructLayout(
        {
            "lane": range(tables_per_cycle),
            "addr": range(depth),
            "data": vector_layout(table_width, lanes),
        }
    )


class LUTBank(wiring.Component):
    """Sum of the selected rows of ``N_T`` integer tables.

    Parameters (keyword-only): ``tables`` int array (N_T, 2**N_C, Y), entries within
    ``table_width`` signed bits; ``acc_width``, the signed width of an output, at least the
    exact width of the tables' sum range unless ``modular`` (then the outputs are the sums
    wrapped to ``acc_width`` bits, two's complement: exact again after a later add that
    brings the value into range, as in a residual layer); ``storage`` (:class:`Storage`); ``tables_per_cycle``
    P in 1..N_T and ``lanes`` L in 1..Y (LOGIC: must be N_T and Y, the defaults).
    For ``SPRAM`` the tables give the shape and the width check only: contents are loaded
    through ``w_stream``.

    Ports: ``i_stream`` ``index_layout(N_C, N_T)``; ``o_stream``
    ``vector_layout(acc_width, Y)``; memory kinds also ``w_stream`` (:func:`write_layout`),
    accepted only while no inference is in flight.
    """

    @silent_on_error
    def __init__(
        self,
        *,
        tables,
        table_width: int,
        acc_width: int,
        modular: bool = False,
        storage: Storage = Storage.BRAM,
        tables_per_cycle: int | None = None,
        lanes: int | None = None,
    ):
        self._table_width = check_int("table_width", table_width, 2, 32)
        self._tables = check_tables(tables, self._table_width)
        n_t, _, y = self._tables.shape
        try:
            self._storage = Storage(storage)
        except ValueError:
            raise ValueError(f"storage must be a Storage, not {storage!r}") from None
        self._acc_width = check_int("acc_width", acc_width, 1, 64)
        lo, hi = sum_range(self._tables)
        need = signed_width(int(lo.min()), int(hi.max()))
        self._modular = bool(modular)
        if self._acc_width < need and not self._modular:
            raise ValueError(
                f"acc_width={acc_width!r} cannot hold the table sums {int(lo.min())}..{int(hi.max())}; "
                f"use at least {need}"
            )
        if self._storage == Storage.LOGIC:
            p = n_t if tables_per_cycle is None else tables_per_cycle
            l_ = y if lanes is None else lanes
            if p != n_t or l_ != y:
                raise ValueError(
                    f"LOGIC storage reads every table at once: tables_per_cycle and lanes must be "
                    f"N_T={n_t} and Y={y}, not {tables_per_cycle!r} and {lanes!r}"
                )
        else:
            p = check_int(
                "tables_per_cycle", 1 if tables_per_cycle is None else tables_per_cycle, 1, n_t
            )
            l_ = check_int("lanes", y if lanes is None else lanes, 1, y)
        self._p, self._l = p, l_
        self._groups, self._beats, self._depth = bank_geometry(n_t, self.n_c, y, p, l_)
        if self._storage == Storage.SPRAM and self._depth > 16384:
            raise ValueError(
                f"SPRAM lanes hold 16384 words, this bank needs {self._depth}; "
                f"raise tables_per_cycle or lanes"
            )
        ports = {
            "i_stream": In(stream.Signature(index_layout(self.n_c, n_t))),
            "o_stream": Out(stream.Signature(vector_layout(self._acc_width, y))),
        }
        if self._storage != Storage.LOGIC:
            ports["w_stream"] = In(
                stream.Signature(write_layout(self._table_width, p, l_, self._depth))
            )
        super().__init__(ports)

    @property
    def tables(self) -> np.ndarray:
        """The tables the bank was built with (a copy)."""
        return self._tables.copy()

    @property
    def n_tables(self) -> int:
        """N_T."""
        return self._tables.shape[0]

    @property
    def n_c(self) -> int:
        """N_C, the width of an index."""
        return self._tables.shape[1].bit_length() - 1

    @property
    def out_dim(self) -> int:
        """Y, the number of outputs."""
        return self._tables.shape[2]

    @property
    def table_width(self) -> int:
        """Signed width of a table entry."""
        return self._table_width

    @property
    def acc_width(self) -> int:
        """Signed width of an output."""
        return self._acc_width

    @property
    def modular(self) -> bool:
        """True when outputs wrap to ``acc_width`` bits instead of being checked to fit."""
        return self._modular

    @property
    def storage(self) -> Storage:
        """The storage kind."""
        return self._storage

    @property
    def tables_per_cycle(self) -> int:
        """P."""
        return self._p

    @property
    def lanes(self) -> int:
        """L."""
        return self._l

    @property
    def depth(self) -> int:
        """Words per lane memory (memory kinds)."""
        return self._depth

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive inferences at full rate."""
        return 1 if self._storage == Storage.LOGIC else self._groups * self._beats

    @property
    def memory_bits(self) -> int:
        """Table bits stored (memory kinds: P lanes of depth words of L entries)."""
        if self._storage == Storage.LOGIC:
            return 0
        return self._p * self._depth * self._l * self._table_width

    def elaborate(self, platform):
        if self._storage == Storage.LOGIC:
            return self._elaborate_logic()
        return self._elaborate_memory(platform)

    def _elaborate_logic(self):
        m = Module()
        i, o = self.i_stream, self.o_stream
        n_t, rows, y = self._tables.shape
        row_layout = vector_layout(self._table_width, y)
        sel = []
        for t in range(n_t):
            row = Signal(row_layout, name=f"row{t}")
            with m.Switch(i.payload[t]):
                for j in range(rows):
                    with m.Case(j):
                        m.d.comb += row.eq(row_layout.const(self._tables[t, j].tolist()))
            sel.append(row)
        total = [tree_sum(row[c] for row in sel) for c in range(y)]
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(i.valid & i.ready):
            m.d.sync += o.valid.eq(1)
            m.d.sync += [o.payload[c].eq(total[c]) for c in range(y)]
        return m

    def _lane_memory(self, m, p, platform, rd_addr, rd_en, w_addr, w_data, w_en):
        """Instantiate lane ``p``; returns its read data (valid the cycle after ``rd_en``)."""
        image = bank_image(self._tables, tables_per_cycle=self._p, lanes=self._l)
        return table_lane(
            m,
            f"lane{p}",
            self._storage,
            image[p],
            self._table_width,
            rd_addr,
            rd_en,
            w_addr,
            w_data,
            w_en,
        )

    def _elaborate_memory(self, platform):
        m = Module()
        i, o, w = self.i_stream, self.o_stream, self.w_stream
        n_c, y = self.n_c, self.out_dim
        p_, l_, beats = self._p, self._l, self._beats
        steps = self._groups * beats

        busy = Signal()
        step = Signal(range(steps))  # g * B + b, the high part of every lane's address
        beat = Signal(range(beats))
        idx = Signal(self._groups * p_ * n_c)  # indices, shifted P tables at a time
        s1_valid = Signal()  # a read issued last cycle: its data is on the lane outputs
        s1_clear = Signal()  # ... of group 0: the accumulators start from zero
        s1_last = Signal()  # ... the final read of an inference
        last_step = step == steps - 1
        stall = s1_valid & s1_last & o.valid & ~o.ready
        issue = busy & ~stall

        m.d.comb += [
            i.ready.eq(~busy | (last_step & ~stall)),
            w.ready.eq(~busy & ~s1_valid),
        ]
        w_lane_en = [w.valid & w.ready & (w.payload.lane == p) for p in range(p_)]
        lane_data = []
        for p in range(p_):
            rd_addr = Cat(idx[p * n_c : (p + 1) * n_c], step)
            lane_data.append(
                self._lane_memory(
                    m, p, platform, rd_addr, issue, w.payload.addr, w.payload.data, w_lane_en[p]
                )
            )

        with m.If(issue):
            m.d.sync += step.eq(Mux(last_step, 0, step + 1))
            with m.If(beat == beats - 1):
                m.d.sync += [beat.eq(0), idx.eq(idx >> (p_ * n_c))]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
            with m.If(last_step):
                m.d.sync += busy.eq(0)
        with m.If(i.valid & i.ready):
            m.d.sync += [busy.eq(1), step.eq(0), beat.eq(0), idx.eq(i.payload)]
        with m.If(~stall):
            m.d.sync += [s1_valid.eq(issue), s1_clear.eq(step < beats), s1_last.eq(last_step)]

        # The accumulators rotate by one chunk of L per read, so the chunk being updated is
        # always chunk 0; after G*B reads they are back in order.
        chunk = vector_layout(self._acc_width, l_)
        chunks = [Signal(chunk, name=f"acc{b}") for b in range(beats)]
        head = Signal(chunk, name="acc_next")
        for c in range(l_):
            rows = tree_sum(d[c] for d in lane_data)
            m.d.comb += head[c].eq(Mux(s1_clear, 0, chunks[0][c]) + rows)
        rotated = [*chunks[1:], head]
        with m.If(s1_valid & ~stall):
            m.d.sync += [dst.eq(src) for dst, src in zip(chunks, rotated, strict=True)]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(s1_valid & s1_last & ~stall):
            flat = Cat(r.as_value() for r in rotated)[: y * self._acc_width]
            m.d.sync += [o.valid.eq(1), o.payload.eq(flat)]
        return m


def table_lane(m, name, storage, image, table_width, rd_addr, rd_en, w_addr, w_data, w_en):
    """One lane of table memory in module ``m`` (submodule ``name``), holding ``image``
    (depth x L entries) in ``storage`` (BRAM, LUTRAM or SPRAM, which starts empty); writes
    take priority over reads. Returns the read data, valid the cycle after ``rd_en``."""
    depth, lanes = image.shape
    shape = vector_layout(table_width, lanes)
    if storage == Storage.SPRAM:
        m.submodules[name] = lane = SPRAMLane(shape=shape, depth=depth)
        m.d.comb += [
            lane.addr.eq(Mux(w_en, w_addr, rd_addr)),
            lane.rd_en.eq(rd_en),
            lane.wr_en.eq(w_en),
            lane.wr_data.eq(w_data),
        ]
        return lane.rd_data
    m.submodules[name] = mem = memory.Memory(shape=shape, depth=depth, init=image.tolist())
    wp = mem.write_port()
    m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(w_data), wp.en.eq(w_en)]
    if storage == Storage.BRAM:
        rp = mem.read_port()
        m.d.comb += [rp.addr.eq(rd_addr), rp.en.eq(rd_en)]
        return rp.data
    # distributed RAM: an asynchronous read, registered here
    rp = mem.read_port(domain="comb")
    out = Signal(shape, name=f"{name}_data")
    m.d.comb += rp.addr.eq(rd_addr)
    with m.If(rd_en):
        m.d.sync += out.eq(rp.data)
    return out
