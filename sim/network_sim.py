"""Simulate a compiled classifier core in cocotb against the integer golden model.

:func:`simulate` builds the core of a quantised classifier (the placement ``spikelut
compile`` picks for a target, or given plans), writes the input vectors, the golden outputs
and the table loads for :mod:`spikelut.sim.tb_network` (:func:`write_case`), runs it with
Verilator through :func:`spikelut.sim.cocotb_runner.run_cocotb` (cached builds) or with Icarus
Verilog where installed, and returns a :class:`SimReport`. When an output differs it re-runs
the vectors up to the first mismatch in debug mode (per-layer probes) to name the first
layer and table where the design leaves the golden model.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from cocotb_tools.runner import get_runner

from spikelut.compiler.backend.cores import CoreKind, build_core
from spikelut.compiler.backend.manifest import manifest
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.placement import fit_plans
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.backend.targets import TARGETS, Target
from spikelut.compiler.build import toolchain
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.golden import lut_rows, run_classifier
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.storage import Storage, bank_image
from spikelut.sim.activity import TOGGLE_BUILD_ARGS, toggle_figures
from spikelut.sim.cocotb_lib import pack_value
from spikelut.sim.cocotb_runner import CocotbFailure, run_cocotb, to_verilog
from spikelut.sim.netlist import CELL_MODEL_ARGS, synthesize

__all__ = [
    "SimReport",
    "SimulatorUnavailable",
    "core_for",
    "simulate",
    "write_case",
]

TOPLEVEL = "spikelut_core"
TEST_MODULE = "spikelut.sim.tb_network"
PERIOD_NS = 10


class SimulatorUnavailable(RuntimeError):
    """The requested simulator is not installed (a reason to skip, never to fail)."""


@dataclass
class SimReport:
    """What one simulation measured.

    ``mismatches`` counts outputs that differ from the golden model (``first_mismatch`` and
    ``divergence`` describe the first); ``accuracy`` is the hardware's on the labels given
    (None without labels or without argmax); ``cycles_per_inference`` is the measured
    steady-state interval between outputs, ``latency_cycles`` from the cycle an input is
    first offered to its output's transfer; ``cycles_per_second`` is simulated clock cycles per wall second of the
    cocotb test (table loading included), ``inference_cycles_per_second`` the same after the
    tables are loaded, ``cycles_per_cpu_second`` per second of the simulator process's CPU
    time (what an unloaded machine reaches). ``kind`` is the core kind simulated;
    ``netlist`` (for a post-synthesis run) the family, Yosys's cell counts and the synthesis
    time. A debug run also compares every layer's indices
    and bank sums with the golden model's (``layer_checks`` vectors, ``layer_mismatches``).
    ``toggles``: for a run with ``activity``, the design's switching
    (:class:`~spikelut.sim.activity.ToggleCounts` as a dict, with ``per_bit_per_inference``).
    """

    simulator: str
    vectors: int
    mismatches: int
    first_mismatch: str
    divergence: str
    accuracy: float | None
    cycles_per_inference: float | None
    expected_cycles_per_inference: int
    latency_cycles: int | None
    latency_ns: float | None
    cycles: int
    load_cycles: int
    sim_wall_seconds: float
    cycles_per_second: float
    inference_cycles_per_second: float
    cycles_per_cpu_second: float
    build_seconds: float
    build_cached: bool
    total_seconds: float
    layers: list = field(default_factory=list)
    waves: str | None = None
    layer_checks: int | None = None
    layer_mismatches: int | None = None
    kind: str = "parallel"
    netlist: dict | None = None
    toggles: dict | None = None

    def to_dict(self) -> dict:
        """JSON-able fields."""
        return asdict(self)


def _rate(cycles: float, seconds: float) -> float:
    return cycles / seconds if seconds > 0 else 0.0


def core_for(
    model: ClassifierMLP,
    *,
    plans=None,
    target: Target = TARGETS["ice40-up5k"],
    kind: CoreKind = CoreKind.PARALLEL,
    argmax: bool = True,
):
    """``(core, widths)`` of an integer classifier: a core of ``kind`` placed by ``plans`` (a
    :class:`LayerPlan` or one per layer), or by the fastest placement that fits ``target``'s
    memories; without ``argmax`` the core outputs the last layer's vector."""
    if plans is None:
        plans = fit_plans(
            model, family=target.family, block_rams=target.block_rams, sprams=target.sprams,
            kind=kind,
        )  # fmt: skip
    params, widths = network_params(model, plans, kind=kind)
    return build_core(kind, params, argmax=argmax), widths


