"""PLL parameters for the board clock: an exact search over the divider ranges, and the
PLL primitives that use them (iCE40 ``SB_PLL40_PAD``, ECP5 ``EHXPLLL``).

The searches follow the devices' documented limits (the same ones icestorm's ``icepll`` and
prjtrellis' ``ecppll`` apply) and return the configuration whose output is closest to the
request, preferring the lowest dividers on ties, so the choice is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Instance

__all__ = ["PLLConfig", "ecp5_pll", "family_pll", "ice40_pll", "pll_instance"]


@dataclass(frozen=True)
class PLLConfig:
    """One PLL setting: ``family``, input and achieved output clock (Hz) and the dividers.

    iCE40: ``divr``, ``divf``, ``divq``, ``filter_range``; ECP5: ``clki_div``, ``clkfb_div``,
    ``clkop_div``.
    """

    family: str
    in_hz: float
    out_hz: float
    params: dict

    @property
    def out_mhz(self) -> float:
        """Achieved output clock in MHz."""
        return self.out_hz / 1e6


def _filter_range(pfd_hz: float) -> int:
    for limit, value in ((17e6, 1), (26e6, 2), (44e6, 3), (66e6, 4), (101e6, 5)):
        if pfd_hz < limit:
            return value
    return 6


def ice40_pll(in_hz: float, out_hz: float) -> PLLConfig:
    """Closest ``SB_PLL40`` (SIMPLE feedback) setting; raises ValueError when out of range.

    ``out = in * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ)`` with the phase detector at
    10..133 MHz and the VCO at 533..1066 MHz; the output must be 16..275 MHz.
    """
    if not 16e6 <= out_hz <= 275e6:
        raise ValueError(f"an iCE40 PLL gives 16..275 MHz, not {out_hz / 1e6:g} MHz")
    best = None
    for divr in range(16):
        pfd = in_hz / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                f = vco / (1 << divq)
                key = (abs(f - out_hz), divr, divf, divq)
                if best is None or key < best[0]:
                    best = (key, divr, divf, divq, f)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting reaches {out_hz / 1e6:g} MHz from {in_hz / 1e6:g}")
    _, divr, divf, divq, f = best
    params = {
        "divr": divr,
        "divf": divf,
        "divq": divq,
        "filter_range": _filter_range(in_hz / (divr + 1)),
    }
    return PLLConfig("ice40", in_hz, f, params)


def ecp5_pll(in_hz: float, out_hz: float) -> PLLConfig:
    """Closest ``EHXPLLL`` setting (CLKOP feedback); raises ValueError when out of range.

    ``out = in * CLKFB_DIV / CLKI_DIV`` with the VCO ``out * CLKOP_DIV`` at 400..800 MHz and
    the phase detector at 3.125..400 MHz; the output must be 3.125..400 MHz.
    """
    if not 3.125e6 <= out_hz <= 400e6:
        raise ValueError(f"an ECP5 PLL gives 3.125..400 MHz, not {out_hz / 1e6:g} MHz")
    best = None
    for clki in range(1, 129):
        pfd = in_hz / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb in range(1, 81):
            f = pfd * clkfb
            if not 3.125e6 <= f <= 400e6:
                continue
            for clkop in range(1, 129):
                if 400e6 <= f * clkop <= 800e6:
                    key = (abs(f - out_hz), clki, clkfb, clkop)
                    if best is None or key < best[0]:
                        best = (key, clki, clkfb, clkop, f)
                    break  # the smallest CLKOP_DIV with the VCO in range
    if best is None:
        raise ValueError(f"no ECP5 PLL setting reaches {out_hz / 1e6:g} MHz from {in_hz / 1e6:g}")
    _, clki, clkfb, clkop, f = best
    return PLLConfig("ecp5", in_hz, f, {"clki_div": clki, "clkfb_div": clkfb, "clkop_div": clkop})


def family_pll(family: str, in_hz: float, out_hz: float) -> PLLConfig:
    """The closest PLL setting of a ``family`` device; ValueError when out of range, or on
    Gowin, whose rPLL spikelut does not drive yet (its boards run at the oscillator)."""
    if family == "ice40":
        return ice40_pll(in_hz, out_hz)
    if family == "ecp5":
        return ecp5_pll(in_hz, out_hz)
    raise ValueError(
        f"spikelut drives no {family} PLL yet: drop --freq (the board clock is {in_hz / 1e6:g} MHz)"
    )


def pll_instance(cfg: PLLConfig, *, clk_in, clk_out, lock) -> Instance:
    """The PLL primitive for ``cfg``: iCE40 takes the clock pad (an IO port) as ``clk_in``,
    ECP5 the input buffer's signal."""
    p = cfg.params
    if cfg.family == "ice40":
        return Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE",
            p_DIVR=p["divr"],
            p_DIVF=p["divf"],
            p_DIVQ=p["divq"],
            p_FILTER_RANGE=p["filter_range"],
            io_PACKAGEPIN=clk_in,
            i_RESETB=1,
            i_BYPASS=0,
            o_PLLOUTGLOBAL=clk_out,
            o_LOCK=lock,
        )
    return Instance(
        "EHXPLLL",
        p_PLLRST_ENA="DISABLED",
        p_INTFB_WAKE="DISABLED",
        p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED",
        p_OUTDIVIDER_MUXA="DIVA",
        p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC",
        p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=p["clki_div"],
        p_CLKOP_ENABLE="ENABLED",
        p_CLKOP_DIV=p["clkop_div"],
        p_CLKOP_CPHASE=p["clkop_div"] // 2 - 1 if p["clkop_div"] > 1 else 0,
        p_CLKOP_FPHASE=0,
        p_FEEDBK_PATH="CLKOP",
        p_CLKFB_DIV=p["clkfb_div"],
        a_FREQUENCY_PIN_CLKI=f"{cfg.in_hz / 1e6:g}",
        a_FREQUENCY_PIN_CLKOP=f"{cfg.out_hz / 1e6:g}",
        a_ICP_CURRENT="12",
        a_LPF_RESISTOR="8",
        a_MFG_ENABLE_FILTEROPAMP="1",
        a_MFG_GMCREF_SEL="2",
        i_RST=0,
        i_STDBY=0,
        i_CLKI=clk_in,
        o_CLKOP=clk_out,
        i_CLKFB=clk_out,
        i_PHASESEL0=0,
        i_PHASESEL1=0,
        i_PHASEDIR=1,
        i_PHASESTEP=1,
        i_PHASELOADREG=1,
        i_PLLWAKESYNC=0,
        i_ENCLKOP=0,
        o_LOCK=lock,
    )
