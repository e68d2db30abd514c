"""cocotb test of the MAC baseline core (:class:`spikelut.hdl.mac.MACCore`) against
:func:`spikelut.compiler.ir.mac.run_mac` (run by :func:`spikelut.sim.mac_sim.check_mac_core`).

:func:`mac_matches_reference` reads the case directory (``tb.json``: widths and timing
options; ``inputs.json``: integer input vectors; ``expected.json``: the reference's label and
logits per vector), sends vector 0 alone (latency), the next ones back to back (the interval
between results), then the rest with random input gaps and output back-pressure, checks
every output (label and every logit) and writes ``results.json``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from spikelut.compiler.fileio import write_text_atomic
from spikelut.sim.cocotb_lib import (
    StreamDriver,
    StreamMonitor,
    StreamPort,
    pack_vector,
    unpack_vector,
)

__all__ = ["mac_matches_reference"]


@cocotb.test()
async def mac_matches_reference(dut):
    """Every label and logit equals the integer reference, under random gaps and stalls."""
    case = Path(os.environ["SPIKELUT_TB_DIR"])
    cfg = json.loads((case / "tb.json").read_text())
    inputs = json.loads((case / "inputs.json").read_text())
    expected = json.loads((case / "expected.json").read_text())
    period = cfg["period_ns"]
    rng = random.Random(cfg["seed"])
    cocotb.start_soon(Clock(dut.clk, period, unit="ns", impl="gpi").start())
    driver = StreamDriver(dut.clk, StreamPort.of(dut, "i_stream"), rng=rng, period_ns=period)
    monitor = StreamMonitor(dut.clk, StreamPort.of(dut, "o_stream"), rng=rng, period_ns=period)
    driver.idle()
    dut.o_stream__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    iw, lw, n_cls = cfg["index_width"], cfg["logit_width"], cfg["n_classes"]
    in_cycles, out_cycles, bad = [], [], []

    async def feed(first, last):
        for x in inputs[first:last]:
            in_cycles.append(await driver.send(pack_vector(x, cfg["in_width"])))
        driver.idle()

    async def drain(first, last):
        for n in range(first, last):
            payload, cycle = await monitor.recv()
            out_cycles.append(cycle)
            label = payload & ((1 << iw) - 1)
            logits = unpack_vector(payload >> cfg["logits_offset"], lw, n_cls)
            want = expected[n]
            if label != want["label"] or logits != want["logits"]:
                bad.append((n, want, {"label": label, "logits": logits}))

    async def phase(first, last):
        if first < last:
            task = cocotb.start_soon(feed(first, last))
            await drain(first, last)
            await task

    n = len(inputs)
    burst = min(n, cfg["measure"])

    async def run_all():
        await phase(0, 1)
        await phase(1, burst)
        driver.gap_prob, driver.max_gap = cfg["gap_prob"], cfg["max_gap"]
        monitor.stall_prob, monitor.max_stall = cfg["stall_prob"], cfg["max_stall"]
        await phase(burst, n)

    await with_timeout(run_all(), cfg["timeout_cycles"] * period, "ns")
    interval = (out_cycles[burst - 1] - out_cycles[1]) / (burst - 2) if burst >= 3 else None
    result = {
        "checked": len(out_cycles),
        "mismatches": len(bad),
        "first_mismatch": repr(bad[0]) if bad else "",
        "latency_cycles": out_cycles[0] - in_cycles[0] if n else None,
        "cycles_per_inference": interval,
    }
    write_text_atomic(case / "results.json", json.dumps(result))
    assert not bad, f"{len(bad)} of {n} outputs differ from run_mac; first: {bad[0]!r}"
