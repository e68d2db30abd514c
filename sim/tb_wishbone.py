"""cocotb test: an exported core's Wishbone B4 peripheral against the integer golden model.

Reads ``$SPIKELUT_TB_DIR/case.json`` (written by
:func:`spikelut.sim.wishbone_sim.simulate_wishbone`): the register map, the input vectors,
and phases, each a list of table-window writes and the golden model's class and logits per
vector. Every phase first makes its writes, then sends every vector value by value to
``IN`` (polling ``STATUS`` for room, with random idle gaps on the bus) and takes results as
they come: every logit from ``LOGIT + i``, then the class from ``OUT``, each compared with
the golden model. Writes ``results.json`` there; fails on any mismatch, a dropped input or a
result too many or too few.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from spikelut.compiler.fileio import write_text_atomic

PERIOD_NS = 10
IN_READY, OUT_VALID, OVERFLOW = 1, 2, 4
VALID_BIT = 1 << 31


class Master:
    """A Wishbone B4 classic master: one access at a time, signals driven at falling edges,
    ``ACK`` sampled after rising edges."""

    def __init__(self, dut, rng: random.Random, gap_prob: float = 0.2):
        self.dut, self.rng, self.gap_prob = dut, rng, gap_prob
        self.accesses = 0

    async def access(self, adr: int, data: int | None = None, *, limit: int = 1000) -> int:
        """Write ``data`` to word ``adr``, or read it (``data`` None); returns what was read."""
        dut = self.dut
        await FallingEdge(dut.clk)
        if self.gap_prob and self.rng.random() < self.gap_prob:
            await ClockCycles(dut.clk, self.rng.randint(1, 3), rising=False)
        dut.wb_adr_i.value = adr
        dut.wb_we_i.value = int(data is not None)
        dut.wb_dat_i.value = data or 0
        dut.wb_sel_i.value = 0xF
        dut.wb_cyc_i.value = 1
        dut.wb_stb_i.value = 1
        for _ in range(limit):
            await RisingEdge(dut.clk)
            await ReadOnly()
            if dut.wb_ack_o.value:
                value = int(dut.wb_dat_o.value)
                break
        else:
            raise AssertionError(f"no ACK for word {adr} within {limit} cycles")
        await FallingEdge(dut.clk)
        dut.wb_cyc_i.value = 0
        dut.wb_stb_i.value = 0
        self.accesses += 1
        return value

    async def read(self, adr: int) -> int:
        return await self.access(adr)

    async def write(self, adr: int, data: int) -> None:
        await self.access(adr, data & 0xFFFFFFFF)


def _signed(value: int, width: int = 32) -> int:
    return value - (1 << width) if value >> (width - 1) & 1 else value


class _Results:
    """Results taken so far in one phase, checked against the golden model's."""

    def __init__(self, bus: Master, regs: dict, n_logits: int, summary: dict):
        self.bus, self.regs, self.n_logits, self.summary = bus, regs, n_logits, summary
        self.expected: list[dict] = []
        self.phase = ""
        self.taken = 0

    def start(self, phase: dict) -> None:
        self.expected, self.phase, self.taken = phase["expected"], phase["name"], 0

    async def take(self) -> None:
        """Read one result (its logits, then its class) and check it."""
        bus, regs = self.bus, self.regs
        logits = [_signed(await bus.read(regs["LOGIT"] + i)) for i in range(self.n_logits)]
        out = await bus.read(regs["OUT"])
        got = {"index": out & ~VALID_BIT, "logits": logits} if out & VALID_BIT else None
        want = self.expected[self.taken]
        self.summary["checked"] += 1
        if got != want:
            self.summary["mismatches"] += 1
            self.summary["first_mismatch"] = self.summary["first_mismatch"] or {
                "phase": self.phase,
                "vector": self.taken,
                "got": got,
                "expected": want,
            }
        self.taken += 1

    async def take_ready(self) -> None:
        """Take every result that is waiting."""
        while self.taken < len(self.expected) and (
            await self.bus.read(self.regs["STATUS"]) & OUT_VALID
        ):
            await self.take()


@cocotb.test()
async def wishbone_golden(dut):
    """Every vector of every phase through the bus, every output checked."""
    case = Path(os.environ["SPIKELUT_TB_DIR"])
    cfg = json.loads((case / "case.json").read_text())
    rmap = cfg["register_map"]
    regs = rmap["registers"]
    rng = random.Random(cfg["seed"])
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.wb_cyc_i.value = 0
    dut.wb_stb_i.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    bus = Master(dut, rng)
    mask = (1 << cfg["in_width"]) - 1
    info = await bus.read(regs["INPUTS"])
    assert info == cfg["inputs"] | (cfg["in_width"] << 16), f"INPUTS reads {info:#x}"
    results = {"checked": 0, "mismatches": 0, "first_mismatch": None, "table_writes": 0}
    taker = _Results(bus, regs, rmap["logits"], results)
    start = get_sim_time("ns")
    for phase in cfg["phases"]:
        for adr, word in phase["writes"]:
            await bus.write(adr, word)
        results["table_writes"] += len(phase["writes"])
        taker.start(phase)
        for vector in cfg["vectors"]:
            for value in vector:
                while not await bus.read(regs["STATUS"]) & IN_READY:
                    pass
                await bus.write(regs["IN"], value & mask)
            await taker.take_ready()  # inputs and outputs overlap
        for _ in range(10_000):
            if taker.taken == len(taker.expected):
                break
            await taker.take_ready()
        status = await bus.read(regs["STATUS"])
        name = phase["name"]
        assert taker.taken == len(taker.expected), f"{name}: {taker.taken} results"
        assert not status & OUT_VALID, f"{name}: a result more than the inputs"
        assert not status & OVERFLOW, f"{name}: an input was dropped"
    results["cycles"] = int((get_sim_time("ns") - start) // PERIOD_NS)
    results["bus_accesses"] = bus.accesses
    write_text_atomic(case / "results.json", json.dumps(results))
    assert results["mismatches"] == 0, results["first_mismatch"]
