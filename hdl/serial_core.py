"""A logic-lean network core for small devices: a few anchor comparisons per clock.

The parallel indexer of :class:`spikelut.hdl.layer.Network` spends ``N_T * N_C`` comparators
and ``N_T * N_C``-bit index registers (1024 of each for the digits classifier: more logic
cells than an iCE40 UP5K has). :class:`SerialLayer` computes the row indices of one group of
``P`` tables at a time with ``C`` comparators, anchors from a ROM, while it reads the tables
of the previous group ``P`` at a time exactly as :class:`~spikelut.hdl.bank.LUTBank` does:
same memories, same table layout (so the same :mod:`~spikelut.boards.tables` space, flash
image and LOAD_TABLES), same ``w_stream``. ``C = ceil(P * N_C / B)`` is the fewest
comparators that index a group within the ``B`` beats its table reads take
(:func:`~spikelut.hdl.layer_params.serial_geometry`), so the reads never wait: vectors follow each other every
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
:func:`spikelut.compiler.ir.golden.run_classifier`. Residual layers are not supported.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layer import check_classifier_chain
from spikelut.hdl.layer_params import (
    MIN_COPY_DIM,
    LayerParams,
    check_serial,
    network_cycles,
    serial_geometry,
)
from spikelut.hdl.layouts import label_layout, vector_layout
from spikelut.hdl.reader import TableReader
from spikelut.hdl.vector import Argmax

__all__ = ["SerialLayer", "SerialNetwork", "serial_operand_memory"]


def serial_operand_memory(params: LayerParams) -> bool:
    """Whether a serial-core layer reads its operands from input copies in memory: as
    ``params.operand_memory`` says, or by default when the layer has many inputs
    (``D >= MIN_COPY_DIM``) and copying a vector is faster than indexing it
    (``D + 1 <= G * K``)."""
    if params.operand_memory is not None:
        return params.operand_memory
    groups, _, _, slots = serial_geometry(
        params.n_tables, params.n_c, params.out_dim, params.tables_per_cycle, params.lanes
    )
    return params.in_dim + 1 <= groups * slots and params.in_dim >= MIN_COPY_DIM


class _Handoff:
    """A complete group of row indices between the indexer and the table reader."""

    def __init__(self, pairs: int):
        self.hold = Signal(pairs)  # the group's indices
        self.valid = Signal()  # ``hold`` waits for the reader
        self.take = Signal()  # the reader takes ``hold`` this cycle


class _Slots:
    """The indexer's pipeline registers: stage A issues slot ``slot`` (``k`` within its
    group), B fetches its operands, C compares them."""

    def __init__(self, n_slots: int, slots: int):
        self.slot = Signal(range(n_slots))  # the next slot stage A issues
        self.k = Signal(range(slots))
        self.rb = Signal()  # (memory operands) the bank stage A reads
        self.vb, self.lastk_b, self.lastslot_b, self.bank_b = Signal(), Signal(), Signal(), Signal()
        self.vc, self.lastk_c = Signal(), Signal()
        self.b_move = Signal()  # stage B hands its operands to stage C


class SerialLayer(wiring.Component):
    """One LUT layer ``y = sum_i T[i, j_i]``, indexing one table group while reading another.

    ``params``: the layer (:func:`~spikelut.hdl.layer_params.check_serial`: BRAM, LUTRAM or
    SPRAM tables, not residual; operands from input copies as
    :func:`serial_operand_memory` says). Ports: ``i_stream`` ``vector_layout(in_width, D)``,
    ``o_stream`` ``params.out_layout`` (the sums, or a chunked layer's chunks), ``w_stream``
    (:func:`~spikelut.hdl.storage.write_layout`, accepted while no vector is in flight).

    At full rate results leave exactly :attr:`cycles_per_inference` ``= G * B`` cycles apart.
    An input is accepted once its last group's operands are fetched (or, with
    ``operand_memory``, once it is copied), while earlier groups are still being read.
    """

    def __init__(self, params: LayerParams):
        check_serial(params)
        self._p = params
        self._groups, self._beats, self._comparators, self._slots = serial_geometry(
            params.n_tables, params.n_c, params.out_dim, params.tables_per_cycle, params.lanes
        )
        self._copies_in_memory = serial_operand_memory(params)
        super().__init__(
            {
                "i_stream": In(stream.Signature(vector_layout(params.in_width, params.in_dim))),
                "o_stream": Out(stream.Signature(params.out_layout)),
                "w_stream": In(params.write_signature),
            }
        )

    @property
    def params(self) -> LayerParams:
        """The layer's parameters."""
        return self._p

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive vectors at full rate: ``G * B``."""
        return self._groups * self._beats

    @property
    def comparators(self) -> int:
        """Anchor comparisons per clock (``C``)."""
        return self._comparators

    @property
    def index_cycles(self) -> int:
        """Cycles the comparators take to index one group of ``P`` tables (``K <= B``)."""
        return self._slots

    @property
    def operand_memory(self) -> bool:
        """True when the operands come from input copies in memory."""
        return self._copies_in_memory

    @property
    def operand_blocks(self) -> int:
        """Memories holding input copies (``2 * C`` with ``operand_memory``, else 0)."""
        return 2 * self._comparators if self._copies_in_memory else 0

    def elaborate(self, platform):
        m = Module()
        h = _Handoff(self._p.tables_per_cycle * self._p.n_c)
        reader, reading = self._reader(m, h)
        indexing = self._indexer(m, h)
        # tables are written only while no vector is in flight: no read shares a write's cycle
        m.d.comb += reader.w_allow.eq(~self.i_stream.valid & ~indexing & ~h.valid & ~reading)
        return m

    # -- indexer: slot g * K + k compares C pairs of group g, in three stages: A reads the
    # anchor ROM, B fetches the 2*C operands, C compares and collects the group's bits

    def _anchor_rom(self, sel):
        """ROM word of every indexing slot ``g * K + k``: comparator ``c`` compares pair
        ``q = k * C + c`` of group ``g`` (table ``g * P + q // N_C``, bit ``q % N_C``);
        padding compares ``x[0] > x[0]``, which gives the 0 bits of padding tables."""
        p = self._p
        p_, n_c, c_ = p.tables_per_cycle, p.n_c, self._comparators
        init = []
        for g in range(self._groups):
            for k in range(self._slots):
                word = 0
                for c in range(c_):
                    q = k * c_ + c
                    t, r = g * p_ + q // n_c, q % n_c
                    if q < p_ * n_c and t < p.n_tables:
                        pair = int(p.anchors_a[t, r]) | int(p.anchors_b[t, r]) << sel
                        word |= pair << (2 * sel * c)
                init.append(word)
        return memory.Memory(shape=2 * sel * c_, depth=len(init), init=init)

    def _indexer(self, m, h: _Handoff):
        """Stages A, B and C; pushes each group's indices into ``h``. Returns the condition
        "a vector is being indexed" (beside the input stream and ``h``)."""
        c_, slots = self._comparators, self._slots
        sel = max(1, (self._p.in_dim - 1).bit_length())
        m.submodules.anchors = rom = self._anchor_rom(sel)
        rom_rd = rom.read_port()
        anchors = [rom_rd.data[sel * n : sel * (n + 1)] for n in range(2 * c_)]  # a0, b0, a1...
        st = _Slots(self._groups * slots, slots)
        c_free = ~st.vc | ~st.lastk_c | ~h.valid | h.take
        if self._copies_in_memory:
            operands, a_ok, busy = self._copied_operands(m, sel, anchors, st, c_free)
        else:
            operands, a_ok, busy = self._muxed_operands(m, anchors, st, c_free), 1, 0
        self._stage_a(m, st, rom_rd, a_ok)
        self._stage_c(m, st, operands, c_free, h)
        return st.vc | busy

    def _stage_a(self, m, st: _Slots, rom_rd, a_ok):
        """Issue the next slot's anchor read when stage B is free (or frees up)."""
        n_slots, slots = self._groups * self._slots, self._slots
        a_move = a_ok & (~st.vb | st.b_move)
        m.d.comb += [rom_rd.addr.eq(st.slot), rom_rd.en.eq(a_move)]
        with m.If(a_move):
            m.d.sync += [
                st.slot.eq(Mux(st.slot == n_slots - 1, 0, st.slot + 1)),
                st.k.eq(Mux(st.k == slots - 1, 0, st.k + 1)),
                st.vb.eq(1),
                st.lastk_b.eq(st.k == slots - 1),
                st.lastslot_b.eq(st.slot == n_slots - 1),
                st.bank_b.eq(st.rb),
            ]
            with m.If(st.slot == n_slots - 1):
                m.d.sync += st.rb.eq(~st.rb)
        with m.Elif(st.b_move):
            m.d.sync += st.vb.eq(0)

    def _stage_c(self, m, st: _Slots, operands, c_free, h: _Handoff):
        """Compare the operands, collect the bits; a group's last slot pushes them to ``h``."""
        c_, shift = self._comparators, self._p.in_shift
        word = Signal(c_ * self._slots)  # the group's bits so far, C per slot
        c_go = st.vc & c_free
        with m.If(st.b_move):
            m.d.sync += [st.vc.eq(1), st.lastk_c.eq(st.lastk_b)]
        with m.Elif(c_go):
            m.d.sync += st.vc.eq(0)
        bits = []
        for c in range(c_):
            xa = operands[2 * c].as_signed() >> shift
            xb = operands[2 * c + 1].as_signed() >> shift
            bits.append(xa > xb)
        next_word = Cat(word[c_:], *bits)
        with m.If(c_go):
            m.d.sync += word.eq(next_word)
        with m.If(c_go & st.lastk_c):
            m.d.sync += [h.hold.eq(next_word[: len(h.hold)]), h.valid.eq(1)]

    def _muxed_operands(self, m, anchors, st: _Slots, c_free):
        """Operands straight from the held payload through D:1 multiplexers; the input is
        accepted when its last slot's operands are fetched."""
        i, wd = self.i_stream, self._p.in_width
        x = i.payload.as_value()
        m.d.comb += [
            st.b_move.eq(st.vb & i.valid & c_free),
            i.ready.eq(st.vb & st.lastslot_b & c_free),
        ]
        operands = []
        for n, anchor in enumerate(anchors):
            r = Signal(wd, name=f"operand{n}")
            with m.If(st.b_move):
                m.d.sync += r.eq(x.word_select(anchor, wd))
            operands.append(r)
        return operands

    def _copied_operands(self, m, sel, anchors, st: _Slots, c_free):
        """Operands from input copies: the input copied, one value per clock, into one of two
        banks of ``2 * C`` memories (accepted once copied), read at the anchors from the bank
        stage B reads. Returns ``(operands, stage A may go, copies held)``."""
        i, wd, d = self.i_stream, self._p.in_width, self._p.in_dim
        x = i.payload.as_value()
        full = Signal(2)
        wb = Signal()  # the bank being copied into
        j = Signal(range(d))
        free = ~Mux(wb, full[1], full[0])
        copy = i.valid & free
        m.d.comb += [i.ready.eq(free & (j == d - 1)), st.b_move.eq(st.vb & c_free)]
        with m.If(copy):
            m.d.sync += j.eq(Mux(j == d - 1, 0, j + 1))
            with m.If(j == d - 1):
                m.d.sync += wb.eq(~wb)
        operands = []
        for n, anchor in enumerate(anchors):
            m.submodules[f"operand{n}"] = mem = memory.Memory(shape=wd, depth=2 << sel, init=[])
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(Cat(j, wb)),
                wp.data.eq(x.word_select(j, wd)),
                wp.en.eq(copy),
                rp.addr.eq(Cat(anchor, st.bank_b)),
                rp.en.eq(st.b_move),
            ]
            operands.append(rp.data)
        copied = copy & (j == d - 1)
        last_fetch = st.b_move & st.lastslot_b
        for bank in range(2):
            set_ = copied & (wb == bank)
            clear = last_fetch & (st.bank_b == bank)
            m.d.sync += full[bank].eq((full[bank] | set_) & ~clear)
        return operands, Mux(st.rb, full[1], full[0]), st.vb | full.any()

    # -- reader: step s = g * B + b, P tables at a time, as LUTBank

    def _reader(self, m, h: _Handoff):
        """Read the tables of the group taken from ``h`` and accumulate; returns the
        :class:`~spikelut.hdl.reader.TableReader` and the condition "a group is being read"."""
        p = self._p
        beats, steps = self._beats, self._groups * self._beats
        cur = Signal(len(h.hold))  # the indices of the group being read
        cur_valid = Signal()
        step = Signal(range(steps))
        beat = Signal(range(beats))
        s1_valid = Signal()  # a read issued last cycle: its data is on the lane outputs
        s1_clear = Signal()  # ... of group 0: the accumulators start from zero
        s1_last = Signal()  # ... the final read of a vector
        last_step = step == steps - 1
        m.submodules.reader = reader = TableReader(p)
        wiring.connect(m, reader.o_stream, wiring.flipped(self.o_stream))
        wiring.connect(m, wiring.flipped(self.w_stream), reader.w_stream)
        issue = cur_valid & ~reader.stall
        group_end = issue & (beat == beats - 1)
        m.d.comb += h.take.eq(h.valid & (~cur_valid | group_end))
        with m.If(h.take):
            m.d.sync += [cur.eq(h.hold), cur_valid.eq(1), h.valid.eq(0)]
        with m.Elif(group_end):
            m.d.sync += cur_valid.eq(0)
        m.d.comb += [
            reader.rd_indices.eq(cur),
            reader.rd_step.eq(step),
            reader.rd_en.eq(issue),
            reader.s1_valid.eq(s1_valid),
            reader.s1_clear.eq(s1_clear),
            reader.s1_last.eq(s1_last),
        ]
        with m.If(issue):
            m.d.sync += [
                step.eq(Mux(last_step, 0, step + 1)),
                beat.eq(Mux(beat == beats - 1, 0, beat + 1)),
            ]
        with m.If(~reader.stall):
            m.d.sync += [s1_valid.eq(issue), s1_clear.eq(step < beats), s1_last.eq(last_step)]
        return reader, cur_valid | s1_valid


