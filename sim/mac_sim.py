"""Simulate the multiply-accumulate baseline core in cocotb against its integer reference.

:func:`check_mac_core` writes the case directory :mod:`spikelut.sim.tb_mac` reads, builds the
core's Verilog with Verilator through :func:`spikelut.sim.cocotb_runner.run_cocotb` and
returns what the testbench measured.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape

from spikelut.compiler.backend.mac import mac_params
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.mac import run_mac
from spikelut.hdl.mac import MACCore
from spikelut.sim.activity import TOGGLE_BUILD_ARGS, toggle_figures
from spikelut.sim.cocotb_runner import run_cocotb

__all__ = ["check_mac_core"]


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
    activity: bool = False,
) -> dict:
    """Run the MAC core of ``net`` (a :class:`~spikelut.compiler.ir.mac.MACNetwork`) with
    ``macs`` units on Verilator over the integer inputs ``x_int`` (B, in_dim); returns
    ``results.json`` as a dict (``checked``, ``mismatches``, ``cycles_per_inference``,
    ``latency_cycles``; with ``activity`` also ``toggles``, the design's switching counted by
    Verilator as :func:`spikelut.sim.network_sim.simulate` counts it). Raises :class:`~spikelut.sim.cocotb_runner.CocotbFailure` when an
    output differs from :func:`~spikelut.compiler.ir.mac.run_mac`."""
    x = np.atleast_2d(np.asarray(x_int, np.int64))
    params = mac_params(net, macs=macs)
    core = MACCore(params)
    ref = run_mac(net, x)
    layout = core.signature.members["o_stream"].signature.members["payload"].shape
    cfg = {
        "in_width": net.encoding.bits,
        "index_width": Shape.cast(layout["index"].shape).width,
        "logits_offset": layout["logits"].offset,
        "logit_width": params.logit_width,
        "n_classes": params.n_classes,
        "period_ns": 10,
        "seed": seed,
        "gap_prob": gap_prob,
        "max_gap": 4,
        "stall_prob": stall_prob,
        "max_stall": 30,
        "measure": measure,
        "timeout_cycles": (len(x) + 2) * (params.cycles_per_inference + 40) * 4,
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
            test_dir=case / "run",
            build_args=list(TOGGLE_BUILD_ARGS) if activity else None,
        )
        results = json.loads((case / "results.json").read_text())
        if activity:
            results["toggles"] = toggle_figures(case / "run", results["checked"])
        return results
    finally:
        if tmp is not None:
            tmp.cleanup()
