"""Logic estimates of a network core: LUT4s, flip-flops and logic cells, before synthesis.

A simple bit-count model of what :class:`spikelut.hdl.layer.Network` elaborates to, per layer
(``Q = N_T * N_C`` anchor pairs, ``w`` = input width minus ``in_shift``, ``a`` = accumulator
width, ``G = ceil(N_T / P)``):

- parallel indexer: one ``w``-bit comparator per pair, ``Q * w`` LUTs (a carry chain each;
  up to 4 bits logic instead, :func:`comparator_luts`), ``Q`` index flip-flops;
- temporal indexer: a first-spike latch per pair, ``4.5 * Q`` LUTs, ``3 * Q + 2 * D`` flip-flops
  (latch, decision, index; per-neuron early/current bits);
- memory bank: the index shift register (``G * P * N_C`` LUTs and flip-flops), a ``P``-input
  adder and the accumulate/clear per lane output (``L * (P + 1) * a`` LUTs), address muxes,
  accumulators and output (``2 * Y * a`` flip-flops);
  constant-logic bank: ``N_T * Y * table_width * ceil(2**N_C / 16)`` LUTs of table logic plus
  ``N_T * Y * a`` of adders; LUT RAM on iCE40 (no distributed RAM there) is flip-flops;
- residual add: ``Y * a`` LUTs and a FIFO of ``depth * D * in_width`` flip-flops; argmax
  ``2 * Y * a`` LUTs, ``Y * a`` flip-flops.

The frozen core (:mod:`spikelut.hdl.frozen`, ``kind=CoreKind.FROZEN``,
:func:`_frozen_layer_logic`): the comparators as above (``w + 1`` LUTs each with their carry
chain, or logic up to 4 bits),
``t(N_C)`` LUT4s per non-constant table output bit (``t = 1`` up to ``N_C = 4``, then
``2**(N_C-4)`` LUT4s and ``2**(N_C-4) - 1`` multiplexers: every index bit past 4 doubles the
cost of a bit), and one LUT4 per bit of every adder of the pipelined tree (each as wide as
the exact range of its sum; the rows are read combinationally into its first level). Some
of its registers take a cell of their own (one fed by a carry chain): logic cells are
``LUTs + 0.2 * flip-flops`` (:data:`FROZEN_FF_CELLS`, the least-squares fit), set on eight
digits cores of ``bench/compare_peers.py --synth --curve``:
``32:4:2:2,48:4:3:2:24,64:4:3:2:32,48:4:2:2`` and, with ``--clip 15``,
``64:4:3:2:16,160:4:3:2:12,48:4:2:2:24,160:4:2:2:48`` (``nextpnr-ice40 --pack-only``: 1,779
to 4,625 cells, the model from 12 % under to 6 % over; most under on the clipped cores,
whose 3-bit comparators take more cells than their LUT count).

The serial core (:mod:`spikelut.hdl.serial_core`, ``kind=CoreKind.SERIAL``) replaces the indexer by
``C`` comparators (:func:`~spikelut.hdl.layer_params.serial_geometry`): ``C * (w + 2)`` LUTs;
their operands come through ``2 * C`` multiplexers of ``D`` inputs (``2 * C * w * m(D)`` LUTs,
``m(D) = 0.83 * D``: about 53 LUT4s a bit for ``D = 64``) or, with input copies in memory,
one copying multiplexer (``1.1 * w * m(D)``); its index registers are two groups
(``2 * P * N_C`` flip-flops) and the collecting word (``C * K``).

Logic cells (iCE40: one LUT4, one carry, one flip-flop each) are estimated as
``max(LUTs, flip-flops)``: in these cores nearly every flip-flop is fed by a LUT and packs
with it. Calibration (Yosys 0.70 ``synth_ice40``, default ABC9 flow, see :data:`CALIBRATION`):
the coefficients were set on the two 4-SPRAM digits cores. On the held-out cores LUT4s come
out between 17 % low (a 96-table core reading 6 tables of 10 outputs per cycle from block RAM:
its adders cost more than modelled) and 1.8 % high; flip-flops within 4.3 %. The serial
core's coefficients were set on its two digits cores (within 3 % of Yosys in LUT4s). ECP5
uses the same LUT4 counts, uncalibrated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spikelut.compiler.backend.cores import CoreKind
from spikelut.hdl.indexer import LOGIC_COMPARE_MAX_WIDTH, IndexerKind
from spikelut.hdl.layer_params import (
    LayerParams,
    frozen_bank_stages,
    frozen_fan_in,
    serial_geometry,
)
from spikelut.hdl.params import signed_width
from spikelut.hdl.serial_core import serial_operand_memory
from spikelut.hdl.storage import Storage

__all__ = [
    "CALIBRATION",
    "FROZEN_FF_CELLS",
    "RNN_CALIBRATION",
    "comparator_luts",
    "estimate_logic",
    "estimate_rnn_logic",
    "table_bit_luts",
]


# core -> (LUT4, FF) estimated by this model and measured by Yosys 0.70
# (``synth_ice40 -top spikelut_core; stat`` on ``spikelut compile`` output; see
# bench/compile_digits.py --synth)
CALIBRATION = {
    "digits 64->10 NT256 NC4, SPRAM P4 L2, parallel": {
        "model": (7708, 2496),
        "yosys": (7660, 2418),
    },
    "digits 64->10 NT256 NC4, SPRAM P4 L2, temporal": {
        "model": (6172, 4677),
        "yosys": (6149, 4725),
    },
    "digits 64->10 NT256 NC4, SPRAM P2 L2, parallel": {
        "model": (7604, 2498),
        "yosys": (7472, 2395),
    },
    "digits 64->10 NT256 NC4, SPRAM P2 L2, temporal": {
        "model": (6068, 4679),
        "yosys": (5993, 4702),
    },
    "digits 64->10 NT256 NC4, SPRAM P4 L2, serial (operand copies)": {
        "model": (1120, 591),
        "yosys": (1151, 593),
    },
    "digits 64->10 NT256 NC4, SPRAM P4 L2, serial (multiplexed operands)": {
        "model": (3305, 629),
        "yosys": (3296, 602),
    },
    "digits 64->10 NT96 NC4, BRAM P6 L10, parallel": {"model": (3892, 1148), "yosys": (4683, 1130)},
    "digits 64->10 NT96 NC4, BRAM P6 L10, temporal": {"model": (3316, 2049), "yosys": (3741, 2045)},
    "64->32->10 NT16 NC6, SPRAM P1 L16 + BRAM P2 L10": {
        "model": (2288, 1171),
        "yosys": (2666, 1165),
    },
}


# logic cells of the frozen core per modelled flip-flop beyond its LUT4s (module docstring)
FROZEN_FF_CELLS = 0.2


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def comparator_luts(w: int, carry_luts: int) -> int:
    """LUT4s of one ``w``-bit signed comparator: up to
    :data:`~spikelut.hdl.indexer.LOGIC_COMPARE_MAX_WIDTH` bits it is logic, a tree of LUT4s
    over its ``2 * w`` inputs (``ceil((2w - 1) / 3)``); wider, a carry chain of
    ``carry_luts``."""
    return _ceil(2 * w - 1, 3) if w <= LOGIC_COMPARE_MAX_WIDTH else carry_luts


def _layer_logic(p: LayerParams, family: str) -> tuple[int, int]:
    """``(LUT4s, flip-flops)`` of one layer of a parallel or temporal core."""
    n_t, n_c, y = p.n_tables, p.n_c, p.out_dim
    rows = 1 << n_c
    q = n_t * n_c
    d = p.in_dim
    w = p.in_width - p.in_shift
    acc = p.out_width
    if p.indexer == IndexerKind.TEMPORAL:
        lut, ff = int(4.5 * q), 3 * q + 2 * d + w
    else:
        lut, ff = q * comparator_luts(w, w), q + 1
    if p.storage == Storage.LOGIC:
        lut += n_t * y * p.table_width * _ceil(rows, 16) + n_t * y * acc
        ff += y * acc + 1
    else:
        pp, lanes = p.tables_per_cycle, p.lanes
        groups, beats, depth = p.geometry
        depth_bits = depth.bit_length()
        lut += groups * pp * n_c + lanes * (pp + 1) * acc + 2 * pp * depth_bits + 16
        ff += groups * pp * n_c + 2 * y * acc + 2 * (groups * beats).bit_length() + 4
        bits = pp * depth * lanes * p.table_width
        if p.storage == Storage.LUTRAM and family == "ice40":
            lut, ff = lut + bits, ff + bits
        elif p.storage == Storage.LUTRAM:
            lut += _ceil(bits, 16)
    if p.residual:
        lut += y * acc
        ff += 3 * d * p.in_width
    return lut, ff


def table_bit_luts(n_c: int) -> int:
    """LUT4s of one output bit of a constant table of ``N_C`` index bits: one up to 4 index
    bits, then ``2**(N_C-4)`` LUT4s joined by ``2**(N_C-4) - 1`` two-way multiplexers."""
    return 1 if n_c <= 4 else (2 << (n_c - 4)) - 1


def _frozen_layer_logic(p: LayerParams, family: str) -> tuple[int, int]:
    """``(LUT4s, flip-flops)`` of one frozen layer (see the module
    docstring): exact widths of every adder from the tables' ranges, as the bank builds
    them."""
    q = p.n_tables * p.n_c
    w = p.in_width - p.in_shift
    lut, ff = q * comparator_luts(w, w + 1), q + 1
    lo, hi = p.tables.min(axis=1), p.tables.max(axis=1)  # (N_T, Y)
    varies = lo != hi
    rows = int(varies.sum()) and sum(
        signed_width(a, b) for a, b in zip(lo[varies], hi[varies], strict=True)
    )
    lut += rows * table_bit_luts(p.n_c)
    # per column, a tree over the varying tables (constant columns folded in, no adder;
    # the rows combinational, read into its first level), delay registers keeping the
    # shallower trees in step
    levels = frozen_bank_stages(frozen_fan_in(p.tables))
    for c in range(lo.shape[1]):
        const = int(lo[~varies[:, c], c].sum())
        nodes = [(int(lo[t, c]), int(hi[t, c])) for t in np.flatnonzero(varies[:, c])]
        if nodes:
            nodes[0] = (nodes[0][0] + const, nodes[0][1] + const)
        for _ in range(levels):
            nxt = []
            for k in range(0, len(nodes), 2):
                pair = nodes[k : k + 2]
                a, b = sum(n[0] for n in pair), sum(n[1] for n in pair)
                bits = signed_width(a, b)
                lut, ff = (lut + bits, ff + bits) if len(pair) == 2 else (lut, ff + bits)
                nxt.append((a, b))
            nodes = nxt
    return lut, ff


def _mux(d: int) -> float:
    """LUT4s per bit of a ``d``-input multiplexer."""
    return 0.83 * d


def _serial_layer_logic(p: LayerParams, family: str) -> tuple[int, int]:
    """``(LUT4s, flip-flops)`` of one :class:`~spikelut.hdl.serial_core.SerialLayer`."""
    n_c, y, d, w, acc = p.n_c, p.out_dim, p.in_dim, p.in_width, p.out_width
    pp, lanes = p.tables_per_cycle, p.lanes
    groups, beats, comps, slots = serial_geometry(p.n_tables, n_c, y, pp, lanes)
    steps = groups * beats
    depth_bits = (steps << n_c).bit_length()
    lut = comps * (w + 2) + lanes * (pp + 1) * acc + 2 * pp * depth_bits + 200
    ff = 2 * pp * n_c + comps * slots + 2 * y * acc + 2 * (groups * slots).bit_length()
    ff += 2 * steps.bit_length() + 72
    if serial_operand_memory(p):
        lut += int(1.1 * w * _mux(d)) + 2 * d.bit_length()
        ff += d.bit_length() + 3
    else:
        lut += int(2 * comps * w * _mux(d))
        ff += 2 * comps * w
    if p.storage == Storage.LUTRAM:
        bits = pp * (steps << n_c) * lanes * p.table_width
        if family == "ice40":
            lut, ff = lut + bits, ff + bits
        else:
            lut += _ceil(bits, 16)
    return lut, ff


def estimate_logic(
    params: Sequence[LayerParams],
    family: str,
    kind: CoreKind = CoreKind.PARALLEL,
    *,
    argmax: bool = True,
) -> dict:
    """Estimated ``{"luts", "flip_flops", "logic_cells"}`` of a core of ``kind`` built from
    ``params`` (one per layer; :func:`spikelut.compiler.backend.network.network_params`),
    ending with the argmax unless ``argmax`` is False. ``family``: ``"ice40"`` or
    ``"ecp5"``. See the module docstring for the model.
    """
    layer_logic = {CoreKind.SERIAL: _serial_layer_logic, CoreKind.FROZEN: _frozen_layer_logic}
    layer_logic = layer_logic.get(kind, _layer_logic)
    lut = ff = 0
    for p in params:
        lu, f = layer_logic(p, family)
        lut, ff = lut + lu, ff + f
    if argmax:
        y, acc = params[-1].out_dim, params[-1].out_width
        lut += 2 * y * acc
        ff += y * acc + y.bit_length() + 1
    cells = lut + int(FROZEN_FF_CELLS * ff) if kind is CoreKind.FROZEN else max(lut, ff)
    return {"luts": lut, "flip_flops": ff, "logic_cells": cells}


# RNN cores measured by ``bench/rnn_sizes.py --synth`` (the iCEBreaker placement synthesised
# alone: Yosys 0.70 ``synth_ice40 -dsp``, then ``nextpnr-ice40 --pack-only``): packed logic
# cells, Yosys LUT4s and flip-flops, and this model's LUT4s and flip-flops before scaling.
RNN_CALIBRATION = {
    # held out (measured after the scales were set): the up5k preset
    "hidden 48, cell 16x6 SPRAM P2 L2, unembedder 8x5 SPRAM P2 L2, 6 bits, parallel": {
        "logic_cells": 4882,
        "yosys": (3259, 1763),
        "model": (2132, 1026),
    },
    "hidden 32, cell 16x6 SPRAM P2 L1, unembedder 8x5 SPRAM P2 L2, 8 bits, parallel": {
        "logic_cells": 5263,
        "yosys": (3500, 1612),
        "model": (2384, 939),
    },
}
# Yosys LUT4s and flip-flops per modelled one (from RNN_CALIBRATION): the comparators'
# carry chains and the memories' handshakes cost more than the classifier model says.
RNN_LUT_SCALE = 1.47
RNN_FF_SCALE = 1.72


def estimate_rnn_logic(
    cell: LayerParams,
    unembedder: LayerParams,
    *,
    embedding_width: int,
    family: str,
    kind: CoreKind = CoreKind.PARALLEL,
    embedding_lanes: int | None = None,
) -> dict:
    """Estimated ``{"luts", "flip_flops", "logic_cells"}`` of a
    :class:`~spikelut.hdl.recurrent.RNNCore`: its two LUT layers as in :func:`estimate_logic`
    (a chunked LUT keeps one chunk of ``L`` sums in registers, the rest in memory), the
    state ``h`` (the cell's one register) and the cell's add (``L`` lanes and the choice of
    the ``z`` chunk for a chunked cell, else ``D``), the embedding value ``z`` (a register
    only when the embedding is read in more than one word, ``embedding_lanes < D``), and
    the next-byte selector (its running sums and comparisons).

    LUT4s and flip-flops are scaled by :data:`RNN_LUT_SCALE` and :data:`RNN_FF_SCALE` to
    Yosys's counts. Logic cells: on iCE40 the RNN's registers do not pack with its LUTs
    (most are copies of memory words, index bits or state chunks, fed by no LUT, and its
    LUTs feed carry chains), so they are ``LUTs + flip-flops`` (nextpnr's packed count
    within 3 % on :data:`RNN_CALIBRATION`); ECP5 ``max(LUTs, flip-flops)``."""
    layer_logic = _serial_layer_logic if kind is CoreKind.SERIAL else _layer_logic
    lut = ff = 0
    for p in (cell, unembedder):
        lu, f = layer_logic(p, family)
        if p.chunked and p.storage != Storage.LOGIC:
            f -= 2 * (p.out_dim - p.lanes) * p.out_width
        lut, ff = lut + lu, ff + f
    d, state = cell.out_dim, cell.out_width
    if cell.chunked:
        beats = -(-d // cell.lanes)
        lut += cell.lanes * (state + embedding_width * max(beats - 1, 0) // 3) + 40
    else:
        lut += d * state + 40
    ff += d * state
    if embedding_lanes is not None and embedding_lanes < d:
        ff += d * embedding_width
    sum_bits = (unembedder.out_dim * 0xFFFF).bit_length()
    lut += 6 * sum_bits + 4 * unembedder.lanes * unembedder.out_width + 150
    ff += 4 * sum_bits + 32 + 3 * unembedder.out_dim.bit_length() + unembedder.out_width + 40
    lut, ff = round(RNN_LUT_SCALE * lut), round(RNN_FF_SCALE * ff)
    cells = lut + ff if family == "ice40" else max(lut, ff)
    return {"luts": lut, "flip_flops": ff, "logic_cells": cells}
