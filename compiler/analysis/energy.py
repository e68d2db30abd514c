"""Energy per inference on the iCE40 UP5K: an estimate from logic cells, clock and cycles,
and, where a simulation measured it, the core's switching activity.

Two methods, each stated in its result and in the report (:data:`METHOD`,
:data:`METHOD_ACTIVITY`); every constant lives here, with its source.

Without activity, the dynamic energy is bounded by two published per-cell calibrations of
the UP5K, a low-activity one and a high-activity one, and the estimate is their geometric
mean:

    E = LC * k * cycles * 1e-15 J            (k in nW per logic cell per MHz)
      + I_blank * V_core * cycles / f         (the blank design's core power)
      + memories * cycles * e_read            (every table memory read every cycle: an upper count)

With activity (``toggles_per_bit``: the core's signal toggles per bit per inference,
counted by Verilator over a test set, :mod:`spikelut.sim.activity`), the same calibrations
become an energy per toggle: the low one is a bank of binary counters, whose bits toggle
2/28 times a cycle on average (:data:`COUNTER_TOGGLE_RATE`), so 14 nW/LC/MHz is
``14 / (2/28) = 196`` fJ a toggle; the high one is a multiplier of two counters, whose
activity was not measured: at an assumed 0.25-0.5 toggles a bit a cycle
(:data:`MULTIPLIER_TOGGLE_RATE`) it gives 396-792 fJ a toggle, glitches included. The
central energy a toggle is the geometric mean of 196 and 792 fJ, the bounds those two. The
core's cells (the build's less the host link's, :data:`HOST_LINK_CELLS`) switch at the
measured rate, the host link's at the low calibration:

    E = core_LC * toggles_per_bit * e_toggle + link_LC * k_low * cycles * 1e-15 J
      + static + memory (as above)

Only the UP5K is calibrated; for other devices :func:`energy_per_inference` returns None.
"""

from __future__ import annotations

import math

from spikelut.compiler.backend.targets import HOST_LINK_CELLS, TARGETS

__all__ = [
    "COUNTER_TOGGLE_RATE",
    "ELASTICAI_UJ_PER_INFERENCE",
    "METHOD",
    "METHOD_ACTIVITY",
    "MULTIPLIER_TOGGLE_RATE",
    "UP5K_ENERGY",
    "build_energy",
    "energy_per_inference",
    "fj_per_toggle",
]

# tinyvision-ai-inc/ice40_power: measurements of an iCE40 UP5K (quoted in issue 17)
UP5K_ENERGY = {
    "device": "iCE40UP5K",
    "nw_per_lc_mhz_low": 14.0,  # low-activity logic, nW per logic cell per MHz
    "nw_per_lc_mhz_high": 198.0,  # high-activity logic
    "blank_core_ua": 85.6,  # blank design, core supply current
    "core_volts": 1.2,
    "source": "tinyvision-ai-inc/ice40_power (measured on a UP5K), quoted in spikelut issue 17",
    # block RAM / SPRAM read energy: an assumption (no data sheet figure quoted), with bounds
    "pj_per_memory_read": 20.0,
    "pj_per_memory_read_low": 5.0,
    "pj_per_memory_read_high": 80.0,
    "memory_source": "assumed: 20 pJ per block RAM or SPRAM read, bounds 5..80 pJ; no measurement",
}
# the calibrations' switching: the low one is 28-bit binary counters (bit i toggles every
# 2**i cycles: 2 toggles a cycle over 28 bits); the high one (two 8-bit counters multiplied)
# was not measured: an assumed range
COUNTER_TOGGLE_RATE = 2 / 28
MULTIPLIER_TOGGLE_RATE = (0.25, 0.5)

# ElasticAI.Creator: a small MLP on the UP5K, measured (the best published figure, issue 17)
ELASTICAI_UJ_PER_INFERENCE = 0.172

METHOD = (
    "estimate, not a measurement: dynamic energy = logic cells x k x cycles, k bounded by "
    "the UP5K calibration of tinyvision-ai-inc/ice40_power (14 nW/LC/MHz at low activity, "
    "198 at high activity; central value their geometric mean, 52.7); no switching activity "
    "is simulated. Plus the blank core's 85.6 uA at 1.2 V for the time of an inference at the "
    "design's clock, plus an assumed 20 pJ (5..80) per table-memory read, every memory read "
    "every cycle. All logic cells of the build count (the host link's too). The core supply "
    "(1.2 V) only, inferences back to back at the core's full rate: I/O, the SPI flash and "
    "the host link's time to deliver inputs (which bounds a board's real rate) are not "
    "counted, so it is not comparable one to one with a measured board figure. DSP blocks "
    "(SB_MAC16) have no calibration and are not counted: a MAC core's estimate is low by "
    "their share."
)


def fj_per_toggle() -> tuple[float, float, float]:
    """``(low, central, high)`` energy of one signal toggle in a logic cell, fJ, from the
    UP5K calibrations and their switching rates (module docstring)."""
    c = UP5K_ENERGY
    low = c["nw_per_lc_mhz_low"] / COUNTER_TOGGLE_RATE
    high = c["nw_per_lc_mhz_high"] / min(MULTIPLIER_TOGGLE_RATE)
    return low, math.sqrt(low * high), high


