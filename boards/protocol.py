"""The framed host-link protocol between a host and a spikelut board (version 1).

Frame (every multi-byte field little-endian, except the CRC)::

    SYNC  TYPE  SEQ   LENGTH      PAYLOAD           CRC
    0xA5  1 B   1 B   2 B (LE)    LENGTH bytes      2 B, most significant byte first

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no
final XOR; check value 0x29B1 for ``b"123456789"``) over TYPE, SEQ, LENGTH and PAYLOAD. Sent
most significant byte first, it makes the CRC over TYPE..CRC come out 0, which is what the
gateware checks.

SEQ is chosen by the host (1..255; the host cycles through them) and echoed in the reply, so
a late reply to an earlier, timed-out request is never taken for the answer to a new one.
An ERROR for a frame whose SEQ never arrived carries SEQ 0. A board accepts payloads up to ``max_payload`` bytes (reported by
IDENTIFY); a longer LENGTH is rejected at once.

Requests (host to board) and their replies:

==============  ====  ===========================================  ===========================
request         TYPE  payload                                      reply
==============  ====  ===========================================  ===========================
IDENTIFY        0x01  (empty)                                      IDENTITY
LOAD_TABLES     0x02  layer u8, offset u32, count u16, words       OK
INFER           0x03  one input vector                             RESULT
INFER_BATCH     0x04  count u16, then count input vectors          RESULT_BATCH
READ_COUNTERS   0x05  (empty)                                      COUNTERS
==============  ====  ===========================================  ===========================

Replies: OK 0x80 (payload: the request's TYPE), IDENTITY 0x81 (see :class:`Identity`),
RESULT 0x83 (one result), RESULT_BATCH 0x84 (count results), COUNTERS 0x85 (see
:class:`Counters`), ERROR 0xFF (payload: error code u8, the offending TYPE u8 or 0).

An input vector is ``n_inputs`` values, each a two's-complement integer of ``in_width`` bits
stored in ``ceil(in_width / 8)`` bytes, little-endian; a result is one ``result_width``-bit
unsigned word in ``ceil(result_width / 8)`` bytes; a table word (LOAD_TABLES) is
``table_word_bits`` bits in ``ceil(table_word_bits / 8)`` bytes. The host sends one request
and waits for its reply before the next (the board drops bytes that arrive while it works).

Resynchronisation: bytes outside a frame are skipped until a SYNC byte; a frame with a bad CRC
or an impossible LENGTH is discarded and the search resumes at the byte after its SYNC, so a
good frame hidden behind garbage is still found. The board also abandons a frame whose bytes
stop arriving (TIMEOUT) and answers every bad frame with ERROR.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

SYNC = 0xA5
PROTOCOL_VERSION = 1
HEADER_BYTES = 5  # SYNC, TYPE, SEQ, LENGTH
OVERHEAD_BYTES = HEADER_BYTES + 2
MAX_LENGTH = 0xFFFF
DEFAULT_MAX_PAYLOAD = 1024


class FrameType(enum.IntEnum):
    """TYPE byte of every frame."""

    IDENTIFY = 0x01
    LOAD_TABLES = 0x02
    INFER = 0x03
    INFER_BATCH = 0x04
    READ_COUNTERS = 0x05
    OK = 0x80
    IDENTITY = 0x81
    RESULT = 0x83
    RESULT_BATCH = 0x84
    COUNTERS = 0x85
    ERROR = 0xFF


class ErrorCode(enum.IntEnum):
    """First payload byte of an ERROR reply."""

    CRC = 1  # the CRC did not check out
    UNKNOWN_TYPE = 2  # TYPE is not a request this board knows
    BAD_LENGTH = 3  # LENGTH is too long, or wrong for TYPE
    TIMEOUT = 4  # the frame stopped arriving mid-way
    BAD_ARGUMENT = 5  # e.g. a layer or table address out of range


class ProtocolError(Exception):
    """A reply that breaks the protocol, or an ERROR reply (``code`` is then set)."""

    def __init__(self, message: str, code: ErrorCode | int | None = None):
        super().__init__(message)
        self.code = code


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data``, continuing from ``crc``."""
    for byte in bytes(data):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


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


def value_bytes(width: int) -> int:
    """Bytes that hold one value of ``width`` bits."""
    if not isinstance(width, int) or not 1 <= width <= 64:
        raise ValueError(f"width must be 1..64 bits, not {width!r}")
    return (width + 7) // 8


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


