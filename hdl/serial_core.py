"""A logic-lean network core for small devices: a few anchor comparisons per clock.

The parallel indexer of :class:`spikelut.hdl.layer.Network` spends ``N_T * N_C`` comparators
and ``N_T * N_C``-bit index registers (1024 of each for the digits classifier: more logic
cells than an iCE40 UP5K has). :class:`SerialLayer` computes the row indices of one group of
``P`` tables at a time with ``C`` comparators, anchors from a ROM, while it reads the tables
of the previous group ``P`` at a time exactly as :class:`~spikelut.hdl.bank.LUTBank` does:
same memories, same table layout (so the same :mod:`~spikelut.boards.tables` space, flash
image and LOAD_TABLES), same ``w_stream``. ``C = ceil(P * N_C / B)`` is the fewest
comparators that index a group within the ``B`` beats its table reads take
(:func:`serial_geometry`), so the reads never wait: vectors follow each other every
``G * B`` cycles, the memory-bandwidth floor ``ceil(N_T/P) * ceil(Y/L)`` of the chosen ``P``
and ``L``.

The ``2 * C`` compared values come either through ``D``-input multiplexers straight from the
input stream's payload (which the stream rules hold still until it is accepted), or, when a
layer has many inputs (``D >= MIN_COPY_DIM``) and indexing a vector takes longer than
copying it (``D + 1 <= G * K``), from ``2 * C`` small memories holding copies of the input
(``operand_memory``): one value a clock is copied into one of two banks while the other is
being compared, which replaces ``2 * C`` wide multiplexers by one (for the digits
classifier, 4 comparators: about 1,150 LUT4s instead of 3,300).

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

__all__ = ["MIN_COPY_DIM", "SerialLayer", "SerialNetwork", "serial_geometry"]

# below this many inputs the D:1 operand multiplexers are cheaper than memory copies
MIN_COPY_DIM = 16


def serial_geometry(n_tables: int, n_c: int, out_dim: int, tables_per_cycle: int, lanes: int):
    """``(groups G, beats B, comparators C, index cycles K)`` of a :class:`SerialLayer`:
    ``C = ceil(P * N_C / B)`` comparisons per clock index a group of ``P`` tables in
    ``K = ceil(P * N_C / C) <= B`` cycles."""
    groups, beats, _ = bank_geometry(n_tables, n_c, out_dim, tables_per_cycle, lanes)
    pairs = tables_per_cycle * n_c
    comparators = -(-pairs // beats)
    return groups, beats, comparators, -(-pairs // comparators)


class SerialLayer(wiring.Component):
    """One LUT layer ``y = sum_i T[i, j_i]``, indexing one table group while reading another.

    Keyword parameters as :class:`spikelut.hdl.layer.Layer` (``anchors_a``, ``anchors_b``,
    ``tables``, ``in_dim``, ``in_width``, ``table_width``, ``out_width``, ``in_shift``,
    ``storage`` one of BRAM/LUTRAM/SPRAM, ``tables_per_cycle`` P, ``lanes`` L), and
    ``operand_memory`` (None: chosen as the module docstring says; True needs
    ``D + 1 <= G * K``, else ValueError). Ports: ``i_stream`` ``vector_layout(in_width, D)``,
    ``o_stream`` ``vector_layout(out_width, Y)``, ``w_stream``
    (:func:`~spikelut.hdl.bank.write_layout`, accepted while no vector is in flight).

    At full rate results leave exactly :attr:`cycles_per_inference` ``= G * B`` cycles apart.
    An input is accepted once its last group's operands are fetched (or, with
    ``operand_memory``, once it is copied), while earlier groups are still being read.
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
        operand_memory: bool | None = None,
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
        self._groups, self._beats, self.comparators, self._slots = serial_geometry(
            self.n_tables, self.n_c, self.out_dim, self.tables_per_cycle, self.lanes
        )
        self.depth = self._groups * self._beats << self.n_c
        # copying a vector takes D clocks; it overlaps indexing the previous one (G*K clocks)
        copy_fits = self.in_dim + 1 <= self._groups * self._slots
        if operand_memory is None:
            operand_memory = copy_fits and self.in_dim >= MIN_COPY_DIM
        if operand_memory and not copy_fits:
            raise ValueError(
                f"operand_memory needs D + 1 <= G * K: copying the {self.in_dim} inputs would "
                f"outlast the {self._groups * self._slots} index cycles; lower tables_per_cycle "
                "or lanes, or read the operands through multiplexers"
            )
        self.operand_memory = bool(operand_memory)
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
    def tables(self):
        """The tables the layer was built with (a copy)."""
        return self._tables.copy()

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive vectors at full rate: ``G * B``."""
        return self._groups * self._beats

    @property
    def memory_bits(self) -> int:
        """Table bits stored: P lanes of ``depth`` words of L entries."""
        return self.tables_per_cycle * self.depth * self.lanes * self.table_width

    @property
    def index_cycles(self) -> int:
        """Cycles the comparators take to index one group of ``P`` tables (``K <= B``)."""
        return self._slots

    @property
    def operand_blocks(self) -> int:
        """Memories holding input copies (``2 * C`` with ``operand_memory``, else 0)."""
        return 2 * self.comparators if self.operand_memory else 0

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

    def _anchor_rom(self, sel):
        """ROM word of every indexing slot ``g * K + k``: comparator ``c`` compares pair
        ``q = k * C + c`` of group ``g`` (table ``g * P + q // N_C``, bit ``q % N_C``);
        padding compares ``x[0] > x[0]``, which gives the 0 bits of padding tables."""
        p_, n_c, c_ = self.tables_per_cycle, self.n_c, self.comparators
        init = []
        for g in range(self._groups):
            for k in range(self._slots):
                word = 0
                for c in range(c_):
                    q = k * c_ + c
                    t, r = g * p_ + q // n_c, q % n_c
                    if q < p_ * n_c and t < self.n_tables:
                        pair = int(self._a[t, r]) | int(self._b[t, r]) << sel
                        word |= pair << (2 * sel * c)
                init.append(word)
        return memory.Memory(shape=2 * sel * c_, depth=len(init), init=init)

    def _copies(self, m, sel, anchors, bank_b, fetch):
        """Memory operands: the input copied, one value per clock, into one of two banks of
        ``2 * C`` memories (accepted once copied); returns the memories' read data at stage C
        (read when ``fetch``, from bank ``bank_b`` at the anchors) and the banks' full bits."""
        i, wd, d = self.i_stream, self.in_width, self.in_dim
        x = i.payload.as_value()
        full = Signal(2)
        wb = Signal()  # the bank being copied into
        j = Signal(range(d))
        free = ~Mux(wb, full[1], full[0])
        copy = i.valid & free
        m.d.comb += i.ready.eq(free & (j == d - 1))
        with m.If(copy):
            m.d.sync += j.eq(Mux(j == d - 1, 0, j + 1))
            with m.If(j == d - 1):
                m.d.sync += wb.eq(~wb)
        data = []
        for n, anchor in enumerate(anchors):
            m.submodules[f"operand{n}"] = mem = memory.Memory(shape=wd, depth=2 << sel, init=[])
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(Cat(j, wb)),
                wp.data.eq(x.word_select(j, wd)),
                wp.en.eq(copy),
                rp.addr.eq(Cat(anchor, bank_b)),
                rp.en.eq(fetch),
            ]
            data.append(rp.data)
        return data, full, copy & (j == d - 1), wb

    def elaborate(self, platform):
        m = Module()
        i, o, w = self.i_stream, self.o_stream, self.w_stream
        p_, n_c, wd = self.tables_per_cycle, self.n_c, self.in_width
        groups, beats, c_, slots = self._groups, self._beats, self.comparators, self._slots
        pairs = p_ * n_c
        n_slots = groups * slots
        sel = max(1, (self.in_dim - 1).bit_length())
        x = i.payload.as_value()

        # -- indexer: slot g * K + k compares C pairs of group g, in three stages: A reads
        # the anchor ROM, B fetches the 2*C operands, C compares and collects the group's bits
        m.submodules.anchors = rom = self._anchor_rom(sel)
        rom_rd = rom.read_port()
        anchors = [
            rom_rd.data[sel * n : sel * (n + 1)] for n in range(2 * c_)
        ]  # a0, b0, a1, b1, ...
        slot = Signal(range(n_slots))  # the next slot stage A issues
        k_a = Signal(range(slots))
        rb = Signal()  # (memory operands) the bank stage A reads
        vb, lastk_b, lastslot_b, bank_b = Signal(), Signal(), Signal(), Signal()
        vc, lastk_c = Signal(), Signal()
        word = Signal(c_ * slots)  # the group's bits so far, C per slot
        hold = Signal(pairs)  # a complete group of indices, waiting for the reader
        hold_valid = Signal()
        take = Signal()  # the reader takes ``hold`` this cycle
        can_push = ~hold_valid | take
        c_free = ~vc | ~lastk_c | can_push
        b_move = Signal()
        if self.operand_memory:
            operands, full, copied, wb = self._copies(m, sel, anchors, bank_b, b_move)
            m.d.comb += b_move.eq(vb & c_free)
            a_ok = Mux(rb, full[1], full[0])
            last_fetch = b_move & lastslot_b
            for bank in range(2):
                set_ = copied & (wb == bank)
                clear = last_fetch & (bank_b == bank)
                m.d.sync += full[bank].eq((full[bank] | set_) & ~clear)
        else:
            # straight from the held payload through D:1 multiplexers; the input is accepted
            # when its last slot's operands are fetched
            m.d.comb += [b_move.eq(vb & i.valid & c_free), i.ready.eq(vb & lastslot_b & c_free)]
            a_ok = 1
            operands = []
            for n, anchor in enumerate(anchors):
                r = Signal(wd, name=f"operand{n}")
                with m.If(b_move):
                    m.d.sync += r.eq(x.word_select(anchor, wd))
                operands.append(r)
        a_move = a_ok & (~vb | b_move)
        m.d.comb += [rom_rd.addr.eq(slot), rom_rd.en.eq(a_move)]
        with m.If(a_move):
            m.d.sync += [
                slot.eq(Mux(slot == n_slots - 1, 0, slot + 1)),
                k_a.eq(Mux(k_a == slots - 1, 0, k_a + 1)),
                vb.eq(1),
                lastk_b.eq(k_a == slots - 1),
                lastslot_b.eq(slot == n_slots - 1),
                bank_b.eq(rb),
            ]
            with m.If(slot == n_slots - 1):
                m.d.sync += rb.eq(~rb)
        with m.Elif(b_move):
            m.d.sync += vb.eq(0)
        c_go = vc & c_free
        with m.If(b_move):
            m.d.sync += [vc.eq(1), lastk_c.eq(lastk_b)]
        with m.Elif(c_go):
            m.d.sync += vc.eq(0)
        bits = []
        for c in range(c_):
            xa = operands[2 * c].as_signed() >> self._in_shift
            xb = operands[2 * c + 1].as_signed() >> self._in_shift
            bits.append(xa > xb)
        next_word = Cat(word[c_:], *bits)
        with m.If(c_go):
            m.d.sync += word.eq(next_word)

        # -- reader: step s = g * B + b, P tables at a time, as LUTBank --------------------------
        steps = groups * beats
        cur = Signal(pairs)  # the indices of the group being read
        cur_valid = Signal()
        step = Signal(range(steps))
        beat = Signal(range(beats))
        s1_valid = Signal()  # a read issued last cycle: its data is on the lane outputs
        s1_clear = Signal()  # ... of group 0: the accumulators start from zero
        s1_last = Signal()  # ... the final read of a vector
        last_step = step == steps - 1
        stall = s1_valid & s1_last & o.valid & ~o.ready
        issue = cur_valid & ~stall
        group_end = issue & (beat == beats - 1)
        m.d.comb += take.eq(hold_valid & (~cur_valid | group_end))
        with m.If(take):
            m.d.sync += [cur.eq(hold), cur_valid.eq(1), hold_valid.eq(0)]
        with m.Elif(group_end):
            m.d.sync += cur_valid.eq(0)
        with m.If(c_go & lastk_c):
            m.d.sync += [hold.eq(next_word[:pairs]), hold_valid.eq(1)]
        # tables are written only while no vector is in flight: no read shares a write's cycle
        idle = ~i.valid & ~vc & ~hold_valid & ~cur_valid & ~s1_valid
        if self.operand_memory:
            idle &= ~vb & ~full.any()
        m.d.comb += w.ready.eq(idle)

        with m.If(issue):
            m.d.sync += [
                step.eq(Mux(last_step, 0, step + 1)),
                beat.eq(Mux(beat == beats - 1, 0, beat + 1)),
            ]
        with m.If(~stall):
            m.d.sync += [s1_valid.eq(issue), s1_clear.eq(step < beats), s1_last.eq(last_step)]
        lane_data = []
        for p in range(p_):
            rd_addr = Cat(cur[p * n_c : (p + 1) * n_c], step)
            lane_data.append(self._lane(m, p, rd_addr, issue, w))

        # the accumulators rotate by one chunk of L per read (as in LUTBank)
        chunk = vector_layout(self.out_width, self.lanes)
        chunks = [Signal(chunk, name=f"acc{c}") for c in range(beats)]
        head = Signal(chunk, name="acc_next")
        for c in range(self.lanes):
            rows = tree_sum(d[c] for d in lane_data)
            m.d.comb += head[c].eq(Mux(s1_clear, 0, chunks[0][c]) + rows)
        rotated = [*chunks[1:], head]
        with m.If(s1_valid & ~stall):
            m.d.sync += [dst.eq(src) for dst, src in zip(chunks, rotated, strict=True)]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(s1_valid & s1_last & ~stall):
            flat = Cat(r.as_value() for r in rotated)[: self.out_dim * self.out_width]
            m.d.sync += [o.valid.eq(1), o.payload.eq(flat)]
        return m


class SerialNetwork(wiring.Component):
    """A classifier core of :class:`SerialLayer` s and the argmax.

    ``layers``: :func:`spikelut.compiler.backend.network_params` dicts (non-residual, tables
    in BRAM, LUTRAM or SPRAM; an optional ``operand_memory`` as :class:`SerialLayer`). Ports
    as :class:`spikelut.hdl.layer.Network` with argmax: ``i_stream``, ``o_stream``
    (``label_layout``), ``w{k}_stream`` for every layer.
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
                            operand_memory=p.get("operand_memory"),
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
