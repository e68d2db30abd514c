"""cocotb model of the far end of a UART (8N1) with real bit timing.

:class:`UartSource` drives a design's receive pin, :class:`UartSink` decodes its transmit
pin. The bit time is ``clock_period_ns * divisor`` (the design's clock period times its
cycles per bit), or ``1e9 / baud``. Both wake the simulator once per bit, not per clock.
"""

from __future__ import annotations

import cocotb
from cocotb.queue import Queue
from cocotb.triggers import Event, FallingEdge, Timer, with_timeout


def bit_time_ns(
    *, clock_period_ns: float | None = None, divisor: int | None = None, baud: float | None = None
) -> float:
    """Nanoseconds per bit, from a clock period and divisor or from a baud rate."""
    if baud is not None:
        if clock_period_ns is not None or divisor is not None:
            raise ValueError("give either baud or clock_period_ns and divisor, not both")
        return 1e9 / baud
    if clock_period_ns is None or divisor is None:
        raise ValueError("give clock_period_ns and divisor (or baud)")
    return clock_period_ns * divisor


class UartSource:
    """Sends bytes as 8N1 frames on ``pin`` (a design input), which idles high."""

    def __init__(self, pin, **timing):
        self.pin = pin
        self.bit_ns = bit_time_ns(**timing)
        self.pin.value = 1

    async def send(self, data: bytes, *, stop_bit: int = 1, gap_bits: float = 0) -> None:
        """Send ``data``; ``stop_bit=0`` makes framing errors, ``gap_bits`` idles between bytes."""
        for byte in bytes(data):
            for level in [0, *((byte >> i) & 1 for i in range(8)), stop_bit]:
                self.pin.value = level
                await Timer(self.bit_ns, unit="ns", round_mode="round")
            self.pin.value = 1
            if gap_bits:
                await Timer(self.bit_ns * gap_bits, unit="ns", round_mode="round")


class UartSink:
    """Decodes 8N1 frames from ``pin`` (a design output) into a queue of bytes.

    Samples each bit in its middle; a frame with a low stop bit is counted in
    ``framing_errors`` and dropped. ``arrived`` is set when a byte comes in. Call
    :meth:`start` once.
    """

    def __init__(self, pin, **timing):
        self.pin = pin
        self.bit_ns = bit_time_ns(**timing)
        self.queue: Queue[int] = Queue()
        self.framing_errors = 0
        self.arrived = Event()
        self._task = None

    def start(self) -> UartSink:
        """Start decoding in the background; returns self."""
        if self._task is None:
            self._task = cocotb.start_soon(self._run())
        return self

    async def _run(self) -> None:
        while True:
            if int(self.pin.value) != 0:
                await FallingEdge(self.pin)
            await Timer(self.bit_ns / 2, unit="ns", round_mode="round")
            if int(self.pin.value) != 0:
                continue  # a glitch, not a start bit
            byte = 0
            for i in range(8):
                await Timer(self.bit_ns, unit="ns", round_mode="round")
                byte |= int(self.pin.value) << i
            await Timer(self.bit_ns, unit="ns", round_mode="round")
            if int(self.pin.value) != 1:
                self.framing_errors += 1
                while int(self.pin.value) == 0:
                    await Timer(self.bit_ns / 2, unit="ns", round_mode="round")
                continue
            self.queue.put_nowait(byte)
            self.arrived.set()

    async def read(self, n: int, *, timeout_ns: float | None = None) -> bytes:
        """The next ``n`` bytes; raises ``cocotb.triggers.SimTimeoutError`` after ``timeout_ns``."""

        async def take():
            return bytes([await self.queue.get() for _ in range(n)])

        if timeout_ns is None:
            return await take()
        return await with_timeout(take(), timeout_ns, "ns")

    def pending(self) -> bool:
        """True when bytes are waiting to be read."""
        return not self.queue.empty()

    def read_nowait(self) -> bytes:
        """Every byte received and not yet read."""
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return bytes(out)
