"""``spikelut demo``: from the digits data to a verified bitstream, as an ordered list of stages.

A :class:`Stage` is a name and a function ``fn(ctx, folder) -> dict`` that calls the other
modules' public APIs, writes its files into its own sub-folder of the demo directory and
returns its figures. :func:`run_stages` runs a list of stages in order, logging one line
when each starts and ends (with its wall time), records the figures in ``stage.json`` beside
its outputs, and stops at the first failure with a :class:`StageFailed` naming the stage,
leaving the earlier stages' outputs intact. Nothing is reused from an earlier run: the
stage folders of the list are removed before the first stage starts (tool caches keyed by
content hashes, such as the Verilator build cache, stay).

:data:`DEFAULT_STAGES` is the demo: train, quantise, compile, verify in cocotb over the whole
test set (0 mismatches) and, on part of it, the core as Yosys synthesises it, build the
bitstream, run test images through the host runtime
against the simulated complete board, then :func:`finish` writes ``summary.json`` and the
HTML report. Adding a stage is one line in that list.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikelut.boards.build import build_board
from spikelut.boards.design import board_core
from spikelut.boards.platforms import board
from spikelut.compiler import progress
from spikelut.compiler.analysis.report import write_report
from spikelut.compiler.backend.compile import compile_core
from spikelut.compiler.backend.mac import compile_mac
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.ir.modelfile import save_model
from spikelut.compiler.ir.operations import versus_dense
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.train.classifier import evaluate, train_on_dataset
from spikelut.sim.board_sim import run_board_sim
from spikelut.sim.network_sim import simulate

log = logging.getLogger("spikelut.demo")

DEFAULT_BOARD = "icebreaker"
DEFAULT_DATA = "digits"
# Test images sent through the simulated complete board (the bitstream's whole design: board
# top, host link and core): the whole test set.
RUN_EXAMPLES = 450
# Test vectors through the synthesised netlist: a gate-level model simulates far slower than
# the RTL, and a synthesis bug shows on the first vectors that exercise it.
NETLIST_VECTORS = 100
# The demo's network: one LUT layer of 64 tables of 2**6 rows, 64 pixels -> 10 classes
# (96.9% as integers on the digits test split). The training default (256 tables of 2**4)
# reaches 97.8% but needs 1,024 comparators, 2.7x as many, which the UP5K cannot hold.
DEMO_TRAIN = {"n_tables": 64, "n_c": 6}


class StageFailed(Exception):
    """A stage raised or its check failed; ``stage`` names it, the message says why."""

    def __init__(self, stage: str, reason: str):
        super().__init__(f"stage {stage!r} failed: {reason}")
        self.stage = stage
        self.reason = reason


class CheckFailed(Exception):
    """A stage ran but its result is wrong (e.g. a hardware mismatch); the message says how."""


@dataclass(frozen=True)
class Stage:
    """One named step of a pipeline: ``fn(ctx, folder)`` returns a JSON-able dict of figures
    (``"files"``: the paths it wrote, listed in the summary)."""

    name: str
    fn: Callable[[DemoContext, Path], dict]
    what: str = ""


@dataclass
class DemoOptions:
    """What the demo runs on. ``train``: keyword arguments for
    :func:`~spikelut.compiler.train.classifier.train_on_dataset` (:data:`DEMO_TRAIN`);
    ``sim_vectors``: test vectors the cocotb stage checks (None: the whole test set);
    ``netlist_vectors``: those the post-synthesis netlist stage checks;
    ``run_examples``: test images sent through the simulated board."""

    board: str = DEFAULT_BOARD
    data: str = DEFAULT_DATA
    table_bits: int = 8
    train: dict = field(default_factory=lambda: dict(DEMO_TRAIN))
    sim_vectors: int | None = None
    netlist_vectors: int = NETLIST_VECTORS
    run_examples: int = RUN_EXAMPLES
    seed: int = 0


@dataclass
class DemoContext:
    """State shared by the stages: the output directory, the options, and what earlier
    stages produced (``results[name]`` figures; ``objects`` in-memory values such as the
    data set and models, so later stages need not reload them)."""

    out: Path
    options: DemoOptions = field(default_factory=DemoOptions)
    results: dict[str, dict] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def need(self, key: str) -> Any:
        """An object an earlier stage provided; a clear error when that stage is missing."""
        if key not in self.objects:
            raise CheckFailed(f"needs {key!r}, which no earlier stage provided")
        return self.objects[key]


def stage_folder(out: Path, index: int, stage: Stage) -> Path:
    """The sub-folder of stage number ``index`` (1-based): ``NN-name``."""
    return out / f"{index:02d}-{stage.name}"


def _earlier_stage_folders(out: Path, names: Sequence[str]) -> list[Path]:
    """Stage folders of an earlier run in ``out``: ``NN-name`` folders of these stage names
    (at any position) or holding a ``stage.json``; other folders are the user's."""
    found = []
    for path in sorted(out.iterdir()):
        head, _, name = path.name.partition("-")
        numbered = path.is_dir() and len(head) == 2 and head.isdigit()
        if numbered and (name in names or (path / "stage.json").exists()):
            found.append(path)
    return found


