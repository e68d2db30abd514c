"""The language models' cores: from an integer RNN to the parameters of its gateware.

:func:`rnn_core` maps an :class:`~spikelut.compiler.ir.integer_sequence.IntegerRNN` and a
placement of its two LUTs onto :class:`spikelut.hdl.recurrent.RNNCore`, with the widths of
:func:`spikelut.compiler.passes.widths.rnn_widths` (the one width rule for the RNN).
"""

from __future__ import annotations

from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.passes.widths import rnn_widths
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.recurrent import RNNCore

__all__ = ["rnn_core"]


def rnn_core(model: IntegerRNN, plan: LayerPlan | None = None) -> RNNCore:
    """The :class:`~spikelut.hdl.recurrent.RNNCore` of ``model``, both LUTs placed by
    ``plan`` (default: block RAM, one table per cycle); ``ValueError`` when a width or the
    placement does not fit."""
    plan = plan or LayerPlan()
    w = rnn_widths(model)
    luts = []
    for lut, q, out_width in (
        (model.cell, model.cell_quant, w.state_width),
        (model.unembedder, model.unembedder_quant, w.unembedder.out_width),
    ):
        p, lanes = plan.rate(lut.n_tables, lut.out_dim)
        luts.append(
            LayerParams(
                anchors_a=lut.a,
                anchors_b=lut.b,
                tables=lut.tables,
                in_dim=model.dim,
                in_width=w.state_width,
                table_width=q.table_bits,
                out_width=out_width,
                in_shift=q.in_shift,
                in_bounds=(w.state_lo, w.state_hi),
                storage=plan.storage,
                tables_per_cycle=p,
                lanes=lanes,
            )
        )
    return RNNCore(
        embedding=model.embedding,
        embedding_width=model.embedding_bits,
        cell=luts[0],
        unembedder=luts[1],
    )
