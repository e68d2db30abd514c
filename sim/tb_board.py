"""cocotb test: the complete board core (:class:`spikelut.boards.top.BoardCore`) serving a host.

Environment: ``BRIDGE_PORT_FILE`` (where to publish the TCP port of the UART bridge),
``UART_DIVISOR``, ``CLOCK_NS``, ``FLASH_IMAGE`` (optional: a file the SPI flash model
serves; without it the flash reads as erased, all 0xFF), ``TIMELINE_FILE`` (optional: a JSON
record of the session: boot outcome and simulated time, and the simulated time of every
frame in and out), ``BOOT_CYCLES`` (most cycles to wait for the boot loader, default 10**7).

The test waits for LED 0 (tables valid: the boot load passed, or the bitstream holds the
tables) or LED 1 (error: the boot loader rejected the flash area), then bridges one host
session with real UART bit timing, and passes when the host hangs up with no framing error
seen and no flash protocol violation.
"""

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time

from spikelut.boards.protocol import FrameDecoder
from spikelut.compiler.fileio import write_text_atomic
from spikelut.sim.spiflash_model import SpiFlashModel
from spikelut.sim.uart_bridge import serve_tcp
from spikelut.sim.uart_model import UartSink, UartSource

CLOCK_NS = int(os.environ.get("CLOCK_NS", "10"))
DIVISOR = int(os.environ.get("UART_DIVISOR", "16"))


class _Recorder:
    """Decodes the frames of one direction and notes the simulated time of each."""

    def __init__(self):
        self.decoder = FrameDecoder()
        self.frames: list[tuple[int, float]] = []

    def feed(self, data: bytes, when_ns: float) -> None:
        for frame in self.decoder.feed(data):
            self.frames.append((frame.type, when_ns))


class _TimedSource:
    """A :class:`UartSource` that records when each request frame starts going out."""

    def __init__(self, source: UartSource, rec: _Recorder):
        self._source, self._rec = source, rec
        self.bit_ns = source.bit_ns

    async def send(self, data: bytes) -> None:
        self._rec.feed(data, get_sim_time(unit="ns"))
        await self._source.send(data)


class _TimedSink:
    """A :class:`UartSink` that records when each reply frame has been received."""

    def __init__(self, sink: UartSink, rec: _Recorder):
        self._sink, self._rec = sink, rec

    def start(self):
        return self._sink.start()

    def read_nowait(self) -> bytes:
        data = self._sink.read_nowait()
        if data:
            self._rec.feed(data, get_sim_time(unit="ns"))
        return data

    @property
    def framing_errors(self) -> int:
        return self._sink.framing_errors


@cocotb.test()
async def board_session(dut):
    """Boot the board core, then serve one host session on its UART pins."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.rx.value = 1
    dut.flash__cipo.value = 1
    image_path = os.environ.get("FLASH_IMAGE")
    image = Path(image_path).read_bytes() if image_path else b"\xff" * 256
    flash = SpiFlashModel(
        sck=dut.flash__sck,
        cs_n=dut.flash__cs_n,
        copi=dut.flash__copi,
        cipo=dut.flash__cipo,
        image=image,
        powered_down=True,
    ).start()
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    limit = int(os.environ.get("BOOT_CYCLES", str(10**7)))
    boot = "timeout"
    for _ in range(limit):
        await RisingEdge(dut.clk)
        leds = int(dut.leds.value)
        if leds & 2:
            boot = "rejected"
            break
        if leds & 1:
            boot = "ok"
            break
    boot_ns = get_sim_time(unit="ns")
    dut._log.info("boot: %s after %.0f ns", boot, boot_ns)
    timing = {"clock_period_ns": CLOCK_NS, "divisor": DIVISOR}
    rec_in, rec_out = _Recorder(), _Recorder()
    source = _TimedSource(UartSource(dut.rx, **timing), rec_in)
    sink = _TimedSink(UartSink(dut.tx, **timing), rec_out)
    record = {"boot": boot, "boot_ns": boot_ns}
    try:
        stats = await serve_tcp(source, sink, port_file=os.environ["BRIDGE_PORT_FILE"])
        record.update(stats)
    finally:
        record.update(
            frames_in=rec_in.frames,
            frames_out=rec_out.frames,
            framing_errors=sink.framing_errors,
            flash_errors=flash.errors,
            end_ns=get_sim_time(unit="ns"),
        )
        if os.environ.get("TIMELINE_FILE"):
            write_text_atomic(os.environ["TIMELINE_FILE"], json.dumps(record))
    assert sink.framing_errors == 0
    assert not flash.errors, flash.errors
