"""An integer LUT transformer's core: its hardware parameters, its placement, the gateware.

:func:`transformer_core` turns an
:class:`~spikelut.compiler.ir.integer_sequence.IntegerTransformer` into a
:class:`~spikelut.hdl.transformer.TransformerCore` placed by a :class:`TransformerPlan`
(where each kind of table lives and how many tables and outputs it reads a cycle), with
the exact widths of :func:`~spikelut.compiler.passes.widths.transformer_widths`.
:func:`compile_transformer` (what ``spikelut compile`` does with a transformer) places every
table in block RAM, the attention read as many tables a cycle as the target's block RAMs
allow (:func:`fit_transformer`; a clear refusal naming the block RAMs and bits it would need
when even one a cycle does not fit), and writes ``core.v``, ``core.il`` and
``manifest.json``: the plan, per layer the attention's and FFN's placement, the memories'
floor of a token averaged over a full window (``table_cycles_per_token``), the cycles per
token measured in Amaranth's simulator over a full window of greedy generation
(:func:`~spikelut.compiler.backend.latency.token_cycles`; the sampled rule's at most
beside them) and the fraction of the floor they reach, the latency, block RAMs and tokens
per second.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

from amaranth.back import rtlil, verilog

from spikelut.compiler.backend.compile import CORE_NAME, CompileError
from spikelut.compiler.backend.latency import token_cycles
from spikelut.compiler.backend.manifest import component_ports
from spikelut.compiler.backend.placement import bank_blocks, lane_blocks
from spikelut.compiler.backend.targets import Target
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.integer_sequence import IntegerTransformer
from spikelut.compiler.ir.selection import EXP_BITS, EXP_ENTRIES, Selection
from spikelut.compiler.passes.widths import WidthError, transformer_widths
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.recurrent import embedding_geometry
from spikelut.hdl.storage import Storage
from spikelut.hdl.transformer import AttentionParams, TransformerCore

__all__ = [
    "TransformerPlan",
    "compile_transformer",
    "fit_transformer",
    "transformer_blocks",
    "transformer_core",
    "transformer_params",
]


@dataclass(frozen=True)
class TransformerPlan:
    """Where a transformer's tables live and their read rates: ``attn_*`` for every head's
    tables (P tables and L outputs a cycle; None: 1 and E), ``ffn_*`` for the FFNs
    (LOGIC: all at once), ``unemb_*`` for the chunked unembedder (None: 1 and V), and the
    embedding's storage and lanes (None: E)."""

    attn_storage: Storage = Storage.BRAM
    attn_tables_per_cycle: int | None = None
    attn_lanes: int | None = None
    ffn_storage: Storage = Storage.BRAM
    ffn_tables_per_cycle: int | None = None
    ffn_lanes: int | None = None
    unemb_storage: Storage = Storage.BRAM
    unemb_tables_per_cycle: int | None = None
    unemb_lanes: int | None = None
    embedding_storage: Storage = Storage.BRAM
    embedding_lanes: int | None = None

    def to_json(self) -> dict:
        """The plan as JSON: every field, storages by name."""
        return {
            f.name: v.name.lower() if isinstance(v := getattr(self, f.name), Storage) else v
            for f in fields(self)
        }

    @classmethod
    def from_json(cls, item) -> TransformerPlan:
        """Inverse of :meth:`to_json`; ``ValueError`` naming what is wrong."""
        if not isinstance(item, dict) or set(item) != {f.name for f in fields(cls)}:
            names = ", ".join(f.name for f in fields(cls))
            raise ValueError(f"a transformer plan needs exactly these fields: {names}")
        values = {}
        for f in fields(cls):
            v = item[f.name]
            if f.name.endswith("storage"):
                if str(v).upper() not in Storage.__members__:
                    raise ValueError(f"a transformer plan's {f.name} {v!r} is no storage")
                values[f.name] = Storage[str(v).upper()]
            elif v is not None and not (isinstance(v, int) and v >= 1):
                raise ValueError(f"a transformer plan's {f.name} must be a positive integer")
            else:
                values[f.name] = v
        return cls(**values)


