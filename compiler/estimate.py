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

The serial core (:mod:`spikelut.hdl.serial_core`, ``serial=True``) replaces the indexer by
``C`` comparators (:func:`~spikelut.hdl.serial_core.serial_geometry`): ``C * (w + 2)`` LUTs;
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

from collections.abc import Mapping, Sequence

from spikelut.hdl.bank import Storage
from spikelut.hdl.indexer import IndexerKind

__all__ = [
    "CALIBRATION",
    "HOST_LINK_CELLS",
    "LOGIC_CELLS",
    "estimate_logic",
    "network_layer_params",
]

# logic cells (iCE40) or LUT4s (ECP5) of each target
LOGIC_CELLS = {"ice40-up5k": 5280, "ice40-hx8k": 7680, "ecp5-25": 24288, "ecp5-85": 83640}

# room kept for the board top's UART host link (framing, CRC, buffers), in logic cells
HOST_LINK_CELLS = 700

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


def _layer_logic(p: Mapping, family: str) -> tuple[int, int]:
    """``(LUT4s, flip-flops)`` of one layer from its ``Layer`` parameters."""
    tables = p["tables"]
    n_t, rows, y = tables.shape
    n_c = rows.bit_length() - 1
    q = n_t * n_c
    d = p["in_dim"]
    w = p["in_width"] - p.get("in_shift", 0)
    acc = p["out_width"]
    if p.get("indexer", IndexerKind.PARALLEL) == IndexerKind.TEMPORAL:
        lut, ff = int(4.5 * q), 3 * q + 2 * d + w
    else:
        lut, ff = q * w, q + 1
    storage = p.get("storage", Storage.BRAM)
    if storage == Storage.LOGIC:
        lut += n_t * y * p["table_width"] * _ceil(rows, 16) + n_t * y * acc
        ff += y * acc + 1
    else:
        pp = p.get("tables_per_cycle") or 1
        lanes = p.get("lanes") or y
        groups = _ceil(n_t, pp)
        depth_bits = (groups * _ceil(y, lanes) << n_c).bit_length()
        lut += groups * pp * n_c + lanes * (pp + 1) * acc + 2 * pp * depth_bits + 16
        ff += groups * pp * n_c + 2 * y * acc + 2 * (groups * _ceil(y, lanes)).bit_length() + 4
        if storage == Storage.LUTRAM and family == "ice40":
            bits = pp * (groups * _ceil(y, lanes) << n_c) * lanes * p["table_width"]
            lut, ff = lut + bits, ff + bits
        elif storage == Storage.LUTRAM:
            lut += _ceil(pp * (groups * _ceil(y, lanes) << n_c) * lanes * p["table_width"], 16)
    if p.get("residual"):
        lut += y * acc
        ff += 3 * d * p["in_width"]
    return lut, ff


def _mux(d: int) -> float:
    """LUT4s per bit of a ``d``-input multiplexer."""
    return 0.83 * d


def _serial_layer_logic(p: Mapping, family: str) -> tuple[int, int]:
    """``(LUT4s, flip-flops)`` of one :class:`~spikelut.hdl.serial_core.SerialLayer`."""
    from spikelut.hdl.serial_core import MIN_COPY_DIM, serial_geometry

    tables = p["tables"]
    n_t, rows, y = tables.shape
    n_c = rows.bit_length() - 1
    d = p["in_dim"]
    w = p["in_width"]
    acc = p["out_width"]
    pp = p.get("tables_per_cycle") or 1
    lanes = p.get("lanes") or y
    groups, beats, comps, slots = serial_geometry(n_t, n_c, y, pp, lanes)
    copies = p.get("operand_memory")
    if copies is None:
        copies = d + 1 <= groups * slots and d >= MIN_COPY_DIM
    steps = groups * beats
    depth_bits = (steps << n_c).bit_length()
    lut = comps * (w + 2) + lanes * (pp + 1) * acc + 2 * pp * depth_bits + 200
    ff = 2 * pp * n_c + comps * slots + 2 * y * acc + 2 * (groups * slots).bit_length()
    ff += 2 * steps.bit_length() + 72
    if copies:
        lut += int(1.1 * w * _mux(d)) + 2 * d.bit_length()
        ff += d.bit_length() + 3
    else:
        lut += int(2 * comps * w * _mux(d))
        ff += 2 * comps * w
    if p.get("storage", Storage.BRAM) == Storage.LUTRAM:
        bits = pp * (steps << n_c) * lanes * p["table_width"]
        if family == "ice40":
            lut, ff = lut + bits, ff + bits
        else:
            lut += _ceil(bits, 16)
    return lut, ff


def estimate_logic(
    params: Sequence[Mapping], family: str, *, argmax: bool = True, serial: bool = False
) -> dict:
    """Estimated ``{"luts", "flip_flops", "logic_cells"}`` of ``Network(layers=params)`` (or,
    with ``serial``, of ``SerialNetwork(layers=params)``).

    ``params``: the per-layer dicts of :func:`spikelut.compiler.backend.network_params`;
    ``family``: ``"ice40"`` or ``"ecp5"``. See the module docstring for the model.
    """
    lut = ff = 0
    for p in params:
        lu, f = (_serial_layer_logic if serial else _layer_logic)(p, family)
        lut, ff = lut + lu, ff + f
    if argmax:
        y, acc = params[-1]["tables"].shape[2], params[-1]["out_width"]
        lut += 2 * y * acc
        ff += y * acc + y.bit_length() + 1
    return {"luts": lut, "flip_flops": ff, "logic_cells": max(lut, ff)}


def network_layer_params(net) -> list[dict]:
    """The per-layer parameters :func:`estimate_logic` reads, taken from a built
    :class:`~spikelut.hdl.layer.Network` or :class:`~spikelut.hdl.serial_core.SerialNetwork`."""
    from spikelut.hdl.serial_core import SerialLayer

    out = []
    for hw in net.layers:
        if isinstance(hw, SerialLayer):
            out.append(
                {
                    "tables": hw.tables,
                    "in_dim": hw.in_dim,
                    "in_width": hw.in_width,
                    "out_width": hw.out_width,
                    "table_width": hw.table_width,
                    "storage": hw.storage,
                    "tables_per_cycle": hw.tables_per_cycle,
                    "lanes": hw.lanes,
                    "operand_memory": hw.operand_memory,
                }
            )
            continue
        idx, bank = hw.indexer, hw.bank
        out.append(
            {
                "anchors_a": idx.anchors_a,
                "tables": bank.tables,
                "in_dim": hw.in_dim,
                "in_width": hw.in_width,
                "in_shift": idx.in_shift,
                "out_width": hw.out_width,
                "table_width": bank.table_width,
                "storage": bank.storage,
                "tables_per_cycle": bank.tables_per_cycle,
                "lanes": bank.lanes,
                "residual": hw.residual,
                "indexer": hw.indexer_kind,
            }
        )
    return out