def _hex(values) -> list[str]:
    return [format(int(v), "x") for v in values]


def _loads(net, ports: dict, *, all_memories: bool) -> dict:
    """Table-write payloads (hex) per ``w{k}_stream``: SPRAM banks (never initialised by a
    bitstream), or every memory bank with ``all_memories``."""
    out = {}
    for k, p in enumerate(net.layers):
        if p.storage == Storage.LOGIC:
            continue
        if p.storage != Storage.SPRAM and not all_memories:
            continue
        desc = ports[f"w{k}_stream"]["payload"]
        image = bank_image(p.tables, tables_per_cycle=p.tables_per_cycle, lanes=p.lanes)
        payloads = [
            pack_value(desc, {"lane": lane, "addr": addr, "data": image[lane, addr].tolist()})
            for lane in range(image.shape[0])
            for addr in range(image.shape[1])
        ]
        out[f"w{k}_stream"] = _hex(payloads)
    return out


def write_case(
    case_dir: str | os.PathLike,
    net,
    kind: CoreKind,
    widths,
    model: ClassifierMLP,
    x: np.ndarray,
    *,
    seed: int = 0,
    gap_prob: float = 0.2,
    stall_prob: float = 0.2,
    max_gap: int = 3,
    measure: int = 16,
    debug: bool = False,
    load_all: bool = False,
) -> dict:
    """Write the files :mod:`spikelut.sim.tb_network` reads; returns the manifest of ``net``.

    ``x``: (B, D) integer inputs; ``measure``: vectors of the timing burst; ``load_all``:
    load every memory bank through its write port, not only SPRAM.
    """
    case = Path(case_dir)
    case.mkdir(parents=True, exist_ok=True)
    x = np.asarray(x, np.int64)
    man = manifest(net, kind, widths)
    ports = man["ports"]
    trace = run_classifier(model, x)
    out_desc = ports["o_stream"]["payload"]
    if net.argmax:
        expected = [
            pack_value(out_desc, {"index": int(p), "logits": row.tolist()})
            for p, row in zip(trace.predictions, trace.logits, strict=True)
        ]
    else:
        expected = [pack_value(out_desc, row.tolist()) for row in trace.logits]
    temporal = net.layers[0].indexer == IndexerKind.TEMPORAL
    cpi = net.cycles_per_inference
    per_vector = (cpi + (x.shape[1] if temporal else 1)) * (max_gap + 2) + 64
    loads = _loads(net, ports, all_memories=load_all)
    n_loads = sum(len(v) for v in loads.values())
    cfg = {
        "period_ns": PERIOD_NS,
        "seed": seed,
        "indexer": "temporal" if temporal else "parallel",
        "kind": kind.value,
        "in_width": net.layers[0].in_width,
        "event": ports["i_stream"]["payload"] if temporal else None,
        "out": out_desc,
        "layers": [
            {
                "n_c": p.n_c,
                "n_tables": p.n_tables,
                "acc_width": p.out_width,
                "out_dim": p.out_dim,
            }
            for p in net.layers
        ],
        "write_ports": [p for p in ports if p.startswith("w") and p.endswith("_stream")],
        "measure": measure,
        "gap_prob": gap_prob,
        "stall_prob": stall_prob,
        "max_gap": max_gap,
        "max_stall": max_gap,
        "debug": debug,
        "timeout_cycles": len(x) * per_vector * 2 + 2 * n_loads + 10_000,
    }
    (case / "results.json").unlink(missing_ok=True)
    write_text_atomic(case / "tb.json", json.dumps(cfg))
    write_text_atomic(case / "inputs.json", json.dumps(x.tolist()))
    write_text_atomic(case / "expected.json", json.dumps(_hex(expected)))
    write_text_atomic(case / "loads.json", json.dumps(loads))
    if debug:
        golden = []
        for layer, j in zip(model.layers, trace.indices, strict=True):
            sums = lut_rows(layer, j).sum(axis=1)
            golden.append({"indices": j.tolist(), "sums": sums.tolist()})
        write_text_atomic(case / "golden_layers.json", json.dumps(golden))
    else:
        (case / "golden_layers.json").unlink(missing_ok=True)
    return man


