"""From a quantised classifier to a board design: plans, hash, core, tables (shared by
``spikelut build``, ``spikelut run`` and the board simulation)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from spikelut.compiler.backend import LayerPlan, build_network, fit_plans, network_params
from spikelut.compiler.ir import ClassifierMLP

from .top import BoardCore

__all__ = [
    "HASH_BYTES",
    "RESERVED_BRAMS",
    "board_plans",
    "choose_indexer",
    "make_core",
    "model_hash",
    "model_tables",
    "plans_from_json",
    "plans_to_json",
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


def board_plans(model: ClassifierMLP, spec, *, max_brams: int | None = None) -> list[LayerPlan]:
    """The fastest table placement within ``max_brams`` block RAMs (and the SPRAMs).

    By default the tables get an eighth of the device's block RAMs (a quarter, a half or
    all of them if they need more): a host-link board is bound by its UART (a few hundred
    inferences/s), so reading many tables per cycle would only buy adders, build time and
    Fmax loss.
    """
    cap = spec.capacity
    available = cap.block_rams - RESERVED_BRAMS[spec.family]
    if max_brams is not None:
        budgets = [min(available, max_brams)]
    else:
        budgets = [min(available, cap.block_rams // d) for d in (8, 4, 2)] + [available]
    for budget in budgets[:-1]:
        try:
            return fit_plans(model, family=spec.family, block_rams=budget, sprams=cap.sprams)
        except ValueError:
            continue  # the tables need more
    return fit_plans(model, family=spec.family, block_rams=budgets[-1], sprams=cap.sprams)


def plans_to_json(plans: list[LayerPlan]) -> list[dict]:
    """JSON form of layer plans."""
    return [
        {
            "storage": p.storage.name.lower(),
            "tables_per_cycle": p.tables_per_cycle,
            "lanes": p.lanes,
        }
        for p in plans
    ]


def plans_from_json(items: list[dict]) -> list[LayerPlan]:
    """Inverse of :func:`plans_to_json`."""
    from spikelut.hdl.bank import Storage

    return [
        LayerPlan(Storage[i["storage"].upper()], i["tables_per_cycle"], i["lanes"]) for i in items
    ]


def model_tables(model: ClassifierMLP) -> dict[int, np.ndarray]:
    """Layer index -> integer tables (N_T, 2**N_C, Y)."""
    return {k: np.asarray(layer.tables, np.int64) for k, layer in enumerate(model.layers)}


def choose_indexer(model: ClassifierMLP, spec, *, plans=None) -> str:
    """The indexer a board design gets: ``"serial"`` unless a layer is residual (the serial
    core has no residual add) or the parallel core is estimated smaller.

    Both cores read the tables at the same rate for the same placement (``plans``, by
    default :func:`board_plans`): the serial core indexes one group of tables while reading
    the previous one, so it reaches the memory-bandwidth floor with a few comparators
    instead of ``N_T * N_C``; the logic estimate
    (:func:`spikelut.compiler.estimate.estimate_logic`) decides.
    """
    if any(layer.residual for layer in model.layers):
        return "parallel"
    from spikelut.compiler.estimate import estimate_logic

    if plans is None:
        plans = board_plans(model, spec)
    params, _ = network_params(model, plans)
    serial = estimate_logic(params, spec.family, serial=True)["logic_cells"]
    parallel = estimate_logic(params, spec.family)["logic_cells"]
    return "serial" if serial <= parallel else "parallel"


def make_core(
    model: ClassifierMLP,
    plans,
    *,
    clock_hz: int,
    divisor: int,
    indexer: str = "parallel",
    **options,
) -> BoardCore:
    """The :class:`~spikelut.boards.top.BoardCore` of ``model`` placed by ``plans``, with the
    parallel network core or the :mod:`~spikelut.hdl.serial_core` (``indexer="serial"``)."""
    if indexer == "serial":
        from spikelut.hdl.serial_core import SerialNetwork

        params, _ = network_params(model, plans)
        net = SerialNetwork(layers=params)
    elif indexer == "parallel":
        net = build_network(model, plans)
    else:
        raise ValueError(f"indexer must be 'parallel' or 'serial', not {indexer!r}")
    return BoardCore(
        net, clock_hz=int(clock_hz), divisor=divisor, model_hash=model_hash(model), **options
    )
