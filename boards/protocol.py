"""The host's side of the framed host-link protocol: frames, decoding, payloads.

The protocol itself (frame format, CRC, SEQ rule, requests and replies, the tables' contract,
resynchronisation) is specified in :mod:`spikelut.hdl.hostlink.wire`, with the constants both
sides use.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from spikelut.hdl.crc import INIT as CRC_INIT
from spikelut.hdl.crc import crc16
from spikelut.hdl.hostlink.wire import (
    HEADER_BYTES,
    MAX_LENGTH,
    OVERHEAD_BYTES,
    SYNC,
    ErrorCode,
    GenerateFlags,
    ProtocolError,
    value_bytes,
)


@dataclass(frozen=True)
class Frame:
    """One frame: its TYPE byte, payload and SEQ byte."""

    type: int
    payload: bytes = b""
    seq: int = 0

    def __post_init__(self):
        if not 0 <= self.type <= 0xFF:
            raise ValueError(f"frame type must be a byte, not {self.type!r}")
        if not 0 <= self.seq <= 0xFF:
            raise ValueError(f"frame seq must be a byte, not {self.seq!r}")
        if len(self.payload) > MAX_LENGTH:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds {MAX_LENGTH}")

    def encode(self) -> bytes:
        """The frame's bytes on the wire."""
        body = struct.pack("<BBH", self.type, self.seq, len(self.payload)) + bytes(self.payload)
        return bytes([SYNC]) + body + crc16(body).to_bytes(2, "big")


def encode_frame(type: int, payload: bytes = b"", seq: int = 0) -> bytes:
    """Shorthand for ``Frame(type, payload, seq).encode()``."""
    return Frame(int(type), bytes(payload), int(seq)).encode()


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get back whole, CRC-checked frames.

    Frames longer than ``max_payload`` are rejected from their LENGTH. A candidate frame that
    fails is discarded from its SYNC byte only, so frames after garbage, truncated frames or
    wrong lengths are found again. ``discarded`` counts bytes thrown away.
    """

    def __init__(self, *, max_payload: int = MAX_LENGTH):
        if not isinstance(max_payload, int) or not 0 <= max_payload <= MAX_LENGTH:
            raise ValueError(f"max_payload must be 0..{MAX_LENGTH}, not {max_payload!r}")
        self.max_payload = max_payload
        self._buf = bytearray()
        self.discarded = 0

    @property
    def pending(self) -> int:
        """Bytes held that belong to no complete frame yet."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        """Add ``data`` and return every frame completed by it, in order."""
        self._buf += data
        return self._scan()

    def flush(self) -> list[Frame]:
        """End of input (or a timeout): give up on any incomplete frame, return frames found.

        A partial candidate is dropped byte by byte from its SYNC, so a whole frame that it
        was hiding is still returned; whatever remains incomplete is discarded.
        """
        frames = self._scan()
        while self._buf:
            self._drop(1)
            frames += self._scan()
        return frames

    def _drop(self, n: int) -> None:
        del self._buf[:n]
        self.discarded += n

    def _scan(self) -> list[Frame]:
        frames = []
        while True:
            start = self._buf.find(SYNC)
            if start < 0:
                self._drop(len(self._buf))
                return frames
            self._drop(start)
            if len(self._buf) < HEADER_BYTES:
                return frames
            type_, seq, length = struct.unpack_from("<BBH", self._buf, 1)
            if length > self.max_payload:
                self._drop(1)
                continue
            total = OVERHEAD_BYTES + length
            if len(self._buf) < total:
                return frames
            if crc16(memoryview(self._buf)[1:total]) != 0:
                self._drop(1)
                continue
            frames.append(Frame(type_, bytes(self._buf[HEADER_BYTES : total - 2]), seq))
            del self._buf[:total]


def decode_frames(data: bytes, *, max_payload: int = MAX_LENGTH) -> list[Frame]:
    """Every frame found in ``data`` (a complete capture)."""
    decoder = FrameDecoder(max_payload=max_payload)
    return decoder.feed(data) + decoder.flush()


# --- payloads -------------------------------------------------------------------------------


def pack_values(values: Iterable[int], width: int, *, signed: bool = True) -> bytes:
    """Values as ``value_bytes(width)``-byte little-endian words; each must fit ``width`` bits."""
    nbytes = value_bytes(width)
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    arr = arr.astype(np.int64).ravel()
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr[(arr < lo) | (arr > hi)][0]
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"value {int(bad)} does not fit {width} bits {kind} ({lo}..{hi})")
    raw = arr.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :nbytes]
    return raw.tobytes()


def unpack_values(data: bytes, width: int, *, signed: bool = False) -> list[int]:
    """Inverse of :func:`pack_values`: the low ``width`` bits of each word."""
    nbytes = value_bytes(width)
    if len(data) % nbytes:
        raise ProtocolError(f"{len(data)} bytes is not a whole number of {nbytes}-byte words")
    raw = np.zeros((len(data) // nbytes, 8), dtype=np.uint8)
    raw[:, :nbytes] = np.frombuffer(data, dtype=np.uint8).reshape(-1, nbytes)
    words = raw.view("<u8").ravel() & np.uint64((1 << width) - 1)
    out = [int(w) for w in words]
    if signed:
        out = [w - (1 << width) if w >> (width - 1) else w for w in out]
    return out


def load_tables_payload(layer: int, offset: int, words: Sequence[int], word_bits: int) -> bytes:
    """LOAD_TABLES payload: ``words`` (unsigned or signed, ``word_bits`` wide) from ``offset``."""
    if not 0 <= layer <= 0xFF:
        raise ValueError(f"layer must be 0..255, not {layer!r}")
    if not 0 <= offset <= 0xFFFFFFFF:
        raise ValueError(f"offset must fit 32 bits, not {offset!r}")
    arr = np.asarray(words, dtype=np.int64).ravel()
    if len(arr) > 0xFFFF:
        raise ValueError(f"one LOAD_TABLES carries at most 65535 words, not {len(arr)}")
    arr = arr & ((1 << word_bits) - 1)  # signed entries travel as their two's complement
    head = struct.pack("<BIH", layer, offset, len(arr))
    return head + pack_values(arr, word_bits, signed=False)


def parse_load_tables(payload: bytes, word_bits: int) -> tuple[int, int, list[int]]:
    """Inverse of :func:`load_tables_payload`: (layer, offset, unsigned words)."""
    if len(payload) < 7:
        raise ProtocolError("LOAD_TABLES payload is shorter than its 7-byte header")
    layer, offset, count = struct.unpack_from("<BIH", payload)
    words = unpack_values(payload[7:], word_bits)
    if len(words) != count:
        raise ProtocolError(f"LOAD_TABLES says {count} words but carries {len(words)}")
    return layer, offset, words


class LoadRecord:
    """The host's copy of what a board records of a table load: the CRC of the payloads of
    the LOAD_TABLES frames with words, in order, and the words they wrote
    (:mod:`~spikelut.hdl.hostlink.wire`, "Tables")."""

    def __init__(self):
        self.crc = CRC_INIT
        self.words = 0

    def add(self, payload: bytes) -> None:
        """A LOAD_TABLES payload the board carried out."""
        _, _, count = struct.unpack_from("<BIH", payload)
        if count:
            self.crc = crc16(payload, self.crc)
            self.words += count

    def commit_payload(self, model_hash: bytes) -> bytes:
        """The COMMIT_TABLES payload that makes the load valid as the model ``model_hash``."""
        model_hash = bytes(model_hash)
        return model_hash + crc16(model_hash, self.crc).to_bytes(2, "big")


def infer_payload(vector: Sequence[int], in_width: int) -> bytes:
    """INFER payload for one input vector."""
    return pack_values(vector, in_width)


def infer_batch_payload(vectors: Sequence[Sequence[int]], in_width: int) -> bytes:
    """INFER_BATCH payload: the count, then every vector."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not 1 <= len(vectors) <= 0xFFFF:
        raise ValueError(f"a batch must be 1..65535 vectors, not shape {vectors.shape}")
    return struct.pack("<H", len(vectors)) + pack_values(vectors, in_width)


