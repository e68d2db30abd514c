"""A design-space sweep on Ray: every point of a spec as a Ray task, results as they arrive.

:func:`run_sweep` starts a local Ray instance sized to the machine (or joins the cluster at
``address``: ``"auto"``, ``"HOST:PORT"`` of a ``ray start --head``, or ``"ray://HOST:PORT"``
through Ray Client), and submits one task per point that has no result yet. Each task
declares the spec's CPUs and memory to the scheduler, runs the point in a child process
killed at the spec's timeout (:func:`spikelut.flows.sweep_point.run_point_isolated`), and is
retried once if its worker dies (Ray's ``max_retries=1``; a point's own failures are
results, never retried). The driver writes each result to ``DIR/points/ID.json``
atomically as it arrives, so a killed sweep resumes where it stopped (``resume``); a
worker lost twice is a ``"worker_lost"`` result. A resumed sweep runs again the points whose
result says more about the machine than the point (``RERUN_ON_RESUME``: a timeout on a
loaded machine, a lost worker); every other result stands. With ``verify_pareto`` the Pareto points are
then simulated in cocotb/Verilator against the golden model (:mod:`spikelut.sim.network_sim`).

Ray 2.60's token authentication (on by default) covers ``HOST:PORT``; its Ray Client
(``ray://``) sent no token in our runs, so a ``ray://`` cluster needs ``RAY_AUTH_MODE=disabled``
on the head and the driver (a network the cluster trusts).

Workers build under ``DIR/work/ID`` on their own machine; on this machine they share the
YoWASP tool cache (``~/.cache/YoWASP``) and the Verilator build cache with every other run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from spikelut.boards.platforms import board
from spikelut.compiler import progress as progress_display
from spikelut.compiler.backend.plan import plans_from_json
from spikelut.compiler.errors import UserError
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.sweep.pareto import feasible, group_key, pareto_front
from spikelut.compiler.sweep.spec import SweepSpec, point_id
from spikelut.flows.sweep_point import quantize_point, run_point_isolated, train_point
from spikelut.sim.network_sim import simulate

__all__ = [
    "CLUSTER_HINT",
    "RERUN_ON_RESUME",
    "import_ray",
    "load_results",
    "points_to_run",
    "run_sweep",
]

RERUN_ON_RESUME = frozenset({"timeout", "worker_lost"})

log = logging.getLogger(__name__)

CLUSTER_HINT = "Ray is not installed; install it with: pip install 'spikelut[cluster]'"


def import_ray():
    """The ``ray`` module; UserError with :data:`CLUSTER_HINT` when it is not installed."""
    try:
        import ray  # an optional extra: imported only when a sweep runs
    except ImportError:
        raise UserError(CLUSTER_HINT) from None
    return ray


def _task(request: dict, work: str, timeout_s: float) -> dict:
    """The body of a point's Ray task (runs on a worker)."""
    return run_point_isolated(request, Path(work), timeout_s)


def _verify_task(result: dict, dataset: str, epochs: int, vectors: int, work: str) -> dict:
    """Retrain ``result``'s point (same seed: the same model), and simulate its core in
    cocotb/Verilator on ``vectors`` test vectors against the golden model."""
    p = result["point"]
    data, model = train_point(dataset, epochs, p, {})
    int_model = quantize_point(model, data, p)
    spec = board(p["board"])
    rep = simulate(
        int_model,
        data.X_test[:vectors],
        plans=plans_from_json(result["plans"]),
        target=spec.target,
        kind=result["kind"],
        work_dir=work,
    )
    return {"simulator": rep.simulator, "vectors": rep.vectors, "mismatches": rep.mismatches,
            "cycles_per_inference": rep.cycles_per_inference}  # fmt: skip


