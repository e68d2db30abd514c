"""The toolchain smoke tests behind ``spikelut doctor`` and the foundation tests.

Each check builds the :class:`~spikelut.hdl.counter.Counter` through one part of the chain
and returns a :class:`CheckResult`; none raises for a failing tool, so the doctor can report
every check.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth import Module
from amaranth.lib import io, wiring
from amaranth.sim import Simulator

from spikelut.boards.platforms import board as board_spec
from spikelut.compiler.build import toolchain
from spikelut.compiler.build.synthesis import run_build
from spikelut.hdl.counter import Counter
from spikelut.sim.cocotb_runner import run_cocotb


@dataclass
class CheckResult:
    """Outcome of one smoke check: ``ok``, a one-line ``detail``, and measured ``figures``."""

    name: str
    ok: bool
    detail: str
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)


@contextlib.contextmanager
def quiet_stdout(log: str | os.PathLike):
    """Send this process's stdout and stderr (file descriptors 1 and 2, so the
    simulator subprocesses' output too) to ``log`` for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _timed(name, fn) -> CheckResult:
    start = time.monotonic()
    try:
        detail, figures = fn()
        ok = True
    except Exception as e:  # a smoke check reports any failure as a result, never raises
        detail, figures, ok = (
            f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}",
            {},
            False,
        )
    return CheckResult(name, ok, detail, time.monotonic() - start, figures)


def check_amaranth_sim(width: int = 4) -> CheckResult:
    """The counter in Amaranth's simulator counts enabled cycles across a wrap."""

    def run():
        dut = Counter(width=width)
        sim = Simulator(dut)
        sim.add_clock(1e-6)
        seen = []

        async def bench(ctx):
            ctx.set(dut.en, 1)
            for _ in range((1 << width) + 3):
                seen.append(ctx.get(dut.count))
                await ctx.tick()

        sim.add_testbench(bench)
        sim.run()
        expected = [i % (1 << width) for i in range(len(seen))]
        if seen != expected:
            raise AssertionError(f"counter gave {seen}, expected {expected}")
        return f"{len(seen)} cycles, wrap seen", {"cycles": len(seen)}

    return _timed("amaranth-sim", run)


def check_verilator(build_dir: str | os.PathLike | None = None, width: int = 4) -> CheckResult:
    """The counter's Verilog, simulated by cocotb on Verilator, counts correctly."""

    def run():
        toolchain.prepare_cocotb_environment()  # fail before building anything
        root = Path(build_dir) if build_dir else Path(tempfile.mkdtemp(prefix="spikelut-smoke-"))
        root.mkdir(parents=True, exist_ok=True)
        with quiet_stdout(root / "cocotb.log"):
            results = run_cocotb(
                Counter(width=width),
                toplevel="counter",
                test_module="spikelut.sim.tb_counter",
                build_dir=root,
                env={"COUNTER_WIDTH": str(width)},
            )
        version = ".".join(map(str, toolchain.verilator_version()))
        return f"cocotb {len(results.tests)} test passed on Verilator {version}", {
            "tests": len(results.tests)
        }

    return _timed("verilator+cocotb", run)


class _Blinky(wiring.Component):
    """Counter top for a board: the counter's top bit on LED 0."""

    def __init__(self, width: int):
        self._width = width
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.counter = counter = Counter(width=self._width)
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += [counter.en.eq(1), led.o.eq(counter.count[-1])]
        return m


def check_bitstream(board: str, build_dir: str | os.PathLike | None = None) -> CheckResult:
    """Synthesise, place, route and pack the counter for ``board``; timing must pass."""

    def run():
        spec = board_spec(board)
        root = Path(build_dir) if build_dir else Path(tempfile.mkdtemp(prefix="spikelut-smoke-"))
        report = run_build(
            _Blinky(24),
            spec.platform(),
            root,
            target=spec.target,
            board=spec.name,
            target_mhz=spec.clock_hz / 1e6,
            progress=lambda msg: None,
        )
        if report.bitstream is None:
            raise AssertionError(f"no bitstream: {report.suggestion}")
        if not report.timing_met:
            raise AssertionError("nextpnr reports timing failed")
        bitstream = Path(report.bitstream)
        summary = ", ".join(f"{mhz:.1f} MHz" for mhz in report.fmax_mhz.values())
        return f"{bitstream.name} {bitstream.stat().st_size} bytes, Fmax {summary}", {
            "bitstream": str(bitstream),
            "bytes": bitstream.stat().st_size,
            "fmax_mhz": report.fmax_mhz,
            "logic_cells": report.used("logic_cells"),
        }

    return _timed(f"bitstream:{board}", run)