def run_stages(stages: Sequence[Stage], ctx: DemoContext) -> DemoContext:
    """Run ``stages`` in order into ``ctx.out`` (see the module docstring); returns ``ctx``
    with every stage's figures. Raises :class:`StageFailed` at the first failing stage."""
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, not {names!r}")
    ctx.out.mkdir(parents=True, exist_ok=True)
    for folder in _earlier_stage_folders(ctx.out, names):
        log.info("removing %s from an earlier run", folder)
        shutil.rmtree(folder)
    total = len(stages)
    for index, stage in enumerate(stages, 1):
        folder = stage_folder(ctx.out, index, stage)
        folder.mkdir(parents=True)
        tag = f"[{index}/{total}] {stage.name}"
        log.info("%s: started%s", tag, f" ({stage.what})" if stage.what else "")
        t0 = time.perf_counter()
        try:
            with progress.task(tag):  # a spinner and the time so far, above the stage's own
                figures = stage.fn(ctx, folder) or {}
        except CheckFailed as e:
            log.error("%s: FAILED after %.1f s: %s", tag, time.perf_counter() - t0, e)
            raise StageFailed(stage.name, str(e)) from e
        except Exception as e:
            log.error("%s: FAILED after %.1f s: %s", tag, time.perf_counter() - t0, e)
            raise StageFailed(stage.name, f"{type(e).__name__}: {e}") from e
        seconds = time.perf_counter() - t0
        ctx.results[stage.name] = figures
        ctx.seconds[stage.name] = seconds
        write_text_atomic(
            folder / "stage.json",
            json.dumps(
                {"stage": stage.name, "seconds": seconds, **figures},
                indent=1,
                sort_keys=True,
                default=_jsonable,
            ),
        )
        log.info("%s: done in %.1f s", tag, seconds)
    return ctx


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# -- the stages ------------------------------------------------------------------------------


def train_stage(ctx: DemoContext, folder: Path) -> dict:
    """Train the float LUT classifier on the data set; writes ``float.lutnet``."""
    data = load_dataset(ctx.options.data)
    kwargs = {"seed": ctx.options.seed, **ctx.options.train}
    model = train_on_dataset(data, **kwargs)
    path = folder / "float.lutnet"
    save_model(model, path)
    ctx.objects.update(data=data, float_model=model)
    test = evaluate(model, data.X_test, data.y_test)
    return {
        "data": data.name,
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "float_accuracy": test["accuracy"],
        "layers": [
            {"in": la.in_dim, "out": la.out_dim, "n_tables": la.n_tables, "n_c": la.n_c}
            for la in model.layers
        ],
        "files": [str(path)],
    }


