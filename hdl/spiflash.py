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

from .params import silent_on_error

ReadCommand = data.StructLayout({"addr": 24, "length": 24, "fast": 1})


class SPIFlashReader(wiring.Component):
    """Reads ``length`` bytes from ``addr`` for each command on ``i_cmd`` into ``o_stream``.

    ``fast`` selects FAST_READ (one dummy byte) instead of READ. SCK runs at
    clock / (2 * ``half_period``). ``busy`` is high from accepting a command until chip select
    is released after its last byte. Pins: ``sck``, ``cs_n`` (idles high), ``copi``, ``cipo``.
    """

    i_cmd: In(stream.Signature(ReadCommand))
    o_stream: Out(stream.Signature(8))
    busy: Out(1)
    sck: Out(1)
    cs_n: Out(1, init=1)
    copi: Out(1)
    cipo: In(1)

    @silent_on_error
    def __init__(self, *, half_period: int = 1, wake_up: bool = True, wake_cycles: int = 64):
        if not isinstance(half_period, int) or half_period < 1:
            raise ValueError(f"half_period must be an integer >= 1 (cycles), not {half_period!r}")
        if not isinstance(wake_cycles, int) or wake_cycles < 1:
            raise ValueError(f"wake_cycles must be an integer >= 1, not {wake_cycles!r}")
        self._half = half_period
        self._wake = bool(wake_up)
        self._wake_cycles = wake_cycles
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(max(self._half, self._wake_cycles) + 1))
        bits = Signal(range(9))
        sr_out = Signal(8)
        sr_in = Signal(8)
        header = Signal(40)  # command, address, dummy: sent from the top byte down
        header_left = Signal(range(6))
        addr = Signal(24)
        left = Signal(24)
        fast = Signal()
        m.d.comb += self.copi.eq(sr_out[7])

        def shift_state(on_done):
            """One byte out of sr_out and into sr_in, mode 0; on_done() after the last fall."""
            m.d.comb += self.cs_n.eq(0)
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Elif(~self.sck):
                m.d.sync += [
                    self.sck.eq(1),
                    sr_in.eq(Cat(self.cipo, sr_in[:7])),
                    timer.eq(self._half - 1),
                ]
            with m.Else():
                m.d.sync += [
                    self.sck.eq(0),
                    sr_out.eq(sr_out << 1),
                    bits.eq(bits - 1),
                    timer.eq(self._half - 1),
                ]
                with m.If(bits == 1):
                    on_done()

        def start_byte(value):
            m.d.sync += [sr_out.eq(value), bits.eq(8), timer.eq(self._half - 1)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i_cmd.ready.eq(1)
                with m.If(self.i_cmd.valid):
                    cmd = self.i_cmd.payload
                    m.d.sync += [addr.eq(cmd.addr), left.eq(cmd.length), fast.eq(cmd.fast)]
                    with m.If((cmd.length != 0) & self._wake):
                        start_byte(0xAB)
                        m.next = "WAKE"
                    with m.Elif(cmd.length != 0):
                        m.next = "SETUP"
            with m.State("WAKE"):
                m.d.comb += self.busy.eq(1)

                def woke():
                    m.d.sync += timer.eq(self._wake_cycles)
                    m.next = "WAKE_WAIT"

                shift_state(woke)
            with m.State("WAKE_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.next = "SETUP"
            with m.State("SETUP"):
                m.d.comb += self.busy.eq(1)
                opcode = Mux(fast, 0x0B, 0x03)
                m.d.sync += [
                    header.eq(Cat(Const(0, 8), addr[:8], addr[8:16], addr[16:24], opcode)),
                    header_left.eq(fast + 4),
                ]
                start_byte(opcode)
                m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += self.busy.eq(1)

                def header_byte_done():
                    m.d.sync += [header.eq(header << 8), header_left.eq(header_left - 1)]
                    with m.If(header_left == 1):
                        start_byte(0)
                        m.next = "DATA"
                    with m.Else():
                        start_byte(header[24:32])
                        m.next = "HEADER"

                shift_state(header_byte_done)
            with m.State("DATA"):
                m.d.comb += self.busy.eq(1)

                def data_byte_done():
                    m.next = "PUSH"

                shift_state(data_byte_done)
            with m.State("PUSH"):
                m.d.comb += [
                    self.busy.eq(1),
                    self.cs_n.eq(0),
                    self.o_stream.valid.eq(1),
                    self.o_stream.payload.eq(sr_in),
                ]
                with m.If(self.o_stream.ready):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.d.sync += timer.eq(self._half)
                        m.next = "END"
                    with m.Else():
                        start_byte(0)
                        m.next = "DATA"
            with m.State("END"):
                m.d.comb += self.busy.eq(1)
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.next = "IDLE"
        return m
