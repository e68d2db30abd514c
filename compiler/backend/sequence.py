"""The language models' cores: from an integer RNN to the parameters of its gateware.

An :class:`RNNPlan` says what to build: the core kind of both LUTs (parallel or serial
indexing), where each of the three memories lives and how fast it is read (the embedding,
the cell's tables, the unembedder's tables: a :class:`~spikelut.compiler.backend.plan.LayerPlan`
each) and how the next byte is chosen (a :class:`~spikelut.compiler.ir.selection.Selection`).
:func:`rnn_params` maps an :class:`~spikelut.compiler.ir.integer_sequence.IntegerRNN` and a
plan onto the LUTs' :class:`~spikelut.hdl.layer_params.LayerParams` with the widths of
:func:`spikelut.compiler.passes.widths.rnn_widths` (the one width rule for the RNN); the
unembedder is chunked (its 256 logits stream out ``L`` at a time), and so is a cell whose
tables are in memory (its sums accumulate in a chunk memory and shift into the state).
:func:`rnn_core` builds the :class:`~spikelut.hdl.recurrent.RNNCore`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.backend.estimate import estimate_rnn_logic
from spikelut.compiler.backend.placement import bank_blocks, lane_blocks, serial_index_blocks
from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.backend.targets import Target
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.selection import EXP_ENTRIES, Selection
from spikelut.compiler.passes.widths import rnn_widths
from spikelut.hdl.layer_params import LayerParams, check_serial
from spikelut.hdl.recurrent import RNNCore, embedding_geometry
from spikelut.hdl.spram import SPRAM_DEPTH, SPRAM_WIDTH
from spikelut.hdl.storage import Storage

__all__ = ["RNNFit", "RNNPlan", "fit_rnn", "rnn_blocks", "rnn_core", "rnn_params"]


@dataclass(frozen=True)
class RNNPlan:
    """What to build for an RNN: ``kind`` (parallel or serial indexing of both LUTs) and
    the placement of the ``embedding`` (its ``lanes`` values read a clock), ``cell`` and
    ``unembedder`` tables."""

    kind: CoreKind = CoreKind.PARALLEL
    embedding: LayerPlan = field(default_factory=LayerPlan)
    cell: LayerPlan = field(default_factory=LayerPlan)
    unembedder: LayerPlan = field(default_factory=LayerPlan)

    def __post_init__(self) -> None:
        kind = CoreKind.parse(self.kind)
        if kind is CoreKind.TEMPORAL:
            raise ValueError("an RNN core indexes its state: parallel or serial, not temporal")
        object.__setattr__(self, "kind", kind)
        if self.embedding.storage == Storage.LOGIC or self.unembedder.storage == Storage.LOGIC:
            raise ValueError("the embedding and the unembedder are memories: not logic storage")

    def to_json(self) -> dict:
        """The plan as JSON (what manifests and ``board.json`` hold)."""
        return {
            "kind": self.kind.value,
            "embedding": self.embedding.to_json(),
            "cell": self.cell.to_json(),
            "unembedder": self.unembedder.to_json(),
        }

    @classmethod
    def from_json(cls, item) -> RNNPlan:
        """Inverse of :meth:`to_json`; ``ValueError`` naming what is wrong."""
        if not isinstance(item, dict) or not {"kind", "cell", "unembedder", "embedding"} <= set(
            item
        ):
            raise ValueError("an RNN plan needs kind, embedding, cell and unembedder")
        return cls(
            kind=CoreKind.parse(str(item["kind"])),
            embedding=LayerPlan.from_json(item["embedding"]),
            cell=LayerPlan.from_json(item["cell"]),
            unembedder=LayerPlan.from_json(item["unembedder"]),
        )


def _lut_params(model: IntegerRNN, which: str, place: LayerPlan, kind: CoreKind) -> LayerParams:
    """One LUT's parameters (``which``: ``"cell"`` or ``"unembedder"``) placed by ``place``."""
    w = rnn_widths(model)
    if which == "cell":
        # in memory the cell keeps its sums in a chunk memory, not registers (RecurrentCell)
        lut, q, out_width = model.cell, model.cell_quant, w.state_width
        chunked = place.storage != Storage.LOGIC
    else:
        lut, q = model.unembedder, model.unembedder_quant
        out_width, chunked = w.unembedder.out_width, True
    p, lanes = place.rate(lut.n_tables, lut.out_dim)
    params = LayerParams(
        anchors_a=lut.a,
        anchors_b=lut.b,
        tables=lut.tables,
        in_dim=model.dim,
        in_width=w.state_width,
        table_width=q.table_bits,
        out_width=out_width,
        in_shift=q.in_shift,
        in_bounds=(w.state_lo, w.state_hi),
        storage=place.storage,
        tables_per_cycle=p,
        lanes=lanes,
        chunked=chunked,
    )
    if kind is CoreKind.SERIAL:
        check_serial(params, 0 if which == "cell" else 1)
    return params


