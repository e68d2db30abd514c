"""cocotb test: the complete board core on its simulated board
(:class:`spikelut.sim.board_harness.BoardHarness`) serving a host.

Environment: ``BRIDGE_PORT_FILE`` (where to publish the TCP port of the UART bridge),
``CLOCK_NS``, ``FLASH_AREA`` (optional: the table area the flash holds at the core's flash
offset; without it the flash reads as erased, all 0xFF), ``TIMELINE_FILE`` (optional: a JSON
record of the session: boot outcome and simulated time, and the simulated time of every
frame in and out), ``BOOT_CYCLES`` (most cycles to wait for the boot loader, default 10**7).

The test writes the flash, releases reset and waits for LED 0 (tables valid: the boot load
passed, or the bitstream holds the tables) or LED 1 (error: the boot loader rejected the
flash area), then bridges one host session through the harness's UART FIFOs (the pins run at
the core's real bit timing), and passes when the host hangs up with no framing error or
overrun seen and no flash protocol violation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from spikelut.boards.protocol import FrameDecoder
from spikelut.compiler.fileio import write_text_atomic
from spikelut.sim.board_harness import FLASH_ERRORS, LOAD_WORD_BYTES
from spikelut.sim.uart_bridge import serve_tcp
from spikelut.sim.uart_model import bit_time_ns

CLOCK_NS = int(os.environ.get("CLOCK_NS", "10"))


class _Recorder:
    """Decodes the frames of one direction and notes the simulated time of each."""

    def __init__(self):
        self.decoder = FrameDecoder()
        self.frames: list[tuple[int, float]] = []

    def feed(self, data: bytes, when_ns: float) -> None:
        for frame in self.decoder.feed(data):
            self.frames.append((frame.type, when_ns))


# The harness's ports are driven and sampled at falling clock edges, where everything the
# rising edge changed has settled: a byte offered there with ``ready`` high is taken by the
# next rising edge, with no doubt about which side of the edge a value was read on.


class FifoSource:
    """Sends bytes to the core: into the harness's ``host_tx`` FIFO, from which its UART
    transmitter shifts them onto the core's ``rx`` pin. ``bit_ns``: one bit time."""

    def __init__(self, dut, divisor: int, rec: _Recorder):
        self.dut, self.rec = dut, rec
        self.bit_ns = bit_time_ns(clock_period_ns=CLOCK_NS, divisor=divisor)
        dut.host_tx__valid.value = 0

    async def send(self, data: bytes) -> None:
        dut = self.dut
        self.rec.feed(data, get_sim_time(unit="ns"))
        await FallingEdge(dut.clk)
        for byte in bytes(data):
            while not int(dut.host_tx__ready.value):  # the FIFO is full
                dut.host_tx__valid.value = 0
                await FallingEdge(dut.clk)
            dut.host_tx__payload.value = byte
            dut.host_tx__valid.value = 1
            await FallingEdge(dut.clk)
        dut.host_tx__valid.value = 0


class FifoSink:
    """Receives the core's bytes: drains the harness's ``host_rx`` FIFO (what its UART
    receiver decoded from the core's ``tx`` pin) in the background; call :meth:`start`.
    ``arrived`` is set when bytes come in."""

    def __init__(self, dut, rec: _Recorder):
        self.dut, self.rec = dut, rec
        self.arrived = Event()
        self._bytes = bytearray()
        self._task = None
        dut.host_rx__ready.value = 0

    def start(self) -> FifoSink:
        if self._task is None:
            self._task = cocotb.start_soon(self._drain())
        return self

    async def _drain(self) -> None:
        dut = self.dut
        while True:
            if not int(dut.host_rx__valid.value):
                await RisingEdge(dut.host_rx__valid)
                await FallingEdge(dut.clk)
            got = bytearray()
            while int(dut.host_rx__valid.value):
                got.append(int(dut.host_rx__payload.value))
                dut.host_rx__ready.value = 1
                await FallingEdge(dut.clk)  # the rising edge between took it
            dut.host_rx__ready.value = 0
            self.rec.feed(bytes(got), get_sim_time(unit="ns"))
            self._bytes += got
            self.arrived.set()

    def pending(self) -> bool:
        """True when bytes are waiting to be read."""
        return bool(self._bytes)

    def read_nowait(self) -> bytes:
        """Every byte received and not yet read."""
        out, self._bytes = bytes(self._bytes), bytearray()
        return out

    @property
    def framing_errors(self) -> int:
        return int(self.dut.framing_errors.value)


async def load_flash(dut, area: bytes) -> None:
    """Write ``area`` into the simulated flash's window, a word per clock."""
    await FallingEdge(dut.clk)
    for addr in range(0, len(area), LOAD_WORD_BYTES):
        word = area[addr : addr + LOAD_WORD_BYTES].ljust(LOAD_WORD_BYTES, b"\xff")
        dut.flash_load_addr.value = addr // LOAD_WORD_BYTES
        dut.flash_load_data.value = int.from_bytes(word, "little")
        dut.flash_load_en.value = 1
        await FallingEdge(dut.clk)
    dut.flash_load_en.value = 0


async def wait_boot(dut, limit: int) -> str:
    """``ok`` (LED 0: tables valid), ``rejected`` (LED 1) or ``timeout`` after ``limit``
    cycles; wakes only when the LEDs change."""
    deadline = Timer(limit * CLOCK_NS, unit="ns")
    while True:
        leds = int(dut.leds.value)
        if leds & 2:
            return "rejected"
        if leds & 1:
            return "ok"
        if await First(dut.leds.value_change, deadline) is deadline:
            return "timeout"


@cocotb.test()
async def board_session(dut):
    """Boot the board core, then serve one host session on its UART pins."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.flash_load_en.value = 0
    divisor = int(os.environ["UART_DIVISOR"])
    rec_in, rec_out = _Recorder(), _Recorder()
    source, sink = FifoSource(dut, divisor, rec_in), FifoSink(dut, rec_out)
    area_path = os.environ.get("FLASH_AREA")
    if area_path:
        await load_flash(dut, Path(area_path).read_bytes())
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    boot = await wait_boot(dut, int(os.environ.get("BOOT_CYCLES", str(10**7))))
    boot_ns = get_sim_time(unit="ns")
    dut._log.info("boot: %s after %.0f ns", boot, boot_ns)
    record = {"boot": boot, "boot_ns": boot_ns}
    try:
        stats = await serve_tcp(source, sink, port_file=os.environ["BRIDGE_PORT_FILE"])
        record.update(stats)
    finally:
        flash_errors = int(dut.flash_errors.value)
        record.update(
            frames_in=rec_in.frames,
            frames_out=rec_out.frames,
            framing_errors=sink.framing_errors,
            overruns=int(dut.overruns.value),
            flash_errors=[e for i, e in enumerate(FLASH_ERRORS) if flash_errors >> i & 1],
            end_ns=get_sim_time(unit="ns"),
        )
        if os.environ.get("TIMELINE_FILE"):
            write_text_atomic(os.environ["TIMELINE_FILE"], json.dumps(record))
    assert record["framing_errors"] == 0
    assert record["overruns"] == 0
    assert not record["flash_errors"], record["flash_errors"]
