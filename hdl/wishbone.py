"""A network core as a Wishbone B4 (classic) peripheral: registers, FIFOs, a table window.

:class:`WishbonePeripheral` wraps a classifier core (a component with a vector ``i_stream``,
an ``o_stream`` carrying the argmax ``index`` and the ``logits``, and a ``w{k}_stream``
table write port per memory-backed layer) behind a 32-bit Wishbone B4 classic slave. The
bus address ``wb_adr_i`` counts 32-bit words; ``wb_sel_i`` is taken but every access moves
a whole word. Every access is acknowledged one cycle after it is presented (registered
ACK), except the write of a table word's last chunk, which waits for the core to take it.

Word addresses (:meth:`WishbonePeripheral.register_map` lists them):

- ``STATUS`` (read): bit 0 the input FIFO has room, bit 1 the output FIFO holds a result,
  bit 2 a write to ``IN`` found the input FIFO full and was dropped (sticky; writing
  ``STATUS`` with bit 2 set clears it).
- ``INPUTS`` (read): the number of input values ``D`` (bits 0-15) and their width
  (bits 16-23).
- ``OUTPUTS`` (read): the number of logits ``Y`` (bits 0-15) and their width (bits 16-23).
- ``IN`` (write): one input value, two's complement in the low ``width`` bits. Values fill
  an input vector in order (value 0 first); the ``D``-th completes it and it goes to the
  core. The FIFO holds ``in_depth`` values, so the next vector can be written while the
  core works.
- ``OUT`` (read): bit 31 set when a result was there, bits 0-30 its class (argmax); the
  read removes that result. Without a result it reads 0.
- ``LOGIT + i`` (read, ``i < Y``): logit ``i`` of the result at the head of the output FIFO
  (the one ``OUT`` returns next), sign-extended to 32 bits.
- Table window (``adr`` with its top bit set): layer ``k``'s table memory at
  ``TABLE + (k << table_bits)``, word ``((lane << addr_bits) | addr) << slot_bits | slot``
  holding bits ``32 * slot ..`` of bank word ``addr`` of lane ``lane`` (low chunk first);
  writing the last chunk (``slot == 2**slot_bits - 1``) writes the word. Writes outside a
  layer's lanes and depth are ignored; reads return 0.
"""

from __future__ import annotations

import re

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["REGISTERS", "WishbonePeripheral"]

BUS_WIDTH = 32
# word addresses of the registers; LOGIT is the first of Y
REGISTERS = {"STATUS": 0, "INPUTS": 1, "OUTPUTS": 2, "IN": 3, "OUT": 4, "LOGIT": 8}


def _clog2(n: int) -> int:
    return max(0, (n - 1).bit_length())


