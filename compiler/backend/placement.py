"""Memory placement: block RAMs and SPRAMs a core takes, and the fastest placement that fits.

Block RAM counts use each family's best aspect ratio per lane memory (:func:`lane_blocks`):
iCE40 ``SB_RAM40_4K`` as 256x16 .. 2048x2, ECP5 ``DP16KD`` and Gowin ``BSRAM`` as 512x36 ..
16384x1. An SPRAM lane
takes ``ceil(L * table_bits / 16)`` 16-bit SB_SPRAM256KA side by side. A serial core's
indexer adds its anchor ROM and, with input copies, ``2 * C`` small memories per layer.
"""

from __future__ import annotations

import itertools

from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.backend.estimate import estimate_logic
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.hdl.layer_params import LayerParams, bank_geometry, serial_geometry
from spikelut.hdl.serial_core import serial_operand_memory
from spikelut.hdl.spram import SPRAM_DEPTH, SPRAM_WIDTH
from spikelut.hdl.storage import Storage

__all__ = [
    "bandwidth_floor",
    "bank_blocks",
    "core_blocks",
    "fit_plans",
    "lane_blocks",
    "serial_index_blocks",
]


def bandwidth_floor(n_tables: int, out_dim: int, tables_per_cycle: int, lanes: int) -> int:
    """Fewest cycles to read ``N_T * Y`` entries through ``P * L`` entries per cycle."""
    return -(-(n_tables * out_dim) // (tables_per_cycle * lanes))


# (width, depth) configurations of one block RAM, per family
_BRAM_MODES = {
    "ice40": ((16, 256), (8, 512), (4, 1024), (2, 2048)),
    "ecp5": ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)),
    # Gowin 18-kbit BSRAM in semi-dual-port mode: the ECP5 block's aspects
    "gowin": ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)),
}