def quantize_stage(ctx: DemoContext, folder: Path) -> dict:
    """Quantise (calibrated on the training split); writes ``model.lutnet``."""
    data, fmodel = ctx.need("data"), ctx.need("float_model")
    qmodel = quantize_classifier(fmodel, table_bits=ctx.options.table_bits, calib_raw=data.X_train)
    fp = fmodel.float_predict(data.X_test)
    ip = int_predict(qmodel, data.X_test)
    path = folder / "model.lutnet"
    save_model(qmodel, path)
    ctx.objects.update(model=qmodel, model_path=path)
    return {
        "table_bits": ctx.options.table_bits,
        "int_accuracy": float(np.mean(ip == data.y_test)),
        "agreement": float(np.mean(ip == fp)),
        "files": [str(path)],
    }


def compile_stage(ctx: DemoContext, folder: Path) -> dict:
    """Compile the core the board build puts in the bitstream (same kind, placement and
    widths: :func:`~spikelut.boards.design.board_core`), so the core verified next is the
    one that ships; writes ``core.v``, ``core.il`` and ``manifest.json``."""
    model = ctx.need("model")
    spec = board(ctx.options.board)
    core = board_core(model, spec)
    result = compile_core(model, folder, spec.target, core=core)
    ctx.objects.update(core=core, board_spec=spec)
    return {
        "indexer": result["indexer"],
        "latency_cycles": result["latency_cycles"],
        "cycles_per_inference": result["cycles_per_inference"],
        "bandwidth_floor_cycles": result["bandwidth_floor_cycles"],
        "bandwidth_fraction": result["bandwidth_fraction"],
        "block_rams": result["block_rams"],
        "sprams": result["sprams"],
        "plans": result["plans"],
        "files": [str(folder / name) for name in ("core.v", "core.il", "manifest.json")],
    }


def _simulate_core(ctx: DemoContext, n: int, *, netlist: bool):
    """The compiled core (RTL, or its Yosys netlist) in cocotb on the first ``n`` test
    vectors."""
    model, data, core = ctx.need("model"), ctx.need("data"), ctx.need("core")
    x = model.encoding.encode_int(data.X_test[:n])
    return simulate(
        model,
        x,
        labels=data.y_test[:n],
        plans=core.plans,
        kind=core.kind,
        target=ctx.need("board_spec").target,
        seed=ctx.options.seed,
        netlist=netlist,
        progress=lambda msg: log.info("  %s", msg),
    )


def sim_stage(ctx: DemoContext, folder: Path) -> dict:
    """Verify the compiled core in cocotb on Verilator over the test set; 0 mismatches."""
    n = ctx.options.sim_vectors or len(ctx.need("data").y_test)
    report = _simulate_core(ctx, n, netlist=False)
    figures = report.to_dict()
    path = folder / "sim.json"
    write_text_atomic(path, json.dumps(figures, indent=1, sort_keys=True, default=_jsonable))
    if report.mismatches:
        raise CheckFailed(
            f"{report.mismatches} of {report.vectors} hardware outputs differ from the golden "
            f"model; first: {report.first_mismatch}; {report.divergence}"
        )
    return {**figures, "files": [str(path)]}


def netlist_stage(ctx: DemoContext, folder: Path) -> dict:
    """Verify the core as Yosys synthesises it for the board's family (vendor cell models,
    block RAM and SPRAM included) on a subset of the test set; 0 mismatches."""
    n = min(ctx.options.netlist_vectors, len(ctx.need("data").y_test))
    report = _simulate_core(ctx, n, netlist=True)
    figures = report.to_dict()
    path = folder / "netlist-sim.json"
    write_text_atomic(path, json.dumps(figures, indent=1, sort_keys=True, default=_jsonable))
    if report.mismatches:
        raise CheckFailed(
            f"{report.mismatches} of {report.vectors} outputs of the synthesised netlist "
            f"differ from the golden model; first: {report.first_mismatch}"
        )
    return {**figures, "files": [str(path)]}


