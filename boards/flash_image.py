"""Flash images: the bitstream, and the table area the boot loader copies into the table
memories.

Layout of an image (offsets in bytes)::

    0                 the bitstream, as the FPGA configures from it
    TABLE_OFFSET      the table area
    ...               0xFF between the two (erased flash)

Table area::

    0    magic b"SLT2"
    4    payload length, u32 little-endian
    8    shape fingerprint (8 bytes): the bitstream's IDENTITY ``shape_hash``
    16   model hash (16 bytes): whose tables these are
    32   payload: every chunk of every boot layer (in layer order, lane by lane, in
         host-address order, see :mod:`spikelut.boards.tables`), each ``chunk_bytes``
         little-endian
    32+n CRC-16/CCITT-FALSE of bytes 4 .. 32+n (length, fingerprint, hash and payload),
         most significant byte first

The boot layers are every memory-backed layer of a design with tables in SPRAM (which the
bitstream does not initialise; its block RAM layers are loaded too, so that all the tables
belong to the model the area names), none otherwise. The boot loader reads the area once,
writing the payload as it goes, and takes the tables as valid, with the area's model hash,
only when the magic, the length and the fingerprint are its own and the CRC checks out (so a
zeroed or altered hash is rejected like altered tables). A rejected area leaves the tables
invalid (the board answers INFER with NO_TABLES; the error LED lights) until a load over
the link commits (:mod:`spikelut.hdl.hostlink.wire`, "Tables").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from spikelut.boards.tables import TableSpace
from spikelut.hdl.crc import crc16
from spikelut.hdl.hostlink.wire import SHAPE_HASH_BYTES
from spikelut.hdl.storage import Storage

__all__ = [
    "AREA_HASH_BYTES",
    "CRC_BYTES",
    "HEADER_SIZE",
    "MAGIC",
    "TABLE_OFFSET",
    "FlashImageError",
    "TableArea",
    "area_length",
    "boot_layers",
    "build_image",
    "parse_table_area",
    "payload_length",
    "table_area",
    "table_payload",
]

MAGIC = b"SLT2"
AREA_HASH_BYTES = 16
HEADER_SIZE = 8 + SHAPE_HASH_BYTES + AREA_HASH_BYTES
CRC_BYTES = 2
TABLE_OFFSET = 0x100000  # 1 MiB: past any iCE40 bitstream (an UP5K's is 104 kB)


class FlashImageError(ValueError):
    """A table area that is blank, truncated or corrupt."""


@dataclass(frozen=True)
class TableArea:
    """What a checked table area holds."""

    payload: bytes
    shape_hash: bytes
    model_hash: bytes


def boot_layers(space: TableSpace) -> list[int]:
    """The layers the boot loader fills: every memory-backed layer when one of them is in
    SPRAM (the bitstream does not initialise SPRAM), else none."""
    if not any(lt.storage == Storage.SPRAM for lt in space.layers):
        return []
    return [lt.layer for lt in space.layers]


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


def area_length(space: TableSpace) -> int:
    """Bytes of the table area of ``space``: header, payload and CRC."""
    return HEADER_SIZE + payload_length(space) + CRC_BYTES


def table_area(payload: bytes, model_hash: bytes, shape_hash: bytes) -> bytes:
    """The table area for ``payload``, of the model ``model_hash`` (16 bytes), for a
    bitstream whose fingerprint is ``shape_hash`` (8 bytes), as written at
    :data:`TABLE_OFFSET`."""
    model_hash, shape_hash = bytes(model_hash), bytes(shape_hash)
    if len(model_hash) != AREA_HASH_BYTES:
        raise ValueError(f"a table area holds a {AREA_HASH_BYTES}-byte model hash")
    if len(shape_hash) != SHAPE_HASH_BYTES:
        raise ValueError(f"a table area holds a {SHAPE_HASH_BYTES}-byte shape fingerprint")
    body = struct.pack("<I", len(payload)) + shape_hash + model_hash + bytes(payload)
    return MAGIC + body + crc16(body).to_bytes(CRC_BYTES, "big")


def parse_table_area(area: bytes) -> TableArea:
    """What a table area holds; raises FlashImageError when it is blank, truncated or fails
    its CRC (the checks of the boot loader, but for the length and fingerprint, which the
    loader compares with its own)."""
    if len(area) < HEADER_SIZE or area[:4] != MAGIC:
        raise FlashImageError("no table header (blank or foreign flash area)")
    (length,) = struct.unpack_from("<I", area, 4)
    end = HEADER_SIZE + length + CRC_BYTES
    if len(area) < end:
        raise FlashImageError(f"table area truncated: {len(area)} of {end} bytes")
    if crc16(area[4:end]) != 0:
        raise FlashImageError("table area fails its CRC")
    shape_end = 8 + SHAPE_HASH_BYTES
    return TableArea(
        payload=bytes(area[HEADER_SIZE : end - CRC_BYTES]),
        shape_hash=bytes(area[8:shape_end]),
        model_hash=bytes(area[shape_end:HEADER_SIZE]),
    )


def build_image(bitstream: bytes, area: bytes, *, offset: int = TABLE_OFFSET) -> bytes:
    """The flash image: ``bitstream`` at 0, ``area`` at ``offset``, 0xFF in between."""
    if len(bitstream) > offset:
        raise ValueError(
            f"the bitstream ({len(bitstream)} bytes) overlaps the table area at 0x{offset:x}"
        )
    return bytes(bitstream) + b"\xff" * (offset - len(bitstream)) + bytes(area)
