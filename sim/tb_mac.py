"""cocotb test of the MAC baseline core (:class:`spikelut.hdl.mac.MACCore`) against
:func:`spikelut.sim.mac_golden.run_mac`, and the host-side helper that runs it.

:func:`check_mac_core` writes a case directory (``tb.json``: widths and timing options;
``inputs.json``: integer input vectors; ``expected.json``: the reference's label and logits
per vector), builds the core's Verilog with Verilator through
:func:`spikelut.sim.cocotb_runner.run_cocotb` and runs :func:`mac_matches_reference`, which
sends vector 0 alone (latency), the next ones back to back (the interval between results),
then the rest with random input gaps and output back-pressure, checks every output (label
and every logit) and writes ``results.json``.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path

import cocotb
import numpy as np
from amaranth.hdl import Shape
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

__all__ = ["check_mac_core", "mac_matches_reference"]


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


def check_mac_core(
    net,
    x_int: np.ndarray,
    *,
    macs: int = 1,
    case_dir: str | os.PathLike | None = None,
    build_dir: str | os.PathLike | None = None,
    seed: int = 0,
    gap_prob: float = 0.3,
    stall_prob: float = 0.3,
    measure: int = 6,
) -> dict:
    """Run the MAC core of ``net`` (a :class:`~spikelut.sim.mac_golden.MACNetwork`) with
    ``macs`` units on Verilator over the integer inputs ``x_int`` (B, in_dim); returns
    ``results.json`` as a dict (``checked``, ``mismatches``, ``cycles_per_inference``,
    ``latency_cycles``). Raises :class:`~spikelut.sim.cocotb_runner.CocotbFailure` when an
    output differs from :func:`~spikelut.sim.mac_golden.run_mac`."""
    from spikelut.compiler.mac_backend import mac_core
    from spikelut.sim.cocotb_runner import run_cocotb
    from spikelut.sim.mac_golden import run_mac

    x = np.atleast_2d(np.asarray(x_int, np.int64))
    core = mac_core(net, macs=macs)
    ref = run_mac(net, x)
    layout = core.signature.members["o_stream"].signature.members["payload"].shape
    cfg = {
        "in_width": net.encoding.bits,
        "index_width": Shape.cast(layout["index"].shape).width,
        "logits_offset": layout["logits"].offset,
        "logit_width": core.logit_width,
        "n_classes": core.n_classes,
        "period_ns": 10,
        "seed": seed,
        "gap_prob": gap_prob,
        "max_gap": 4,
        "stall_prob": stall_prob,
        "max_stall": 30,
        "measure": measure,
        "timeout_cycles": (len(x) + 2) * (core.cycles_per_inference + 40) * 4,
    }
    expected = [
        {"label": int(p), "logits": [int(v) for v in a]}
        for p, a in zip(ref.predictions, ref.accumulators[-1], strict=True)
    ]
    tmp = None
    if case_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="spikelut-mac-")
        case_dir = tmp.name
    case = Path(case_dir)
    case.mkdir(parents=True, exist_ok=True)
    try:
        write_text_atomic(case / "tb.json", json.dumps(cfg))
        write_text_atomic(case / "inputs.json", json.dumps(x.tolist()))
        write_text_atomic(case / "expected.json", json.dumps(expected))
        run_cocotb(
            core,
            toplevel="spikelut_mac",
            test_module="spikelut.sim.tb_mac",
            build_dir=build_dir,
            env={"SPIKELUT_TB_DIR": str(case)},
            seed=seed,
        )
        return json.loads((case / "results.json").read_text())
    finally:
        if tmp is not None:
            tmp.cleanup()