def transformer_params(model: IntegerTransformer, plan: TransformerPlan | None = None):
    """``(stream width, [AttentionParams], [FFN LayerParams], unembedder LayerParams)`` of
    ``model`` placed by ``plan``; ``ValueError`` (or the widths pass's ``WidthError``) naming
    what does not fit."""
    plan = plan or TransformerPlan()
    widths = transformer_widths(model)
    width = widths.stream_acc_width
    attn, ffn = [], []
    for layer in range(model.attn_tables.shape[0]):
        attn.append(
            AttentionParams(
                anchors_a=model.attn_a[layer],
                anchors_b=model.attn_b[layer],
                tables=model.attn_tables[layer],
                pe_bits=model.pe_bits[layer],
                table_width=model.table_bits,
                storage=plan.attn_storage,
                tables_per_cycle=plan.attn_tables_per_cycle,
                lanes=plan.attn_lanes,
            )
        )
        logic = plan.ffn_storage == Storage.LOGIC
        ffn.append(
            LayerParams(
                anchors_a=model.ffn_a[layer],
                anchors_b=model.ffn_b[layer],
                tables=model.ffn_tables[layer],
                in_dim=model.dim,
                in_width=width,
                table_width=model.table_bits,
                out_width=width,
                storage=plan.ffn_storage,
                tables_per_cycle=None if logic else plan.ffn_tables_per_cycle,
                lanes=None if logic else plan.ffn_lanes,
            )
        )
    unemb = LayerParams(
        anchors_a=model.unemb_a,
        anchors_b=model.unemb_b,
        tables=model.unemb_tables,
        in_dim=model.dim,
        in_width=width,
        table_width=model.unemb_bits,
        out_width=widths.unembedder.out_width,
        storage=plan.unemb_storage,
        tables_per_cycle=plan.unemb_tables_per_cycle,
        lanes=plan.unemb_lanes,
        chunked=True,
    )
    return width, attn, ffn, unemb


def transformer_core(
    model: IntegerTransformer,
    plan: TransformerPlan | None = None,
    selection: Selection | None = None,
) -> TransformerCore:
    """The :class:`~spikelut.hdl.transformer.TransformerCore` of ``model`` placed by
    ``plan`` (default: block RAM, one table a cycle, whole rows) choosing bytes by
    ``selection`` (default greedy) after reset."""
    plan = plan or TransformerPlan()
    selection = selection or Selection()
    width, attn, ffn, unemb = transformer_params(model, plan)
    return TransformerCore(
        embedding=model.embedding,
        embedding_width=model.table_bits,
        attention=attn,
        ffn=ffn,
        unembedder=unemb,
        width=width,
        embedding_storage=plan.embedding_storage,
        embedding_lanes=plan.embedding_lanes,
        exp=selection.exp or (1,) + (0,) * (EXP_ENTRIES - 1),
        greedy=selection.greedy,
        seed=selection.seed,
    )


def _blocks(storage: Storage, n_tables, n_c, out_dim, bits, p, lanes, family) -> int:
    return bank_blocks(n_tables, n_c, out_dim, bits, p, lanes, storage, family)[0]