_E_LOW, _, _E_HIGH = fj_per_toggle()
METHOD_ACTIVITY = (
    "estimate from simulated switching, not a measurement: the core's signal toggles per bit "
    "per inference counted by Verilator over the test set (RTL signal bits stand for logic "
    "cells; memory contents left out) times the core's logic cells (the build's less the "
    "host link's) times an energy per toggle from the UP5K calibration of "
    f"tinyvision-ai-inc/ice40_power: {_E_LOW:.0f} fJ (28-bit counters, "
    f"{UP5K_ENERGY['nw_per_lc_mhz_low']:g} nW/LC/MHz at 2/28 toggles a bit a cycle) to "
    f"{_E_HIGH:.0f} fJ (a multiplier, {UP5K_ENERGY['nw_per_lc_mhz_high']:g} nW/LC/MHz at an "
    f"assumed {min(MULTIPLIER_TOGGLE_RATE):g} toggles a bit a cycle), central their geometric "
    "mean; the host link's cells at the low calibration. Plus the blank core's "
    f"{UP5K_ENERGY['blank_core_ua']:g} uA at {UP5K_ENERGY['core_volts']:g} V for the time of "
    "an inference at the design's clock, plus an assumed "
    f"{UP5K_ENERGY['pj_per_memory_read']:g} pJ ({UP5K_ENERGY['pj_per_memory_read_low']:g}.."
    f"{UP5K_ENERGY['pj_per_memory_read_high']:g}) per table-memory read, every memory read "
    "every cycle. Core supply only; DSP blocks are not counted (a MAC core's figure is low "
    "by their share)."
)


def energy_per_inference(
    family: str,
    device: str,
    *,
    logic_cells: int,
    memories: int,
    cycles: int,
    clock_mhz: float,
    toggles_per_bit: float | None = None,
    core_cells: int | None = None,
) -> dict | None:
    """Energy per inference in microjoules (``uj``, and the bounds ``uj_low``, ``uj_high``)
    of a design of ``logic_cells`` and ``memories`` (block RAMs + SPRAMs) taking ``cycles``
    clocks per inference at ``clock_mhz``, with the parts (``dynamic_uj``, ``static_uj``,
    ``memory_uj``) and its method (``method``: :data:`METHOD`, or with
    ``toggles_per_bit``, the core's measured toggles per signal bit per inference, and
    ``core_cells``, its share of ``logic_cells``, :data:`METHOD_ACTIVITY`); None for a
    device without calibration (only the UP5K has one)."""
    if family != "ice40" or "up5k" not in device.lower() or cycles <= 0 or not clock_mhz > 0:
        return None
    c = UP5K_ENERGY
    k_low, k_high = c["nw_per_lc_mhz_low"], c["nw_per_lc_mhz_high"]
    fj = 1e-9  # uJ per fJ
    if toggles_per_bit is not None:
        if core_cells is None or not 0 <= core_cells <= logic_cells or toggles_per_bit < 0:
            raise ValueError("activity needs toggles_per_bit >= 0 and 0 <= core_cells <= cells")
        link = (logic_cells - core_cells) * k_low * cycles * fj  # nW/MHz = fJ a cycle
        low, mid, high = (core_cells * toggles_per_bit * e * fj + link for e in fj_per_toggle())
        method = METHOD_ACTIVITY
    else:
        low, mid, high = (
            logic_cells * k * cycles * fj for k in (k_low, math.sqrt(k_low * k_high), k_high)
        )
        method = METHOD

    static = c["blank_core_ua"] * 1e-6 * c["core_volts"] * cycles / (clock_mhz * 1e6) * 1e6

    def memory(pj: float) -> float:
        return memories * cycles * pj * 1e-12 * 1e6

    return {
        "uj": mid + static + memory(c["pj_per_memory_read"]),
        "uj_low": low + static + memory(c["pj_per_memory_read_low"]),
        "uj_high": high + static + memory(c["pj_per_memory_read_high"]),
        "dynamic_uj": mid,
        "static_uj": static,
        "memory_uj": memory(c["pj_per_memory_read"]),
        "clock_mhz": clock_mhz,
        "toggles_per_bit": toggles_per_bit,
        "method": method,
    }


def build_energy(info: dict, toggles_per_bit: float | None = None) -> dict:
    """The energy figures of one board build from its ``board.json`` (``info``): the core
    (``"mac"`` or ``"lut (INDEXER)"``), board, placed resources, cycles per inference, clock,
    whether it was built, and ``energy`` (:func:`energy_per_inference` from its cells, None
    when the build did not fit or the device has no calibration); with ``toggles_per_bit``
    (its core's, measured in simulation) also ``energy_from_activity``, the core's cells
    being the build's less the host link's (:data:`HOST_LINK_CELLS`)."""
    res = info.get("resources", {})

    def used(name: str) -> int:
        return res.get(name, {}).get("used", 0)

    family = next((t.family for t in TARGETS.values() if t.device == info.get("device")), "")
    built = bool(info.get("fits")) and bool(info.get("bitstream"))
    design = dict(
        logic_cells=used("logic_cells"),
        memories=used("block_rams") + used("sprams"),
        cycles=int(info.get("cycles_per_inference") or 0),
        clock_mhz=float(info.get("target_mhz") or 0),
    )
    device = str(info.get("device", ""))
    energy = energy_per_inference(family, device, **design) if built else None
    activity = None
    if energy is not None and toggles_per_bit is not None:
        activity = energy_per_inference(
            family,
            device,
            **design,
            toggles_per_bit=toggles_per_bit,
            core_cells=max(0, design["logic_cells"] - HOST_LINK_CELLS[family]),
        )
    return {
        "core": "mac" if info.get("baseline") == "mac" else f"lut ({info.get('indexer')})",
        "board": info.get("board"),
        "device": device,
        "logic_cells": used("logic_cells"),
        "block_rams": used("block_rams"),
        "sprams": used("sprams"),
        "dsps": used("dsps"),
        "cycles_per_inference": design["cycles"],
        "clock_mhz": design["clock_mhz"],
        "timing_met": info.get("timing_met"),
        "built": built,
        "energy": energy,
        "energy_from_activity": activity,
    }