def _results(case: Path) -> dict:
    """The testbench's results.json; RuntimeError with the log's tail when it did not finish
    (a hang caught by its timeout, or a crash)."""
    path = case / "results.json"
    if not path.exists():
        log = case / "run" / "sim.log"
        tail = "\n".join(log.read_text().splitlines()[-20:]) if log.exists() else "(no log)"
        raise RuntimeError(f"the testbench did not finish (hang or crash):\n{tail}")
    return json.loads(path.read_text())


def _run(
    design,
    case: Path,
    *,
    simulator: str,
    seed: int,
    waves,
    build_dir,
    optimize=False,
    debug=False,
    libraries=(),
    activity=False,
):
    """Run the test on ``design`` (an elaborated core, or a synthesised netlist's Verilog
    with its cell models in ``libraries``) with ``simulator``; returns ``(build_seconds,
    cached, waves)``. ``activity``: built with toggle coverage (Verilator only).

    A Verilator build shows Python only the core's ports unless ``debug`` (whose probes read
    every layer's streams): several times faster on a large core."""
    env = {"SPIKELUT_TB_DIR": str(case.resolve())}
    if simulator == "verilator":
        res = run_cocotb(
            design,
            toplevel=TOPLEVEL,
            test_module=TEST_MODULE,
            build_dir=build_dir,
            test_dir=case / "run",
            env=env,
            waves=waves,
            seed=seed,
            check=False,
            optimize=optimize,
            public="all" if debug else "ports",
            libraries=libraries,
            build_args=[
                *(CELL_MODEL_ARGS if libraries else ()),
                *(TOGGLE_BUILD_ARGS if activity else ()),
            ],
        )
        if not res.tests:
            log = case / "run" / "sim.log"
            tail = "\n".join(log.read_text().splitlines()[-20:]) if log.exists() else ""
            raise RuntimeError(f"the simulation did not run its test:\n{tail}")
        return res.build_seconds, res.cached, res.waves
    if simulator == "icarus":
        return _run_icarus(design, case, env=env, seed=seed, waves=waves, libraries=libraries)
    raise ValueError(f"unknown simulator {simulator!r}; use verilator or icarus")


def _run_icarus(design, case: Path, *, env, seed, waves, libraries=()):
    if shutil.which("iverilog") is None:
        raise SimulatorUnavailable(
            "Icarus Verilog (iverilog) is not installed; install it (Debian: apt-get install "
            "iverilog) or use --simulator verilator"
        )
    toolchain.prepare_cocotb_environment()
    bdir = case / "icarus_build"
    src = case / f"{TOPLEVEL}.v"
    write_text_atomic(src, to_verilog(design, TOPLEVEL))
    runner = get_runner("icarus")
    t0 = time.monotonic()
    log = case / "icarus_build.log"
    try:
        runner.build(
            sources=[src, *libraries],
            includes=sorted({str(Path(f).parent) for f in libraries}),
            hdl_toplevel=TOPLEVEL,
            build_dir=bdir,
            timescale=("1ns", "1ps"),
            waves=waves is not None,
            log_file=log,
        )
    except (RuntimeError, SystemExit) as e:
        kept = Path(tempfile.mkdtemp(prefix="spikelut-icarus-")) / log.name
        if log.exists():
            shutil.copyfile(log, kept)  # the case folder is removed on the way out
        raise CocotbFailure(
            f"Icarus build of {TOPLEVEL} failed ({' '.join(str(e).split())}); its log is {kept}"
        ) from None
    build_seconds = time.monotonic() - t0
    with contextlib.suppress(SystemExit):  # failures are read from results.json
        runner.test(
            test_module=TEST_MODULE,
            hdl_toplevel=TOPLEVEL,
            build_dir=bdir,
            test_dir=case / "run",
            extra_env=env,
            seed=seed,
            waves=waves is not None,
            log_file=case / "run" / "sim.log",
        )
    return build_seconds, False, None


