"""cocotb test of a language-model core: every chosen token (and logit) against the golden model.

Reads from ``$SPIKELUT_TB_DIR`` (written by :func:`spikelut.sim.lm_sim.write_lm_case`):
``tb.json`` (clock, seed, stream gaps and stalls, the table loads per write port, the
selector's configuration, the tokens fed, how many tokens are generated, how many steps'
logits are checked) and ``expected.json`` (the golden model's chosen token per step and
the logit chunks of the checked steps). Writes ``results.json``: steps checked, mismatches,
the first one, the chosen tokens, logit chunks checked and differing, cycles per token
(generated tokens, whose next input is the core's own answer), latency and wall time.

Phases: load the tables; configure the selector; feed the prompt tokens (``first`` on the
first) under random input gaps and output stalls, then feed each answer back as the next
token at full rate (generation), the way the host link's GENERATE does on a board.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout

from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.progress import report_to_parent
from spikelut.sim.cocotb_lib import StreamDriver, StreamMonitor, StreamPort


class _Tap:
    """Records the payloads of a tap port (``NAME__valid``, ``NAME__payload``) while
    ``active``, waking only when its ``valid`` changes or stays high."""

    def __init__(self, clk, scope, name: str):
        self.clk = clk
        self.valid = getattr(scope, f"{name}__valid")
        self.payload = getattr(scope, f"{name}__payload")
        self.payloads: list[int] = []
        self.active = True

    async def run(self) -> None:
        while self.active:
            await ReadOnly()
            if self.valid.value:
                self.payloads.append(int(self.payload.value))
                await RisingEdge(self.clk)
            else:
                await self.valid.value_change


async def _start(dut, cfg: dict, rng: random.Random):
    """Clock and reset with every stream idle, then load the tables; the token driver, the
    answer monitor and the cycles the loads took."""
    period = cfg["period_ns"]
    cocotb.start_soon(Clock(dut.clk, period, unit="ns", impl="gpi").start())
    feed = StreamDriver(dut.clk, StreamPort.of(dut, "i_stream"), rng=rng, period_ns=period)
    answers = StreamMonitor(dut.clk, StreamPort.of(dut, "o_stream"), rng=rng, period_ns=period)
    feed.idle()
    answers.port.ready.value = 0
    for name in cfg["write_ports"]:
        getattr(dut, f"{name}__valid").value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    cycle0 = feed.cycle()
    for name, words in cfg["loads"].items():
        writer = StreamDriver(dut.clk, StreamPort.of(dut, name), period_ns=period)
        await writer.send_all(int(h, 16) for h in words)
    return feed, answers, feed.cycle() - cycle0


def _compare(got: list[int], want: list[int], seen: list[int], chunks: list[str]) -> dict:
    """Mismatches of the answers and of the logit chunks the tap saw."""
    mismatches = [k for k, (g, w) in enumerate(zip(got, want, strict=False)) if g != w]
    seen = seen[: len(chunks)]
    bad = [k for k, (g, w) in enumerate(zip(seen, chunks, strict=False)) if g != int(w, 16)]
    first = ""
    if mismatches:
        k = mismatches[0]
        first = f"step {k}: token {got[k]}, golden {want[k]}"
    return {
        "checked": len(got),
        "mismatches": len(mismatches),
        "first_mismatch": first,
        "mismatch_steps": mismatches[:20],
        "logit_chunks_checked": len(seen),
        "logit_chunks_expected": len(chunks),
        "logit_mismatches": len(bad),
        "first_logit_mismatch": bad[0] if bad else None,
    }


@cocotb.test()
async def lm_matches_golden(dut):
    """Every answer of the core equals the golden model's, prompt and generation."""
    case = Path(os.environ["SPIKELUT_TB_DIR"])
    cfg = json.loads((case / "tb.json").read_text())
    expected = json.loads((case / "expected.json").read_text())
    rng = random.Random(cfg["seed"])
    wall0, cpu0 = time.perf_counter(), time.process_time()
    feed, answers, load_cycles = await _start(dut, cfg, rng)
    cycle0 = feed.cycle() - load_cycles
    tap = _Tap(dut.clk, dut, "o_logits")
    tap_task = cocotb.start_soon(tap.run())
    # the prompt under random gaps and stalls; generation at full rate, as a host link
    # feeds an answer straight back (its cycles per token are the core's own)
    feed.gap_prob, feed.max_gap = cfg["gap_prob"], cfg["max_gap"]
    answers.stall_prob, answers.max_stall = cfg["stall_prob"], cfg["max_stall"]
    prompt = cfg["tokens"]
    got: list[int] = []
    out_cycles: list[int] = []
    offered: list[int] = []

    async def run_all() -> None:
        for step in range(len(prompt) + cfg["generate"]):
            if step == len(prompt):
                feed.gap_prob = answers.stall_prob = 0.0
            token = prompt[step] if step < len(prompt) else got[-1]
            offered.append(feed.cycle())
            await feed.send(token | (int(step == 0) << cfg["token_bits"]))
            feed.idle()
            payload, cycle = await answers.recv()
            got.append(payload)
            out_cycles.append(cycle)
            report_to_parent(len(got), len(prompt) + cfg["generate"])
            if step + 1 == cfg["check_logits"]:
                tap.active = False

    await with_timeout(run_all(), cfg["timeout_cycles"] * cfg["period_ns"], "ns")
    tap.active = False
    tap_task.cancel()
    gen = out_cycles[len(prompt) :]
    result = {
        **_compare(got, expected["choices"], tap.payloads, expected["logit_chunks"]),
        "choices": got,
        "latency_cycles": out_cycles[0] - offered[0] if got else None,
        "cycles_per_token": (gen[-1] - gen[0]) / (len(gen) - 1) if len(gen) >= 2 else None,
        "cycles": feed.cycle() - cycle0,
        "load_cycles": load_cycles,
        "wall_seconds": time.perf_counter() - wall0,
        "cpu_seconds": time.process_time() - cpu0,
    }
    write_text_atomic(case / "results.json", json.dumps(result))
