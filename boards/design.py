"""From a quantised classifier to a board design: the core's kind and placement, the model
hash and the tables (shared by ``spikelut build``, ``spikelut run`` and the board simulation).

A board is driven over a UART, a few hundred inferences per second, so reading many tables
per cycle would only buy adders, build time and Fmax loss: :func:`board_plans` gives the
tables an eighth of the block RAMs (a quarter, a half or all of them if they need more),
SPRAM on an UltraPlus. :func:`board_core` picks the core kind by the backend's one rule
(:func:`~spikelut.compiler.backend.cores.choose_core`) at those placements.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from spikelut.boards.platforms import BoardSpec
from spikelut.boards.tables import TableSpace, table_space
from spikelut.boards.top import BoardCore
from spikelut.compiler.backend.compile import CompileError, CorePlan, plan_core
from spikelut.compiler.backend.cores import CoreKind, build_core, choose_core, eligible_kinds
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.placement import fit_plans
from spikelut.compiler.backend.plan import LayerPlan, plans_from_json
from spikelut.compiler.ir.classifier import ClassifierMLP

__all__ = [
    "HASH_BYTES",
    "RESERVED_BRAMS",
    "board_core",
    "board_plans",
    "make_core",
    "model_hash",
    "model_tables",
    "table_space_of_build",
]

HASH_BYTES = 16
# block RAMs kept for the host link's payload buffer (1 kB) and FIFOs
RESERVED_BRAMS = {"ice40": 4, "ecp5": 2}


def model_hash(model: ClassifierMLP) -> bytes:
    """The first 16 bytes of a SHA-256 over the model's header and arrays (stable across saves)."""
    header, arrays = model.to_arrays()
    h = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + arr.dtype.str.encode() + str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.digest()[:HASH_BYTES]


def board_plans(
    model: ClassifierMLP, spec: BoardSpec, kind: CoreKind, *, max_brams: int | None = None
) -> list[LayerPlan]:
    """The fastest table placement of a ``kind`` core within ``max_brams`` block RAMs (by
    default the budgets of the module docstring) and the board's SPRAMs; a serial core's
    anchor ROMs and input copies count against the budget. ``ValueError`` when nothing fits."""
    t = spec.target
    available = t.block_rams - RESERVED_BRAMS[t.family]
    if max_brams is not None:
        budgets = [min(available, max_brams)]
    else:
        budgets = [min(available, t.block_rams // d) for d in (8, 4, 2)] + [available]
    kw = dict(family=t.family, sprams=t.sprams, kind=kind)
    for budget in budgets[:-1]:
        try:
            return fit_plans(model, block_rams=budget, **kw)
        except ValueError:
            continue  # the tables need more
    return fit_plans(model, block_rams=budgets[-1], **kw)


def board_core(
    model: ClassifierMLP,
    spec: BoardSpec,
    *,
    kind: CoreKind | str = "auto",
    max_brams: int | None = None,
) -> CorePlan:
    """The core a board build puts in the bitstream: ``kind`` (or, for ``"auto"``, the kind
    :func:`~spikelut.compiler.backend.cores.choose_core` picks among those that can run the
    model) at its :func:`board_plans` placement. Raises
    :class:`~spikelut.compiler.backend.compile.CompileError` when nothing fits the device."""
    kinds = eligible_kinds(model) if kind == "auto" else [CoreKind.parse(kind)]
    fits, failures = {}, []
    for k in kinds:
        try:
            plans = board_plans(model, spec, k, max_brams=max_brams)
            fits[k] = plan_core(
                model, spec.target, kind=k, plans=plans, logic_cells=spec.target.logic_cells
            )
        except (CompileError, ValueError) as e:
            failures.append(CompileError(str(e)))
    if not fits:
        raise failures[0]
    return fits[choose_core({k: p.estimate["logic_cells"] for k, p in fits.items()})]


def model_tables(model: ClassifierMLP) -> dict[int, np.ndarray]:
    """Layer index -> integer tables (N_T, 2**N_C, Y)."""
    return {k: np.asarray(layer.tables, np.int64) for k, layer in enumerate(model.layers)}


def make_core(
    model: ClassifierMLP, core: CorePlan, *, clock_hz: int, divisor: int, **options
) -> BoardCore:
    """The :class:`~spikelut.boards.top.BoardCore` of ``model`` with the core ``core``
    (:func:`board_core`), clocked at ``clock_hz`` with UART ``divisor``; ``options`` as
    :class:`~spikelut.boards.top.BoardCore`."""
    net = build_core(core.kind, core.params)
    return BoardCore(
        net, clock_hz=int(clock_hz), divisor=divisor, model_hash=model_hash(model), **options
    )


def table_space_of_build(model: ClassifierMLP, board_info: dict) -> TableSpace:
    """The table space of the bitstream described by ``board_info`` (a build's
    ``board.json``) for ``model``'s shape: what LOAD_TABLES must write. ``ValueError``
    naming what is missing or wrong."""
    if not isinstance(board_info, dict) or "plans" not in board_info:
        raise ValueError("the build's board.json holds no plans; rebuild with spikelut build")
    params, _ = network_params(model, plans_from_json(board_info["plans"]))
    return table_space(params)