class _TablePort:
    """The window geometry of one layer's ``w{k}_stream``: lane, address and data widths."""

    def __init__(self, layer: int, port):
        layout = port.payload.shape()
        self.layer = layer
        self.port = port
        self.lane_bits = layout["lane"].width
        self.addr_bits = layout["addr"].width
        self.lanes = layout["lane"].shape.stop if isinstance(layout["lane"].shape, range) else 0
        self.depth = layout["addr"].shape.stop if isinstance(layout["addr"].shape, range) else 0
        self.word_bits = layout["data"].width
        self.slot_bits = _clog2(-(-self.word_bits // BUS_WIDTH))

    @property
    def window_bits(self) -> int:
        """Address bits of the layer's window."""
        return self.lane_bits + self.addr_bits + self.slot_bits


class WishbonePeripheral(wiring.Component):
    """``core`` behind a Wishbone B4 classic slave (see the module docstring for the map).

    Ports: ``wb_adr_i`` (word address, :attr:`addr_width` bits), ``wb_dat_i``,
    ``wb_dat_o``, ``wb_sel_i``, ``wb_cyc_i``, ``wb_stb_i``, ``wb_we_i``, ``wb_ack_o``, and
    ``irq_o`` (high while the output FIFO holds a result). ``in_depth``: input values the
    input FIFO holds (default one vector); ``out_depth``: results the output FIFO holds.
    Raises ValueError for a core whose input is not one vector a transfer or whose output
    has no argmax.
    """

    def __init__(self, core: wiring.Component, *, in_depth: int | None = None, out_depth: int = 4):
        self.core = core
        in_layout = core.signature.members["i_stream"].signature.members["payload"].shape
        out_layout = core.signature.members["o_stream"].signature.members["payload"].shape
        if not isinstance(in_layout, data.ArrayLayout):
            raise ValueError(
                "the Wishbone peripheral feeds one input vector a transfer; this core takes "
                "spike events (the temporal indexer): compile it with the parallel or serial one"
            )
        if not isinstance(out_layout, data.StructLayout) or "logits" not in dict(out_layout):
            raise ValueError("the Wishbone peripheral needs a core that ends with the argmax")
        self.n_inputs = in_layout.length
        self.in_width = in_layout.elem_shape.width
        self.n_outputs = out_layout["logits"].shape.length
        self.logit_width = out_layout["logits"].shape.elem_shape.width
        if self.logit_width > BUS_WIDTH or self.in_width > BUS_WIDTH:
            raise ValueError(f"values wider than {BUS_WIDTH} bits do not fit a bus word")
        self.in_depth = in_depth or self.n_inputs
        self.out_depth = out_depth
        self._in_layout, self._out_layout = in_layout, out_layout
        self.tables = sorted(
            (
                _TablePort(int(match[1]), getattr(core, name))
                for name in core.signature.members
                if (match := re.fullmatch(r"w(\d+)_stream", name))
            ),
            key=lambda t: t.layer,
        )
        self.reg_bits = _clog2(REGISTERS["LOGIT"] + self.n_outputs)
        layers = max([t.layer for t in self.tables], default=0) + 1
        self.layer_bits = _clog2(layers)
        self.table_bits = max([1, *(t.window_bits for t in self.tables)])
        self.addr_width = 1 + max(self.reg_bits, self.layer_bits + self.table_bits)
        super().__init__(
            {
                "wb_adr_i": In(self.addr_width),
                "wb_dat_i": In(BUS_WIDTH),
                "wb_dat_o": Out(BUS_WIDTH),
                "wb_sel_i": In(BUS_WIDTH // 8),
                "wb_cyc_i": In(1),
                "wb_stb_i": In(1),
                "wb_we_i": In(1),
                "wb_ack_o": Out(1),
                "irq_o": Out(1),
            }
        )

    @property
    def table_base(self) -> int:
        """Word address of the table window (layer 0's first word)."""
        return 1 << (self.addr_width - 1)

    def register_map(self) -> dict:
        """Word addresses: every register, the table window's base, and per memory-backed
        layer its window base and geometry (the one statement integration notes quote)."""
        return {
            "registers": dict(REGISTERS),
            "logits": self.n_outputs,
            "table_base": self.table_base,
            "table_layers": [
                {
                    "layer": t.layer,
                    "base": self.table_base + (t.layer << self.table_bits),
                    "lanes": t.lanes,
                    "depth": t.depth,
                    "word_bits": t.word_bits,
                    "lane_bits": t.lane_bits,
                    "addr_bits": t.addr_bits,
                    "slot_bits": t.slot_bits,
                }
                for t in self.tables
            ],
            "addr_width": self.addr_width,
        }

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.in_fifo = in_fifo = fifo.SyncFIFOBuffered(
            width=self.in_width, depth=self.in_depth
        )
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFOBuffered(
            width=self._out_layout.size, depth=self.out_depth
        )

        self._gather(m, core, in_fifo)

        m.d.comb += [
            out_fifo.w_data.eq(core.o_stream.payload.as_value()),
            out_fifo.w_en.eq(core.o_stream.valid),
            core.o_stream.ready.eq(out_fifo.w_rdy),
            self.irq_o.eq(out_fifo.r_rdy),
        ]
        head = data.View(self._out_layout, out_fifo.r_data)

        # the bus: registered ACK, one access at a time
        overflow = Signal()
        ack = Signal()
        dat = Signal(BUS_WIDTH)
        m.d.comb += [self.wb_ack_o.eq(ack), self.wb_dat_o.eq(dat)]
        m.d.sync += ack.eq(0)
        adr, w = self.wb_adr_i, self.in_width
        req = self.wb_cyc_i & self.wb_stb_i & ~ack
        reg = adr[: self.reg_bits]
        window = adr[-1]
        logit = reg - REGISTERS["LOGIT"]
        status = Cat(in_fifo.w_rdy, out_fifo.r_rdy, overflow)
        with m.If(req & ~window):
            m.d.sync += [ack.eq(1), dat.eq(0)]
            with m.If(adr[self.reg_bits :] != 0):
                pass  # beyond the registers: reads 0, writes ignored
            with m.Elif(self.wb_we_i):
                with m.If(reg == REGISTERS["STATUS"]), m.If(self.wb_dat_i[2]):
                    m.d.sync += overflow.eq(0)
                with m.Elif(reg == REGISTERS["IN"]):
                    m.d.comb += [in_fifo.w_data.eq(self.wb_dat_i[:w]), in_fifo.w_en.eq(1)]
                    with m.If(~in_fifo.w_rdy):
                        m.d.sync += overflow.eq(1)
            with m.Else(), m.Switch(reg):
                with m.Case(REGISTERS["STATUS"]):
                    m.d.sync += dat.eq(status)
                with m.Case(REGISTERS["INPUTS"]):
                    m.d.sync += dat.eq(Const(self.n_inputs | (w << 16), BUS_WIDTH))
                with m.Case(REGISTERS["OUTPUTS"]):
                    m.d.sync += dat.eq(Const(self.n_outputs | (self.logit_width << 16), BUS_WIDTH))
                with m.Case(REGISTERS["OUT"]):
                    m.d.comb += out_fifo.r_en.eq(1)
                    index = head.index
                    valid = Cat(index, Const(0, BUS_WIDTH - 1 - len(index)), Const(1, 1))
                    m.d.sync += dat.eq(Mux(out_fifo.r_rdy, valid, 0))
                with m.Default(), m.If((reg >= REGISTERS["LOGIT"]) & (logit < self.n_outputs)):
                    value = head.logits[logit[: max(1, _clog2(self.n_outputs))]]
                    m.d.sync += dat.eq(Mux(out_fifo.r_rdy, value, 0))
        with m.If(req & window):
            m.d.sync += dat.eq(0)
            with m.If(~self.wb_we_i):
                m.d.sync += ack.eq(1)
            self._table_window(m, req & window & self.wb_we_i, ack)
        return m

    def _gather(self, m: Module, core, in_fifo) -> None:
        """Input values from the FIFO into one vector (value 0 lowest), offered to the core."""
        w = self.in_width
        vec = Signal(self._in_layout.size)
        count = Signal(range(self.n_inputs + 1))
        full = count == self.n_inputs
        m.d.comb += [
            core.i_stream.payload.eq(vec),
            core.i_stream.valid.eq(full),
            in_fifo.r_en.eq(~full),
        ]
        with m.If(full), m.If(core.i_stream.ready):
            m.d.sync += count.eq(0)
        with m.Elif(in_fifo.r_rdy):
            m.d.sync += [vec.eq(Cat(vec[w:], in_fifo.r_data)), count.eq(count + 1)]

    def _table_window(self, m: Module, write, ack: Signal) -> None:
        """Table-window writes: earlier chunks of a word held, the last one writes it."""
        if not self.tables:
            m.d.sync += ack.eq(1)
            return
        slots = max(1 << t.slot_bits for t in self.tables)
        held = Signal(max(1, (slots - 1) * BUS_WIDTH))
        adr = self.wb_adr_i
        layer = adr[self.table_bits : self.table_bits + self.layer_bits]
        known = Signal()
        for t in self.tables:
            hit = (layer == t.layer) if self.layer_bits else Const(1)
            slot = adr[: t.slot_bits]
            addr = adr[t.slot_bits : t.slot_bits + t.addr_bits]
            lane = adr[t.slot_bits + t.addr_bits : t.window_bits]
            inside = adr[t.window_bits : self.table_bits] == 0
            if t.lane_bits:
                inside &= lane < t.lanes
            if t.addr_bits:
                inside &= addr < t.depth
            last = (slot == (1 << t.slot_bits) - 1) if t.slot_bits else Const(1)
            word = Cat(held[: t.slot_bits and ((1 << t.slot_bits) - 1) * BUS_WIDTH], self.wb_dat_i)
            port = t.port
            m.d.comb += [
                port.payload.lane.eq(lane if t.lane_bits else 0),
                port.payload.addr.eq(addr if t.addr_bits else 0),
                port.payload.data.eq(word[: t.word_bits]),
            ]
            with m.If(write & hit & inside):
                m.d.comb += known.eq(1)
                with m.If(last):
                    m.d.comb += port.valid.eq(1)
                    with m.If(port.ready):
                        m.d.sync += ack.eq(1)
                if t.slot_bits:
                    with m.Else():
                        m.d.sync += [
                            held.word_select(slot, BUS_WIDTH).eq(self.wb_dat_i),
                            ack.eq(1),
                        ]
        with m.If(write & ~known):
            m.d.sync += ack.eq(1)  # outside every layer: ignored
