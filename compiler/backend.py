"""The compiler backend: an integer classifier to the gateware network and its manifest.

:func:`network_params` maps a quantised :class:`~spikelut.compiler.ir.ClassifierMLP` and a
per-layer placement (storage, tables per cycle ``P``, outputs per beat ``L``) onto the
parameters of :class:`spikelut.hdl.layer.Network` (or of the logic-lean
:class:`spikelut.hdl.serial_core.SerialNetwork`, :func:`build_serial_network`), with the exact
widths of :func:`spikelut.compiler.widths.infer_widths`. :func:`manifest` describes the
result: ports and payload formats, the indexer, cycles per inference, the latency (measured
in simulation), memory placement and the memory-bandwidth floor.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from spikelut.hdl.bank import Storage
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layer import Network
from spikelut.hdl.spram import SPRAM_DEPTH

from .ir import ClassifierMLP
from .widths import DEFAULT_MAX_WIDTH, LayerWidths, infer_widths

__all__ = [
    "LayerPlan",
    "bandwidth_floor",
    "bank_blocks",
    "build_network",
    "build_serial_network",
    "fit_plans",
    "lane_blocks",
    "manifest",
    "network_blocks",
    "network_params",
    "serial_index_blocks",
]


@dataclass(frozen=True)
class LayerPlan:
    """Where one layer's tables live and how fast they are read.

    ``tables_per_cycle`` (P) and ``lanes`` (L) of None mean "all" (N_T, Y); larger values
    are clamped to N_T and Y. LOGIC storage always reads everything at once.
    """

    storage: Storage = Storage.BRAM
    tables_per_cycle: int | None = 1
    lanes: int | None = None


def _clamp(value: int | None, top: int) -> int:
    return top if value is None else max(1, min(int(value), top))


def network_params(
    model: ClassifierMLP,
    plans: list[LayerPlan] | LayerPlan | None = None,
    *,
    indexer: IndexerKind = IndexerKind.PARALLEL,
    max_width: int = DEFAULT_MAX_WIDTH,
) -> tuple[list[dict], list[LayerWidths]]:
    """``Network(layers=...)`` parameters for an integer classifier, and its widths.

    ``plans``: one :class:`LayerPlan` per layer, or one for every layer (default BRAM, P=1,
    L=Y). ``indexer`` is layer 0's. Raises ``ValueError`` (``WidthError``) for a float
    network, a wrong number of plans or a width beyond ``max_width``.
    """
    if not model.is_integer:
        raise ValueError("the backend needs a quantised (integer) network; quantize first")
    widths = infer_widths(model, max_width=max_width)
    if plans is None:
        plans = LayerPlan()
    if isinstance(plans, LayerPlan):
        plans = [plans] * len(model.layers)
    if len(plans) != len(model.layers):
        raise ValueError(f"{len(plans)} layer plans for {len(model.layers)} layers")
    params = []
    for k, (layer, q, w, plan) in enumerate(
        zip(model.layers, model.quant, widths, plans, strict=True)
    ):
        p = dict(
            anchors_a=layer.a,
            anchors_b=layer.b,
            tables=layer.tables,
            in_dim=layer.in_dim,
            in_width=model.encoding.bits if k == 0 else widths[k - 1].out_width,
            table_width=q.table_bits,
            out_width=w.out_width,
            in_shift=q.in_shift,
            residual=layer.residual,
            in_bounds=None if k == 0 else (widths[k - 1].col_lo, widths[k - 1].col_hi),
            storage=plan.storage,
        )
        if plan.storage != Storage.LOGIC:
            p["tables_per_cycle"] = _clamp(plan.tables_per_cycle, layer.n_tables)
            p["lanes"] = _clamp(plan.lanes, layer.out_dim)
        if k == 0:
            p["indexer"] = indexer
        params.append(p)
    return params, widths


def build_network(model: ClassifierMLP, plans=None, *, indexer=IndexerKind.PARALLEL, argmax=True):
    """The :class:`~spikelut.hdl.layer.Network` of an integer classifier (see
    :func:`network_params`)."""
    params, _ = network_params(model, plans, indexer=indexer)
    return Network(layers=params, argmax=argmax)


def build_serial_network(model: ClassifierMLP, plans=None):
    """The :class:`~spikelut.hdl.serial_core.SerialNetwork` of an integer classifier without
    residual layers (see :func:`network_params`)."""
    from spikelut.hdl.serial_core import SerialNetwork

    params, _ = network_params(model, plans)
    return SerialNetwork(layers=params)


def bandwidth_floor(n_tables: int, out_dim: int, tables_per_cycle: int, lanes: int) -> int:
    """Fewest cycles to read ``N_T * Y`` entries through ``P * L`` entries per cycle."""
    return -(-(n_tables * out_dim) // (tables_per_cycle * lanes))


def describe_shape(shape) -> dict:
    """A JSON-able description of a port or payload shape (``lib.data`` layouts included)."""
    if isinstance(shape, data.ArrayLayout):
        return {
            "array": describe_shape(shape.elem_shape),
            "length": shape.length,
            "width": shape.size,
        }
    if isinstance(shape, data.StructLayout):
        return {
            "struct": {
                name: {"offset": field.offset, **describe_shape(field.shape)}
                for name, field in shape
            },
            "width": shape.size,
        }
    s = Shape.cast(shape)
    return {"signed": s.signed, "width": s.width}


def _ports(component: wiring.Component) -> dict:
    out = {}
    for name, member in component.signature.members.items():
        if member.is_port:
            out[name] = {"flow": member.flow.name, **describe_shape(member.shape)}
            continue
        stream = member.signature
        sig = stream.flip() if member.flow == wiring.In else stream
        payload = sig.members["payload"].shape
        out[name] = {
            "kind": "stream",
            "direction": "in" if member.flow == wiring.In else "out",
            "payload": describe_shape(payload),
        }
    return out


def manifest(
    net, widths: list[LayerWidths], *, family: str | None = None, latency: bool = True
) -> dict:
    """What a build of ``net`` (a :class:`~spikelut.hdl.layer.Network` or a
    :class:`~spikelut.hdl.serial_core.SerialNetwork`) produced: ports, indexer, throughput,
    memory placement and bandwidth per layer; with ``latency`` (the default)
    ``latency_cycles``, the clock cycles from an input vector's last transfer to its
    result's, measured by simulating ``net`` (:func:`spikelut.compiler.latency.measure_latency`,
    SPRAM tables loaded first); with ``family`` (``"ice40"``/``"ecp5"``) also the estimated
    LUT4s, flip-flops, logic cells (:func:`spikelut.compiler.estimate.estimate_logic`), block
    RAMs and SPRAMs."""
    from spikelut.hdl.serial_core import SerialNetwork

    serial = isinstance(net, SerialNetwork)
    layers = []
    floor = 1
    for k, (hw, w) in enumerate(zip(net.layers, widths, strict=True)):
        bank = hw.bank
        p, lanes = bank.tables_per_cycle, bank.lanes
        lf = (
            1
            if bank.storage == Storage.LOGIC
            else bandwidth_floor(bank.n_tables, bank.out_dim, p, lanes)
        )
        floor = max(floor, lf)
        extra = {}
        if serial:
            extra = {
                "comparators": hw.comparators,
                "index_cycles_per_group": hw.index_cycles,
                "operand_memory": hw.operand_memory,
            }
        layers.append(
            {
                "layer": k,
                "storage": bank.storage.name.lower(),
                "tables_per_cycle": p,
                "lanes": lanes,
                "indexer": "serial" if serial else hw.indexer_kind.name.lower(),
                **extra,
                "cycles_per_inference": hw.cycles_per_inference,
                "bank_cycles_per_inference": bank.cycles_per_inference,
                "bandwidth_floor_cycles": lf,
                "bandwidth_fraction": lf / bank.cycles_per_inference,
                "memory_words_per_lane": 0 if bank.storage == Storage.LOGIC else bank.depth,
                "memory_word_bits": lanes * bank.table_width,
                "memory_bits": bank.memory_bits,
                # SPRAM is not initialised by the bitstream: load it through w{k}_stream
                "load_at_boot": bank.storage == Storage.SPRAM,
                "widths": w.to_dict(),
            }
        )
    cycles = net.cycles_per_inference
    out = {
        "ports": _ports(net),
        "indexer": "serial" if serial else net.layers[0].indexer_kind.name.lower(),
        "cycles_per_inference": cycles,
        "bandwidth_floor_cycles": floor,
        "bandwidth_fraction": floor / cycles,
        "layers": layers,
    }
    if latency:
        from .latency import measure_latency

        out["latency_cycles"] = measure_latency(net)
    if family is not None:
        from .estimate import estimate_logic, network_layer_params

        brams, sprams = network_blocks(net, family)
        est = estimate_logic(
            network_layer_params(net), family, argmax=serial or net.argmax, serial=serial
        )
        out["estimate"] = {**est, "block_rams": brams, "sprams": sprams, "family": family}
    return out


# -- memory placement -------------------------------------------------------------------------

# (width, depth) configurations of one block RAM, per family
_BRAM_MODES = {
    "ice40": ((16, 256), (8, 512), (4, 1024), (2, 2048)),
    "ecp5": ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)),
}


def lane_blocks(word_bits: int, depth: int, family: str) -> int:
    """Block RAMs one lane memory of ``depth`` words of ``word_bits`` needs (best aspect)."""
    return min(-(-word_bits // w) * -(-depth // d) for w, d in _BRAM_MODES[family])


def bank_blocks(n_tables, n_c, out_dim, table_bits, p, lanes, storage, family) -> tuple[int, int]:
    """``(block RAMs, SPRAMs)`` of one bank placed as ``storage`` with ``P``, ``L``."""
    groups, beats = -(-n_tables // p), -(-out_dim // lanes)
    depth = groups * beats << n_c
    word = lanes * table_bits
    if storage == Storage.BRAM:
        return p * lane_blocks(word, depth, family), 0
    if storage == Storage.SPRAM:
        return 0, p * -(-word // 16)
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


def fit_plans(
    model: ClassifierMLP,
    *,
    family: str,
    block_rams: int,
    sprams: int = 0,
    logic_cells: int | None = None,
    indexer: IndexerKind = IndexerKind.PARALLEL,
    max_cycles: int | None = None,
    smallest: bool = False,
    serial: bool = False,
) -> list[LayerPlan]:
    """The fastest (or, with ``smallest``, the slowest within ``max_cycles``) placement of
    every layer's tables in block RAM or SPRAM that fits.

    For every candidate interval (cycles per inference), each layer takes the cheapest
    ``(P, L)`` reaching it in the storage chosen for it (every BRAM/SPRAM assignment of the
    layers is tried, BRAM first); intervals are tried fastest first (slowest first with
    ``smallest``), and the first whose totals fit ``block_rams``, ``sprams`` and, when
    given, ``logic_cells`` (the estimate of :func:`spikelut.compiler.estimate.estimate_logic`
    with ``indexer``, or of the serial core with ``serial``, whose anchor ROMs and input
    copies also take block RAMs: :func:`serial_index_blocks`) wins. ``max_cycles`` bounds
    the interval. Raises ``ValueError`` saying what is short and by how much (block RAMs,
    logic cells, or the interval reachable).
    """
    from .estimate import estimate_logic

    kinds = [Storage.BRAM, Storage.SPRAM] if sprams else [Storage.BRAM]
    options = [
        {k: _cheapest(layer, q.table_bits, k, family) for k in kinds}
        for layer, q in zip(model.layers, model.quant, strict=True)
    ]
    targets = sorted({o[0] for opts in options for k in kinds for o in opts[k]})
    if smallest:
        targets.reverse()
    best_cells = None  # (cells, cycles) of the leanest placement that fit the memories
    fastest_mem = None  # the fastest interval whose memories fit, whatever the logic
    for target in targets:
        for assign in itertools.product(kinds, repeat=len(options)):
            chosen, used = [], {Storage.BRAM: 0, Storage.SPRAM: 0}
            for opts, kind in zip(options, assign, strict=True):
                fits = [o for o in opts[kind] if o[0] <= target]
                if not fits:
                    break
                _, cost, p, lanes = fits[-1]
                used[kind] += cost
                chosen.append(LayerPlan(kind, p, lanes))
            else:
                if serial:
                    params, _ = network_params(model, chosen)
                    used[Storage.BRAM] += sum(serial_index_blocks(p, family) for p in params)
                if used[Storage.BRAM] > block_rams or used[Storage.SPRAM] > sprams:
                    continue
                if fastest_mem is None or target < fastest_mem:
                    fastest_mem = target
                if max_cycles is not None and target > max_cycles:
                    continue
                if logic_cells is not None:
                    params, _ = network_params(model, chosen, indexer=indexer)
                    cells = estimate_logic(params, family, serial=serial)["logic_cells"]
                    if best_cells is None or cells < best_cells[0]:
                        best_cells = (cells, target)
                    if cells > logic_cells:
                        continue
                return chosen
    if fastest_mem is None:
        bram_only = sum(opts[Storage.BRAM][-1][1] for opts in options)
        index = " plus the serial core's anchor ROMs and input copies" if serial else ""
        raise ValueError(
            f"the tables need at least {bram_only} block RAMs (or SPRAMs beyond the {sprams} "
            f"there are){index}, the target has {block_rams}; use fewer tables or a smaller "
            "N_C, fewer table bits, or a larger device"
        )
    if best_cells is not None and best_cells[0] > logic_cells:
        raise ValueError(
            f"the core needs about {best_cells[0]} logic cells (estimated, at "
            f"{best_cells[1]} cycles per inference), {best_cells[0] - logic_cells} more than "
            f"the {logic_cells} available; "
            + (
                "use fewer tables or a smaller N_C, "
                if serial
                else f"most go to the {indexer.name.lower()} indexer's "
                f"{sum(layer.n_tables * layer.n_c for layer in model.layers)} anchor pairs: use "
                "fewer tables or a smaller N_C, narrower inputs (in_shift), "
                + ("the serial or temporal indexer, " if indexer == IndexerKind.PARALLEL else "")
            )
            + "or a larger device"
        )
    raise ValueError(
        f"no placement reaches {max_cycles} cycles per inference; the fastest that fits "
        f"takes {fastest_mem}"
    )


def serial_index_blocks(params: dict, family: str) -> int:
    """Block RAMs of a serial-core layer's indexer (``params`` as :func:`network_params`):
    its anchor ROM and, with operands copied to memory, the ``2 * C`` input copies."""
    from spikelut.hdl.serial_core import MIN_COPY_DIM, serial_geometry

    n_t, rows, y = params["tables"].shape
    n_c = rows.bit_length() - 1
    d = params["in_dim"]
    sel = max(1, (d - 1).bit_length())
    groups, _, comps, slots = serial_geometry(
        n_t, n_c, y, params.get("tables_per_cycle") or 1, params.get("lanes") or y
    )
    copies = params.get("operand_memory")
    if copies is None:
        copies = d + 1 <= groups * slots and d >= MIN_COPY_DIM
    blocks = lane_blocks(2 * sel * comps, groups * slots, family)
    if copies:
        blocks += 2 * comps * lane_blocks(params["in_width"], 2 << sel, family)
    return blocks


def network_blocks(net, family: str) -> tuple[int, int]:
    """``(block RAMs, SPRAMs)`` the tables of ``net`` occupy (and, for a serial core, its
    anchor ROMs and input copies)."""
    from spikelut.hdl.serial_core import SerialLayer

    brams = sprams = 0
    for hw in net.layers:
        if isinstance(hw, SerialLayer):
            brams += serial_index_blocks(
                {
                    "tables": hw.tables,
                    "in_dim": hw.in_dim,
                    "in_width": hw.in_width,
                    "tables_per_cycle": hw.tables_per_cycle,
                    "lanes": hw.lanes,
                    "operand_memory": hw.operand_memory,
                },
                family,
            )
        b = hw.bank
        br, sp = bank_blocks(
            b.n_tables,
            b.n_c,
            b.out_dim,
            b.table_width,
            b.tables_per_cycle,
            b.lanes,
            b.storage,
            family,
        )
        brams += br
        sprams += sp
    return brams, sprams
