"""From an integer spiking RNN to a board design: placement, model hash, tables, the sampler.

A language model on a board answers one byte per UART byte time, a thousand or so clock
cycles at 115,200 baud, so its core is placed for area: :func:`lm_board_fit` takes the
placement with the fewest estimated logic cells (ties to fewer cycles per token) of the
parallel and serial kinds within the board's block RAMs (less the host link's) and SPRAMs.
Its memories are table-space layers 0 (embedding), 1 (cell) and 2 (unembedder)
(:func:`~spikelut.boards.tables.lm_table_layers`); :func:`lm_shape_hash` is the fingerprint
of everything the bitstream fixes but their contents, as :func:`~spikelut.boards.design.shape_hash`
is a classifier's.
"""

from __future__ import annotations

from spikelut.boards.design import RESERVED_BRAMS, BuildTables, model_hash, shape_hash
from spikelut.boards.platforms import BoardSpec, board
from spikelut.boards.tables import MemoryShape, lm_table_layers, table_space
from spikelut.boards.top import BoardCore
from spikelut.compiler.backend.compile_lm import plan_lm
from spikelut.compiler.backend.sequence import RNNFit, RNNPlan, rnn_core, rnn_params
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.selection import Selection

__all__ = [
    "DEFAULT_TEMPERATURE",
    "lm_board_fit",
    "lm_build_tables",
    "lm_core_tables",
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


def lm_tables(model: IntegerRNN) -> dict:
    """Table-space layer -> the model's integer tables (N_T, rows, Y): the embedding as one
    table of ``V`` rows, the cell's and the unembedder's tables."""
    return {0: model.embedding[None], 1: model.cell.tables, 2: model.unembedder.tables}


def lm_board_fit(model: IntegerRNN, spec: BoardSpec, *, kind: str = "auto") -> RNNFit:
    """The placement of ``model``'s core a board build uses (see the module docstring).
    ValueError (a CompileError) saying what is short when nothing fits."""
    t = spec.target
    return plan_lm(
        model,
        t,
        kind=kind,
        optimize="area",
        block_rams=t.block_rams - RESERVED_BRAMS[t.family],
    )


def lm_shape_hash(core) -> bytes:
    """The shape fingerprint (8 bytes) of an :class:`~spikelut.hdl.recurrent.RNNCore`: the
    core kind, the embedding memory's shape and width, and the cell's and unembedder's
    parameters but the contents of the tables they keep in memory."""
    return shape_hash("serial" if core.serial else "parallel", lm_table_layers(core))


def lm_core_tables(core) -> BuildTables:
    """What loading tables into a bitstream of ``core`` (an RNNCore) takes."""
    return BuildTables(table_space(lm_table_layers(core)), lm_shape_hash(core))


def _plan_layers(model: IntegerRNN, plan: RNNPlan) -> list:
    """:func:`~spikelut.boards.tables.lm_table_layers` of the core ``plan`` places for
    ``model``, without building it."""
    cell, unembedder = rnn_params(model, plan)
    _, lanes = plan.embedding.rate(1, model.dim)
    depth = -(-model.dim // lanes) * model.vocab
    emb = MemoryShape(plan.embedding.storage, lanes, model.embedding_bits, depth)
    return [emb, cell, unembedder]


def make_lm_core(
    model: IntegerRNN,
    plan: RNNPlan,
    selection: Selection,
    *,
    clock_hz: int,
    divisor: int,
    **options,
) -> BoardCore:
    """The :class:`~spikelut.boards.top.BoardCore` of ``model``'s RNN core placed by
    ``plan``, its selector's exponential table and rule at reset those of ``selection``;
    clocked at ``clock_hz`` with UART ``divisor``; ``options`` as BoardCore."""
    core = rnn_core(model, plan, selection)
    return BoardCore(
        core,
        clock_hz=int(clock_hz),
        divisor=divisor,
        model_hash=model_hash(model),
        shape_hash=lm_shape_hash(core),
        **options,
    )


def lm_plan_of_build(board_info: dict) -> tuple[BoardSpec, RNNPlan]:
    """The board and the RNN plan a build recorded in its ``board.json``; ValueError naming
    what is missing."""
    if not isinstance(board_info, dict) or not {"board", "rnn_plan"} <= board_info.keys():
        raise ValueError(
            "the build's board.json holds no RNN plan; rebuild it for the language model"
        )
    return board(str(board_info["board"])), RNNPlan.from_json(board_info["rnn_plan"])


def lm_build_tables(model: IntegerRNN, board_info: dict) -> BuildTables:
    """The :class:`~spikelut.boards.design.BuildTables` of ``model`` for the bitstream
    described by ``board_info`` (a language-model build's ``board.json``). ValueError naming
    what is missing, or why the model cannot take that placement (another shape)."""
    _, plan = lm_plan_of_build(board_info)
    try:
        layers = _plan_layers(model, plan)
    except ValueError as e:
        raise ValueError(f"the model does not fit that build's core (another shape): {e}") from None
    return BuildTables(table_space(layers), shape_hash(plan.kind, layers))