def load_results(out: Path) -> dict[str, dict]:
    """Point id -> result, of every ``DIR/points/*.json``."""
    found = {}
    for path in sorted((out / "points").glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # written atomically: only a foreign file can be half-written
    return found


def points_to_run(ids: dict[str, dict], done: dict[str, dict]) -> list[tuple[str, dict]]:
    """The (id, point) pairs of ``ids`` a run must do: those without a result in ``done``
    and those whose result's status is in ``RERUN_ON_RESUME``, in the order of ``ids``."""
    return [
        (i, p) for i, p in ids.items() if i not in done or done[i].get("status") in RERUN_ON_RESUME
    ]


@contextlib.contextmanager
def _ray_log(path: Path):
    """Ray's own log records while it starts (its warnings about authentication, the
    dashboard, ...) go to ``path``, not to the terminal: the terminal is spikelut's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger, handler = logging.getLogger("ray"), logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        handler.close()


def _init(ray, address: str | None, num_cpus: int | None) -> None:
    # the workers import spikelut as installed on their machine: no runtime_env is shipped
    if address is None:
        # "local": always a new instance, never a cluster that ray.init() would otherwise find
        # through RAY_ADDRESS or the last `ray start` recorded under /tmp/ray
        ray.init(
            address="local",
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise UserError(
                f"cannot join the Ray cluster at {address}: {' '.join(str(e).split())[:200]}; "
                "start one with ray start --head, or drop --address for a local one"
            ) from None


def run_sweep(
    spec: SweepSpec,
    out: Path,
    *,
    address: str | None = None,
    resume: bool = False,
    num_cpus: int | None = None,
    progress: Callable[[str], None] = log.info,
) -> dict[str, dict]:
    """Run the points of ``spec`` without a result in ``out`` (all of them unless
    ``resume``; results already there without ``resume`` are a UserError) and return every
    result by point id. See the module docstring."""
    for name in spec.boards:
        board(name)  # an unknown board is a UserError before Ray starts
    ray = import_ray()
    out = Path(out)
    done = load_results(out)
    if done and not resume:
        raise UserError(f"{out} already holds sweep results; add --resume or choose another -o")
    ids = {point_id(spec.dataset, spec.epochs, p): p for p in spec.points}
    todo = points_to_run(ids, done)
    for i, _ in todo:
        done.pop(i, None)
    progress(f"sweep: {len(ids)} points, {len(ids) - len(todo)} done already, {len(todo)} to run")
    write_text_atomic(out / "sweep.json", json.dumps(_sweep_info(spec), indent=1))
    if todo or spec.run["verify_pareto"]:
        with _ray_log(out / "ray.log"):
            _init(ray, address, num_cpus)
        try:
            _run_tasks(ray, spec, out, todo, done, progress)
            if spec.run["verify_pareto"]:
                _verify(ray, spec, out, done, progress)
        finally:
            ray.shutdown()
    return {i: done[i] for i in ids if i in done}


def _sweep_info(spec: SweepSpec) -> dict:
    return {"dataset": spec.dataset, "epochs": spec.epochs, "run": spec.run,
            "constraints": spec.constraints, "points": len(spec.points)}  # fmt: skip


def _run_tasks(ray, spec: SweepSpec, out: Path, todo, done: dict, progress) -> None:
    run = spec.run
    remote = ray.remote(
        num_cpus=run["cpus"],
        memory=int(run["memory_mb"] * 2**20),
        max_retries=1,  # a lost worker is retried once; a point's failure is a result
        retry_exceptions=False,
    )(_task)
    # keep as many tasks in flight as the cluster has room for, so a task starts when it is
    # submitted (its timeout runs in the task itself)
    room = max(1, int(ray.cluster_resources().get("CPU", 1) // run["cpus"]))
    queue, pending = list(todo), {}
    started = time.monotonic()
    with progress_display.task("sweep points", len(todo), "points") as shown:
        while queue or pending:
            while queue and len(pending) < room:
                pid, point = queue.pop(0)
                request = {"dataset": spec.dataset, "epochs": spec.epochs, "point": point,
                           "synthesis": run["synthesis"]}  # fmt: skip
                ref = remote.remote(request, str(out / "work" / pid), run["timeout_s"])
                pending[ref] = (pid, point)
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pid, point = pending.pop(ref)
                result = _collect(ray, ref, point)
                result["id"] = pid
                write_text_atomic(out / "points" / f"{pid}.json", json.dumps(result, indent=1))
                done[pid] = result
                shown.advance()
                progress(
                    f"sweep: {len(done)} results ({time.monotonic() - started:.0f} s): {pid} "
                    f"{result['status']} acc {_fmt(result.get('accuracy'))} "
                    f"LC {result.get('logic_cells')} {result.get('reason', '')[:80]}"
                )


def _collect(ray, ref, point: dict) -> dict:
    """A task's result; a task that failed in Ray (a worker lost twice, an error outside
    the point) becomes a result with its reason."""
    base = {"point": point, "accuracy": None, "logic_cells": None,
            "inferences_per_second": None, "energy": None, "stage": None, "seconds": {}}  # fmt: skip
    try:
        return ray.get(ref)
    except ray.exceptions.WorkerCrashedError as e:
        return {**base, "status": "worker_lost", "reason": f"worker lost twice: {e}"[:300]}
    except ray.exceptions.RayError as e:
        return {**base, "status": "error", "reason": " ".join(str(e).split())[:300]}


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def _verify(ray, spec: SweepSpec, out: Path, done: dict, progress) -> None:
    """Simulate the Pareto points (accuracy against logic cells, per board and kind) that
    have no check yet; the check is stored in their result as ``verify``."""
    ok = [r for r in done.values() if feasible(r, spec.constraints)]
    groups: dict[tuple, list] = {}
    for r in ok:
        groups.setdefault(group_key(r), []).append(r)
    front = [
        r for g in groups.values() for r in pareto_front(g, "accuracy", minimize="logic_cells")
    ]
    todo = [r for r in front if "verify" not in r]
    remote = ray.remote(num_cpus=spec.run["cpus"], max_retries=1)(_verify_task)
    refs = {
        remote.remote(
            r,
            spec.dataset,
            spec.epochs,
            spec.run["verify_pareto"],
            str(out / "work" / r["id"] / "verify"),
        ): r
        for r in todo
    }
    for ref, r in refs.items():
        try:
            r["verify"] = ray.get(ref)
        except ray.exceptions.RayError as e:
            r["verify"] = {"error": " ".join(str(e).split())[:300]}
        write_text_atomic(out / "points" / f"{r['id']}.json", json.dumps(r, indent=1))
        progress(f"sweep: verified {r['id']}: {r['verify']}")