def lane_blocks(word_bits: int, depth: int, family: str) -> int:
    """Block RAMs one lane memory of ``depth`` words of ``word_bits`` needs (best aspect)."""
    return min(-(-word_bits // w) * -(-depth // d) for w, d in _BRAM_MODES[family])


def bank_blocks(n_tables, n_c, out_dim, table_bits, p, lanes, storage, family) -> tuple[int, int]:
    """``(block RAMs, SPRAMs)`` of one bank placed as ``storage`` with ``P``, ``L``."""
    _, _, depth = bank_geometry(n_tables, n_c, out_dim, p, lanes)
    word = lanes * table_bits
    if storage == Storage.BRAM:
        return p * lane_blocks(word, depth, family), 0
    if storage == Storage.SPRAM:
        return 0, p * -(-word // SPRAM_WIDTH)
    return 0, 0


def _cheapest(layer, table_bits: int, storage: Storage, family: str):
    """``(cycles, blocks, P, L)`` options of one layer: for each interval reachable, the
    cheapest placement (blocks: BRAMs or SPRAMs), as a list sorted by cycles with the cost
    running-minimised, so the entry for the largest ``cycles <= target`` is the best."""
    best: dict[int, tuple[int, int, int]] = {}
    for p in range(1, layer.n_tables + 1):
        for lanes in range(1, layer.out_dim + 1):
            groups, beats = -(-layer.n_tables // p), -(-layer.out_dim // lanes)
            if storage == Storage.SPRAM and groups * beats << layer.n_c > SPRAM_DEPTH:
                continue
            brams, sprams = bank_blocks(
                layer.n_tables, layer.n_c, layer.out_dim, table_bits, p, lanes, storage, family
            )
            cycles, cost = groups * beats, brams + sprams
            if cycles not in best or cost < best[cycles][0]:
                best[cycles] = (cost, p, lanes)
    out, run = [], None
    for cycles in sorted(best):
        if run is None or best[cycles][0] < run[0]:
            run = best[cycles]
        out.append((cycles, *run))
    return out


def _assign(options, assign, interval: int):
    """The plans and ``{storage: blocks}`` of one storage per layer (``assign``), each layer
    taking its cheapest placement within ``interval`` cycles; None when a layer cannot."""
    chosen, used = [], {Storage.BRAM: 0, Storage.SPRAM: 0}
    for opts, storage in zip(options, assign, strict=True):
        fits = [o for o in opts[storage] if o[0] <= interval]
        if not fits:
            return None, used
        _, cost, p, lanes = fits[-1]
        used[storage] += cost
        chosen.append(LayerPlan(storage, p, lanes))
    return chosen, used


def _fitting_memories(model, options, assign, interval, kind, family, block_rams, sprams):
    """The plans of :func:`_assign` when their block RAMs (a serial core's anchor ROMs and
    input copies included) and SPRAMs fit, else None."""
    chosen, used = _assign(options, assign, interval)
    if chosen is None:
        return None
    if kind is CoreKind.SERIAL:
        params, _ = network_params(model, chosen, kind=kind)
        used[Storage.BRAM] += sum(serial_index_blocks(p, family) for p in params)
    if used[Storage.BRAM] > block_rams or used[Storage.SPRAM] > sprams:
        return None
    return chosen


def fit_plans(
    model: ClassifierMLP,
    *,
    family: str,
    block_rams: int,
    sprams: int = 0,
    logic_cells: int | None = None,
    kind: CoreKind = CoreKind.PARALLEL,
    max_cycles: int | None = None,
    smallest: bool = False,
) -> list[LayerPlan]:
    """The fastest (or, with ``smallest``, the slowest within ``max_cycles``) placement of
    every layer's tables in block RAM or SPRAM that fits.

    For every candidate interval (cycles per inference), each layer takes the cheapest
    ``(P, L)`` reaching it in the storage chosen for it (every BRAM/SPRAM assignment of the
    layers is tried, BRAM first); intervals are tried fastest first (slowest first with
    ``smallest``), and the first whose totals fit ``block_rams``, ``sprams`` and, when
    given, ``logic_cells`` (the estimate of :func:`spikelut.compiler.backend.estimate.estimate_logic`
    for a core of ``kind``; a serial core's anchor ROMs and input copies also take block
    RAMs: :func:`serial_index_blocks`) wins. ``max_cycles`` bounds the interval. A frozen
    core has one placement, every table in logic (checked against ``logic_cells``). Raises
    ``ValueError`` saying what is short and by how much (block RAMs, logic cells, or the
    interval reachable).
    """
    if kind is CoreKind.FROZEN:
        return _frozen_plans(model, family, logic_cells, max_cycles)
    storages = [Storage.BRAM, Storage.SPRAM] if sprams else [Storage.BRAM]
    options = [
        {s: _cheapest(layer, q.table_bits, s, family) for s in storages}
        for layer, q in zip(model.layers, model.quant, strict=True)
    ]
    intervals = sorted({o[0] for opts in options for s in storages for o in opts[s]})
    if smallest:
        intervals.reverse()
    best_cells = None  # (cells, cycles) of the leanest placement that fit the memories
    fastest_mem = None  # the fastest interval whose memories fit, whatever the logic
    for interval in intervals:
        for assign in itertools.product(storages, repeat=len(options)):
            chosen = _fitting_memories(model, options, assign, interval, kind, family,
                                       block_rams, sprams)  # fmt: skip
            if chosen is None:
                continue
            fastest_mem = interval if fastest_mem is None else min(fastest_mem, interval)
            if max_cycles is not None and interval > max_cycles:
                continue
            if logic_cells is not None:
                params, _ = network_params(model, chosen, kind=kind)
                cells = estimate_logic(params, family, kind)["logic_cells"]
                if best_cells is None or cells < best_cells[0]:
                    best_cells = (cells, interval)
                if cells > logic_cells:
                    continue
            return chosen
    raise ValueError(
        _shortfall(model, options, kind, block_rams, sprams, logic_cells, max_cycles,
                   best_cells, fastest_mem)
    )  # fmt: skip


# how to make a frozen core smaller: its logic is its tables, so the quantiser's choices
# (entry bits, tables a class, input shift) set its size, not a per-cycle knob
FROZEN_SHRINK = (
    "quantise to fewer table bits, prune each class to fewer tables or shift the inputs "
    "(spikelut quantize --bits/--prune-to/--shift), use a memory core, or a larger device"
)


def _frozen_plans(model, family, logic_cells, max_cycles) -> list[LayerPlan]:
    """A frozen core's only placement: every table in logic, one inference per clock;
    ``ValueError`` when it needs more than ``logic_cells`` (estimated) or ``max_cycles < 1``."""
    plans = [LayerPlan(Storage.LOGIC)] * len(model.layers)
    if max_cycles is not None and max_cycles < 1:
        raise ValueError(
            f"no placement reaches {max_cycles} cycles per inference; the frozen core takes 1"
        )
    if logic_cells is not None:
        params, _ = network_params(model, plans, kind=CoreKind.FROZEN)
        cells = estimate_logic(params, family, CoreKind.FROZEN)["logic_cells"]
        if cells > logic_cells:
            raise ValueError(
                f"the frozen core needs about {cells} logic cells (estimated), "
                f"{cells - logic_cells} more than the {logic_cells} available; {FROZEN_SHRINK}"
            )
    return plans


def _shortfall(model, options, kind, block_rams, sprams, logic_cells, max_cycles, best_cells,
               fastest_mem) -> str:  # fmt: skip
    """Why :func:`fit_plans` found nothing: memories, logic, or the interval reachable."""
    if fastest_mem is None:
        bram_only = sum(opts[Storage.BRAM][-1][1] for opts in options)
        index = (
            " plus the serial core's anchor ROMs and input copies"
            if kind is CoreKind.SERIAL
            else ""
        )
        return (
            f"the tables need at least {bram_only} block RAMs (or SPRAMs beyond the {sprams} "
            f"there are){index}, the target has {block_rams}; use fewer tables or a smaller "
            "N_C, fewer table bits, or a larger device"
        )
    if best_cells is not None and best_cells[0] > logic_cells:
        if kind is CoreKind.SERIAL:
            advice = "use fewer tables or a smaller N_C, "
        else:
            pairs = sum(layer.n_tables * layer.n_c for layer in model.layers)
            advice = (
                f"most go to the {kind.value} indexer's {pairs} anchor pairs: use fewer tables "
                "or a smaller N_C, narrower inputs (in_shift), "
                + ("the serial or temporal core, " if kind is CoreKind.PARALLEL else "")
            )
        return (
            f"the core needs about {best_cells[0]} logic cells (estimated, at "
            f"{best_cells[1]} cycles per inference), {best_cells[0] - logic_cells} more than "
            f"the {logic_cells} available; {advice}or a larger device"
        )
    return (
        f"no placement reaches {max_cycles} cycles per inference; the fastest that fits "
        f"takes {fastest_mem}"
    )


def serial_index_blocks(params: LayerParams, family: str) -> int:
    """Block RAMs of a serial-core layer's indexer: its anchor ROM and, with operands copied
    to memory, the ``2 * C`` input copies."""
    d = params.in_dim
    sel = max(1, (d - 1).bit_length())
    groups, _, comps, slots = serial_geometry(
        params.n_tables, params.n_c, params.out_dim, params.tables_per_cycle, params.lanes
    )
    blocks = lane_blocks(2 * sel * comps, groups * slots, family)
    if serial_operand_memory(params):
        blocks += 2 * comps * lane_blocks(params.in_width, 2 << sel, family)
    return blocks


def core_blocks(kind: CoreKind, layers: list[LayerParams], family: str) -> tuple[int, int]:
    """``(block RAMs, SPRAMs)`` a core of ``kind`` takes: its tables, and for a serial core
    its anchor ROMs and input copies."""
    brams = sprams = 0
    for p in layers:
        if kind is CoreKind.SERIAL:
            brams += serial_index_blocks(p, family)
        br, sp = bank_blocks(
            p.n_tables, p.n_c, p.out_dim, p.table_width, p.tables_per_cycle, p.lanes,
            p.storage, family,
        )  # fmt: skip
        brams += br
        sprams += sp
    return brams, sprams
