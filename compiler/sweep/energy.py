"""Energy per inference on the iCE40 UP5K: an estimate from logic cells, clock and cycles.

Method (stated in every result and in the report, :data:`METHOD`): no switching activity is
measured; the dynamic energy is bounded by two published per-cell calibrations of the UP5K,
a low-activity one and a high-activity one, and the estimate is their geometric mean. The
static (blank-core) current is added for the time an inference takes at the design's clock,
and memory reads at an assumed energy per access (no data sheet figure is quoted for it, so
its bounds are wide). Every constant lives here, with its source.

    E = LC * k * cycles * 1e-15 J            (k in nW per logic cell per MHz)
      + I_blank * V_core * cycles / f         (the blank design's core power)
      + memories * cycles * e_read            (every table memory read every cycle: an upper count)

Only the UP5K is calibrated; for other devices :func:`energy_per_inference` returns None.
"""

from __future__ import annotations

import math

__all__ = [
    "ELASTICAI_UJ_PER_INFERENCE",
    "METHOD",
    "UP5K_ENERGY",
    "energy_per_inference",
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


def energy_per_inference(
    family: str,
    device: str,
    *,
    logic_cells: int,
    memories: int,
    cycles: int,
    clock_mhz: float,
) -> dict | None:
    """Energy per inference in microjoules (``uj``, and the bounds ``uj_low``, ``uj_high``)
    of a design of ``logic_cells`` and ``memories`` (block RAMs + SPRAMs) taking ``cycles``
    clocks per inference at ``clock_mhz``, with the parts (``dynamic_uj``, ``static_uj``,
    ``memory_uj``) and :data:`METHOD`; None for a device without calibration (only the
    UP5K has one)."""
    if family != "ice40" or "up5k" not in device.lower() or cycles <= 0 or not clock_mhz > 0:
        return None
    c = UP5K_ENERGY
    k_low, k_high = c["nw_per_lc_mhz_low"], c["nw_per_lc_mhz_high"]
    k_mid = math.sqrt(k_low * k_high)

    def dynamic(k: float) -> float:
        return logic_cells * k * cycles * 1e-15 * 1e6  # uJ

    static = c["blank_core_ua"] * 1e-6 * c["core_volts"] * cycles / (clock_mhz * 1e6) * 1e6

    def memory(pj: float) -> float:
        return memories * cycles * pj * 1e-12 * 1e6

    return {
        "uj": dynamic(k_mid) + static + memory(c["pj_per_memory_read"]),
        "uj_low": dynamic(k_low) + static + memory(c["pj_per_memory_read_low"]),
        "uj_high": dynamic(k_high) + static + memory(c["pj_per_memory_read_high"]),
        "dynamic_uj": dynamic(k_mid),
        "static_uj": static,
        "memory_uj": memory(c["pj_per_memory_read"]),
        "clock_mhz": clock_mhz,
        "method": METHOD,
    }
