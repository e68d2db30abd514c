"""The simulated board's flash (:class:`spikelut.sim.board_harness.SimFlash`) against the
boot loader's SPI flash reader, in Amaranth's simulator: the bytes read are the bytes
loaded (erased outside the window), for READ and FAST_READ, at one and at several clocks
per SCK phase, and protocol violations are flagged."""

from __future__ import annotations

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from spikelut.hdl.spiflash import SPIFlashReader
from spikelut.sim.board_harness import FLASH_ERRORS, LOAD_WORD_BYTES, SimFlash

BASE = 0x1000
AREA = bytes((7 * i + 3) % 256 for i in range(37))  # not a whole number of words


def _bench(half_period: int, commands, *, wake_up=True, powered_down=True):
    """Load ``AREA`` at ``BASE``, run ``commands`` ((addr, length, fast)) through a reader;
    returns (bytes read per command, the flash's error bits)."""
    m = Module()
    m.submodules.reader = reader = SPIFlashReader(half_period=half_period, wake_up=wake_up)
    m.submodules.flash = flash = SimFlash(base=BASE, size=len(AREA), powered_down=powered_down)
    wiring.connect(m, reader.flash, flash.pins)
    got: list[bytes] = []
    errors = []

    async def bench(ctx):
        for addr in range(0, len(AREA), LOAD_WORD_BYTES):
            word = AREA[addr : addr + LOAD_WORD_BYTES].ljust(LOAD_WORD_BYTES, b"\xff")
            ctx.set(flash.load_addr, addr // LOAD_WORD_BYTES)
            ctx.set(flash.load_data, int.from_bytes(word, "little"))
            ctx.set(flash.load_en, 1)
            await ctx.tick()
        ctx.set(flash.load_en, 0)
        ctx.set(reader.o_stream.ready, 1)
        for addr, length, fast in commands:
            ctx.set(reader.i_cmd.payload, {"addr": addr, "length": length, "fast": fast})
            ctx.set(reader.i_cmd.valid, 1)
            await ctx.tick().until(reader.i_cmd.ready)
            ctx.set(reader.i_cmd.valid, 0)
            out = bytearray()
            while len(out) < length:
                _, _, valid, payload = await ctx.tick().sample(
                    reader.o_stream.valid, reader.o_stream.payload
                )
                if valid:
                    out.append(payload)
            got.append(bytes(out))
            await ctx.tick().until(~reader.busy)
        errors.append(ctx.get(flash.errors))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, errors[0]


def _expected(addr: int, length: int) -> bytes:
    return bytes(
        AREA[a - BASE] if BASE <= a < BASE + len(AREA) else 0xFF for a in range(addr, addr + length)
    )


@pytest.mark.parametrize("half_period", [1, 3])
def test_reads_return_the_loaded_bytes_and_erased_outside(half_period):
    commands = [(BASE, len(AREA), 0), (BASE - 3, 8, 1), (BASE + len(AREA) - 5, 9, 0)]
    got, errors = _bench(half_period, commands)
    assert errors == 0
    assert got == [_expected(a, n) for a, n, _ in commands]


def test_a_read_while_powered_down_is_flagged():
    got, errors = _bench(1, [(BASE, 4, 0)], wake_up=False)
    assert errors == 1 << FLASH_ERRORS.index(
        "a command other than release (0xAB) while in deep power-down"
    )
    assert got == [b"\xff" * 4]  # a powered-down flash drives nothing: the line reads high


def test_a_flash_that_is_awake_needs_no_release():
    got, errors = _bench(2, [(BASE + 1, 5, 1)], wake_up=False, powered_down=False)
    assert (got, errors) == ([_expected(BASE + 1, 5)], 0)
