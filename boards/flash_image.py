"""Flash images: the bitstream, and the tables the boot loader copies into SPRAM.

Layout of an image (offsets in bytes)::

    0                 the bitstream, as the FPGA configures from it
    TABLE_OFFSET      table header (16 bytes), then the table payload
    ...               0xFF between the two (erased flash)

Table header: magic ``b"SLTB"``; payload length, u32 little-endian; CRC-16/CCITT-FALSE of the
payload, big-endian; the first 6 bytes of the model hash. The payload is every chunk of every
SPRAM layer (in layer order, lane by lane, in host-address order, see
:mod:`spikelut.boards.tables`), each ``chunk_bytes`` little-endian. The boot loader reads the
header and the payload once to check magic, length and CRC, and copies the payload into the
table memories only when all three check out; a blank or corrupt table area is rejected and
the tables stay unloaded (the error LED lights; LOAD_TABLES can still fill them).
"""

from __future__ import annotations

import struct

import numpy as np

from spikelut.boards.tables import TableSpace
from spikelut.hdl.crc import crc16
from spikelut.hdl.storage import Storage

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "TABLE_OFFSET",
    "boot_layers",
    "build_image",
    "parse_table_area",
    "table_area",
    "table_payload",
]

MAGIC = b"SLTB"
HEADER_SIZE = 16
TABLE_OFFSET = 0x100000  # 1 MiB: past any iCE40 bitstream (an UP5K's is 104 kB)


class FlashImageError(ValueError):
    """A table area that is blank, truncated or corrupt."""


def boot_layers(space: TableSpace) -> list[int]:
    """The layers the boot loader fills: those in SPRAM (the bitstream does not initialise it)."""
    return [lt.layer for lt in space.layers if lt.storage == Storage.SPRAM]


def table_payload(space: TableSpace, tables: dict[int, np.ndarray]) -> bytes:
    """The payload for ``tables`` (layer -> (N_T, 2**N_C, Y) array) of the boot layers."""
    out = bytearray()
    nbytes = space.chunk_bytes
    for k in boot_layers(space):
        chunks = space.chunks(k, tables[k]).ravel()
        raw = chunks.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :nbytes]
        out += raw.tobytes()
    return bytes(out)


def payload_length(space: TableSpace) -> int:
    """Bytes of the payload of ``space`` (known at build time)."""
    return sum(
        lt.lanes * lt.depth * lt.slots * space.chunk_bytes
        for lt in space.layers
        if lt.layer in boot_layers(space)
    )


def table_area(payload: bytes, model_hash: bytes) -> bytes:
    """Header + payload, as written at :data:`TABLE_OFFSET`."""
    head = MAGIC + struct.pack("<I", len(payload)) + crc16(payload).to_bytes(2, "big")
    return head + bytes(model_hash[:6]).ljust(6, b"\0") + payload


def parse_table_area(area: bytes) -> tuple[bytes, bytes]:
    """``(payload, hash prefix)`` of a table area; raises FlashImageError when it is blank,
    truncated or fails its CRC (the same checks as the boot loader)."""
    if len(area) < HEADER_SIZE or area[:4] != MAGIC:
        raise FlashImageError("no table header (blank or foreign flash area)")
    (length,) = struct.unpack_from("<I", area, 4)
    payload = area[HEADER_SIZE : HEADER_SIZE + length]
    if len(payload) != length:
        raise FlashImageError(f"table payload truncated: {len(payload)} of {length} bytes")
    if crc16(payload) != int.from_bytes(area[8:10], "big"):
        raise FlashImageError("table payload fails its CRC")
    return payload, area[10:16]


def build_image(bitstream: bytes, area: bytes, *, offset: int = TABLE_OFFSET) -> bytes:
    """The flash image: ``bitstream`` at 0, ``area`` at ``offset``, 0xFF in between."""
    if len(bitstream) > offset:
        raise ValueError(
            f"the bitstream ({len(bitstream)} bytes) overlaps the table area at 0x{offset:x}"
        )
    return bytes(bitstream) + b"\xff" * (offset - len(bitstream)) + bytes(area)