def transformer_blocks(model: IntegerTransformer, plan: TransformerPlan, family: str) -> int:
    """Block RAMs the core of ``model`` placed by ``plan`` takes on ``family``: the
    embedding, every head's attention lanes, each layer's V-index cache and positional
    bits, the FFNs, the unembedder (and its chunk accumulators) and the selector's memories
    (an upper bound: a synthesiser may put the smallest in logic)."""
    _, attn, ffn, unemb = transformer_params(model, plan)
    e_lanes = plan.embedding_lanes or model.dim
    _, depth = embedding_geometry(model.vocab, model.dim, e_lanes)
    total = lane_blocks(e_lanes * model.table_bits, depth, family)
    for a, f in zip(attn, ffn, strict=True):
        total += a.n_heads * _blocks(
            a.storage, a.n_tables, a.index_width, a.dim, a.table_width, a.tables_per_cycle,
            a.lanes, family,
        )  # fmt: skip
        total += lane_blocks(a.n_heads * a.n_tables * a.n_c, a.context, family)
        if a.n_p:
            total += lane_blocks(a.n_heads * a.n_tables * a.n_p, a.context, family)
        if f.storage != Storage.LOGIC:
            total += _blocks(
                f.storage, f.n_tables, f.n_c, f.out_dim, f.table_width, f.tables_per_cycle,
                f.lanes, family,
            )  # fmt: skip
    u = unemb
    total += _blocks(
        u.storage, u.n_tables, u.n_c, u.out_dim, u.table_width, u.tables_per_cycle, u.lanes,
        family,
    )  # fmt: skip
    beats = -(-u.out_dim // u.lanes)
    total += 2 * lane_blocks(u.lanes * u.out_width, beats, family)  # chunk sums, logit store
    return total + lane_blocks(EXP_BITS, EXP_ENTRIES, family)


UNEMB_LANES = 16  # logits the fitted unembedder reads a cycle, at least


def _unembedder_lanes(model: IntegerTransformer, family: str) -> int:
    """The most logits a beat (UNEMB_LANES doubled while it fits V) whose lane takes no
    more block RAMs than UNEMB_LANES do: a wider, shallower word is free bandwidth."""
    n_t, rows, vocab = model.unemb_tables.shape
    n_c = rows.bit_length() - 1

    def blocks(lanes):
        return bank_blocks(n_t, n_c, vocab, model.unemb_bits, 1, lanes, Storage.BRAM, family)[0]

    lanes = min(UNEMB_LANES, vocab)
    while lanes * 2 <= vocab and blocks(lanes * 2) <= blocks(lanes):
        lanes *= 2
    return lanes


def fit_transformer(
    model: IntegerTransformer, target: Target, *, block_rams: int | None = None
) -> tuple[TransformerPlan, int]:
    """The fastest all-block-RAM placement of ``model`` within ``block_rams`` (default:
    all of ``target``'s): whole attention and FFN rows (``L = E``), as many attention tables
    a cycle as fit (the FFN and the unembedder one), and its block RAMs;
    CompileError naming the block RAMs and table bits it needs when nothing fits."""
    budget = target.block_rams if block_rams is None else block_rams
    n_t = model.attn_tables.shape[2]
    # the FFN and the unembedder read one table a cycle: their tables are small, so more
    # lanes would cost block RAMs (a lane's width, not its depth, sets its count) for a few
    # cycles beside the attention's; the unembedder streams its logits in chunks
    rest = dict(unemb_lanes=_unembedder_lanes(model, target.family))
    need = None
    for p in range(n_t, 0, -1):
        plan = TransformerPlan(attn_tables_per_cycle=p, **rest)
        try:
            blocks = transformer_blocks(model, plan, target.family)
        except (ValueError, WidthError) as e:
            raise CompileError(f"cannot build this transformer's core: {e}") from None
        if blocks <= budget:
            return plan, blocks
        need = blocks if need is None else min(need, blocks)
    bits = sum(
        int(getattr(model, name).size) * bits
        for name, bits in (
            ("embedding", model.table_bits), ("attn_tables", model.table_bits),
            ("ffn_tables", model.table_bits), ("unemb_tables", model.unemb_bits),
        )
    )  # fmt: skip
    raise CompileError(
        f"this transformer needs {need} block RAMs ({bits / 1e6:.2f} Mbit of tables), "
        f"{target.name} has {budget} for it; choose a larger target or train a smaller "
        "model (attention tables have 2**(2 N_C + P) rows)"
    )


def compile_transformer(
    model: IntegerTransformer,
    out_dir: str | os.PathLike,
    target: Target,
    *,
    plan: TransformerPlan | None = None,
    clock_mhz: float | None = None,
) -> dict:
    """Compile ``model`` for ``target`` into ``out_dir`` and return the manifest (see the
    module docstring); ``plan`` overrides the placement. CompileError when it does not fit."""
    t0 = time.perf_counter()
    clock_mhz = target.clock_mhz if clock_mhz is None else clock_mhz
    if not clock_mhz > 0:
        raise CompileError(f"--clock-mhz must be positive, not {clock_mhz:g}")
    if plan is None:
        plan, blocks = fit_transformer(model, target)
    else:
        blocks = transformer_blocks(model, plan, target.family)
    try:
        core = transformer_core(model, plan, Selection())
    except (ValueError, WidthError) as e:
        raise CompileError(f"cannot build this transformer's core: {e}") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "core.v", verilog.convert(core, name=CORE_NAME, platform=target))
    write_text_atomic(out / "core.il", rtlil.convert(core, name=CORE_NAME, platform=target))
    # a full window of generation: the intervals cover every position once
    latency, per_token, sampled = token_cycles(core)
    floor = core.window_table_cycles
    layers = [
        {
            "layer": k,
            "heads": a.n_heads,
            "attention": {
                "storage": a.storage.name.lower(),
                "tables_per_cycle": a.tables_per_cycle,
                "lanes": a.lanes,
                "memory_bits": a.memory_bits,
                "cycles_at_full_context": a.cycles(model.context - 1),
                "cache_bits": a.cache_bits,
            },
            "ffn": {
                "storage": f.storage.name.lower(),
                "tables_per_cycle": f.tables_per_cycle,
                "lanes": f.lanes,
                "cycles": f.bank_cycles,
                "memory_bits": f.memory_bits,
            },
        }
        for k, (a, f) in enumerate(zip(core.attention, core.ffn, strict=True))
    ]
    result = {
        "architecture": IntegerTransformer.ARCH,
        "target": target.name,
        "plan": {
            k: (v.name.lower() if isinstance(v, Storage) else v)
            for k, v in dataclasses.asdict(plan).items()
        },
        "ports": component_ports(core),
        "vocab": model.vocab,
        "dim": model.dim,
        "context": model.context,
        "layers": layers,
        "table_cycles_per_token": floor,
        "cycles_per_token": per_token,
        "sampled_cycles_per_token": sampled,
        "bandwidth_fraction": floor / per_token,
        "latency_cycles": latency,
        "block_rams": blocks,
        "block_rams_available": target.block_rams,
        "clock_mhz": clock_mhz,
        "tokens_per_second": clock_mhz * 1e6 / per_token,
        "compile_seconds": round(time.perf_counter() - t0, 3),
    }
    write_text_atomic(out / "manifest.json", json.dumps(result, indent=1, sort_keys=True))
    return result
