"""``fit_rnn``'s refusal when an RNN core's memories miss the device: the numbers it gives are
those of the leanest placement within the device's SPRAMs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from spikelut.compiler.backend.sequence import fit_rnn, rnn_blocks
from spikelut.compiler.backend.targets import target
from spikelut.compiler.ir.classifier import LayerQuant
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.lut import LUTLayer

UP5K = target("ice40-up5k")
BUDGET = 26  # the iCEBreaker build's block RAMs (30 less the host link's 4)


def up5k_preset_rnn() -> IntegerRNN:
    """The up5k preset's shape (hidden 48, cell 16 x N_C 6, unembedder 8 x N_C 5, 6 bits)
    with random tables."""
    rng = np.random.default_rng(14)
    dim, vocab = 48, 256
    cell = LUTLayer.random(in_dim=dim, out_dim=dim, n_tables=16, n_c=6, rng=rng)
    cell = cell.with_tables(rng.integers(-32, 32, cell.tables.shape))
    unemb = LUTLayer.random(in_dim=dim, out_dim=vocab, n_tables=8, n_c=5, rng=rng)
    unemb = unemb.with_tables(rng.integers(-32, 32, unemb.tables.shape))
    return IntegerRNN(
        embedding=rng.integers(-32, 32, (vocab, dim)),
        cell=cell,
        unembedder=unemb,
        cell_quant=LayerQuant(table_bits=6),
        unembedder_quant=LayerQuant(table_bits=6),
        embedding_bits=6,
    )


def test_serial_refusal_names_the_leanest_placement_within_the_sprams():
    model = up5k_preset_rnn()
    with pytest.raises(ValueError) as refused:
        fit_rnn(model, UP5K, kind="serial", optimize="area", block_rams=BUDGET,
                logic_cells=1 << 30)  # fmt: skip
    msg = str(refused.value)
    assert "\n" not in msg
    found = re.search(
        r"leanest placement takes (\d+) block RAMs and (\d+) SPRAMs: block RAMs for the "
        r"embedding (\d+), the cell (\d+), the unembedder (\d+), the sampler (\d+)\)",
        msg,
    )
    assert found, msg
    brams, sprams, emb, cell, unemb, sampler = map(int, found.groups())
    # within the device's SPRAMs (not the all-block-RAM placement), just beyond the budget
    assert sprams <= UP5K.sprams and BUDGET < brams == emb + cell + unemb + sampler
    assert emb == 256 * 48 * 6 // 4096  # the embedding fills its 18 block RAMs
    # it is the placement fit_rnn takes once the block RAMs are there: the same memories
    fit = fit_rnn(model, UP5K, kind="serial", optimize="area", block_rams=brams,
                  logic_cells=1 << 30)  # fmt: skip
    assert (fit.block_rams, fit.sprams) == (brams, sprams)
    assert rnn_blocks(model, fit.plan, "ice40") == (brams, sprams)
    with pytest.raises(ValueError, match="leanest placement takes"):
        fit_rnn(model, UP5K, kind="serial", block_rams=brams - 1, logic_cells=1 << 30)
