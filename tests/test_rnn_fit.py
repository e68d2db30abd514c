"""``fit_rnn``'s refusal when an RNN core's memories miss the device (the numbers it gives are
those of the leanest placement within the device's SPRAMs), and the up5k preset's core on
the iCEBreaker."""

from __future__ import annotations

import re

import numpy as np
import pytest

from spikelut.boards.lm_design import lm_board_fit
from spikelut.boards.platforms import board
from spikelut.compiler.backend.sequence import fit_rnn, rnn_blocks
from spikelut.compiler.backend.targets import target
from spikelut.compiler.ir.classifier import LayerQuant
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.train.presets import LM_PRESETS

UP5K = target("ice40-up5k")
BUDGET = 26  # the iCEBreaker build's block RAMs (30 less the host link's 4)


def random_rnn(dim, n_tables, n_c, unembed_tables, unembed_n_c, bits) -> IntegerRNN:
    """An integer RNN of this shape whose tables and embedding span all ``bits`` signed
    bits (the widest sums, so the most logic a trained model of the shape can need)."""
    rng = np.random.default_rng(14)
    lim, vocab = 1 << (bits - 1), 256
    cell = LUTLayer.random(in_dim=dim, out_dim=dim, n_tables=n_tables, n_c=n_c, rng=rng)
    cell = cell.with_tables(rng.integers(-lim, lim, cell.tables.shape))
    unemb = LUTLayer.random(in_dim=dim, out_dim=vocab, n_tables=unembed_tables,
                            n_c=unembed_n_c, rng=rng)  # fmt: skip
    unemb = unemb.with_tables(rng.integers(-lim, lim, unemb.tables.shape))
    return IntegerRNN(
        embedding=rng.integers(-lim, lim, (vocab, dim)),
        cell=cell,
        unembedder=unemb,
        cell_quant=LayerQuant(table_bits=bits),
        unembedder_quant=LayerQuant(table_bits=bits),
        embedding_bits=bits,
    )


def up5k_preset_rnn() -> IntegerRNN:
    """The shape whose memories fill the UP5K (hidden 48, cell 16 x N_C 6, unembedder
    8 x N_C 5, 6 bits), random tables."""
    return random_rnn(48, 16, 6, 8, 5, 6)


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


def test_the_up5k_preset_fits_the_icebreaker_beside_the_host_link():
    """The up5k preset's core, at its table width with the widest sums, takes a placement
    of the iCEBreaker build: memories within the host link's, logic (estimated) within
    the cells the host link leaves."""
    p = LM_PRESETS["up5k"]
    assert p.target == "ice40-up5k"
    model = random_rnn(**p.shape(), bits=p.table_bits)
    fit = lm_board_fit(model, board("icebreaker"))
    assert fit.estimate["logic_cells"] <= UP5K.core_logic_cells
    assert fit.block_rams <= BUDGET and fit.sprams <= UP5K.sprams
