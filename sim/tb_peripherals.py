"""cocotb tests of the UART and SPI-flash gateware against the simulated peripherals.

Top level (built by ``tests/test_cocotb_peripherals.py``): a UART echo (receiver, FIFO,
transmitter) on ``rx``/``tx`` and a :class:`~spikelut.hdl.spiflash.SPIFlashReader` on the
``flash__*`` pins with its command and byte stream flattened to ``cmd_*`` and ``data_*``
ports. Environment: ``UART_DIVISOR`` (cycles per bit) and ``CLOCK_NS`` (clock period).
"""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, Timer

from spikelut.sim.spiflash_model import SpiFlashModel
from spikelut.sim.uart_model import UartSink, UartSource

CLOCK_NS = int(os.environ.get("CLOCK_NS", "10"))
DIVISOR = int(os.environ.get("UART_DIVISOR", "8"))


async def _reset(dut):
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.rx.value = 1
    dut.flash__cipo.value = 1
    dut.cmd_valid.value = 0
    dut.data_ready.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)


@cocotb.test()
async def uart_echo(dut):
    """Bytes sent by the UART model come back unchanged; a framing error is dropped."""
    await _reset(dut)
    source = UartSource(dut.rx, clock_period_ns=CLOCK_NS, divisor=DIVISOR)
    sink = UartSink(dut.tx, clock_period_ns=CLOCK_NS, divisor=DIVISOR).start()
    rng = random.Random(5)
    data = bytes(rng.randrange(256) for _ in range(48))
    await source.send(data)
    timeout = CLOCK_NS * DIVISOR * 10 * 8
    assert await sink.read(len(data), timeout_ns=timeout) == data
    await source.send(b"\x5a", stop_bit=0)  # framing error on the design's receiver
    await Timer(CLOCK_NS * DIVISOR * 3, unit="ns")
    await source.send(b"ok", gap_bits=1.5)
    assert await sink.read(2, timeout_ns=timeout) == b"ok"
    assert sink.framing_errors == 0


async def _read_flash(dut, addr, length, fast, rng):
    dut.cmd_addr.value = addr
    dut.cmd_len.value = length
    dut.cmd_fast.value = int(fast)
    dut.cmd_valid.value = 1
    await RisingEdge(dut.clk)
    while not int(dut.cmd_ready.value):
        await RisingEdge(dut.clk)
    dut.cmd_valid.value = 0
    got = []
    while len(got) < length:
        await FallingEdge(dut.clk)
        ready = rng.random() < 0.6
        dut.data_ready.value = int(ready)
        await RisingEdge(dut.clk)
        if ready and int(dut.data_valid.value):
            got.append(int(dut.data.value))
    dut.data_ready.value = 0
    return bytes(got)


@cocotb.test()
async def spi_flash_reads(dut):
    """The reader wakes the flash and reads slices with READ and FAST_READ, under back-pressure."""
    await _reset(dut)
    rng = random.Random(11)
    image = bytes(rng.randrange(256) for _ in range(4096))
    flash = SpiFlashModel(
        sck=dut.flash__sck,
        cs_n=dut.flash__cs_n,
        copi=dut.flash__copi,
        cipo=dut.flash__cipo,
        image=image,
        powered_down=True,
    ).start()
    for addr, length, fast in [(0, 16, False), (1000, 40, True), (4090, 12, False)]:
        got = await _read_flash(dut, addr, length, fast, rng)
        want = bytes(image[(addr + i) % len(image)] for i in range(length))
        assert got == want, f"read {length} at {addr} (fast={fast})"
    await ClockCycles(dut.clk, 10)
    assert int(dut.flash__cs_n.value) == 1
    assert flash.errors == []
    assert flash.logic.commands == [0xAB, 0x03, 0xAB, 0x0B, 0xAB, 0x03]