@dataclass(frozen=True)
class Identity:
    """IDENTITY payload: what the board runs and how to talk to it.

    Wire format: version u8, in_width u8, n_inputs u16, result_width u8, table_word_bits u8,
    table_addr_bits u8, n_layers u8, clock_hz u32, max_payload u16, hash length u8, hash.
    """

    in_width: int
    n_inputs: int
    result_width: int
    table_word_bits: int
    table_addr_bits: int
    n_layers: int
    clock_hz: int
    max_payload: int
    model_hash: bytes
    version: int = PROTOCOL_VERSION

    _FMT = "<BBHBBBBIHB"

    def encode(self) -> bytes:
        """The payload bytes."""
        if len(self.model_hash) > 255:
            raise ValueError(f"model hash of {len(self.model_hash)} bytes exceeds 255")
        head = struct.pack(
            self._FMT,
            self.version,
            self.in_width,
            self.n_inputs,
            self.result_width,
            self.table_word_bits,
            self.table_addr_bits,
            self.n_layers,
            self.clock_hz,
            self.max_payload,
            len(self.model_hash),
        )
        return head + bytes(self.model_hash)

    @classmethod
    def decode(cls, payload: bytes) -> Identity:
        """Parse an IDENTITY payload; raises ProtocolError when malformed."""
        size = struct.calcsize(cls._FMT)
        if len(payload) < size:
            raise ProtocolError(f"IDENTITY payload of {len(payload)} bytes is shorter than {size}")
        fields = struct.unpack_from(cls._FMT, payload)
        if len(payload) != size + fields[-1]:
            raise ProtocolError("IDENTITY payload length does not match its hash length")
        version, in_w, n_in, res_w, tw_bits, ta_bits, n_layers, clock, max_payload, _ = fields
        return cls(
            in_width=in_w,
            n_inputs=n_in,
            result_width=res_w,
            table_word_bits=tw_bits,
            table_addr_bits=ta_bits,
            n_layers=n_layers,
            clock_hz=clock,
            max_payload=max_payload,
            model_hash=bytes(payload[size:]),
            version=version,
        )

    @property
    def vector_bytes(self) -> int:
        """Bytes of one input vector."""
        return self.n_inputs * value_bytes(self.in_width)

    @property
    def result_bytes(self) -> int:
        """Bytes of one result."""
        return value_bytes(self.result_width)

    @property
    def table_word_bytes(self) -> int:
        """Bytes of one table word in LOAD_TABLES."""
        return value_bytes(self.table_word_bits)

    @property
    def max_batch(self) -> int:
        """Most vectors one INFER_BATCH can carry."""
        return min((self.max_payload - 2) // self.vector_bytes, 0xFFFF)

    def uart_inferences_per_second(self, baud: int) -> float:
        """Inferences per second the link sustains at ``baud`` (8N1) with full INFER_BATCHes.

        Counts request and reply bytes only: the UART, not the core, is the bound.
        """
        batch = self.max_batch
        request = OVERHEAD_BYTES + 2 + batch * self.vector_bytes
        reply = OVERHEAD_BYTES + batch * self.result_bytes
        return batch * (baud / 10) / (request + reply)

    @property
    def max_table_words(self) -> int:
        """Most table words one LOAD_TABLES can carry."""
        return min((self.max_payload - 7) // self.table_word_bytes, 0xFFFF)


@dataclass(frozen=True)
class Counters:
    """COUNTERS payload: inferences u32, errors u32, frames u32, cycles u48 (little-endian).

    ``frames`` counts good request frames, ``errors`` ERROR replies, ``cycles`` the clock
    cycles spent in INFER/INFER_BATCH except those stalled on the UART transmitter.
    """

    inferences: int
    errors: int
    frames: int
    cycles: int

    SIZE = 18

    def encode(self) -> bytes:
        """The payload bytes."""
        return struct.pack("<III", self.inferences, self.errors, self.frames) + (
            self.cycles.to_bytes(6, "little")
        )

    @classmethod
    def decode(cls, payload: bytes) -> Counters:
        """Parse a COUNTERS payload; raises ProtocolError when malformed."""
        if len(payload) != cls.SIZE:
            raise ProtocolError(f"COUNTERS payload must be {cls.SIZE} bytes, not {len(payload)}")
        inferences, errors, frames = struct.unpack_from("<III", payload)
        return cls(inferences, errors, frames, int.from_bytes(payload[12:18], "little"))


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


def infer_payload(vector: Sequence[int], in_width: int) -> bytes:
    """INFER payload for one input vector."""
    return pack_values(vector, in_width)


def infer_batch_payload(vectors: Sequence[Sequence[int]], in_width: int) -> bytes:
    """INFER_BATCH payload: the count, then every vector."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not 1 <= len(vectors) <= 0xFFFF:
        raise ValueError(f"a batch must be 1..65535 vectors, not shape {vectors.shape}")
    return struct.pack("<H", len(vectors)) + pack_values(vectors, in_width)


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