def build_stage(ctx: DemoContext, folder: Path) -> dict:
    """Build the bitstream for the board; fails when it does not fit or misses timing."""
    model, spec = ctx.need("model"), ctx.need("board_spec")
    result = build_board(model, spec, folder, progress=lambda msg: log.info("  %s", msg))
    if not result["ok"]:
        raise CheckFailed(result["suggestion"] or "the build failed; see build-report.json")
    files = [result["bitstream"], str(folder / "build-report.json"), str(folder / "board.json")]
    if result.get("flash_image"):
        files += [result["flash_image"], str(folder / "tables.bin")]
    ctx.objects.update(build_dir=folder)
    return {**result, "files": files}


def run_stage(ctx: DemoContext, folder: Path) -> dict:
    """Run test images (by default the whole test set) through the host runtime against the
    simulated complete board (the bitstream's design) over the UART link; every answer must
    equal the golden model's."""
    model, data = ctx.need("model"), ctx.need("data")
    n = min(ctx.options.run_examples, len(data.y_test))
    x = model.encoding.encode_int(data.X_test[:n])
    result = run_board_sim(
        model,
        x,
        data.y_test[:n],
        spec=board(ctx.options.board),
        tables="flash",
        progress=lambda msg: log.info("  %s", msg),
    )
    path = folder / "run.json"
    write_text_atomic(path, json.dumps(result, indent=1, sort_keys=True, default=_jsonable))
    if result["agree"] != result["n"]:
        raise CheckFailed(
            f"{result['n'] - result['agree']} of {result['n']} board answers differ from the "
            f"golden model (inputs {result['mismatches']})"
        )
    return {**result, "files": [str(path)]}


def baseline_stage(ctx: DemoContext, folder: Path) -> dict:
    """The multiply-accumulate baseline for the same task: a scikit-learn MLP (64-32-10) on
    the same split, compiled to the MAC core with 8-bit weights; writes its core and
    manifest. Its figures sit beside the LUT core's in the summary."""
    import warnings

    from sklearn.neural_network import MLPClassifier  # deferred: a second of import time

    data = ctx.need("data")
    with warnings.catch_warnings():  # the MLP's convergence chatter is not the demo's news
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((32,), max_iter=500, random_state=0).fit(data.X_train, data.y_train)
    target = board(ctx.options.board).target
    result = compile_mac(mlp, folder, data=ctx.options.data, target=target)
    keys = (
        "ann_test_accuracy",
        "test_accuracy",
        "macs",
        "cycles_per_inference",
        "weight_bits_read",
        "multiplications",
        "additions",
        "memory_bits",
    )
    return {
        **{k: result[k] for k in keys if k in result},
        "target": target.name,
        "files": [str(folder / n) for n in ("core.v", "core.il", "manifest.json")],
    }


# The demo, in order. Each entry is one line; a missing stage is added here.
DEFAULT_STAGES: list[Stage] = [
    Stage("train", train_stage, "LUT classifier on the data set, float"),
    Stage("quantize", quantize_stage, "integer tables and widths"),
    Stage("compile", compile_stage, "Verilog/RTLIL core and manifest"),
    Stage("sim", sim_stage, "cocotb on Verilator over the whole test set"),
    Stage("netlist", netlist_stage, "the Yosys netlist in cocotb on part of the test set"),
    Stage("build", build_stage, "Yosys + nextpnr bitstream for the board"),
    Stage("run", run_stage, "the bitstream's design, simulated, over UART on the test set"),
    Stage("baseline", baseline_stage, "the multiply-accumulate core of an MLP, for comparison"),
]


# -- the summary -----------------------------------------------------------------------------


