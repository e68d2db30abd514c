"""One point of a design-space sweep, through the real stages, as one JSON result.

:func:`run_point` trains a classifier natively on the sweep's data set with the point's
shape (N_T, N_C, hidden width, seed), quantises it (table bits, input narrowing), takes the
integer golden model's test accuracy, plans and compiles the core for the point's board
(core kind; P and L, or the board's fastest placement), and, with synthesis ``"pnr"``,
builds it in the board top with Yosys and nextpnr (:func:`spikelut.boards.build.build_board`).
Every failure is a result: ``status`` is ``"ok"``, ``"does_not_fit"``, ``"timing_not_met"``,
``"tool_crash"``, ``"error"`` (bad combination of knobs), or, from the caller,
``"timeout"`` and ``"worker_lost"``; ``reason`` says why and ``stage`` where.

:func:`run_point_isolated` runs it in a child process in its own session, killed (its whole
process group: Yosys and nextpnr included) when it exceeds its timeout; that is what a
sweep's worker calls. ``python -m spikelut.flows.sweep_point REQUEST.json RESULT.json`` is the
child's entry point.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from spikelut.boards.build import build_board
from spikelut.boards.design import board_core
from spikelut.boards.platforms import board
from spikelut.compiler.analysis.energy import energy_per_inference
from spikelut.compiler.backend.compile import CompileError, compile_core, plan_core
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.build.toolchain import ToolFailed
from spikelut.compiler.errors import UserError
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.passes.scales import QuantizeError
from spikelut.compiler.passes.widths import WidthError
from spikelut.compiler.train.classifier import train_on_dataset
from spikelut.hdl.storage import Storage

__all__ = ["quantize_point", "run_point", "run_point_isolated", "train_point"]

log = logging.getLogger(__name__)


class _Failed(Exception):
    """A stage failed with a status and a reason (becomes the result)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status


def train_point(dataset: str, epochs: int, p: dict, r: dict):
    """``(data, float model)`` of point ``p`` trained natively (``r`` gets its float test
    accuracy); a refused shape is a failed stage."""
    data = load_dataset(dataset)
    try:
        model = train_on_dataset(
            data,
            hidden=[p["hidden"]] if p["hidden"] else [],
            n_tables=p["n_tables"],
            n_c=p["n_c"],
            epochs=epochs,
            seed=p["seed"],
        )
    except (IRError, ValueError) as e:
        raise _Failed("error", f"training refused the shape: {e}") from None
    r["float_accuracy"] = model.meta["test_accuracy"]
    return data, model


def quantize_point(model, data, p: dict):
    """The integer model of point ``p`` (table bits, input narrowing)."""
    shifts = {0: p["input_shift"]} if p["input_shift"] else None
    try:
        return quantize_classifier(
            model, table_bits=p["table_bits"], calib_raw=data.X_train, shifts=shifts
        )
    except (QuantizeError, WidthError, ValueError) as e:
        raise _Failed("error", f"quantisation refused: {e}") from None


def _plan(int_model, spec, p: dict):
    """The core plan: the point's P and L (block RAM for every layer) or the board's."""
    try:
        if p["tables_per_cycle"] == "auto" and p["lanes"] == "auto":
            return board_core(int_model, spec, kind=p["kind"])
        placement = LayerPlan(
            Storage.BRAM,
            None if p["tables_per_cycle"] == "auto" else p["tables_per_cycle"],
            None if p["lanes"] == "auto" else p["lanes"],
        )
        return plan_core(int_model, spec.target, kind=p["kind"], placement=placement)
    except CompileError as e:
        raise _Failed("does_not_fit", f"no core fits {spec.name}: {e}") from None
    except ValueError as e:  # the knobs give parameters the core refuses
        raise _Failed("error", f"the core refuses these knobs: {e}") from None


def _build(int_model, spec, plan, work: Path, r: dict) -> None:
    try:
        b = build_board(int_model, spec, work / "build", plan=plan, progress=log.debug)
    except ToolFailed as e:
        raise _Failed("tool_crash", str(e).strip().splitlines()[0]) from None
    res = b["resources"]
    fmax = min(b["fmax_mhz"].values(), default=0.0)
    r["build"] = {
        k: b[k] for k in ("ok", "fits", "timing_met", "target_mhz", "seconds", "suggestion")
    }
    r["build"]["resources"] = res
    r["build"]["fmax_mhz"] = fmax
    r["logic_cells"] = res.get("logic_cells", {}).get("used")
    r["logic_cells_source"] = "placed (board design, host link included)"
    r["fmax_mhz"] = fmax
    r["inferences_per_second"] = fmax * 1e6 / r["cycles_per_inference"] if fmax else None
    memories = sum(res.get(k, {}).get("used", 0) for k in ("block_rams", "sprams"))
    # an estimate only for a design that fits (a failed placement's counts are no design)
    if b["fits"]:
        r["energy"] = energy_per_inference(
            spec.family,
            spec.device,
            logic_cells=r["logic_cells"] or 0,
            memories=memories,
            cycles=r["cycles_per_inference"],
            clock_mhz=b["target_mhz"],
        )
    if not b["fits"]:
        raise _Failed("does_not_fit", b["suggestion"] or "the design does not fit")
    if not b["ok"]:
        raise _Failed("timing_not_met", b["suggestion"] or "timing not met")


