"""A sweep's specification: a TOML file read into :class:`SweepSpec`, expanded into points.

The file (read with the standard library's ``tomllib``)::

    [data]
    set = "digits"              # a data set of spikelut.compiler.frontend.datasets
    epochs = 5                  # native training epochs per point

    [grid]                      # every combination of these lists (the cross product)
    n_tables = [16, 32]         # N_T, tables per layer
    n_c = [3, 4]                # N_C, comparisons per table
    table_bits = [6, 8]         # signed width of table entries
    input_shift = [0]           # input narrowing: right shift of layer 0's input
    kind = ["parallel", "serial"]   # core kinds (CoreKind values)
    tables_per_cycle = ["auto"] # P: "auto" = the fastest placement that fits the board
    lanes = ["auto"]            # L: "auto" likewise
    board = ["icebreaker"]
    seed = [0]
    hidden = [0]                # one hidden layer of this width, 0 for none

    [random]                    # optional: `samples` more points drawn from ranges
    samples = 20
    seed = 1
    n_tables = {min = 8, max = 64}  # integers from min to max, both included
    table_bits = [4, 6, 8]      # a list: one of these
    # a knob not named here takes the grid's first value

    [run]
    synthesis = "pnr"           # "pnr" (board build: Yosys, nextpnr, packing) or "none"
    timeout_s = 900             # a point still running after this is a "timeout" result
    cpus = 1                    # CPUs a point declares to the scheduler
    memory_mb = 1500            # memory a point declares
    verify_pareto = 0           # cocotb/Verilator check of the Pareto points on N vectors
    order = "grid"              # or "shuffled" (fixed seed): a partial run samples the space

    [constraints]
    fits = true                 # the build fits the board and meets timing
    min_accuracy = 0.97         # integer test accuracy

Every knob has a default (:data:`DEFAULTS`); a point is a dict of every knob's value and its
id is a hash of that dict, so the same point has the same id in every run (``--resume``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.datasets import SKLEARN_DATASETS

__all__ = ["DEFAULTS", "SweepSpec", "load_spec", "parse_spec", "point_id"]

# every knob a point has, with its value when the spec does not name it
DEFAULTS: dict[str, Any] = {
    "n_tables": 32,
    "n_c": 4,
    "table_bits": 8,
    "input_shift": 0,
    "kind": "parallel",
    "tables_per_cycle": "auto",
    "lanes": "auto",
    "board": "icebreaker",
    "seed": 0,
    "hidden": 0,
}
_INT_KNOBS = {"n_tables", "n_c", "table_bits", "input_shift", "seed", "hidden"}
_AUTO_INT_KNOBS = {"tables_per_cycle", "lanes"}  # a positive integer or "auto"
_RUN_DEFAULTS = {
    "synthesis": "pnr",
    "timeout_s": 900.0,
    "cpus": 1.0,
    "memory_mb": 1500.0,
    "verify_pareto": 0,
    "order": "grid",
}
ORDERS = ("grid", "shuffled")
SYNTHESIS = ("pnr", "none")


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep: ``dataset`` and ``epochs``, the expanded ``points`` (dicts of every
    knob of :data:`DEFAULTS`, in a fixed order, no duplicates), the ``run`` settings and the
    ``constraints`` (``fits``: bool, ``min_accuracy``: float or None)."""

    dataset: str
    epochs: int
    points: list[dict]
    run: dict = field(default_factory=dict)
    constraints: dict = field(default_factory=dict)

    @property
    def boards(self) -> list[str]:
        """The boards of the points, in order of appearance."""
        return list(dict.fromkeys(p["board"] for p in self.points))


def point_id(dataset: str, epochs: int, point: dict) -> str:
    """A short stable id of a point (a hash of its data set, epochs and knobs)."""
    text = json.dumps({"data": dataset, "epochs": epochs, **point}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_spec(path: str | Path) -> SweepSpec:
    """Read and parse the TOML file ``path``; UserError naming what is wrong."""
    try:
        text = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read the sweep spec {path}: {e.strerror or e}") from None
    try:
        doc = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid TOML: {e}") from None
    return parse_spec(doc, source=str(path))


def parse_spec(doc: dict, *, source: str = "the spec") -> SweepSpec:
    """The :class:`SweepSpec` of a TOML document ``doc``; UserError naming the bad entry."""
    unknown = set(doc) - {"data", "grid", "random", "run", "constraints"}
    if unknown:
        raise UserError(
            f"{source}: unknown table [{sorted(unknown)[0]}]; "
            "use [data], [grid], [random], [run], [constraints]"
        )
    data = _table(doc, "data", source)
    dataset = data.get("set", "digits")
    if dataset not in SKLEARN_DATASETS:
        raise UserError(
            f"{source}: [data] set {dataset!r} is not one of {', '.join(SKLEARN_DATASETS)}"
        )
    epochs = data.get("epochs", 5)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise UserError(f"{source}: [data] epochs must be a positive integer, not {epochs!r}")
    grid = _grid(_table(doc, "grid", source), source)
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    points += _random_points(_table(doc, "random", source), grid, source)
    unique = list({json.dumps(p, sort_keys=True): p for p in points}.values())
    run = _run(_table(doc, "run", source), source)
    if run["order"] == "shuffled":
        random.Random(0).shuffle(unique)
    return SweepSpec(
        dataset=dataset,
        epochs=epochs,
        points=unique,
        run=run,
        constraints=_constraints(_table(doc, "constraints", source), source),
    )


def _table(doc: dict, name: str, source: str) -> dict:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise UserError(f"{source}: [{name}] must be a table")
    return value


def _check_value(knob: str, value: Any, source: str) -> Any:
    """``value`` of ``knob`` if valid; UserError naming the knob otherwise."""
    ok = True
    if knob in _INT_KNOBS:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        ok = ok and (value >= 1 if knob in {"n_tables", "n_c", "table_bits"} else True)
    elif knob in _AUTO_INT_KNOBS:
        ok = value == "auto" or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1
        )
    elif knob == "kind":
        try:
            CoreKind.parse(value)
        except ValueError as e:
            raise UserError(f"{source}: {e}") from None
    elif knob == "board":
        ok = isinstance(value, str) and bool(value)
    if not ok:
        raise UserError(f"{source}: {knob} = {value!r} is not a valid value")
    return value