def summarise(ctx: DemoContext) -> dict:
    """One summary of every stage that ran: accuracies, mismatches, resources, Fmax, cycles
    and inferences per second, the comparison with the dense ANN, and every file written."""
    r = ctx.results
    train, quant, comp = r.get("train", {}), r.get("quantize", {}), r.get("compile", {})
    sim, build, run = r.get("sim", {}), r.get("build", {}), r.get("run", {})
    net = r.get("netlist", {})
    res = build.get("resources", {})
    fmax = min(build.get("fmax_mhz", {}).values(), default=None)
    cycles = build.get("cycles_per_inference") or comp.get("cycles_per_inference")
    s: dict[str, Any] = {
        "board": ctx.options.board,
        "data": train.get("data", ctx.options.data),
        "float_accuracy": train.get("float_accuracy"),
        "int_accuracy": quant.get("int_accuracy"),
        "hardware_accuracy": run.get("accuracy", sim.get("accuracy")),
        "core_accuracy": sim.get("accuracy"),
        "vectors_checked": sim.get("vectors"),
        "mismatches": sim.get("mismatches"),
        "netlist_vectors_checked": net.get("vectors"),
        "netlist_mismatches": net.get("mismatches"),
        "netlist_family": (net.get("netlist") or {}).get("family"),
        "board_vectors_checked": run.get("n"),
        "board_mismatches": (run["n"] - run["agree"]) if run else None,
        "logic_cells": res.get("logic_cells"),
        "flip_flops": res.get("flip_flops"),
        "block_rams": res.get("block_rams"),
        "sprams": res.get("sprams"),
        "dsps": res.get("dsps"),
        "fmax_mhz": fmax,
        "clock_mhz": build.get("target_mhz"),
        "cycles_per_inference": cycles,
        "board_indexer": build.get("indexer"),
        "core_cycles_per_inference": comp.get("cycles_per_inference"),
        "measured_cycles_per_inference": sim.get("cycles_per_inference"),
        "inferences_per_second": build.get("inferences_per_second"),
        "board_run": (
            {
                "n": run["n"],
                "agree": run["agree"],
                "accuracy": run.get("accuracy"),
                "uart_inferences_per_second": run.get("sim_inferences_per_second"),
                "baud": run.get("sim_baud"),
            }
            if run
            else None
        ),
        "stage_seconds": {k: round(v, 1) for k, v in ctx.seconds.items()},
        "total_seconds": round(time.perf_counter() - ctx.started, 1),
        "files": {name: fig.get("files", []) for name, fig in r.items()},
        "mac_baseline": {k: v for k, v in r["baseline"].items() if k != "files"}
        if "baseline" in r
        else None,
    }
    model = ctx.objects.get("model") or ctx.objects.get("float_model")
    if model is not None:
        s["versus_dense_ann"] = versus_dense(model)["total"]
    return s


def finish(ctx: DemoContext, *, report: bool = True) -> dict:
    """Write ``summary.json`` and (``report``) ``report.html`` into the demo directory;
    returns the summary with their paths added to ``files``."""
    t0 = time.perf_counter()
    log.info("[summary] writing the summary and the HTML report")
    s = summarise(ctx)
    summary_path = ctx.out / "summary.json"
    s["files"]["summary"] = [str(summary_path)]
    if report:
        s["files"]["report"] = [str(ctx.out / "report.html")]
    write_text_atomic(summary_path, json.dumps(s, indent=1, sort_keys=True, default=_jsonable))
    if report:
        write_report(ctx.out, ctx.out / "report.html", data=ctx.options.data)
    log.info("[summary] done in %.1f s", time.perf_counter() - t0)
    return s


def run_demo(
    out: str | Path,
    options: DemoOptions | None = None,
    stages: Sequence[Stage] | None = None,
    *,
    report: bool = True,
) -> dict:
    """Run the demo (``stages``, default :data:`DEFAULT_STAGES`) into ``out`` and return the
    summary (see :func:`summarise`). Raises :class:`StageFailed` naming the failing stage."""
    ctx = DemoContext(out=Path(out), options=options or DemoOptions())
    # a summary or report of an earlier run must not outlive a failure of this one
    for name in ("summary.json", "report.html"):
        (ctx.out / name).unlink(missing_ok=True)
    run_stages(DEFAULT_STAGES if stages is None else stages, ctx)
    return finish(ctx, report=report)
