"""cocotb test of :class:`spikelut.hdl.counter.Counter` (module ``counter``, width from env)."""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge


@cocotb.test()
async def counts_enabled_cycles(dut):
    """The count equals the number of enabled cycles modulo 2**width, across wraps."""
    width = int(os.environ["COUNTER_WIDTH"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.en.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    rng = random.Random(1)
    expected = 0
    wraps = 0
    for _ in range(3 << width):
        await FallingEdge(dut.clk)
        assert int(dut.count.value) == expected % (1 << width)
        en = rng.random() < 0.7
        dut.en.value = int(en)
        if en:
            if expected % (1 << width) == (1 << width) - 1:
                wraps += 1
            expected += 1
    assert wraps >= 1, "the test must cross a wrap"