def simulate(
    model: ClassifierMLP,
    x: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    plans: list[LayerPlan] | LayerPlan | None = None,
    target: Target = TARGETS["ice40-up5k"],
    kind: CoreKind | str = CoreKind.PARALLEL,
    argmax: bool = True,
    simulator: str = "verilator",
    seed: int = 0,
    waves: str | os.PathLike | None = None,
    gap_prob: float = 0.2,
    stall_prob: float = 0.2,
    debug: bool = False,
    load_all: bool = False,
    build_dir: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    golden: ClassifierMLP | None = None,
    optimize: bool = False,
    netlist: bool = False,
    activity: bool = False,
    progress=None,
) -> SimReport:
    """Simulate the core of integer classifier ``model`` on inputs ``x`` (B, D) and compare
    every output with the golden model.

    ``kind``: the core kind (:class:`~spikelut.compiler.backend.cores.CoreKind`; temporal:
    layer 0 reads AER spike events), placed by ``plans`` or for ``target``;
    ``argmax``: end with the argmax (else every output is the last layer's vector);
    ``labels``: true classes, for the accuracy; ``waves``: a ``.vcd``/``.fst`` trace file
    (Verilator); ``build_dir``: the Verilator build cache (default: the runner's);
    ``work_dir``: where the case files go (default: a temporary directory, removed);
    ``golden``: the model the outputs are checked against (default ``model``; another one
    injects a fault, to test the checking itself); ``debug``: also compare every layer's
    indices and bank sums (slower: probes wake every cycle); ``optimize``: compile the
    Verilator model with -O2 (longer build, faster simulation); ``netlist``: simulate the
    core as Yosys synthesises it for ``target``'s family (:mod:`spikelut.sim.netlist`, vendor
    cell models) instead of its RTL; ``activity``: count every signal bit's toggles
    (Verilator toggle coverage, :mod:`spikelut.sim.activity`) into the report's ``toggles``;
    ``progress``: called with a line per stage.
    Raises :class:`SimulatorUnavailable` when the simulator is not installed and
    ``ValueError`` for a float model or bad options.
    """
    x = _check_options(
        model, x, simulator=simulator, waves=waves, netlist=netlist, family=target.family,
        debug=debug, activity=activity,
    )  # fmt: skip
    kind = CoreKind.parse(kind)
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    net, widths = core_for(model, plans=plans, target=target, kind=kind, argmax=argmax)
    tmp = None
    if work_dir is None:
        tmp = tempfile.mkdtemp(prefix="spikelut-sim-")
        work_dir = tmp
    try:
        case = Path(work_dir)
        opts = dict(seed=seed, gap_prob=gap_prob, stall_prob=stall_prob, load_all=load_all)
        ref = model if golden is None else golden
        man = write_case(case, net, kind, widths, ref, x, debug=debug, **opts)
        design, libraries, synth = net, (), None
        if netlist:
            say(f"sim: synthesising the {kind.value} core for {target.family} with Yosys")
            synth = synthesize(net, target, case / "netlist", top=TOPLEVEL)
            design, libraries = synth.path, synth.libraries
        say(f"sim: {simulator} on {len(x)} vectors ({'netlist' if netlist else 'RTL'})")
        run = dict(simulator=simulator, seed=seed, build_dir=build_dir, optimize=optimize)
        build_s, cached, wave_out = _run(
            design, case, waves=waves, debug=debug, libraries=libraries, activity=activity, **run
        )
        res = _results(case)
        if activity:
            res["toggles"] = toggle_figures(case / "run", res["checked"])
        if res["mismatches"] and netlist:
            res["divergence"] = (
                "in the synthesised netlist (no per-layer probes there); run without "
                "--netlist: if the RTL matches, synthesis changed the design"
            )
        if res["mismatches"] and not res["divergence"]:
            first = res["mismatch_vectors"][0]
            dcase = case / "debug"
            write_case(dcase, net, kind, widths, ref, x[: first + 1], debug=True, **opts)
            _run(net, dcase, waves=None, debug=True, **run)
            dres = _results(dcase)
            res["divergence"] = dres["divergence"] or "the debug re-run did not reproduce it"
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    accuracy = None
    if labels is not None and argmax:
        hw = np.asarray(res["labels"], np.int64)
        accuracy = float((hw == np.asarray(labels)[: len(hw)]).mean())
    return _report(
        res,
        man,
        simulator=simulator,
        kind=kind,
        accuracy=accuracy,
        build=(build_s, cached),
        seconds=time.perf_counter() - t0,
        waves=wave_out,
        synth=synth,
    )


