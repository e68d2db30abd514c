"""From an integer language model (a spiking RNN or a LUT transformer) to a board design:
placement, model hash, tables, the sampler.

A language model on a board answers one byte per UART byte time, a thousand or so clock
cycles at 115,200 baud. An RNN's core is therefore placed for area: :func:`lm_board_fit`
takes the placement with the fewest estimated logic cells (ties to fewer cycles per token)
of the parallel and serial kinds within the board's block RAMs (less the host link's) and
SPRAMs. A transformer's core has one kind: its attention tables are most of its memory, so
it reads as many attention tables a cycle as the block RAMs left by the host link allow
(:func:`~spikelut.compiler.backend.compile_transformer.fit_transformer`). The memories are
the table-space layers of :func:`~spikelut.boards.tables.lm_table_layers`;
:func:`lm_shape_hash` is the fingerprint of everything the bitstream fixes but their
contents, as :func:`~spikelut.boards.design.shape_hash` is a classifier's.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikelut.boards.design import RESERVED_BRAMS, BuildTables, model_hash, shape_hash
from spikelut.boards.platforms import BoardSpec, board
from spikelut.boards.tables import (
    MemoryShape,
    embedding_shape,
    lm_embedding_shape,
    lm_table_layers,
    table_space,
    transformer_memories,
)
from spikelut.boards.top import BoardCore
from spikelut.compiler.backend.compile_lm import plan_lm
from spikelut.compiler.backend.compile_transformer import (
    TransformerPlan,
    fit_transformer,
    transformer_core,
    transformer_params,
)
from spikelut.compiler.backend.sequence import RNNFit, RNNPlan, rnn_core, rnn_params
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.selection import Selection
from spikelut.hdl.transformer import TransformerCore

__all__ = [
    "DEFAULT_TEMPERATURE",
    "LMFit",
    "lm_board_fit",
    "lm_build_tables",
    "lm_core",
    "lm_core_tables",
    "lm_plan_key",
    "lm_plan_of_build",
    "lm_selection",
    "lm_shape_hash",
    "lm_tables",
    "make_lm_core",
]

DEFAULT_TEMPERATURE = 0.4  # the reference's sampling temperature


def lm_selection(
    model: IntegerRNN | IntegerTransformer, temperature: float, seed: int
) -> Selection:
    """The next-byte rule of ``model`` (RNN or transformer) at ``temperature`` (0: greedy)
    with random seed ``seed``: the exponential table for its logits, which stand for
    ``l * 2**model.logit_scale_log2``; the one rule of simulation, board and golden model.
    ValueError for a negative temperature or a bad seed."""
    if not temperature >= 0:
        raise ValueError(f"the temperature must be >= 0, not {temperature!r}")
    return Selection.sampled(temperature, model.logit_scale_log2, seed)


def lm_tables(model: IntegerRNN | IntegerTransformer) -> dict:
    """Table-space layer -> the model's integer tables (N_T, rows, Y), in the order of
    :func:`~spikelut.boards.tables.lm_table_layers`: the embedding as one table of ``V``
    rows; an RNN's cell tables, or a transformer's per layer each head's attention tables
    and the FFN's; the unembedder's."""
    if isinstance(model, IntegerTransformer):
        middle = []
        for attn, ffn in zip(model.attn_tables, model.ffn_tables, strict=True):
            middle += [*attn, ffn]
        last = model.unemb_tables
    else:
        middle, last = [model.cell.tables], model.unembedder.tables
    return dict(enumerate([model.embedding[None], *middle, last]))


@dataclass(frozen=True)
class LMFit:
    """The placement a board build gives a language model: ``plan`` (an
    :class:`~spikelut.compiler.backend.sequence.RNNPlan` or a
    :class:`~spikelut.compiler.backend.compile_transformer.TransformerPlan`), its block
    RAMs and SPRAMs, and the logic estimate (None where there is none: the transformer's)."""

    plan: RNNPlan | TransformerPlan
    block_rams: int
    sprams: int
    estimate: dict | None

    @property
    def kind(self) -> str:
        """The core's kind: ``parallel`` or ``serial`` (an RNN's), or ``transformer``."""
        return "transformer" if isinstance(self.plan, TransformerPlan) else self.plan.kind.value


def lm_board_fit(
    model: IntegerRNN | IntegerTransformer, spec: BoardSpec, *, kind: str = "auto"
) -> LMFit:
    """The placement of ``model``'s core a board build uses (see the module docstring).
    ValueError (a CompileError) saying what is short when nothing fits, or when ``kind``
    is not ``auto`` for a transformer."""
    t = spec.target
    budget = t.block_rams - RESERVED_BRAMS[t.family]
    if isinstance(model, IntegerTransformer):
        if kind != "auto":
            raise ValueError(f"a transformer's core has one kind; --core {kind} is for RNNs")
        plan, blocks = fit_transformer(model, t, block_rams=budget)
        return LMFit(plan, blocks, 0, None)
    fit: RNNFit = plan_lm(model, t, kind=kind, optimize="area", block_rams=budget)
    return LMFit(fit.plan, fit.block_rams, fit.sprams, fit.estimate)


def lm_core(
    model: IntegerRNN | IntegerTransformer,
    plan: RNNPlan | TransformerPlan,
    selection: Selection | None = None,
):
    """The core of ``model`` placed by ``plan``, choosing by ``selection`` (default greedy)
    after reset: an RNNCore or a TransformerCore."""
    if isinstance(model, IntegerTransformer):
        return transformer_core(model, plan, selection)
    return rnn_core(model, plan, selection or Selection())


def _transformer_tables(embedding, attention, ffn, unembedder) -> BuildTables:
    """The table space and shape fingerprint of a transformer core of these parts (as
    :func:`~spikelut.boards.tables.transformer_memories` takes them)."""
    layers = [shape for _, shape in transformer_memories(embedding, attention, ffn, unembedder)]
    # the heads' anchors and positional bits are fixed in the bitstream, so the fingerprint
    # covers each layer's AttentionParams, not only the shapes of its head memories
    parts = [x for pair in zip(attention, ffn, strict=True) for x in pair]
    return BuildTables(
        table_space(layers), shape_hash("transformer", [embedding, *parts, unembedder])
    )


def lm_shape_hash(core) -> bytes:
    """The shape fingerprint (8 bytes) of a language-model core (an
    :class:`~spikelut.hdl.recurrent.RNNCore` or a
    :class:`~spikelut.hdl.transformer.TransformerCore`): its kind and every parameter its
    gateware is built from but the contents of the tables it keeps in memory."""
    return lm_core_tables(core).shape_hash


def lm_core_tables(core) -> BuildTables:
    """What loading tables into a bitstream of ``core`` (an RNNCore or a TransformerCore)
    takes."""
    if isinstance(core, TransformerCore):
        emb = lm_embedding_shape(core)
        return _transformer_tables(emb, core.attention, core.ffn, core.unembedder)
    layers = lm_table_layers(core)
    return BuildTables(
        table_space(layers), shape_hash("serial" if core.serial else "parallel", layers)
    )


def _plan_layers(model: IntegerRNN, plan: RNNPlan) -> list:
    """:func:`~spikelut.boards.tables.lm_table_layers` of the RNN core ``plan`` places for
    ``model``, without building it."""
    cell, unembedder = rnn_params(model, plan)
    _, lanes = plan.embedding.rate(1, model.dim)
    depth = -(-model.dim // lanes) * model.vocab
    emb = MemoryShape(plan.embedding.storage, lanes, model.embedding_bits, depth)
    return [emb, cell, unembedder]


def make_lm_core(
    model: IntegerRNN | IntegerTransformer,
    plan: RNNPlan | TransformerPlan,
    selection: Selection,
    *,
    clock_hz: int,
    divisor: int,
    **options,
) -> BoardCore:
    """The :class:`~spikelut.boards.top.BoardCore` of ``model``'s core placed by ``plan``
    (:func:`lm_core`), its selector's exponential table and rule at reset those of
    ``selection``; clocked at ``clock_hz`` with UART ``divisor``; ``options`` as BoardCore."""
    core = lm_core(model, plan, selection)
    return BoardCore(
        core,
        clock_hz=int(clock_hz),
        divisor=divisor,
        model_hash=model_hash(model),
        shape_hash=lm_shape_hash(core),
        **options,
    )


# the board.json key of each plan type
_PLAN_KEYS = {"rnn_plan": RNNPlan, "transformer_plan": TransformerPlan}


def lm_plan_key(plan: RNNPlan | TransformerPlan) -> str:
    """The ``board.json`` key a build records ``plan`` under."""
    return next(k for k, cls in _PLAN_KEYS.items() if isinstance(plan, cls))


def lm_plan_of_build(board_info: dict) -> tuple[BoardSpec, RNNPlan | TransformerPlan]:
    """The board and the language model's plan a build recorded in its ``board.json``;
    ValueError naming what is missing."""
    keys = [k for k in _PLAN_KEYS if isinstance(board_info, dict) and k in board_info]
    if len(keys) != 1 or "board" not in board_info:
        raise ValueError(
            "the build's board.json holds no language-model plan; rebuild it for the model"
        )
    return board(str(board_info["board"])), _PLAN_KEYS[keys[0]].from_json(board_info[keys[0]])


def lm_build_tables(model: IntegerRNN | IntegerTransformer, board_info: dict) -> BuildTables:
    """The :class:`~spikelut.boards.design.BuildTables` of ``model`` for the bitstream
    described by ``board_info`` (a language-model build's ``board.json``). ValueError naming
    what is missing, or why the model cannot take that placement (another shape or
    architecture)."""
    _, plan = lm_plan_of_build(board_info)
    if isinstance(model, IntegerTransformer) != isinstance(plan, TransformerPlan):
        arch = "transformer" if isinstance(plan, TransformerPlan) else "RNN"
        raise ValueError(f"that build runs a {arch}; build the board for this model")
    try:
        if isinstance(model, IntegerTransformer):
            _, attention, ffn, unembedder = transformer_params(model, plan)
            lanes = plan.embedding_lanes or model.dim
            emb = embedding_shape(
                plan.embedding_storage, lanes, model.table_bits, model.vocab, model.dim
            )
            return _transformer_tables(emb, attention, ffn, unembedder)
        layers = _plan_layers(model, plan)
    except ValueError as e:
        raise ValueError(f"the model does not fit that build's core (another shape): {e}") from None
    return BuildTables(table_space(layers), shape_hash(plan.kind, layers))
