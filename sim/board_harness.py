"""The simulated board around a :class:`~spikelut.boards.top.BoardCore`: its flash and the far
end of its UART, as gateware, so that Verilator runs them at full speed.

The design under test is the board core exactly as the bitstream holds it; only what sits
outside the FPGA is modelled here:

* :class:`SimFlash`, a mode-0 SPI NOR flash serving the table area the boot loader reads.
  Its contents are written through a load port before the core leaves reset, so one
  Verilator build serves every model of the same shape.
* The host's UART: bytes the host sends wait in a FIFO and go out through a
  :class:`~spikelut.hdl.uart.UARTTransmitter` onto the core's ``rx`` pin at the core's bit
  time; the core's ``tx`` pin is decoded by a :class:`~spikelut.hdl.uart.UARTReceiver` into a
  FIFO the host reads. Bit timing on the pins is the real one (the core's divisor).

Why gateware and not Python models: a cocotb model wakes Python on every SCK edge and every
bit, which made booting the digits tables take a minute and the test set another; here
Python wakes once per byte it writes or reads. The Python models of
:mod:`spikelut.sim.spiflash_model` and :mod:`spikelut.sim.uart_model` remain the independent
references the flash reader and the UART gateware are tested against on their own.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.boards.flash_image import area_length
from spikelut.hdl.params import check_int
from spikelut.hdl.spiflash import FlashPinSignature
from spikelut.hdl.uart import UARTReceiver, UARTTransmitter

__all__ = [
    "FLASH_ERRORS",
    "HOST_FIFO_DEPTH",
    "LOAD_WORD_BYTES",
    "BoardHarness",
    "SimFlash",
]

READ, FAST_READ, RELEASE_POWER_DOWN, POWER_DOWN = 0x03, 0x0B, 0xAB, 0xB9
LOAD_WORD_BYTES = 4  # bytes per write of the flash's load port, little-endian
HOST_FIFO_DEPTH = 4096  # bytes each way between the host and the UART pins
# ``errors`` bits of SimFlash, in order
FLASH_ERRORS = (
    "SCK high at a chip select edge (not mode 0)",
    "a command other than release (0xAB) while in deep power-down",
    "an unsupported command (supported: 0x03, 0x0B, 0xAB, 0xB9)",
)


class SimFlash(wiring.Component):
    """A mode-0 SPI NOR flash holding ``size`` bytes at ``base``; every other address reads
    as erased (0xFF). Commands: READ 0x03, FAST_READ 0x0B (one dummy byte), deep power-down
    0xB9 (on deselect) and release 0xAB; it starts powered down when ``powered_down``.

    ``pins``: the flash side of :class:`~spikelut.hdl.spiflash.FlashPinSignature`, sampled
    at the clock (the controller's SCK is a register of the same clock). COPI is taken on
    the cycle SCK is first seen high; CIPO is combinational, so the bit for the next rising
    edge is there from the cycle SCK is seen low, as a mode-0 controller needs even at one
    clock per SCK phase. ``load_addr``/``load_data``/``load_en``: word ``load_addr`` of
    the window (:data:`LOAD_WORD_BYTES` bytes, the first in the low bits) is written each
    cycle ``load_en`` is high. ``errors``: sticky protocol violations, bit ``i`` meaning
    :data:`FLASH_ERRORS` ``[i]``.
    """

    def __init__(self, *, base: int, size: int, powered_down: bool = True):
        self._base = check_int("flash base", base, 0, (1 << 24) - 1)
        size = check_int("flash size", size, 1, (1 << 24) - self._base)
        self._words = -(-size // LOAD_WORD_BYTES)
        self._powered_down = bool(powered_down)
        super().__init__(
            {
                "pins": In(FlashPinSignature()),
                "load_addr": In(range(self._words)),
                "load_data": In(8 * LOAD_WORD_BYTES),
                "load_en": In(1),
                "errors": Out(len(FLASH_ERRORS)),
            }
        )

    @property
    def words(self) -> int:
        """Words of the load port's window."""
        return self._words

    def elaborate(self, platform):
        m = Module()
        pins = self.pins
        # stored inverted, so that the memory's all-zero initial value reads as erased flash
        m.submodules.mem = mem = memory.Memory(
            shape=8 * LOAD_WORD_BYTES, depth=self._words, init=[]
        )
        wr = mem.write_port()
        rd = mem.read_port(domain="comb")
        m.d.comb += [wr.addr.eq(self.load_addr), wr.data.eq(~self.load_data)]
        m.d.comb += wr.en.eq(self.load_en)

        sck_was, cs_n_was = Signal(), Signal(init=1)
        m.d.sync += [sck_was.eq(pins.sck), cs_n_was.eq(pins.cs_n)]
        selected = ~pins.cs_n
        rise = selected & pins.sck & ~sck_was

        bits = Signal(range(8))  # bits of the current byte taken so far
        nbytes = Signal(range(8))  # bytes of the command so far, saturating
        shreg = Signal(7)  # the current byte's earlier bits, first at the top
        cmd = Signal(8)
        addr = Signal(24)  # address of the next data byte
        powered_down = Signal(init=int(self._powered_down))
        errors = Signal(len(FLASH_ERRORS))
        m.d.comb += self.errors.eq(errors)

        with m.If((pins.cs_n != cs_n_was) & pins.sck):
            m.d.sync += errors[0].eq(1)

        header = Mux(cmd == FAST_READ, 5, 4)
        data_phase = (
            selected & ~powered_down & ((cmd == READ) | (cmd == FAST_READ)) & (nbytes >= header)
        )
        byte_in = Cat(pins.copi, shreg)
        with m.If(pins.cs_n):
            m.d.sync += [bits.eq(0), nbytes.eq(0)]
            with m.If(~cs_n_was & (nbytes != 0) & (cmd == POWER_DOWN) & ~powered_down):
                m.d.sync += powered_down.eq(1)
        with m.Elif(rise):
            m.d.sync += [bits.eq(bits + 1), shreg.eq(byte_in[:7])]
            with m.If(bits == 7):
                m.d.sync += nbytes.eq(Mux(nbytes == 7, 7, nbytes + 1))
                with m.If(nbytes == 0):
                    m.d.sync += cmd.eq(byte_in)
                    with m.If(byte_in == RELEASE_POWER_DOWN):
                        m.d.sync += powered_down.eq(0)
                    with m.Elif(powered_down):
                        m.d.sync += errors[1].eq(1)
                    with m.Elif(
                        (byte_in != READ) & (byte_in != FAST_READ) & (byte_in != POWER_DOWN)
                    ):
                        m.d.sync += errors[2].eq(1)
                with m.Elif(nbytes < 4):
                    m.d.sync += addr.eq(Cat(byte_in, addr[:16]))
                with m.Elif(data_phase):
                    m.d.sync += addr.eq(addr + 1)

        self._serve(m, rd, addr, bits, data_phase)
        return m

    def _serve(self, m, rd, addr, bits, data_phase) -> None:
        """Drive CIPO: bit ``bits`` (from the top) of the byte at ``addr`` in the data phase
        (erased outside the window), else high."""
        pins = self.pins
        offset = Signal(25)
        m.d.comb += offset.eq(addr - self._base)
        in_window = (addr >= self._base) & (offset < self._words * LOAD_WORD_BYTES)
        m.d.comb += rd.addr.eq(offset // LOAD_WORD_BYTES)
        byte = Mux(in_window, ~rd.data.word_select(offset % LOAD_WORD_BYTES, 8), 0xFF)
        # MSB first: bit ``bits`` counted from the top
        m.d.comb += pins.cipo.eq(Mux(data_phase, byte[::-1].bit_select(bits, 1), 1))


class BoardHarness(wiring.Component):
    """``core`` (a :class:`~spikelut.boards.top.BoardCore`) on a simulated board: a
    :class:`SimFlash` on its flash pins holding its table area at its flash offset (what the
    boot loader can read), and the host's end of its UART.

    Ports: ``host_tx`` (bytes to send to the core; a :data:`HOST_FIFO_DEPTH`-byte FIFO ahead
    of the transmitter), ``host_rx`` (bytes the core sent, the same depth behind the
    receiver), ``framing_errors``/``overruns`` (counts, saturating, of the receiver's
    events: an overrun means ``host_rx``'s FIFO was full), ``flash_load_*`` and
    ``flash_errors`` (the :class:`SimFlash`'s ``load_*`` and ``errors``), ``leds`` (the
    core's).
    """

    def __init__(self, core):
        self._core = core
        self._flash = SimFlash(base=core.flash_offset, size=area_length(core.space))
        super().__init__(
            {
                "host_tx": In(stream.Signature(8)),
                "host_rx": Out(stream.Signature(8)),
                "framing_errors": Out(16),
                "overruns": Out(16),
                "flash_load_addr": In(range(self._flash.words)),
                "flash_load_data": In(8 * LOAD_WORD_BYTES),
                "flash_load_en": In(1),
                "flash_errors": Out(len(FLASH_ERRORS)),
                "leds": Out(len(core.leds)),
            }
        )

    @property
    def flash_words(self) -> int:
        """Words of the flash's load port window."""
        return self._flash.words

    def elaborate(self, platform):
        m = Module()
        core, flash = self._core, self._flash
        m.submodules.core = core
        m.submodules.flash = flash
        wiring.connect(m, core.flash, flash.pins)
        m.d.comb += [
            flash.load_addr.eq(self.flash_load_addr),
            flash.load_data.eq(self.flash_load_data),
            flash.load_en.eq(self.flash_load_en),
            self.flash_errors.eq(flash.errors),
            self.leds.eq(core.leds),
        ]

        m.submodules.to_core = to_core = fifo.SyncFIFOBuffered(width=8, depth=HOST_FIFO_DEPTH)
        m.submodules.uart_tx = utx = UARTTransmitter(divisor=core.divisor)
        wiring.connect(m, wiring.flipped(self.host_tx), to_core.w_stream)
        wiring.connect(m, to_core.r_stream, utx.i_stream)
        m.d.comb += core.rx.eq(utx.tx)

        m.submodules.uart_rx = urx = UARTReceiver(divisor=core.divisor)
        m.submodules.from_core = from_core = fifo.SyncFIFOBuffered(width=8, depth=HOST_FIFO_DEPTH)
        m.d.comb += urx.rx.eq(core.tx)
        wiring.connect(m, urx.o_stream, from_core.w_stream)
        wiring.connect(m, from_core.r_stream, wiring.flipped(self.host_rx))
        for event, count in (
            (urx.framing_error, self.framing_errors),
            (urx.overrun, self.overruns),
        ):
            with m.If(event & ~count.all()):
                m.d.sync += count.eq(count + 1)
        return m