class SerialNetwork(wiring.Component):
    """A classifier core of :class:`SerialLayer` s and the argmax.

    ``layers``: one :class:`~spikelut.hdl.layer_params.LayerParams` per layer, a chain
    (:func:`~spikelut.hdl.layer.check_chain`) of non-residual layers with tables in BRAM,
    LUTRAM or SPRAM (:func:`~spikelut.hdl.layer_params.check_serial`). Ports as
    :class:`spikelut.hdl.layer.Network` with argmax: ``i_stream``, ``o_stream``
    (``label_layout``), ``w{k}_stream`` for every layer.
    """

    def __init__(self, *, layers: Sequence[LayerParams]):
        check_classifier_chain(layers)
        for k, p in enumerate(layers):
            check_serial(p, k)
        self._layers = tuple(layers)
        first, last = self._layers[0], self._layers[-1]
        ports = {
            "i_stream": In(stream.Signature(vector_layout(first.in_width, first.in_dim))),
            "o_stream": Out(stream.Signature(label_layout(last.out_dim, last.out_width))),
        }
        for k, p in enumerate(self._layers):
            ports[f"w{k}_stream"] = In(p.write_signature)
        super().__init__(ports)

    @property
    def layers(self) -> tuple[LayerParams, ...]:
        """The layers' parameters, in order."""
        return self._layers

    @property
    def argmax(self) -> bool:
        """True: the serial core always ends with the argmax."""
        return True

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive inputs at full rate (the slowest layer)."""
        return network_cycles(self._layers)

    def elaborate(self, platform):
        m = Module()
        prev = wiring.flipped(self.i_stream)
        for k, p in enumerate(self._layers):
            m.submodules[f"layer{k}"] = layer = SerialLayer(p)
            wiring.connect(m, prev, layer.i_stream)
            wiring.connect(m, wiring.flipped(getattr(self, f"w{k}_stream")), layer.w_stream)
            prev = layer.o_stream
        last = self._layers[-1]
        m.submodules.argmax = head = Argmax(dim=last.out_dim, width=last.out_width)
        wiring.connect(m, prev, head.i_stream)
        wiring.connect(m, head.o_stream, wiring.flipped(self.o_stream))
        return m