def generate_payload(prompt: bytes, count: int, *, start: bool, sample: bool, seed: int) -> bytes:
    """GENERATE payload: the flags (``start``: START, ``sample``: SAMPLE), ``seed``, ``count``
    and the ``prompt`` bytes."""
    if not 0 <= count <= 0xFFFF:
        raise ValueError(f"count must fit 16 bits, not {count!r}")
    if not 0 <= seed <= 0xFFFFFFFF:
        raise ValueError(f"seed must fit 32 bits, not {seed!r}")
    flags = (GenerateFlags.START if start else 0) | (GenerateFlags.SAMPLE if sample else 0)
    return struct.pack("<BIH", int(flags), seed, count) + bytes(prompt)


def parse_generate(payload: bytes) -> tuple[int, int, int, bytes]:
    """Inverse of :func:`generate_payload`: (flags, seed, count, prompt)."""
    if len(payload) < 7:
        raise ProtocolError("GENERATE payload is shorter than its 7-byte header")
    flags, seed, count = struct.unpack_from("<BIH", payload)
    return flags, seed, count, bytes(payload[7:])


def sampler_payload(exp: Sequence[int]) -> bytes:
    """SET_SAMPLER payload: the exponential table's weights, u16 little-endian each."""
    arr = np.asarray(exp, np.int64).ravel()
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFF):
        raise ValueError("exponential-table weights must be unsigned 16-bit values")
    return arr.astype("<u2").tobytes()


def parse_error(payload: bytes) -> tuple[int, int]:
    """(error code, offending type) of an ERROR payload."""
    if len(payload) != 2:
        raise ProtocolError(f"ERROR payload must be 2 bytes, not {len(payload)}")
    return payload[0], payload[1]


def error_name(code: int) -> str:
    """Readable name of an error code (the number when unknown)."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"code {code}"