def _grid(table: dict, source: str) -> dict[str, list]:
    unknown = set(table) - set(DEFAULTS)
    if unknown:
        raise UserError(
            f"{source}: unknown knob {sorted(unknown)[0]!r} in [grid]; knobs: {', '.join(DEFAULTS)}"
        )
    grid = {}
    for knob, default in DEFAULTS.items():
        values = table.get(knob, [default])
        values = values if isinstance(values, list) else [values]
        if not values:
            raise UserError(f"{source}: [grid] {knob} is an empty list")
        grid[knob] = [_check_value(knob, v, source) for v in values]
    return grid


def _random_points(table: dict, grid: dict[str, list], source: str) -> list[dict]:
    """``samples`` points drawn with ``seed``: per knob named, an integer range
    ``{min, max}`` or a list of choices; other knobs take the grid's first value."""
    if not table:
        return []
    samples, seed = table.get("samples", 0), table.get("seed", 0)
    if not isinstance(samples, int) or samples < 0 or not isinstance(seed, int):
        raise UserError(f"{source}: [random] samples and seed must be non-negative integers")
    ranges = {k: v for k, v in table.items() if k not in {"samples", "seed"}}
    unknown = set(ranges) - set(DEFAULTS)
    if unknown:
        raise UserError(f"{source}: unknown knob {sorted(unknown)[0]!r} in [random]")
    rng = random.Random(seed)
    points = []
    for _ in range(samples):
        point = {k: v[0] for k, v in grid.items()}
        for knob, r in ranges.items():
            if isinstance(r, dict):
                lo, hi = r.get("min"), r.get("max")
                if set(r) != {"min", "max"} or not isinstance(lo, int) or not isinstance(hi, int):
                    raise UserError(f"{source}: [random] {knob} range must be {{min = A, max = B}}")
                if lo > hi:
                    raise UserError(f"{source}: [random] {knob}: min {lo} is above max {hi}")
                value = rng.randint(lo, hi)
            elif isinstance(r, list) and r:
                value = rng.choice(r)
            else:
                raise UserError(f"{source}: [random] {knob} must be {{min, max}} or a list")
            point[knob] = _check_value(knob, value, source)
        points.append(point)
    return points


def _run(table: dict, source: str) -> dict:
    unknown = set(table) - set(_RUN_DEFAULTS)
    if unknown:
        raise UserError(
            f"{source}: unknown [run] setting {sorted(unknown)[0]!r}; "
            f"settings: {', '.join(_RUN_DEFAULTS)}"
        )
    run = {**_RUN_DEFAULTS, **table}
    if run["synthesis"] not in SYNTHESIS:
        raise UserError(f"{source}: [run] synthesis must be one of {', '.join(SYNTHESIS)}")
    for key in ("timeout_s", "cpus", "memory_mb"):
        v = run[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise UserError(f"{source}: [run] {key} must be a positive number, not {v!r}")
    if run["order"] not in ORDERS:
        raise UserError(f"{source}: [run] order must be one of {', '.join(ORDERS)}")
    v = run["verify_pareto"]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise UserError(f"{source}: [run] verify_pareto must be a vector count >= 0, not {v!r}")
    return run


def _constraints(table: dict, source: str) -> dict:
    unknown = set(table) - {"fits", "min_accuracy"}
    if unknown:
        raise UserError(
            f"{source}: unknown constraint {sorted(unknown)[0]!r}; use fits, min_accuracy"
        )
    fits, acc = table.get("fits", True), table.get("min_accuracy")
    if not isinstance(fits, bool):
        raise UserError(f"{source}: [constraints] fits must be true or false")
    if acc is not None and (isinstance(acc, bool) or not isinstance(acc, int | float)
                            or not 0 <= acc <= 1):  # fmt: skip
        raise UserError(f"{source}: [constraints] min_accuracy must be in 0..1, not {acc!r}")
    return {"fits": fits, "min_accuracy": acc}