def rnn_params(model: IntegerRNN, plan: RNNPlan) -> tuple[LayerParams, LayerParams]:
    """The cell's and the (chunked) unembedder's parameters of ``model`` placed by
    ``plan``; ``ValueError`` when a width or a placement does not fit."""
    return (
        _lut_params(model, "cell", plan.cell, plan.kind),
        _lut_params(model, "unembedder", plan.unembedder, plan.kind),
    )


def rnn_core(
    model: IntegerRNN, plan: RNNPlan | None = None, selection: Selection | None = None
) -> RNNCore:
    """The :class:`~spikelut.hdl.recurrent.RNNCore` of ``model`` placed by ``plan``
    (default: parallel, block RAM, one table a cycle) choosing bytes by ``selection``
    (default greedy) after reset; ``ValueError`` when something does not fit."""
    plan = plan or RNNPlan()
    selection = selection or Selection()
    cell, unembedder = rnn_params(model, plan)
    _, emb_lanes = plan.embedding.rate(1, model.dim)
    exp = selection.exp or (1,) + (0,) * (EXP_ENTRIES - 1)
    return RNNCore(
        embedding=model.embedding,
        embedding_width=model.embedding_bits,
        cell=cell,
        unembedder=unembedder,
        serial=plan.kind is CoreKind.SERIAL,
        embedding_storage=plan.embedding.storage,
        embedding_lanes=emb_lanes,
        exp=exp,
        greedy=selection.greedy,
        seed=selection.seed,
    )