def _check_options(model, x, *, simulator, waves, netlist, family, debug, activity) -> np.ndarray:
    """The inputs as a (B, D) int64 array; ValueError (or SimulatorUnavailable) for what
    :func:`simulate` cannot do."""
    if not isinstance(model, ClassifierMLP) or not model.is_integer:
        raise ValueError("simulation needs a quantised classifier; run spikelut quantize first")
    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"unknown simulator {simulator!r}; use verilator or icarus")
    if netlist and debug:
        raise ValueError("a synthesised netlist has no per-layer probes; drop debug")
    if netlist and family == "ecp5" and simulator == "icarus":
        # Yosys's ECP5 cell models use SystemVerilog that iverilog does not parse
        raise ValueError("an ECP5 netlist runs with --simulator verilator only")
    if simulator == "icarus" and waves is not None:
        raise ValueError("traces (--waves) are written with --simulator verilator only")
    if simulator == "icarus" and activity:
        raise ValueError("switching activity is counted with --simulator verilator only")
    if simulator == "icarus" and shutil.which("iverilog") is None:
        raise SimulatorUnavailable(
            "Icarus Verilog (iverilog) is not installed; install it (Debian: apt-get install "
            "iverilog) or use --simulator verilator"
        )
    x = np.atleast_2d(np.asarray(x, np.int64))
    if x.shape[1] != model.encoding.width or len(x) == 0:
        raise ValueError(f"inputs must be (B>0, {model.encoding.width}) integers, not {x.shape}")
    lim = 1 << (model.encoding.bits - 1)
    if x.min() < -lim or x.max() >= lim:
        # the core's input ports are this wide: a wider value would wrap there
        raise ValueError(
            f"inputs must be {model.encoding.bits}-bit signed integers ({-lim}..{lim - 1}), "
            f"not {x.min()}..{x.max()}; encode raw features with the model's encoding first"
        )
    return x


def _report(res, man, *, simulator, kind, accuracy, build, seconds, waves, synth) -> SimReport:
    """The :class:`SimReport` of a run's ``results.json`` (``res``) and manifest."""
    latency = res["latency_cycles"]
    wall = res["wall_seconds"]
    return SimReport(
        simulator=simulator,
        vectors=res["checked"],
        mismatches=res["mismatches"],
        first_mismatch=res["first_mismatch"],
        divergence=res["divergence"],
        accuracy=accuracy,
        cycles_per_inference=res["cycles_per_inference"],
        expected_cycles_per_inference=man["cycles_per_inference"],
        latency_cycles=latency,
        latency_ns=None if latency is None else latency * PERIOD_NS,
        cycles=res["cycles"],
        load_cycles=res["load_cycles"],
        sim_wall_seconds=wall,
        cycles_per_second=_rate(res["cycles"], wall),
        inference_cycles_per_second=_rate(
            res["cycles"] - res["load_cycles"], wall - res["load_wall_seconds"]
        ),
        cycles_per_cpu_second=_rate(res["cycles"], res["cpu_seconds"]),
        build_seconds=build[0],
        build_cached=build[1],
        total_seconds=seconds,
        layers=[
            {k: la[k] for k in ("layer", "storage", "tables_per_cycle", "lanes", "indexer")}
            for la in man["layers"]
        ],
        waves=None if waves is None else str(waves),
        layer_checks=res.get("layer_checks"),
        layer_mismatches=res.get("layer_mismatches"),
        toggles=res.get("toggles"),
        kind=kind.value,
        netlist=None
        if synth is None
        else {
            "family": synth.family,
            "cells": synth.cells,
            "synth_seconds": round(synth.synth_seconds, 2),
        },
    )
