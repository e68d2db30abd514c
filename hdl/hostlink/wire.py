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
from dataclasses import dataclass

from amaranth.lib import data

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "HEADER_BYTES",
    "MAX_LENGTH",
    "OVERHEAD_BYTES",
    "PROTOCOL_VERSION",
    "SYNC",
    "Counters",
    "ErrorCode",
    "ErrorLayout",
    "FrameType",
    "HeaderLayout",
    "Identity",
    "InferBatchHeader",
    "LoadTablesHeader",
    "ProtocolError",
    "value_bytes",
]

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


class ProtocolError(Exception):
    """A reply that breaks the protocol, or an ERROR reply (``code`` is then set)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class ErrorCode(enum.IntEnum):
    """First payload byte of an ERROR reply."""

    CRC = 1  # the CRC did not check out
    UNKNOWN_TYPE = 2  # TYPE is not a request this board knows
    BAD_LENGTH = 3  # LENGTH is too long, or wrong for TYPE
    TIMEOUT = 4  # the frame stopped arriving mid-way
    BAD_ARGUMENT = 5  # e.g. a layer or table address out of range


def value_bytes(width: int) -> int:
    """Bytes that hold one value of ``width`` bits."""
    if not isinstance(width, int) or not 1 <= width <= 64:
        raise ValueError(f"width must be 1..64 bits, not {width!r}")
    return (width + 7) // 8


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


# The gateware's views of the wire: every field in wire order, little-endian, so that the
# bytes shifted in first-byte-lowest are the layout's bits.

# a frame's header after SYNC: TYPE, SEQ, LENGTH
HeaderLayout = data.StructLayout({"type": 8, "seq": 8, "length": 16})
# what the parser reports of a bad frame: why, and the TYPE and SEQ it had read
ErrorLayout = data.StructLayout({"code": 8, "type": 8, "seq": 8})
# the fixed head of a LOAD_TABLES payload (the words follow)
LoadTablesHeader = data.StructLayout({"layer": 8, "offset": 32, "count": 16})
# the fixed head of an INFER_BATCH payload (the vectors follow)
InferBatchHeader = data.StructLayout({"count": 16})