def run_point(dataset: str, epochs: int, point: dict, work: Path, *, synthesis: str) -> dict:
    """Run every stage of ``point`` (knobs as :data:`spikelut.compiler.sweep.spec.DEFAULTS`)
    on ``dataset`` with ``epochs`` of training, writing the core and the build under
    ``work``; returns the result dict (see the module docstring). Never raises for a
    failing stage."""
    r: dict = {
        "point": point,
        "status": "ok",
        "reason": "",
        "stage": None,
        "seconds": {},
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "accuracy": None,
        "logic_cells": None,
        "inferences_per_second": None,
        "energy": None,
    }
    stage = "setup"
    t = time.perf_counter()

    def done(name: str) -> None:
        nonlocal t
        r["seconds"][name] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()

    try:
        spec = board(point["board"])
        stage = "train"
        data, model = train_point(dataset, epochs, point, r)
        done(stage)
        stage = "quantize"
        int_model = quantize_point(model, data, point)
        done(stage)
        stage = "golden"
        pred = int_predict(int_model, data.X_test)
        r["accuracy"] = float(np.mean(pred == data.y_test))
        r["test_vectors"] = len(data.y_test)
        done(stage)
        stage = "compile"
        plan = _plan(int_model, spec, point)
        man = compile_core(int_model, work / "core", spec.target, core=plan)
        r.update(
            kind=plan.kind.value,
            plans=man["plans"],
            cycles_per_inference=man["cycles_per_inference"],
            estimate=man["estimate"],
            block_rams=plan.block_rams,
            sprams=plan.sprams,
            device=spec.device,
        )
        r["logic_cells"] = man["estimate"]["logic_cells"]
        r["logic_cells_source"] = "estimate (core only, not synthesised)"
        done(stage)
        if synthesis == "pnr":
            stage = "synthesis"
            _build(int_model, spec, plan, work, r)
            done(stage)
    except _Failed as e:
        r.update(status=e.status, reason=str(e), stage=stage)
        done(stage)
    except (UserError, ToolFailed) as e:
        status = "tool_crash" if isinstance(e, ToolFailed) else "error"
        r.update(status=status, reason=" ".join(str(e).split())[:500], stage=stage)
        done(stage)
    return r


def run_point_isolated(request: dict, work: Path, timeout_s: float) -> dict:
    """:func:`run_point` of ``request`` (keys ``dataset``, ``epochs``, ``point``,
    ``synthesis``) in a child process in its own session under ``work``; after
    ``timeout_s`` seconds the child's process group is killed and the result has status
    ``"timeout"``; a child that dies without a result gives ``"tool_crash"`` with its log's
    last line."""
    work.mkdir(parents=True, exist_ok=True)
    req, out, log_path = work / "request.json", work / "result.json", work / "point.log"
    with contextlib.suppress(FileNotFoundError):
        out.unlink()
    write_text_atomic(req, json.dumps(request))
    cmd = [sys.executable, "-m", "spikelut.flows.sweep_point", str(req), str(out)]
    t0 = time.perf_counter()
    with open(log_path, "w") as logf:
        child = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    base = {"point": request["point"], "host": socket.gethostname(), "accuracy": None,
            "logic_cells": None, "inferences_per_second": None, "energy": None}  # fmt: skip
    seconds = round(time.perf_counter() - t0, 2)
    if timed_out and not out.exists():
        return {**base, "status": "timeout", "stage": None, "seconds": {"total": seconds},
                "reason": f"stopped after the timeout of {timeout_s:g} s"}  # fmt: skip
    if not out.exists():
        lines = log_path.read_text(errors="replace").strip().splitlines()
        return {**base, "status": "tool_crash", "stage": None, "seconds": {"total": seconds},
                "reason": f"the point's process exited with status {child.returncode}: "
                f"{lines[-1] if lines else 'no output'}"}  # fmt: skip
    result = json.loads(out.read_text())
    result["seconds"]["total"] = seconds
    return result


def _die_with_parent(poll_s: float = 1.0) -> None:
    """End this process group (the point and its Yosys/nextpnr) when the process that
    started it is gone: a Ray worker killed by ``ray.shutdown``, a lost node or a driver's
    Ctrl-C would otherwise leave the tools running, orphaned, in their own session."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


def _main(argv: list[str]) -> int:
    _die_with_parent()
    request = json.loads(Path(argv[0]).read_text())
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    r = run_point(
        request["dataset"],
        request["epochs"],
        request["point"],
        Path(argv[1]).parent,
        synthesis=request["synthesis"],
    )
    write_text_atomic(argv[1], json.dumps(r, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
