"""UART transmitter and receiver in Amaranth's simulator: bit timing, loopback, errors."""

import random

import pytest
from amaranth import Module
from amaranth.sim import Simulator

from spikelut.hdl.uart import UARTReceiver, UARTTransmitter, check_divisor, uart_divisor


def _frame_bits(byte: int, stop: int = 1) -> list[int]:
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def test_divisor_validation():
    # what the transmitter and the receiver check their divisor with
    with pytest.raises(ValueError, match="divisor must be >= 4, not 3"):
        check_divisor(3)
    with pytest.raises(ValueError, match=r"divisor must be an integer, not 8\.0"):
        check_divisor(8.0)
    assert check_divisor(4) == 4
    assert uart_divisor(12e6, 115200) == 104
    with pytest.raises(ValueError, match="off by"):
        uart_divisor(1e6, 220000)
    with pytest.raises(ValueError, match="lower the baud"):
        uart_divisor(1e6, 500000)


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_transmitter_bit_timing(divisor):
    dut = UARTTransmitter(divisor=divisor)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    data = [0x00, 0xFF, 0xA5, 0x3C]
    line = []

    async def bench(ctx):
        ctx.set(dut.i_stream.valid, 1)
        for byte in data:
            ctx.set(dut.i_stream.payload, byte)
            await ctx.tick().until(dut.i_stream.ready)
        ctx.set(dut.i_stream.valid, 0)

    async def monitor(ctx):
        async for _clk, _rst, tx in ctx.tick().sample(dut.tx):
            line.append(tx)

    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run_until(1e-6 * (10 * divisor * (len(data) + 1) + 10))
    start = line.index(0)
    expected = [b for byte in data for b in _frame_bits(byte) for _ in range(divisor)]
    assert line[start : start + len(expected)] == expected
    assert all(line[start + len(expected) :])


def _run_receiver(divisor, bits_per_frame, *, consume_every=1, glitch=False):
    """Drive ``bits_per_frame`` (lists of line levels, one per bit) into the receiver."""
    dut = UARTReceiver(divisor=divisor)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    got, framing, overruns = [], [], []
    done = []

    async def driver(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        if glitch:  # a low pulse shorter than half a bit is not a start bit
            ctx.set(dut.rx, 0)
            await ctx.tick().repeat(max(1, divisor // 2 - 2))
            ctx.set(dut.rx, 1)
            await ctx.tick().repeat(2 * divisor)
        for bits in bits_per_frame:
            for level in bits:
                ctx.set(dut.rx, level)
                await ctx.tick().repeat(divisor)
            ctx.set(dut.rx, 1)
            await ctx.tick().repeat(divisor)
        await ctx.tick().repeat(4 * divisor)
        done.append(True)

    async def consumer(ctx):
        n = 0
        while not done:
            n += 1
            ctx.set(dut.o_stream.ready, n % consume_every == 0)
            await ctx.tick()
            if ctx.get(dut.framing_error):
                framing.append(len(got))
            if ctx.get(dut.overrun):
                overruns.append(len(got))

    async def collect(ctx):
        async for _clk, _rst, valid, ready, payload in ctx.tick().sample(
            dut.o_stream.valid, dut.o_stream.ready, dut.o_stream.payload
        ):
            if valid and ready:
                got.append(payload)

    sim.add_testbench(driver)
    sim.add_testbench(consumer)
    sim.add_process(collect)
    sim.run_until(1e-6 * (len(bits_per_frame) * 12 * divisor + 20 * divisor + 100))
    return got, framing, overruns


@pytest.mark.parametrize("divisor", [4, 5, 13])
def test_receiver_bytes_and_framing_error(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(6)]
    frames = [_frame_bits(b) for b in data]
    frames.insert(3, [*_frame_bits(0x42, stop=0), 0, 0])  # bad stop bit, then a short break
    got, framing, overruns = _run_receiver(divisor, frames, glitch=True)
    assert got == data
    assert framing == [3]
    assert overruns == []


def test_receiver_holds_byte_under_back_pressure_and_flags_overrun():
    divisor = 8
    frames = [_frame_bits(b) for b in (1, 2, 3, 4)]
    # the consumer is ready once every 5 bit times: each byte waits but none is lost
    got, _, overruns = _run_receiver(divisor, frames, consume_every=5 * divisor)
    assert got == [1, 2, 3, 4] and overruns == []
    # a consumer that is ready only rarely loses bytes, and the receiver says so
    got, _, overruns = _run_receiver(divisor, frames, consume_every=40 * divisor)
    # (the last byte may still be held when the run ends)
    assert got[0] == 1 and overruns and 3 <= len(got) + len(overruns) <= 4


@pytest.mark.parametrize("divisor", [4, 9])
def test_loopback_with_valid_gaps(divisor):
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(divisor=divisor)
    m.submodules.rx = rx = UARTReceiver(divisor=divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(20)]
    got = []

    async def source(ctx):
        for byte in data:
            ctx.set(tx.i_stream.valid, 0)
            await ctx.tick().repeat(1 + rng.randrange(3))
            ctx.set(tx.i_stream.payload, byte)
            ctx.set(tx.i_stream.valid, 1)
            await ctx.tick().until(tx.i_stream.ready)
        ctx.set(tx.i_stream.valid, 0)

    async def sink(ctx):
        ctx.set(rx.o_stream.ready, 1)
        while len(got) < len(data):
            await ctx.tick()
            if ctx.get(rx.o_stream.valid):
                got.append(ctx.get(rx.o_stream.payload))

    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert got == data
