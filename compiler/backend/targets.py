"""The FPGA devices spikelut compiles for: the one table of device facts.

Every count is what nextpnr reports as available for the device (``Device utilisation``):
logic cells are iCE40 ``ICESTORM_LC`` (a LUT4, a carry and a flip-flop each), ECP5
``TRELLIS_COMB`` (LUT4s) or Gowin ``LUT4``; block RAMs are iCE40 4-kbit ``SB_RAM40_4K``, ECP5
18-kbit ``DP16KD`` or Gowin 18-kbit ``BSRAM``; DSPs are iCE40 ``SB_MAC16``, ECP5
``MULT18X18D`` or Gowin ``MULT18X18``. Board specifications (:mod:`spikelut.boards.platforms`)
refer to these targets rather than repeating them.

``clock_mhz`` is the default core clock of a target: the oscillator of the board the target
is most often found on (the iCEBreaker's 12 MHz, the ULX3S's 25 MHz, the Tang boards'
27 MHz), which the serial and parallel cores meet on every board spikelut builds for.

A Gowin target also names its ``die``: the chip database nextpnr (himbaechel) and Apicula's
packer use for it (a GW1NR part is placed as its GW1N die).
"""

from __future__ import annotations

from dataclasses import dataclass

from spikelut.compiler.errors import UserError

__all__ = ["HOST_LINK_CELLS", "TARGETS", "Target", "target"]

# Logic cells a board top spends beside its core (UART host link: framing, CRC, buffers,
# hashes; boot loader, LEDs, reset), per family, measured by bench/host_link_cells.py.
HOST_LINK_CELLS = {"ice40": 2355, "ecp5": 2101, "gowin": 2230}


@dataclass(frozen=True)
class Target:
    """One device: family (``"ice40"``, ``"ecp5"`` or ``"gowin"``), the name nextpnr and
    Amaranth use, and its resources (see the module docstring).

    A target also serves as the ``platform`` a core is elaborated for outside a board
    build: the gateware reads only its ``device`` (SPRAM exists on an iCE40 UltraPlus).
    """

    name: str
    family: str
    device: str
    logic_cells: int
    block_rams: int
    block_ram_bits: int
    sprams: int
    dsps: int
    clock_mhz: float
    die: str = ""

    @property
    def core_logic_cells(self) -> int:
        """Logic cells a network core may use beside the board top's host link."""
        return self.logic_cells - HOST_LINK_CELLS[self.family]


def _ice40(name, device, cells, brams, sprams, dsps) -> Target:
    return Target(name, "ice40", device, cells, brams, 4096, sprams, dsps, 12.0)


def _ecp5(name, device, luts, brams, dsps) -> Target:
    return Target(name, "ecp5", device, luts, brams, 18432, 0, dsps, 25.0)


def _gowin(name, device, die, luts, brams, dsps) -> Target:
    return Target(name, "gowin", device, luts, brams, 18432, 0, dsps, 27.0, die)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        _ice40("ice40-up5k", "iCE40UP5K", 5280, 30, 4, 8),
        _ice40("ice40-hx8k", "iCE40HX8K", 7680, 32, 0, 0),
        _ice40("ice40-lp8k", "iCE40LP8K", 7680, 32, 0, 0),
        _ecp5("ecp5-12", "LFE5U-12F", 24288, 56, 28),
        _ecp5("ecp5-25", "LFE5U-25F", 24288, 56, 28),
        _ecp5("ecp5-45", "LFE5U-45F", 43848, 108, 72),
        _ecp5("ecp5-85", "LFE5U-85F", 83640, 208, 156),
        _gowin("gw1nr-9", "GW1NR-LV9QN88PC6/I5", "GW1N-9C", 8640, 26, 20),
        _gowin("gw2a-18", "GW2A-LV18PG256C8/I7", "GW2A-18C", 20736, 46, 48),
    )
}


def target(name: str) -> Target:
    """The :class:`Target` called ``name``; an unknown name is a UserError listing them."""
    try:
        return TARGETS[name]
    except KeyError:
        raise UserError(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}") from None
