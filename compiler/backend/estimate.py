"""Logic estimates of a network core: LUT4s, flip-flops and logic cells, before synthesis.

A simple bit-count model of what :class:`spikelut.hdl.layer.Network` elaborates to, per layer
(``Q = N_T * N_C`` anchor pairs, ``w`` = input width minus ``in_shift``, ``a`` = accumulator
width, ``G = ceil(N_T / P)``):

- parallel indexer: one ``w``-bit comparator per pair, ``Q * w`` LUTs (a carry chain each),
  ``Q`` index flip-flops;
- temporal indexer: a first-spike latch per pair, ``4.5 * Q`` LUTs, ``3 * Q + 2 * D`` flip-flops
  (latch, decision, index; per-neuron early/current bits);
- memory bank: the index shift register (``G * P * N_C`` LUTs and flip-flops), a ``P``-input
  adder and the accumulate/clear per lane output (``L * (P + 1) * a`` LUTs), address muxes,
  accumulators and output (``2 * Y * a`` flip-flops);
  constant-logic bank: ``N_T * Y * table_width * ceil(2**N_C / 16)`` LUTs of table logic plus
  ``N_T * Y * a`` of adders; LUT RAM on iCE40 (no distributed RAM there) is flip-flops;
- residual add: ``Y * a`` LUTs and a FIFO of ``depth * D * in_width`` flip-flops; argmax
  ``2 * Y * a`` LUTs, ``Y * a`` flip-flops.

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

from spikelut.compiler.backend.cores import CoreKind
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layer_params import LayerParams, serial_geometry
from spikelut.hdl.serial_core import serial_operand_memory
from spikelut.hdl.storage import Storage

__all__ = ["CALIBRATION", "estimate_logic", "estimate_rnn_logic"]


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


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


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
        lut, ff = q * w, q + 1
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
    layer_logic = _serial_layer_logic if kind is CoreKind.SERIAL else _layer_logic
    lut = ff = 0
    for p in params:
        lu, f = layer_logic(p, family)
        lut, ff = lut + lu, ff + f
    if argmax:
        y, acc = params[-1].out_dim, params[-1].out_width
        lut += 2 * y * acc
        ff += y * acc + y.bit_length() + 1
    return {"luts": lut, "flip_flops": ff, "logic_cells": max(lut, ff)}


def estimate_rnn_logic(
    cell: LayerParams,
    unembedder: LayerParams,
    *,
    embedding_width: int,
    family: str,
    kind: CoreKind = CoreKind.PARALLEL,
) -> dict:
    """Estimated ``{"luts", "flip_flops", "logic_cells"}`` of a
    :class:`~spikelut.hdl.recurrent.RNNCore`: its two LUT layers as in :func:`estimate_logic`
    (the chunked unembedder keeps ``L``, not ``Y``, accumulators in registers), the state
    ``h``, the embedding value ``z`` (held twice: in the embedding's output and the cell)
    and the cell's add, and the next-byte selector (its running sums and comparisons).
    Uncalibrated for the RNN: a guide for placement, checked by synthesis."""
    layer_logic = _serial_layer_logic if kind is CoreKind.SERIAL else _layer_logic
    lut_c, ff_c = layer_logic(cell, family)
    lut_u, ff_u = layer_logic(unembedder, family)
    ff_u -= 2 * (unembedder.out_dim - unembedder.lanes) * unembedder.out_width
    d, state = cell.out_dim, cell.out_width
    lut = lut_c + lut_u + d * state + 40
    ff = ff_c + ff_u + d * state + 2 * d * embedding_width
    sum_bits = (unembedder.out_dim * 0xFFFF).bit_length()
    lut += 6 * sum_bits + 4 * unembedder.lanes * unembedder.out_width + 150
    ff += 4 * sum_bits + 32 + 3 * unembedder.out_dim.bit_length() + unembedder.out_width + 40
    return {"luts": lut, "flip_flops": ff, "logic_cells": max(lut, ff)}