def _lane_memory(storage: Storage, word_bits: int, depth: int, family: str) -> tuple[int, int]:
    """``(block RAMs, SPRAMs)`` of one memory lane; ValueError when SPRAM is too shallow."""
    if storage == Storage.BRAM:
        return lane_blocks(word_bits, depth, family), 0
    if storage == Storage.SPRAM:
        if depth > SPRAM_DEPTH:
            raise ValueError(f"{depth} words do not fit an SPRAM's {SPRAM_DEPTH}")
        return 0, -(-word_bits // SPRAM_WIDTH)
    return 0, 0


def _embedding_blocks(model: IntegerRNN, place: LayerPlan, family: str) -> tuple[int, int]:
    _, lanes = place.rate(1, model.dim)
    _, depth = embedding_geometry(model.vocab, model.dim, lanes)
    return _lane_memory(place.storage, lanes * model.embedding_bits, depth, family)


def _lut_blocks(p: LayerParams, which: str, kind: CoreKind, family: str) -> tuple[int, int]:
    """A LUT's tables (and a serial core's indexer memories); for a chunked LUT also its
    chunk accumulators, and for the unembedder (``V`` outputs) the selector's logit store."""
    brams, sprams = bank_blocks(
        p.n_tables, p.n_c, p.out_dim, p.table_width, p.tables_per_cycle, p.lanes,
        p.storage, family,
    )  # fmt: skip
    if kind is CoreKind.SERIAL:
        brams += serial_index_blocks(p, family)
    if p.chunked:
        beats = -(-p.out_dim // p.lanes)
        stores = 2 if which == "unembedder" else 1
        brams += stores * lane_blocks(p.lanes * p.out_width, beats, family)
    return brams, sprams


_EXP_TABLE_BLOCKS = {f: lane_blocks(16, 256, f) for f in ("ice40", "ecp5", "gowin")}


def rnn_blocks(model: IntegerRNN, plan: RNNPlan, family: str) -> tuple[int, int]:
    """``(block RAMs, SPRAMs)`` an RNN core placed by ``plan`` takes: the embedding, both
    LUTs' tables (and a serial core's anchor ROMs and input copies), the unembedder's chunk
    accumulators, the selector's logit store and exponential table."""
    brams, sprams = _embedding_blocks(model, plan.embedding, family)
    for which, p in zip(("cell", "unembedder"), rnn_params(model, plan), strict=True):
        br, sp = _lut_blocks(p, which, plan.kind, family)
        brams, sprams = brams + br, sprams + sp
    return brams + _EXP_TABLE_BLOCKS[family], sprams


@dataclass(frozen=True)
class RNNFit:
    """A placement that fits: the plan, the tables' cycles per generated token, the block
    RAMs and SPRAMs and the logic estimate."""

    plan: RNNPlan
    table_cycles_per_token: int
    block_rams: int
    sprams: int
    estimate: dict


def _lut_options(model: IntegerRNN, which: str, storages, kind: CoreKind, family: str) -> list:
    """``(plan, params, cycles, brams, sprams)`` of every placement of one LUT that can be:
    each storage, ``P`` and ``L`` powers of two (and all)."""
    lut = getattr(model, which)
    out = []
    for st in storages:
        for p in (1, 2, 4, 8, 16, 32):
            if p > lut.n_tables:
                continue
            for lanes in sorted({min(v, lut.out_dim) for v in (1, 2, 4, 8, 16, 32, lut.out_dim)}):
                place = LayerPlan(st, p, lanes)
                try:
                    params = _lut_params(model, which, place, kind)
                    brams, sprams = _lut_blocks(params, which, kind, family)
                except ValueError:
                    continue
                out.append((place, params, params.bank_cycles, brams, sprams))
    return out


def _shortfall(
    model: IntegerRNN, target: Target, kind: CoreKind, budget, cells, least, least_cells=None
) -> str:
    """Why :func:`fit_rnn` found nothing: the table memory against the device's, logic, or
    the block RAMs of the leanest placement within the device's SPRAMs (``least``: its
    block RAMs, SPRAMs and the block RAMs of the embedding, cell, unembedder and sampler)."""
    bits = model.embedding_memory_bits
    for lut, q in ((model.cell, model.cell_quant), (model.unembedder, model.unembedder_quant)):
        bits += lut.memory_bits(q.table_bits)
    have = budget * target.block_ram_bits + target.sprams * SPRAM_DEPTH * SPRAM_WIDTH
    if least is None or bits > have:
        return (
            f"the RNN's memories take {bits / 1024:,.0f} kbit, {target.name} has "
            f"{have / 1024:,.0f} kbit of block RAM and SPRAM for them; use a smaller hidden "
            "size, fewer tables, a smaller N_C or fewer table bits, or a larger device"
        )
    if least_cells is not None:
        return (
            f"the RNN's {kind.value} core takes about {least_cells:,} logic cells where its "
            f"memories fit, {target.name} has about {cells:,} for it beside the host link; "
            "use a smaller model (fewer tables, a smaller N_C or hidden size) or a larger device"
        )
    brams, sprams, (emb, cell, unemb, sampler) = least
    return (
        f"no placement of the RNN's {kind.value} core fits {target.name}'s {budget} block "
        f"RAMs and {target.sprams} SPRAMs (the tables take {bits / 1024:,.0f} kbit; the "
        f"leanest placement takes {brams} block RAMs and {sprams} SPRAMs: block RAMs for the "
        f"embedding {emb}, the cell {cell}, the unembedder {unemb}, the sampler {sampler}); "
        "use a smaller model or a larger device"
    )


def _embedding_options(model: IntegerRNN, storages, family: str) -> list:
    """``(plan, cycles, brams, sprams)`` of every placement of the embedding that can be."""
    out = []
    for st in storages:
        for lanes in sorted({min(v, model.dim) for v in (1, 2, 4, 8, 16, model.dim)}):
            place = LayerPlan(st, 1, lanes)
            beats, _ = embedding_geometry(model.vocab, model.dim, lanes)
            try:
                out.append((place, beats, *_embedding_blocks(model, place, family)))
            except ValueError:
                continue
    return out


def _check_optimize(optimize: str) -> None:
    if optimize not in ("speed", "area"):
        raise ValueError(f"optimize must be 'speed' or 'area', not {optimize!r}")


def fit_rnn(
    model: IntegerRNN,
    target: Target,
    *,
    kind: CoreKind | str = CoreKind.SERIAL,
    optimize: str = "speed",
    block_rams: int | None = None,
    logic_cells: int | None = None,
) -> RNNFit:
    """The placement of ``model``'s core of ``kind`` within ``block_rams`` (default the
    target's), the target's SPRAMs and, by the estimate, ``logic_cells`` (default the
    target's less the host link's): with ``optimize="speed"`` the fastest (fewest table
    cycles per generated token; then fewest memories and logic cells), with ``"area"`` the
    smallest (fewest estimated logic cells; then cycles, memories: for a board, whose UART
    is slower than any placement). ``ValueError`` saying what is short when nothing fits."""
    kind = CoreKind.parse(kind)
    _check_optimize(optimize)
    family = target.family
    budget = target.block_rams if block_rams is None else block_rams
    cells = target.core_logic_cells if logic_cells is None else logic_cells
    storages = [Storage.BRAM] + ([Storage.SPRAM] if target.sprams else [])
    embs = _embedding_options(model, storages, family)
    cells_opts = _lut_options(model, "cell", storages, kind, family)
    unemb_opts = _lut_options(model, "unembedder", storages, kind, family)
    best, best_key, least, fitting_cells = None, None, None, []
    for (cp, c, c_cyc, c_br, c_sp), (up, u, u_cyc, u_br, u_sp) in itertools.product(
        cells_opts, unemb_opts
    ):
        cycles = c_cyc + u_cyc
        if optimize == "speed" and best_key is not None and cycles > best_key[0]:
            continue
        for ep, e_cyc, e_br, e_sp in embs:
            est = estimate_rnn_logic(
                c, u, embedding_width=model.embedding_bits, family=family, kind=kind,
                embedding_lanes=ep.rate(1, model.dim)[1],
            )  # fmt: skip
            brams = c_br + u_br + e_br + _EXP_TABLE_BLOCKS[family]
            sprams = c_sp + u_sp + e_sp
            total = cycles + e_cyc
            if sprams <= target.sprams and (least is None or (brams, sprams) < least[:2]):
                parts = (e_br, c_br, u_br, _EXP_TABLE_BLOCKS[family])
                least = (brams, sprams, parts)
            if brams > budget or sprams > target.sprams:
                continue
            fitting_cells.append(est["logic_cells"])  # the memories fit: logic decides
            if est["logic_cells"] > cells:
                continue
            key = (total, sprams + brams, est["logic_cells"])
            if optimize == "area":
                key = (est["logic_cells"], total, sprams + brams)
            if best_key is None or key < best_key:
                best_key = key
                plan = RNNPlan(kind=kind, embedding=ep, cell=cp, unembedder=up)
                best = RNNFit(plan, total, brams, sprams, est)
    if best is None:
        least_cells = min(fitting_cells, default=None)
        raise ValueError(_shortfall(model, target, kind, budget, cells, least, least_cells))
    return best
