"""Compiling an integer classifier to a network core: kind, placement, Verilog, manifest.

:func:`plan_core` decides what to build for a :class:`~spikelut.compiler.backend.targets.Target`:
the core kind (given, or :func:`~spikelut.compiler.backend.cores.choose_core` among the kinds
that can run the model) and the placement of every layer's tables (given, or the fastest in
block RAM, and SPRAM on an UltraPlus, that fits the target's memories and, by the logic
estimate, its logic cells beside the host link; with a ``throughput`` the smallest placement
that reaches it at ``clock_mhz``). With a ``goal`` (``throughput`` or ``area``) the automatic
choice also considers the frozen core and picks by that goal; the plan says why
(``CorePlan.reason``). What cannot fit is refused, with the shortfall, before anything is
elaborated.

:func:`compile_core` writes the chosen core's ``core.v``, ``core.il`` and ``manifest.json``
(:func:`~spikelut.compiler.backend.manifest` plus the target, the clock, the rate,
the block RAMs and SPRAMs used and the compile time). ``spikelut compile`` is this function;
the demo uses it with a board's placement.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil, verilog

from spikelut.compiler.backend.cores import (
    CoreKind,
    auto_kinds,
    build_core,
    choice_reason,
    choose_core,
    core_cycles,
    eligible_kinds,
    unsupported_reason,
)
from spikelut.compiler.backend.estimate import estimate_logic
from spikelut.compiler.backend.manifest import manifest
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.placement import FROZEN_SHRINK, core_blocks, fit_plans
from spikelut.compiler.backend.plan import LayerPlan, plans_to_json
from spikelut.compiler.backend.targets import Target
from spikelut.compiler.errors import UserError
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.passes.widths import LayerWidths
from spikelut.hdl.frozen import check_frozen
from spikelut.hdl.layer_params import LayerParams, check_serial
from spikelut.hdl.storage import Storage

__all__ = ["CompileError", "CorePlan", "compile_core", "plan_core"]

CORE_NAME = "spikelut_core"


class CompileError(UserError):
    """The model cannot be compiled as asked for the target; the message says what is short.

    ``fastest_cycles``: for a throughput that no placement reaches, the cycles per inference
    of the fastest placement that fits (so the automatic choice reports the best kind)."""

    def __init__(self, message: str, *, fastest_cycles: int | None = None):
        super().__init__(message)
        self.fastest_cycles = fastest_cycles


@dataclass(frozen=True, eq=False)
class CorePlan:
    """What :func:`plan_core` decided: the core ``kind``, every layer's placement
    (``plans``), the checked layer parameters and widths, the logic ``estimate`` and the
    ``block_rams`` and ``sprams`` the core takes; ``reason``: why the automatic choice
    picked ``kind`` (empty when it was asked for)."""

    kind: CoreKind
    plans: list[LayerPlan]
    params: list[LayerParams]
    widths: list[LayerWidths]
    estimate: dict
    block_rams: int
    sprams: int
    reason: str = ""

    @property
    def cycles_per_inference(self) -> int:
        """Cycles between inferences at full rate."""
        return core_cycles(self.params)


def _plan_kind(model, kind, target, *, placement, plans, throughput, clock_mhz, cells):
    """The :class:`CorePlan` of ``kind`` (placement given or picked); CompileError when it
    does not fit."""
    reason = unsupported_reason(kind, model)
    if reason:
        raise CompileError(f"{reason}; use the parallel core")
    if plans is None and placement is not None:
        _check_placement(placement, kind, target)
        plans = [placement] * len(model.layers)
    try:
        if plans is None:
            plans = _auto_plans(model, kind, target, throughput, clock_mhz, cells)
        params, widths = network_params(model, plans, kind=kind)
        check = {CoreKind.SERIAL: check_serial, CoreKind.FROZEN: check_frozen}.get(kind)
        for k, p in enumerate(params if check else ()):
            check(p, k)
    except ValueError as e:
        raise CompileError(str(e)) from None
    brams, sprams = core_blocks(kind, params, target.family)
    if brams > target.block_rams or sprams > target.sprams:
        raise CompileError(
            f"the {kind.value} core needs {brams} block RAMs and {sprams} SPRAMs, "
            f"{target.name} has {target.block_rams} and {target.sprams}; lower "
            "--tables-per-cycle/--lanes or change --storage"
        )
    est = estimate_logic(params, target.family, kind)
    if est["logic_cells"] > cells:
        fix = (
            FROZEN_SHRINK
            if kind is CoreKind.FROZEN
            else "lower --tables-per-cycle/--lanes, try the serial or temporal core, or use "
            "fewer tables, a smaller N_C or a larger device"
        )
        raise CompileError(
            f"the {kind.value} core needs about {est['logic_cells']} logic cells (estimated), "
            f"{est['logic_cells'] - cells} more than the {cells} {target.name} leaves beside "
            f"the host link; {fix}"
        )
    return CorePlan(kind, list(plans), params, widths, est, brams, sprams)


def _check_placement(placement: LayerPlan, kind: CoreKind, target: Target) -> None:
    """CompileError for a placement the target or the core kind cannot take."""
    if placement.storage == Storage.SPRAM and not target.sprams:
        raise CompileError(f"{target.name} has no SPRAM; use --storage bram or lutram")
    if kind is CoreKind.SERIAL and placement.storage == Storage.LOGIC:
        raise CompileError("the serial core reads tables from memory; drop --storage logic")
    if kind is CoreKind.FROZEN and placement != LayerPlan(Storage.LOGIC):
        raise CompileError("the frozen core keeps every table in logic; drop --storage/-P/-L")


def _auto_plans(model, kind, target, throughput, clock_mhz, cells) -> list[LayerPlan]:
    """The placement to use when none was given: the fastest that fits, or with
    ``throughput`` the smallest that reaches it (CompileError saying what is reachable)."""
    kw = dict(
        family=target.family,
        block_rams=target.block_rams,
        sprams=target.sprams,
        logic_cells=cells,
        kind=kind,
    )
    if not throughput:
        return fit_plans(model, **kw)
    max_cycles = int(clock_mhz * 1e6 // throughput)
    try:
        return fit_plans(model, max_cycles=max_cycles, smallest=True, **kw)
    except ValueError:
        fastest = fit_plans(model, **kw)  # raises when nothing fits at all
        params, _ = network_params(model, fastest, kind=kind)
        cycles = core_cycles(params)
        raise CompileError(
            f"{throughput:g} inferences/s at {clock_mhz:g} MHz needs at most "
            f"{max(max_cycles, 0)} cycles per inference; the fastest placement that fits "
            f"{target.name} takes {cycles}: {clock_mhz * 1e6 / cycles:.0f} inferences/s "
            "(raise --clock-mhz or choose a larger device)",
            fastest_cycles=cycles,
        ) from None


def _plan_auto(model, target, goal, kw) -> CorePlan:
    """The automatic choice of :func:`plan_core` (``kw``: its placement options)."""
    try:
        kinds = auto_kinds(goal)
    except ValueError as e:
        raise CompileError(str(e)) from None
    fits, failures = {}, []
    for candidate in eligible_kinds(model, kinds):
        try:
            fits[candidate] = _plan_kind(model, candidate, target, **kw)
        except CompileError as e:
            failures.append(e)
    if not fits:
        # a throughput out of reach: report the kind that comes closest
        reachable = [e for e in failures if e.fastest_cycles is not None]
        raise min(reachable, key=lambda e: e.fastest_cycles) if reachable else failures[0]
    best = choose_core(
        {k: p.estimate["logic_cells"] for k, p in fits.items()},
        {k: p.cycles_per_inference for k, p in fits.items()},
        goal=goal,
    )
    return dataclasses.replace(fits[best], reason=choice_reason(best, goal))


def plan_core(
    model: ClassifierMLP,
    target: Target,
    *,
    kind: CoreKind | str = "auto",
    placement: LayerPlan | None = None,
    plans: list[LayerPlan] | None = None,
    throughput: float | None = None,
    clock_mhz: float | None = None,
    logic_cells: int | None = None,
    goal: str | None = None,
) -> CorePlan:
    """Decide the core of an integer classifier for ``target`` (see the module docstring).

    ``kind``: a :class:`CoreKind` or ``"auto"``; ``placement``: one placement for every
    layer, or ``plans``: one per layer (else picked); ``throughput`` (inferences/s at
    ``clock_mhz``, default the target's clock): pick the smallest placement reaching it;
    ``logic_cells``: the budget (default the target's less the host link's); ``goal``
    (``"throughput"`` or ``"area"``, ``kind="auto"`` only): the automatic choice considers
    the frozen core too and picks the fewest cycles per inference (throughput) or logic
    cells (area). Raises :class:`CompileError` when nothing fits.
    """
    if not isinstance(model, ClassifierMLP) or not model.is_integer:
        raise CompileError("the backend compiles integer classifiers; run spikelut quantize first")
    if (placement is not None or plans is not None) and throughput:
        raise CompileError("--throughput picks the placement: drop --storage/-P/-L")
    if throughput is not None and not throughput > 0:
        raise CompileError(f"--throughput must be positive, not {throughput:g}")
    clock_mhz = target.clock_mhz if clock_mhz is None else clock_mhz
    cells = target.core_logic_cells if logic_cells is None else logic_cells
    kw = dict(
        placement=placement, plans=plans, throughput=throughput, clock_mhz=clock_mhz, cells=cells
    )
    if kind != "auto":
        if goal is not None:
            raise CompileError("--optimize picks the core kind: use it with --core auto")
        try:
            kind = CoreKind.parse(kind)
        except ValueError as e:
            raise CompileError(str(e)) from None
        return _plan_kind(model, kind, target, **kw)
    return _plan_auto(model, target, goal, kw)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (Yosys writing the Verilog)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def compile_core(
    model: ClassifierMLP,
    out_dir: str | os.PathLike,
    target: Target,
    *,
    kind: CoreKind | str = "auto",
    placement: LayerPlan | None = None,
    plans: list[LayerPlan] | None = None,
    throughput: float | None = None,
    clock_mhz: float | None = None,
    core: CorePlan | None = None,
    goal: str | None = None,
) -> dict:
    """Compile ``model`` for ``target`` into ``out_dir`` (``core.v``, ``core.il``,
    ``manifest.json``) and return the manifest; options as :func:`plan_core`, or ``core``:
    a core already decided (a board build's, so that what is compiled and verified is what
    the bitstream holds). Raises :class:`CompileError` before writing anything when the core
    does not fit."""
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    clock_mhz = target.clock_mhz if clock_mhz is None else clock_mhz
    if not clock_mhz > 0:
        raise CompileError(f"--clock-mhz must be positive, not {clock_mhz:g}")
    plan = core or plan_core(
        model,
        target,
        kind=kind,
        placement=placement,
        plans=plans,
        throughput=throughput,
        clock_mhz=clock_mhz,
        goal=goal,
    )
    net = build_core(plan.kind, plan.params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "core.v", verilog.convert(net, name=CORE_NAME, platform=target))
    write_text_atomic(out / "core.il", rtlil.convert(net, name=CORE_NAME, platform=target))
    result = manifest(net, plan.kind, plan.widths, family=target.family)
    rate = clock_mhz * 1e6 / result["cycles_per_inference"]
    result.update(
        target=target.name,
        indexer=plan.kind.value,
        indexer_requested=kind if isinstance(kind, str) else kind.value,
        core_choice=plan.reason,
        optimize=goal,
        plans=plans_to_json(plan.plans),
        block_rams=plan.block_rams,
        sprams=plan.sprams,
        logic_cells_available=target.core_logic_cells,
        clock_mhz=clock_mhz,
        inferences_per_second=rate,
        inferences_per_second_per_logic_cell=rate / plan.estimate["logic_cells"],
        compile_seconds=round(time.perf_counter() - t0, 3),
        compile_cpu_seconds=round(_cpu_seconds() - cpu0, 3),
    )
    write_text_atomic(out / "manifest.json", json.dumps(result, indent=1, sort_keys=True))
    return result
