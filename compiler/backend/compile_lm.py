"""Compiling an integer language model (the spiking RNN) to its core: Verilog, RTLIL, manifest.

:func:`compile_lm` places the model's three memories for a target
(:func:`~spikelut.compiler.backend.sequence.fit_rnn`, or a given
:class:`~spikelut.compiler.backend.sequence.RNNPlan`), builds the
:class:`~spikelut.hdl.recurrent.RNNCore` and writes ``core.v``, ``core.il`` and
``manifest.json``: ports, the plan, per LUT its placement and bandwidth floor, the tables'
cycles per generated token (the cell's floor plus the unembedder's: a generated token is the
next input, so they add), the cycles per token and latency measured in Amaranth's simulator
(greedy; a sampled choice adds at most :func:`~spikelut.hdl.selector.sampled_choice_cycles`
and one cycle per rejected draw), block RAMs, SPRAMs, the logic estimate and tokens per
second at the clock. ``spikelut compile`` calls it for a language model.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from amaranth.back import rtlil, verilog

from spikelut.compiler.backend.compile import CORE_NAME, CompileError
from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.backend.latency import token_cycles
from spikelut.compiler.backend.manifest import component_ports
from spikelut.compiler.backend.placement import bandwidth_floor
from spikelut.compiler.backend.sequence import RNNFit, RNNPlan, fit_rnn, rnn_blocks, rnn_core
from spikelut.compiler.backend.targets import Target
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.selection import Selection
from spikelut.compiler.passes.widths import rnn_widths

__all__ = ["compile_lm", "plan_lm"]

_KINDS = (CoreKind.SERIAL, CoreKind.PARALLEL)


def plan_lm(
    model: IntegerRNN,
    target: Target,
    *,
    kind: CoreKind | str = "auto",
    optimize: str = "speed",
    logic_cells: int | None = None,
    block_rams: int | None = None,
) -> RNNFit:
    """The placement of ``model``'s core on ``target``: of ``kind`` (``"auto"``: the kind
    whose fit has the fewest estimated logic cells), fastest (``optimize="speed"``) or
    smallest (``"area"``) within the budgets; CompileError when nothing fits."""
    kinds = _KINDS if kind == "auto" else (CoreKind.parse(kind),)
    fits, errors = [], []
    for k in kinds:
        try:
            fits.append(
                fit_rnn(
                    model,
                    target,
                    kind=k,
                    optimize=optimize,
                    logic_cells=logic_cells,
                    block_rams=block_rams,
                )
            )
        except ValueError as e:
            errors.append(str(e))
    if not fits:
        # the kind that came nearest: a logic shortfall (its memories fit) before a memory one
        raise CompileError(min(errors, key=lambda e: "logic cells where" not in e))
    return min(fits, key=lambda f: f.estimate["logic_cells"])


def _lut_entry(name: str, p, widths) -> dict:
    floor = bandwidth_floor(p.n_tables, p.out_dim, p.tables_per_cycle, p.lanes)
    return {
        "lut": name,
        "storage": p.storage.name.lower(),
        "tables_per_cycle": p.tables_per_cycle,
        "lanes": p.lanes,
        "cycles": p.bank_cycles,
        "bandwidth_floor_cycles": floor,
        "memory_bits": p.memory_bits,
        "chunked": p.chunked,
        "widths": widths.to_dict(),
    }


def compile_lm(
    model: IntegerRNN,
    out_dir: str | os.PathLike,
    target: Target,
    *,
    kind: CoreKind | str = "auto",
    plan: RNNPlan | None = None,
    clock_mhz: float | None = None,
) -> dict:
    """Compile ``model`` for ``target`` into ``out_dir`` and return the manifest (see the
    module docstring); ``plan`` overrides the placement. CompileError when it does not fit."""
    t0 = time.perf_counter()
    clock_mhz = target.clock_mhz if clock_mhz is None else clock_mhz
    if not clock_mhz > 0:
        raise CompileError(f"--clock-mhz must be positive, not {clock_mhz:g}")
    if plan is None:
        fit = plan_lm(model, target, kind=kind)
        plan, estimate = fit.plan, fit.estimate
    else:
        estimate = None
    try:
        core = rnn_core(model, plan, Selection())
        brams, sprams = rnn_blocks(model, plan, target.family)
    except ValueError as e:
        raise CompileError(str(e)) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "core.v", verilog.convert(core, name=CORE_NAME, platform=target))
    write_text_atomic(out / "core.il", rtlil.convert(core, name=CORE_NAME, platform=target))
    latency, per_token, sampled = token_cycles(core)
    w = rnn_widths(model)
    u = core.unembedder
    result = {
        "architecture": "rnn-int",
        "target": target.name,
        "indexer": plan.kind.value,
        "plan": plan.to_json(),
        "ports": component_ports(core),
        "vocab": model.vocab,
        "dim": model.dim,
        "luts": [
            _lut_entry("cell", core.cell, w.cell),
            _lut_entry("unembedder", u, w.unembedder),
        ],
        "state_width": w.state_width,
        "table_cycles_per_token": core.table_cycles_per_token,
        "cycles_per_token": per_token,
        "sampled_cycles_per_token": sampled,
        "latency_cycles": latency,
        "block_rams": brams,
        "sprams": sprams,
        "estimate": estimate,
        "logic_cells_available": target.core_logic_cells,
        "clock_mhz": clock_mhz,
        "tokens_per_second": clock_mhz * 1e6 / per_token,
        "compile_seconds": round(time.perf_counter() - t0, 3),
    }
    write_text_atomic(out / "manifest.json", json.dumps(result, indent=1, sort_keys=True))
    return result
