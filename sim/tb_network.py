"""cocotb test of a compiled network core against the integer golden model.

Reads its case from the directory ``$SPIKELUT_TB_DIR`` (written by
:func:`spikelut.sim.network_sim.write_case`): ``tb.json`` (ports, payload descriptions,
timing options), ``inputs.json`` (integer input vectors, or packed payloads in hex), ``expected.json`` (the golden
output payloads, hex), ``loads.json`` (table-write payloads per ``w{k}_stream``, for storage
the bitstream does not initialise) and, for debug runs, ``golden_layers.json``. Writes
``results.json`` there: vectors checked, mismatches, the first mismatch and (debug) where the
layers diverge, cycles per inference, latency, the hardware's labels, simulated cycles and
wall seconds.

Phases: load the tables; send vector 0 alone (latency: cycles from the cycle it is first
offered to its output transfer, as :func:`spikelut.compiler.backend.latency.measure_latency`
counts); send the next vectors back to back with ``ready`` held high (the
steady-state interval between outputs, i.e. cycles per inference); then the rest with random
``valid`` gaps and ``ready`` back-pressure. Every output is checked.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from spikelut.compiler.fileio import write_text_atomic
from spikelut.sim.cocotb_lib import (
    Scoreboard,
    StreamDriver,
    StreamMonitor,
    StreamPort,
    StreamProbe,
    aer_payloads,
    locate_divergence,
    pack_vector,
    unpack_fields,
    unpack_vector,
)


def _case() -> tuple[Path, dict]:
    case = Path(os.environ["SPIKELUT_TB_DIR"])
    return case, json.loads((case / "tb.json").read_text())


def _decoder(cfg: dict):
    desc = cfg["out"]
    if "struct" in desc:
        return lambda p: unpack_fields(p, desc)
    elem = desc["array"]
    return lambda p: unpack_vector(p, elem["width"], desc["length"], elem["signed"])


def _label(cfg: dict, payload: int) -> int | None:
    desc = cfg["out"]
    if "struct" not in desc:
        return None
    f = desc["struct"]["index"]
    return (payload >> f["offset"]) & ((1 << f["width"]) - 1)


def _probes(dut, cfg: dict) -> list[dict]:
    """Per-layer probes of a debug run: the indexer's and the bank's output streams (a
    serial core's layer hands its indices over without a stream: only its sums, the
    layer's output, are probed)."""
    out = []
    for k in range(len(cfg["layers"])):
        layer = getattr(dut, f"layer{k}")
        if cfg["kind"] == "serial":
            p = {"sums": StreamProbe(dut.clk, StreamPort.of(layer, "o_stream"))}
        else:
            p = {
                "indices": StreamProbe(dut.clk, StreamPort.of(layer.indexer, "o_stream")),
                "sums": StreamProbe(dut.clk, StreamPort.of(layer.bank, "o_stream")),
            }
        for probe in p.values():
            probe.start()
        out.append(p)
    return out


def _probed_values(probes: list[dict], cfg: dict) -> list[dict]:
    out = []
    for p, lay in zip(probes, cfg["layers"], strict=True):
        values = {
            "sums": [unpack_vector(v, lay["acc_width"], lay["out_dim"]) for v in p["sums"].payloads]
        }
        if "indices" in p:
            values["indices"] = [
                unpack_vector(v, lay["n_c"], lay["n_tables"], signed=False)
                for v in p["indices"].payloads
            ]
        out.append(values)
    return out


def _compare_layers(golden: list[dict], probed: list[dict]) -> tuple[int, int]:
    """(values compared, values differing) over every layer's probed indices and sums."""
    checks = bad = 0
    for g, d in zip(golden, probed, strict=True):
        for what in d:
            n = len(g[what])
            checks += n
            bad += sum(g[what][v] != d[what][v] for v in range(min(n, len(d[what]))))
            bad += max(0, n - len(d[what]))
    return checks, bad


def _vector_payloads(cfg: dict, inputs: list) -> list[list[int]]:
    """Every vector's ``i_stream`` payloads, packed before the clock starts."""
    if cfg["indexer"] == "temporal":
        return [aer_payloads(x, cfg["event"], cfg["in_width"]) for x in inputs]
    if cfg["indexer"] == "payload":  # inputs given as packed payloads (hex)
        return [[int(x, 16)] for x in inputs]
    return [[pack_vector(x, cfg["in_width"])] for x in inputs]


async def _start(dut, cfg: dict, rng: random.Random):
    """Start the clock, reset the core with every stream idle; its driver and monitor."""
    period = cfg["period_ns"]
    # the clock toggles in the simulator interface (C++), not in a Python task
    cocotb.start_soon(Clock(dut.clk, period, unit="ns", impl="gpi").start())
    out_port = StreamPort.of(dut, "o_stream")
    driver = StreamDriver(dut.clk, StreamPort.of(dut, "i_stream"), rng=rng, period_ns=period)
    monitor = StreamMonitor(dut.clk, out_port, rng=rng, period_ns=period)
    driver.idle()
    out_port.ready.value = 0
    for name in cfg["write_ports"]:
        getattr(dut, f"{name}__valid").value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    return driver, monitor


def _layer_results(case: Path, cfg: dict, probes, board: Scoreboard) -> dict:
    """With probes (a debug run): every layer checked against the golden model's values and
    the first divergence located."""
    if probes is None:
        return {}
    golden = json.loads((case / "golden_layers.json").read_text())
    probed = _probed_values(probes, cfg)
    checks, bad = _compare_layers(golden, probed)
    out = {"layer_checks": checks, "layer_mismatches": bad}
    if board.mismatches:
        out["divergence"] = locate_divergence(board.mismatches[0].index, golden, probed)
    return out


@cocotb.test()
async def network_matches_golden(dut):
    """Every output of the core equals the golden model's, under random gaps and stalls."""
    case, cfg = _case()
    inputs = json.loads((case / "inputs.json").read_text())
    expected = [int(h, 16) for h in json.loads((case / "expected.json").read_text())]
    loads = {
        name: [int(h, 16) for h in words]
        for name, words in json.loads((case / "loads.json").read_text()).items()
    }
    period = cfg["period_ns"]
    rng = random.Random(cfg["seed"])
    decode = _decoder(cfg)
    vector_payloads = _vector_payloads(cfg, inputs)
    driver, monitor = await _start(dut, cfg, rng)
    wall0, cpu0, cycle0 = time.perf_counter(), time.process_time(), driver.cycle()

    for name, words in loads.items():
        writer = StreamDriver(dut.clk, StreamPort.of(dut, name), period_ns=period)
        await writer.send_all(words)
    load_cycles = driver.cycle() - cycle0
    load_wall = time.perf_counter() - wall0

    probes = _probes(dut, cfg) if cfg["debug"] else None
    board = Scoreboard(expected, inputs, decode)
    labels: list[int | None] = []
    out_cycles: list[int] = []

    async def feed(first: int, last: int) -> None:
        for vector in vector_payloads[first:last]:
            await driver.send_each(vector)
        driver.idle()

    async def drain(first: int, last: int) -> None:
        for n in range(first, last):
            payload, cycle = await monitor.recv()
            out_cycles.append(cycle)
            board.check(n, payload)
            labels.append(_label(cfg, payload))

    async def phase(first: int, last: int) -> None:
        if first >= last:
            return
        task = cocotb.start_soon(feed(first, last))
        await drain(first, last)
        await task

    n = len(inputs)
    burst = min(n, max(1, cfg["measure"]))

    offered: list[int] = []

    async def run_all() -> None:
        offered.append(driver.cycle())  # vector 0 is offered from this cycle on
        await phase(0, 1)
        await phase(1, burst)
        driver.gap_prob, driver.max_gap = cfg["gap_prob"], cfg["max_gap"]
        monitor.stall_prob, monitor.max_stall = cfg["stall_prob"], cfg["max_stall"]
        await phase(burst, n)

    await with_timeout(run_all(), cfg["timeout_cycles"] * period, "ns")
    result = {
        "checked": board.checked,
        "mismatches": board.n_mismatches,
        "first_mismatch": board.report(),
        "mismatch_vectors": [m.index for m in board.mismatches],
        "divergence": "",
        "latency_cycles": out_cycles[0] - offered[0] if n else None,
        "cycles_per_inference": (
            (out_cycles[burst - 1] - out_cycles[1]) / (burst - 2) if burst >= 3 else None
        ),
        "labels": labels,
        "cycles": driver.cycle() - cycle0,
        "load_cycles": load_cycles,
        "load_wall_seconds": load_wall,
        "wall_seconds": time.perf_counter() - wall0,
        "cpu_seconds": time.process_time() - cpu0,
        **_layer_results(case, cfg, probes, board),
    }
    write_text_atomic(case / "results.json", json.dumps(result))
    detail = f"\n{result['divergence']}" if result["divergence"] else ""
    assert board.n_mismatches == 0, board.report() + detail
    assert result.get("layer_mismatches", 0) == 0, (
        f"{result['layer_mismatches']} per-layer values differ from the golden model"
    )
