"""From a quantised classifier to a board design: the core's kind and placement, the model
hash and the tables (shared by ``spikelut build``, ``spikelut run`` and the board simulation).

A board is driven over a UART, a few hundred inferences per second, so reading many tables
per cycle would only buy adders, build time and Fmax loss: :func:`board_plans` gives the
tables an eighth of the block RAMs (a quarter, a half or all of them if they need more),
SPRAM on an UltraPlus. :func:`board_core` picks the core kind by the backend's one rule
(:func:`~spikelut.compiler.backend.cores.choose_core`) at those placements.

:func:`shape_hash` is the fingerprint a bitstream reports of what it fixes (IDENTIFY's
``shape_hash``): a model whose tables it may run has the same fingerprint at the
bitstream's core kind and placement (:func:`build_tables`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spikelut.boards.platforms import BoardSpec, board
from spikelut.boards.tables import TableSpace, table_space
from spikelut.boards.top import BoardCore
from spikelut.compiler.backend.compile import CompileError, CorePlan, plan_core
from spikelut.compiler.backend.cores import CoreKind, build_core, choose_core, eligible_kinds
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.placement import fit_plans
from spikelut.compiler.backend.plan import LayerPlan, plans_from_json
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.hdl.hostlink.wire import SHAPE_HASH_BYTES
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.storage import Storage

__all__ = [
    "HASH_BYTES",
    "RESERVED_BRAMS",
    "BuildTables",
    "board_core",
    "board_plans",
    "build_tables",
    "core_of_build",
    "core_tables",
    "make_core",
    "model_hash",
    "model_tables",
    "shape_hash",
    "table_space_of_build",
]

HASH_BYTES = 16
# block RAMs kept for the host link's payload buffer (1 kB) and FIFOs
RESERVED_BRAMS = {"ice40": 4, "ecp5": 2, "gowin": 2}


def model_hash(model: ClassifierMLP) -> bytes:
    """The first 16 bytes of a SHA-256 over the model's header and arrays (stable across saves):
    what the model computes. Its ``meta`` (provenance: date, data set, training figures)
    is left out, so retraining to the same tables gives the same hash, and the same
    bitstream."""
    header, arrays = model.to_arrays()
    header = {k: v for k, v in header.items() if k != "meta"}
    h = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + arr.dtype.str.encode() + str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.digest()[:HASH_BYTES]


def shape_hash(kind: CoreKind | str, params: Sequence[LayerParams]) -> bytes:
    """The shape fingerprint (8 bytes) of a ``kind`` core (a CoreKind, or ``"transformer"``)
    of ``params`` (dataclasses: LayerParams and the like): a SHA-256 over
    every parameter the gateware is built from but the contents of the tables it keeps in
    memory (their shape counts; a LOGIC layer's tables, built into the logic, count whole):
    anchors, widths, shifts, storage and rates. Two models with the same fingerprint at a
    placement can swap tables on the same bitstream; the exact widths count, so a model
    whose tables need other widths has another fingerprint."""
    h = hashlib.sha256(b"spikelut shape 1")
    h.update((kind if kind == "transformer" else CoreKind(kind).value).encode())
    for k, p in enumerate(params):
        for f in dataclasses.fields(p):
            if f.name == "in_bounds":  # only the check of out_width reads it
                continue
            value = getattr(p, f.name)
            if f.name == "tables" and p.storage != Storage.LOGIC:
                value = value.shape
            if isinstance(value, np.ndarray):
                arr = np.ascontiguousarray(value, np.int64)
                value = (arr.shape, arr.tobytes())
            h.update(repr((k, f.name, getattr(value, "value", value))).encode())
    return h.digest()[:SHAPE_HASH_BYTES]


@dataclass(frozen=True)
class BuildTables:
    """What a host needs to load a model's tables into a bitstream: the bitstream's table
    ``space`` and the model's ``shape_hash`` at the bitstream's core kind and placement (the
    tables fit when it equals the board's)."""

    space: TableSpace
    shape_hash: bytes


def core_tables(core: CorePlan) -> BuildTables:
    """The :class:`BuildTables` of a planned core (the model it was planned for)."""
    return BuildTables(table_space(core.params), shape_hash(core.kind, core.params))


def build_tables(model: ClassifierMLP, board_info: dict) -> BuildTables:
    """The :class:`BuildTables` of ``model`` for the bitstream described by ``board_info``
    (a build's ``board.json``: its core kind and placement). ``ValueError`` naming what is
    missing, or why the model cannot take that placement (another shape)."""
    if not isinstance(board_info, dict) or not {"plans", "indexer"} <= board_info.keys():
        raise ValueError("the build's board.json lacks plans or indexer; rebuild it")
    kind = CoreKind.parse(str(board_info["indexer"]))
    try:
        params, _ = network_params(model, plans_from_json(board_info["plans"]), kind=kind)
    except ValueError as e:
        raise ValueError(f"the model does not fit that build's core (another shape): {e}") from None
    return BuildTables(table_space(params), shape_hash(kind, params))


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
    model) at its :func:`board_plans` placement, within the logic cells the board top leaves
    (:attr:`~spikelut.compiler.backend.targets.Target.core_logic_cells`). Raises
    :class:`~spikelut.compiler.backend.compile.CompileError` when nothing fits the device."""
    kinds = eligible_kinds(model) if kind == "auto" else [CoreKind.parse(kind)]
    fits, failures = {}, []
    for k in kinds:
        try:
            plans = board_plans(model, spec, k, max_brams=max_brams)
            fits[k] = plan_core(model, spec.target, kind=k, plans=plans)
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
        net,
        clock_hz=int(clock_hz),
        divisor=divisor,
        model_hash=model_hash(model),
        shape_hash=shape_hash(core.kind, core.params),
        **options,
    )


def core_of_build(model: ClassifierMLP, board_info: dict) -> tuple[BoardSpec, CorePlan]:
    """The board and the core of the bitstream described by ``board_info`` (a build's
    ``board.json``), for ``model``: the kind and placement it recorded. ``ValueError``
    (or CompileError) naming what is missing or wrong."""
    if not isinstance(board_info, dict) or not {"board", "plans", "indexer"} <= board_info.keys():
        raise ValueError("the build's board.json lacks board, plans or indexer; rebuild it")
    spec = board(str(board_info["board"]))
    plans = plans_from_json(board_info["plans"])
    core = plan_core(
        model,
        spec.target,
        kind=str(board_info["indexer"]),
        plans=plans,
        logic_cells=spec.target.logic_cells,  # the build exists: only the device bounds it
    )
    return spec, core


def table_space_of_build(model: ClassifierMLP, board_info: dict) -> TableSpace:
    """The table space of the bitstream described by ``board_info`` (a build's
    ``board.json``) for ``model``'s shape: what LOAD_TABLES must write. ``ValueError``
    naming what is missing or wrong."""
    if not isinstance(board_info, dict) or "plans" not in board_info:
        raise ValueError("the build's board.json holds no plans; rebuild with spikelut build")
    params, _ = network_params(model, plans_from_json(board_info["plans"]))
    return table_space(params)
