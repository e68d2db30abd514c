"""The boards spikelut builds for: amaranth-boards platforms plus what spikelut needs to know.

Boards without a UART wired to the host (UPduino v3, OrangeCrab) get one on header pins,
named in :attr:`BoardSpec.extra_uart`; connect a 3.3 V USB-serial adapter there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from amaranth.build import Attrs, Pins, Resource, Subsignal

from spikelut.compiler.backend.targets import TARGETS, Target
from spikelut.compiler.errors import UserError

__all__ = ["BOARDS", "BoardSpec", "board"]

_NOT_FOR_BUILDING = {"dfu-suffix", "openFPGALoader", "iceprog", "dfu-util"}


class _BuildOnly:
    """A platform whose build needs no programmer, and no OrangeCrab ``dfu-suffix`` step
    (a tool not on PyPI; ``spikelut flash`` appends the DFU suffix itself)."""

    @property
    def required_tools(self):
        return [t for t in super().required_tools if t not in _NOT_FOR_BUILDING]

    @property
    def command_templates(self):
        return [t for t in super().command_templates if "dfu-suffix" not in t]


@dataclass(frozen=True)
class BoardSpec:
    """One supported board: its amaranth-boards platform and its device (a
    :class:`~spikelut.compiler.backend.targets.Target`, which holds the device facts)."""

    name: str
    module: str
    platform_class: str
    target: Target
    bitstream_ext: str
    extra_uart: tuple[str, str, str] | None = None  # (tx pin, rx pin, IO standard attr)
    programmer: str = "openFPGALoader"
    loader_board: str = ""  # openFPGALoader's -b name

    def platform(self):
        """A fresh amaranth-boards platform instance, with spikelut's extra resources."""
        cls = getattr(importlib.import_module(self.module), self.platform_class)
        plat = type(cls.__name__, (_BuildOnly, cls), {})()
        if self.extra_uart is not None:
            tx, rx, attrs = self.extra_uart
            key = "IO_STANDARD" if self.family == "ice40" else "IO_TYPE"
            plat.add_resources(
                [
                    Resource(
                        "uart",
                        0,
                        Subsignal("tx", Pins(tx, dir="o")),
                        Subsignal("rx", Pins(rx, dir="i")),
                        Attrs(**{key: attrs}),
                    )
                ]
            )
        return plat

    @property
    def family(self) -> str:
        """``"ice40"`` or ``"ecp5"``."""
        return self.target.family

    @property
    def device(self) -> str:
        """The device name nextpnr and Amaranth use."""
        return self.target.device

    @property
    def clock_hz(self) -> float:
        """Frequency of the board's default clock."""
        plat = self.platform()
        return plat.default_clk_frequency


BOARDS: dict[str, BoardSpec] = {
    b.name: b
    for b in (
        BoardSpec(
            "icebreaker",
            "amaranth_boards.icebreaker",
            "ICEBreakerPlatform",
            TARGETS["ice40-up5k"],
            "bin",
            programmer="iceprog",
            loader_board="icebreaker",
        ),
        BoardSpec(
            "icesugar",
            "amaranth_boards.icesugar",
            "ICESugarPlatform",
            TARGETS["ice40-up5k"],
            "bin",
            loader_board="ice40_generic",
        ),
        BoardSpec(
            "upduino3",
            "amaranth_boards.upduino_v3",
            "UpduinoV3Platform",
            TARGETS["ice40-up5k"],
            "bin",
            extra_uart=("38", "28", "SB_LVCMOS"),
            programmer="iceprog",
            loader_board="ice40_generic",
        ),
        BoardSpec(
            "ulx3s-12f",
            "amaranth_boards.ulx3s",
            "ULX3S_12F_Platform",
            TARGETS["ecp5-12"],
            "bit",
            loader_board="ulx3s",
        ),
        BoardSpec(
            "ulx3s-25f",
            "amaranth_boards.ulx3s",
            "ULX3S_25F_Platform",
            TARGETS["ecp5-25"],
            "bit",
            loader_board="ulx3s",
        ),
        BoardSpec(
            "ulx3s-45f",
            "amaranth_boards.ulx3s",
            "ULX3S_45F_Platform",
            TARGETS["ecp5-45"],
            "bit",
            loader_board="ulx3s",
        ),
        BoardSpec(
            "ulx3s-85f",
            "amaranth_boards.ulx3s",
            "ULX3S_85F_Platform",
            TARGETS["ecp5-85"],
            "bit",
            loader_board="ulx3s",
        ),
        BoardSpec(
            "orangecrab-25f",
            "amaranth_boards.orangecrab_r0_2",
            "OrangeCrabR0_2_25FPlatform",
            TARGETS["ecp5-25"],
            "bit",
            extra_uart=("N17", "M18", "LVCMOS33"),
            loader_board="orangeCrab",
        ),
        BoardSpec(
            "orangecrab-85f",
            "amaranth_boards.orangecrab_r0_2",
            "OrangeCrabR0_2_85FPlatform",
            TARGETS["ecp5-85"],
            "bit",
            extra_uart=("N17", "M18", "LVCMOS33"),
            loader_board="orangeCrab",
        ),
    )
}


def board(name: str) -> BoardSpec:
    """The :class:`BoardSpec` called ``name``; an unknown name is a UserError listing them."""
    try:
        return BOARDS[name]
    except KeyError:
        raise UserError(f"unknown board {name!r}; choose one of: {', '.join(BOARDS)}") from None
