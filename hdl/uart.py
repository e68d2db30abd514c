"""UART transmitter and receiver (8N1) with byte streams.

Both take ``divisor``, the number of clock cycles per bit (clock frequency / baud rate,
rounded by the caller; :func:`uart_divisor` does it and checks the rate error). Bits go
least significant first: a low start bit, eight data bits, a high stop bit.
"""

from amaranth import Module, Signal
from amaranth.lib import cdc, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.params import check_int

__all__ = ["MIN_DIVISOR", "UARTReceiver", "UARTTransmitter", "check_divisor", "uart_divisor"]

MIN_DIVISOR = 4


def check_divisor(divisor) -> int:
    """``divisor`` (clock cycles per bit) as an int of at least :data:`MIN_DIVISOR`, else
    ``ValueError``."""
    return check_int("divisor", divisor, MIN_DIVISOR)


def uart_divisor(clock_hz: float, baud: int, *, max_error: float = 0.02) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz``.

    Raises ValueError when the rounded divisor misses the baud rate by more than
    ``max_error`` (relative) or is below the minimum the receiver needs.
    """
    if clock_hz <= 0 or baud <= 0:
        raise ValueError(f"clock and baud must be positive, not {clock_hz!r} Hz and {baud!r} baud")
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(
            f"{baud} baud needs at least {MIN_DIVISOR} cycles per bit; "
            f"{clock_hz:g} Hz gives {clock_hz / baud:.2f}: lower the baud rate"
        )
    error = abs(clock_hz / divisor - baud) / baud
    if error > max_error:
        raise ValueError(
            f"{baud} baud at {clock_hz:g} Hz is off by {error:.1%} (divisor {divisor}); "
            f"pick a baud rate closer to clock / n"
        )
    return divisor


class UARTTransmitter(wiring.Component):
    """Sends each byte accepted on ``i_stream`` as an 8N1 frame on ``tx``.

    A byte is accepted while the line is idle or in the last cycle of a stop bit, so a
    continuous stream of bytes goes out back to back, each taking exactly ``10 * divisor``
    cycles. ``tx`` idles high.
    """

    i_stream: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, *, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self) -> int:
        """Clock cycles per bit."""
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor))
        shreg = Signal(10, init=0x3FF)  # stop bit, data, start bit; LSB goes out first
        bits_left = Signal(range(11))

        m.d.comb += self.tx.eq(shreg[0])
        # ready in the last cycle of a stop bit too, so bytes can go back to back
        m.d.comb += self.i_stream.ready.eq((bits_left == 0) | ((bits_left == 1) & (timer == 0)))
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [
                shreg.eq((1 << 9) | (self.i_stream.payload << 1)),
                bits_left.eq(10),
                timer.eq(self._divisor - 1),
            ]
        with m.Elif(bits_left != 0):
            with m.If(timer == 0):
                m.d.sync += [
                    shreg.eq((1 << 9) | (shreg >> 1)),
                    bits_left.eq(bits_left - 1),
                    timer.eq(self._divisor - 1),
                ]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UARTReceiver(wiring.Component):
    """Receives 8N1 frames on ``rx`` and offers each good byte on ``o_stream``.

    ``rx`` passes through a two-flip-flop synchroniser; a falling edge starts a frame, the start
    bit is re-checked half a bit later (a glitch shorter than that is ignored), and every bit
    is sampled in its middle. A frame whose stop bit is low is dropped and ``framing_error``
    pulses for one cycle; the receiver then waits for the line to go high again (a break never
    hangs it: it resumes at the first falling edge after the line recovers).

    ``o_stream`` holds one byte; if it has not been taken when the next frame ends, the new
    byte is dropped and ``overrun`` pulses for one cycle.
    """

    rx: In(1, init=1)
    o_stream: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def __init__(self, *, divisor: int):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self) -> int:
        """Clock cycles per bit."""
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = cdc.FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(self._divisor))
        shreg = Signal(8)
        bit = Signal(range(8))

        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"), m.If(~rx):
                m.d.sync += timer.eq(self._divisor // 2 - 1)
                m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):
                    m.next = "IDLE"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self._divisor - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [
                        shreg.eq((rx << 7) | (shreg >> 1)),
                        timer.eq(self._divisor - 1),
                        bit.eq(bit + 1),
                    ]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(~rx):
                    m.d.comb += self.framing_error.eq(1)
                    m.next = "BREAK"
                with m.Else():
                    with m.If(self.o_stream.valid & ~self.o_stream.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o_stream.payload.eq(shreg), self.o_stream.valid.eq(1)]
                    m.next = "IDLE"
            with m.State("BREAK"), m.If(rx):
                m.next = "IDLE"
        return m
