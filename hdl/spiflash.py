"""SPI flash reader: streams N bytes from an address of a mode-0 SPI NOR flash.

Used at boot to load tables from the configuration flash (iCE40 SPRAM is not initialised by
the bitstream). Each command optionally wakes the flash first (0xAB, then ``wake_cycles``
with chip select high: configuration often leaves the flash in deep power-down), then issues
READ 0x03 or FAST_READ 0x0B with a 24-bit address and clocks in the bytes. SCK stops while
``o_stream`` is not ready, which a SPI flash allows, so back-pressure never loses a byte.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.params import check_int

__all__ = ["FlashPinSignature", "ReadCommand", "SPIFlashReader"]

ReadCommand = data.StructLayout({"addr": 24, "length": 24, "fast": 1})


class FlashPinSignature(wiring.Signature):
    """The pins of a mode-0 SPI flash, seen from the controller: ``sck``, ``cs_n`` (idles
    high) and ``copi`` go out, ``cipo`` comes in (idles high: an erased, undriven flash line
    reads as ones)."""

    def __init__(self):
        super().__init__(
            {
                "sck": Out(1),
                "cs_n": Out(1, init=1),
                "copi": Out(1),
                "cipo": In(1, init=1),
            }
        )


class _ByteShifter:
    """One byte out of ``sr_out`` and into ``sr_in`` at a time, mode 0, on ``pins``."""

    def __init__(self, pins, half: int, timer: Signal):
        self.pins, self.half, self.timer = pins, half, timer
        self.bits = Signal(range(9))
        self.sr_out = Signal(8)
        self.sr_in = Signal(8)

    def start(self, m, value) -> None:
        """Load the next byte to send."""
        m.d.sync += [self.sr_out.eq(value), self.bits.eq(8), self.timer.eq(self.half - 1)]

    def shift(self, m, on_done) -> None:
        """Clock the byte with chip select low; ``on_done()`` after its last falling edge."""
        pins, timer = self.pins, self.timer
        m.d.comb += pins.cs_n.eq(0)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(~pins.sck):
            m.d.sync += [
                pins.sck.eq(1),
                self.sr_in.eq(Cat(pins.cipo, self.sr_in[:7])),
                timer.eq(self.half - 1),
            ]
        with m.Else():
            m.d.sync += [
                pins.sck.eq(0),
                self.sr_out.eq(self.sr_out << 1),
                self.bits.eq(self.bits - 1),
                timer.eq(self.half - 1),
            ]
            with m.If(self.bits == 1):
                on_done()


class SPIFlashReader(wiring.Component):
    """Reads ``length`` bytes from ``addr`` for each command on ``i_cmd`` into ``o_stream``.

    ``fast`` selects FAST_READ (one dummy byte) instead of READ. SCK runs at
    clock / (2 * ``half_period``). ``busy`` is high from accepting a command until chip select
    is released after its last byte. ``flash``: the pins (:class:`FlashPinSignature`).
    """

    i_cmd: In(stream.Signature(ReadCommand))
    o_stream: Out(stream.Signature(8))
    busy: Out(1)
    flash: Out(FlashPinSignature())

    def __init__(self, *, half_period: int = 1, wake_up: bool = True, wake_cycles: int = 64):
        self._half = check_int("half_period", half_period, 1)
        self._wake = bool(wake_up)
        self._wake_cycles = check_int("wake_cycles", wake_cycles, 1)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(max(self._half, self._wake_cycles) + 1))
        sh = _ByteShifter(self.flash, self._half, timer)
        m.d.comb += self.flash.copi.eq(sh.sr_out[7])
        cmd = Signal(ReadCommand)  # the command being served; ``length``: bytes left
        header = Signal(40)  # command, address, dummy: sent from the top byte down
        header_left = Signal(range(6))

        def wait(then):
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():
                m.next = then

        def woke():
            m.d.sync += timer.eq(self._wake_cycles)
            m.next = "WAKE_WAIT"

        def header_byte_done():
            m.d.sync += [header.eq(header << 8), header_left.eq(header_left - 1)]
            with m.If(header_left == 1):
                sh.start(m, 0)
                m.next = "DATA"
            with m.Else():
                sh.start(m, header[24:32])
                m.next = "HEADER"

        def data_byte_done():
            m.next = "PUSH"

        with m.FSM():
            with m.State("IDLE"):
                self._idle(m, sh, cmd)
            with m.State("WAKE"):
                m.d.comb += self.busy.eq(1)
                sh.shift(m, woke)
            with m.State("WAKE_WAIT"):
                m.d.comb += self.busy.eq(1)
                wait("SETUP")
            with m.State("SETUP"):
                m.d.comb += self.busy.eq(1)
                self._setup(m, sh, cmd, header, header_left)
            with m.State("HEADER"):
                m.d.comb += self.busy.eq(1)
                sh.shift(m, header_byte_done)
            with m.State("DATA"):
                m.d.comb += self.busy.eq(1)
                sh.shift(m, data_byte_done)
            with m.State("PUSH"):
                self._push(m, sh, cmd)
            with m.State("END"):
                m.d.comb += self.busy.eq(1)
                wait("IDLE")
        return m

    def _idle(self, m, sh, cmd):
        m.d.comb += self.i_cmd.ready.eq(1)
        with m.If(self.i_cmd.valid):
            new = self.i_cmd.payload
            m.d.sync += cmd.eq(new)
            with m.If((new.length != 0) & self._wake):
                sh.start(m, 0xAB)
                m.next = "WAKE"
            with m.Elif(new.length != 0):
                m.next = "SETUP"

    @staticmethod
    def _setup(m, sh, cmd, header, header_left):
        """Queue the address (and FAST_READ's dummy byte) and start sending the opcode."""
        opcode = Mux(cmd.fast, 0x0B, 0x03)
        a = cmd.addr
        m.d.sync += [
            header.eq(Cat(Const(0, 8), a[:8], a[8:16], a[16:24], opcode)),
            header_left.eq(cmd.fast + 4),
        ]
        sh.start(m, opcode)
        m.next = "HEADER"

    def _push(self, m, sh, cmd):
        o = self.o_stream
        m.d.comb += [
            self.busy.eq(1),
            self.flash.cs_n.eq(0),
            o.valid.eq(1),
            o.payload.eq(sh.sr_in),
        ]
        with m.If(o.ready):
            m.d.sync += cmd.length.eq(cmd.length - 1)
            with m.If(cmd.length == 1):
                m.d.sync += sh.timer.eq(self._half)
                m.next = "END"
            with m.Else():
                sh.start(m, 0)
                m.next = "DATA"
