"""A logic-lean network core for small devices: one anchor comparison per clock.

The parallel indexer of :class:`spikelut.hdl.layer.Network` spends ``N_T * N_C`` comparators
and ``N_T * N_C``-bit index registers (1024 of each for the digits classifier: more logic
cells than an iCE40 UP5K has). On a host-link board the UART is the bound anyway (about 170
digits inferences/s at 115200 baud), so :class:`SerialLayer` compares one anchor pair per
clock (anchors in a ROM, the two values read through multiplexers straight from the input
stream's payload, which the stream rules hold still until it is accepted), keeps the row
indices in a small RAM, then reads the tables ``P`` at a time exactly as
:class:`~spikelut.hdl.bank.LUTBank` does: same memories, same table layout (so the same
:mod:`~spikelut.boards.tables` space, flash image and LOAD_TABLES), same ``w_stream``.
:class:`SerialNetwork` chains such layers and ends with the argmax; it is bit-identical with
``spikelut.sim.golden.run_classifier``. Residual layers are not supported.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.bank import Storage, bank_geometry, bank_image, table_lane, write_layout
from spikelut.hdl.layouts import label_layout, vector_layout
from spikelut.hdl.params import (
    check_anchors,
    check_int,
    check_tables,
    discard,
    signed_width,
    silent_on_error,
    sum_range,
    tree_sum,
)
from spikelut.hdl.vector import Argmax

__all__ = ["SerialLayer", "SerialNetwork"]


class SerialLayer(wiring.Component):
    """One LUT layer ``y = sum_i T[i, j_i]`` computed with one comparison per clock.

    Keyword parameters as :class:`spikelut.hdl.layer.Layer` (``anchors_a``, ``anchors_b``,
    ``tables``, ``in_dim``, ``in_width``, ``table_width``, ``out_width``, ``in_shift``,
    ``storage`` one of BRAM/LUTRAM/SPRAM, ``tables_per_cycle`` P, ``lanes`` L). Ports:
    ``i_stream`` ``vector_layout(in_width, D)``, ``o_stream`` ``vector_layout(out_width, Y)``,
    ``w_stream`` (:func:`~spikelut.hdl.bank.write_layout`, accepted while idle). A vector
    takes ``G * P * N_C + G * B + 4`` cycles (:attr:`cycles_per_inference`).
    """

    @silent_on_error
    def __init__(
        self,
        *,
        anchors_a,
        anchors_b,
        tables,
        in_dim: int,
        in_width: int,
        table_width: int,
        out_width: int,
        in_shift: int = 0,
        storage: Storage = Storage.BRAM,
        tables_per_cycle: int | None = None,
        lanes: int | None = None,
    ):
        self.in_dim = check_int("in_dim", in_dim, 2)
        self.in_width = check_int("in_width", in_width, 1, 64)
        self._in_shift = check_int("in_shift", in_shift, 0, self.in_width - 1)
        self._a, self._b = check_anchors(anchors_a, anchors_b, self.in_dim)
        self.table_width = check_int("table_width", table_width, 2, 32)
        self._tables = check_tables(tables, self.table_width)
        self.n_tables, rows, self.out_dim = self._tables.shape
        self.n_c = rows.bit_length() - 1
        if self._a.shape != (self.n_tables, self.n_c):
            raise ValueError(
                f"tables of shape {self._tables.shape!r} do not match anchors of shape "
                f"{self._a.shape!r}"
            )
        self.out_width = check_int("out_width", out_width, 1, 64)
        lo, hi = sum_range(self._tables)
        need = signed_width(int(lo.min()), int(hi.max()))
        if self.out_width < need:
            raise ValueError(f"out_width={out_width!r} cannot hold the table sums; use {need}")
        self.storage = Storage(storage)
        if self.storage == Storage.LOGIC:
            raise ValueError("the serial core reads tables from memory; LOGIC storage is not one")
        self.tables_per_cycle = check_int(
            "tables_per_cycle", tables_per_cycle or 1, 1, self.n_tables
        )
        self.lanes = check_int("lanes", lanes or self.out_dim, 1, self.out_dim)
        self._groups, self._beats, self.depth = bank_geometry(
            self.n_tables, self.n_c, self.out_dim, self.tables_per_cycle, self.lanes
        )
        super().__init__(
            {
                "i_stream": In(stream.Signature(vector_layout(self.in_width, self.in_dim))),
                "o_stream": Out(stream.Signature(vector_layout(self.out_width, self.out_dim))),
                "w_stream": In(
                    stream.Signature(
                        write_layout(
                            self.table_width, self.tables_per_cycle, self.lanes, self.depth
                        )
                    )
                ),
            }
        )

    @property
    def bank(self):
        """The layer itself: it has the table-memory attributes of a LUTBank."""
        return self

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles per vector (index pass, then table pass)."""
        return self._groups * self.tables_per_cycle * self.n_c + self._groups * self._beats + 4

    def _lane(self, m, p, rd_addr, rd_en, w):
        """Lane ``p``'s memory; returns its read data (valid the cycle after ``rd_en``)."""
        image = bank_image(self._tables, tables_per_cycle=self.tables_per_cycle, lanes=self.lanes)
        w_en = w.valid & w.ready & (w.payload.lane == p)
        return table_lane(
            m,
            f"lane{p}",
            self.storage,
            image[p],
            self.table_width,
            rd_addr,
            rd_en,
            w.payload.addr,
            w.payload.data,
            w_en,
        )

    def elaborate(self, platform):
        m = Module()
        i, o, w = self.i_stream, self.o_stream, self.w_stream
        p_, n_c, wd = self.tables_per_cycle, self.n_c, self.in_width
        groups, beats = self._groups, self._beats
        group_bits = p_ * n_c
        n_pairs = groups * group_bits  # padding tables compare x[0] > x[0]: row 0, zeros
        sel = max(1, (self.in_dim - 1).bit_length())

        # -- index pass: pair k of table k // N_C, bit k % N_C ------------------------------
        flat_a = [0] * n_pairs
        flat_b = [0] * n_pairs
        flat_a[: self._a.size] = [int(v) for v in self._a.ravel()]
        flat_b[: self._b.size] = [int(v) for v in self._b.ravel()]
        rom_init = [a | b << sel for a, b in zip(flat_a, flat_b, strict=True)]
        m.submodules.anchors = rom = memory.Memory(shape=2 * sel, depth=n_pairs, init=rom_init)
        rom_rd = rom.read_port()
        m.submodules.indices = idx_mem = memory.Memory(shape=group_bits, depth=groups, init=[])
        idx_wr = idx_mem.write_port()
        idx_rd = idx_mem.read_port()

        k = Signal(range(n_pairs + 1))
        in_group = Signal(range(group_bits))  # bit position of pair k within its group
        word = Signal(group_bits)
        fetched = Signal()  # the ROM shows pair k-1's anchors
        fetched_end = Signal()  # ... and it ends a group
        fetched_last = Signal()  # ... and it is the last pair
        group_w = Signal(range(groups + 1))
        x = i.payload.as_value()
        xa = x.word_select(rom_rd.data[:sel], wd).as_signed() >> self._in_shift
        xb = x.word_select(rom_rd.data[sel:], wd).as_signed() >> self._in_shift
        next_word = Cat(word[1:], xa > xb)
        m.d.comb += [rom_rd.addr.eq(k), idx_wr.addr.eq(group_w), idx_wr.data.eq(next_word)]

        # -- table pass: step s = g * B + b, two pipeline stages ----------------------------
        steps = groups * beats
        s = Signal(range(steps + 1))
        g = Signal(range(groups + 1))
        b = Signal(range(beats + 1))
        st1 = Signal()  # index word of (g, b) on idx_rd.data
        st1_s = Signal.like(s)
        st1_first = Signal()
        st1_last = Signal()
        st2 = Signal()  # lane data of that step on the lane outputs
        st2_first = Signal()
        st2_last = Signal()
        m.d.comb += idx_rd.addr.eq(g)
        lane_data = []
        for p in range(p_):
            rd_addr = Cat(idx_rd.data[p * n_c : (p + 1) * n_c], st1_s)
            lane_data.append(self._lane(m, p, rd_addr, st1, w))

        chunk = vector_layout(self.out_width, self.lanes)
        chunks = [Signal(chunk, name=f"acc{c}") for c in range(beats)]
        head = Signal(chunk, name="acc_next")
        for c in range(self.lanes):
            rows = tree_sum(d[c] for d in lane_data)
            m.d.comb += head[c].eq(Mux(st2_first, 0, chunks[0][c]) + rows)
        rotated = [*chunks[1:], head]
        with m.If(st2):
            m.d.sync += [dst.eq(src) for dst, src in zip(chunks, rotated, strict=True)]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        m.d.sync += [st2.eq(st1), st2_first.eq(st1_first), st2_last.eq(st1_last), st1.eq(0)]
        with m.If(st2 & st2_last):
            flat = Cat(r.as_value() for r in rotated)[: self.out_dim * self.out_width]
            m.d.sync += [o.valid.eq(1), o.payload.eq(flat)]

        m.d.sync += [fetched.eq(0), fetched_end.eq(0), fetched_last.eq(0)]
        with m.If(fetched):
            m.d.sync += word.eq(next_word)
            with m.If(fetched_end):
                m.d.comb += idx_wr.en.eq(1)
                m.d.sync += group_w.eq(group_w + 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += w.ready.eq(~i.valid & ~st1 & ~st2)
                with m.If(i.valid):
                    m.d.sync += [k.eq(0), in_group.eq(0), group_w.eq(0)]
                    m.next = "INDEX"
            with m.State("INDEX"):
                m.d.sync += [
                    k.eq(k + 1),
                    fetched.eq(1),
                    fetched_end.eq(in_group == group_bits - 1),
                    fetched_last.eq(k == n_pairs - 1),
                    in_group.eq(Mux(in_group == group_bits - 1, 0, in_group + 1)),
                ]
                with m.If(k == n_pairs - 1):
                    m.next = "INDEX_END"
            with m.State("INDEX_END"):  # the last pair's bit goes into the RAM this cycle
                m.next = "WAIT"
            # the input is consumed once the previous result has left
            with m.State("WAIT"), m.If(~o.valid & ~st1 & ~st2):
                m.d.comb += i.ready.eq(1)
                m.d.sync += [s.eq(0), g.eq(0), b.eq(0)]
                m.next = "TABLES"
            with m.State("TABLES"):
                # idx_rd.addr = g this cycle; the word is there next cycle (stage 1)
                m.d.sync += [
                    st1.eq(1),
                    st1_s.eq(s),
                    st1_first.eq(s < beats),
                    st1_last.eq(s == steps - 1),
                    s.eq(s + 1),
                ]
                with m.If(b == beats - 1):
                    m.d.sync += [b.eq(0), g.eq(g + 1)]
                with m.Else():
                    m.d.sync += b.eq(b + 1)
                with m.If(s == steps - 1):
                    m.next = "IDLE"
        return m


class SerialNetwork(wiring.Component):
    """A classifier core of :class:`SerialLayer` s and the argmax.

    ``layers``: :func:`spikelut.compiler.backend.network_params` dicts (non-residual, tables
    in BRAM, LUTRAM or SPRAM). Ports as :class:`spikelut.hdl.layer.Network` with argmax:
    ``i_stream``, ``o_stream`` (``label_layout``), ``w{k}_stream`` for every layer.
    """

    def __init__(self, *, layers):
        built = []
        try:
            for k, p in enumerate(layers):
                if p.get("residual"):
                    raise ValueError(f"layer {k} is residual; the serial core has no residual add")
                try:
                    built.append(
                        SerialLayer(
                            anchors_a=p["anchors_a"],
                            anchors_b=p["anchors_b"],
                            tables=p["tables"],
                            in_dim=p["in_dim"],
                            in_width=p["in_width"],
                            table_width=p["table_width"],
                            out_width=p["out_width"],
                            in_shift=p.get("in_shift", 0),
                            storage=p.get("storage", Storage.BRAM),
                            tables_per_cycle=p.get("tables_per_cycle"),
                            lanes=p.get("lanes"),
                        )
                    )
                except (TypeError, ValueError) as e:
                    raise ValueError(f"layer {k}: {e}") from None
        except ValueError:
            discard(*built)
            raise
        self._layers = built
        last = built[-1]
        self._head = Argmax(dim=last.out_dim, width=last.out_width)
        discard(*built, self._head)
        ports = {
            "i_stream": In(stream.Signature(vector_layout(built[0].in_width, built[0].in_dim))),
            "o_stream": Out(stream.Signature(label_layout(last.out_dim, last.out_width))),
        }
        for k, layer in enumerate(built):
            ports[f"w{k}_stream"] = In(layer.signature.members["w_stream"].signature.flip())
        super().__init__(ports)

    @property
    def layers(self) -> list[SerialLayer]:
        """The layers, in order (each is its own ``bank``)."""
        return list(self._layers)

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive inputs at full rate (the slowest layer)."""
        return max(layer.cycles_per_inference for layer in self._layers)

    def elaborate(self, platform):
        m = Module()
        prev = wiring.flipped(self.i_stream)
        for k, layer in enumerate(self._layers):
            m.submodules[f"layer{k}"] = layer
            wiring.connect(m, prev, layer.i_stream)
            wiring.connect(m, wiring.flipped(getattr(self, f"w{k}_stream")), layer.w_stream)
            prev = layer.o_stream
        m.submodules.argmax = self._head
        wiring.connect(m, prev, self._head.i_stream)
        wiring.connect(m, self._head.o_stream, wiring.flipped(self.o_stream))
        return m
