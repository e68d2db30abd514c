"""The framed host-link protocol between a host and a spikelut board (version 3).

Frame (every multi-byte field little-endian, except the CRC)::

    SYNC  TYPE  SEQ   LENGTH      PAYLOAD           CRC
    0xA5  1 B   1 B   2 B (LE)    LENGTH bytes      2 B, most significant byte first

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no
final XOR; check value 0x29B1 for ``b"123456789"``) over TYPE, SEQ, LENGTH and PAYLOAD. Sent
most significant byte first, it makes the CRC over TYPE..CRC come out 0, which is what the
gateware checks. A board accepts payloads up to ``max_payload`` bytes (reported by IDENTIFY).

SEQ. The host numbers its requests 1..255 (cycling, never 0) and the board echoes the SEQ
in the reply, so a late reply to an earlier, timed-out request is never taken for the answer
to a new one. SEQ 0 (:data:`RESERVED_SEQ`) is the board's alone: it is the SEQ of every ERROR
for a frame the board could not parse (a bad CRC, a LENGTH above ``max_payload``, bytes that
stopped arriving), whose SEQ byte is not to be trusted. An ERROR for an intact frame (its CRC
checked out; refused for its TYPE, LENGTH, arguments or the board's state) carries that
frame's SEQ. So a reply with the request's SEQ is that request's answer, whatever its TYPE,
and a SEQ-0 ERROR never is (the host counts it and keeps waiting).

Requests (host to board) and their replies:

==============  ====  ===========================================  ===========================
request         TYPE  payload                                      reply
==============  ====  ===========================================  ===========================
IDENTIFY        0x01  (empty)                                      IDENTITY
LOAD_TABLES     0x02  layer u8, offset u32, count u16, words       OK
INFER           0x03  one input vector                             RESULT
INFER_BATCH     0x04  count u16, then count input vectors          RESULT_BATCH
READ_COUNTERS   0x05  (empty)                                      COUNTERS
COMMIT_TABLES   0x06  model hash (hash_bytes), CRC u16 big-endian  OK
GENERATE        0x07  flags u8, seed u32, count u16, prompt bytes  GENERATED
SET_SAMPLER     0x08  exp_entries weights, u16 each                OK
==============  ====  ===========================================  ===========================

Replies: OK 0x80 (payload: the request's TYPE), IDENTITY 0x81 (see :class:`Identity`),
RESULT 0x83 (one result), RESULT_BATCH 0x84 (count results), COUNTERS 0x85 (see
:class:`Counters`), GENERATED 0x87 (count tokens, one byte each), ERROR 0xFF (payload:
:class:`ErrorCode` u8, the offending TYPE u8 or 0).

Core kinds. A board runs a classifier or a language model (IDENTITY's ``kind``,
:class:`ModelKind`). A classifier board serves INFER and INFER_BATCH, a language-model board
GENERATE and SET_SAMPLER; a request of the other kind is refused with UNKNOWN_TYPE (what a
version-2 board answers to them too). Every other request is the same on both.

An input vector is ``n_inputs`` values, each a two's-complement integer of ``in_width`` bits
stored in ``ceil(in_width / 8)`` bytes, little-endian; a result is one ``result_width``-bit
unsigned word in ``ceil(result_width / 8)`` bytes; a table word (LOAD_TABLES) is
``table_word_bits`` bits in ``ceil(table_word_bits / 8)`` bytes. The host sends one request
and waits for its reply before the next. A board that loads its tables at boot takes no
request until the boot load is over (requests wait).

Language models (a byte-level spiking RNN, :class:`~spikelut.hdl.recurrent.RNNCore`: one
token in, the chosen next token out, bit-exact with
:func:`spikelut.compiler.ir.golden.generate_rnn`). A token travels as one byte (IDENTITY:
``in_width`` 8, ``n_inputs`` 1, ``result_width`` 8; ``vocab`` tokens, 0..vocab-1).

- GENERATE: payload :data:`GenerateHeader` (flags u8, seed u32, count u16), then the prompt
  (one token a byte). Flags: bit 0 START (the sequence starts here: the core's state is
  reset, its first token flagged ``first``, and the selector's random state becomes
  ``seed``), bit 1 SAMPLE (sample with the exponential table, else greedy); the others
  must be 0. The rule is set at every GENERATE; without START the random state carries on
  from the previous request. The board feeds the prompt's tokens to the core and drops the
  answers to all but the last; it then feeds every answer back as the next token until it
  has ``count`` answers, which the GENERATED reply carries (each sent as it is chosen).
  Without START and with an empty prompt it first feeds the last token it generated (the
  last byte of the previous GENERATED): a START request followed by continuation requests
  with empty prompts returns, concatenated, exactly ``generate_rnn(model, prompt, total,
  selection)``. Without START and with a prompt, the prompt continues the sequence instead
  (the last generated token is not fed; a host splits a long prompt this way, dropping the
  answers it does not want; every token fed draws from the random source when sampling,
  as in the golden model). Refused with BAD_ARGUMENT: ``count`` 0 or above
  ``max_payload``, a zero ``seed`` (non-zero always; taken only with START), unknown flag
  bits, a START without prompt, a token ``>= vocab``, a continuation when no sequence was
  started since reset or since the tables last changed (a LOAD_TABLES, COMMIT_TABLES or boot
  load); with NO_TABLES while the tables are not valid. ``inferences`` (COUNTERS) counts one
  per token fed, the dropped answers included.
- SET_SAMPLER: ``exp_entries`` (IDENTITY) unsigned 16-bit weights, little-endian: the
  selector's exponential table (:func:`spikelut.compiler.ir.selection.exp_table`), kept
  until the next SET_SAMPLER or reset (reset restores the bitstream's, built for one
  temperature). Refused with BAD_ARGUMENT when its length is not ``2 * exp_entries`` or
  its first weight is 0 (the most likely token must weigh something); answered OK. It
  leaves the sequence and its random state alone.
- Tables: the embedding, the cell's and the unembedder's tables are table-space layers 0, 1
  and 2 (``n_layers`` 3; a layer whose tables the bitstream builds into logic is not in the
  space), loaded and made valid exactly as a classifier's (below); an embedding row is
  one "table" of ``vocab`` rows.

Tables. The board runs the tables it holds, not necessarily those of the model its bitstream
was built for. It reports, in IDENTITY, ``model_hash`` (the bitstream's model, fixed),
``shape_hash`` (a fingerprint of everything the bitstream fixes but the table contents:
a model whose fingerprint for this bitstream's placement differs cannot run on it, whatever
its tables), ``tables_valid`` and ``tables_hash`` (the model hash of the tables it holds;
zero when not valid). INFER, INFER_BATCH and GENERATE are refused with NO_TABLES while the
tables are not valid. The tables are valid:

- at reset, with ``model_hash``, when the bitstream initialises every table memory (block
  RAM, distributed RAM); a design with tables in SPRAM starts with none;
- after a boot load that passed: the board reads the whole table area in its configuration
  flash (:mod:`spikelut.boards.flash_image`), checks magic, payload length and shape
  fingerprint against its own and the area's CRC, which covers the model hash and the
  tables, and only then takes the tables as valid, with the area's model hash. A rejected
  area (blank, foreign, corrupt, a zeroed or wrong hash) leaves the tables invalid; it may
  have been partly written.
- after a load over the link that committed: a load is LOAD_TABLES frames, then one
  COMMIT_TABLES. A load starts with the first LOAD_TABLES that writes after reset, a boot
  load or a COMMIT_TABLES, or explicitly with a LOAD_TABLES of count 0 (which writes
  nothing and discards a load in progress); from its start the tables are invalid. Over the
  load the board keeps the CRC (as above, from 0xFFFF) of the payloads of the LOAD_TABLES
  frames with words that it carried out, in order, and the number of words they wrote.
  COMMIT_TABLES carries a model hash and the CRC of those payloads followed by that hash;
  if it checks out and the load wrote exactly ``table_words`` words (IDENTITY: the whole
  table space) the board answers OK and the tables are valid with that hash; else it
  answers ERROR TABLES_MISMATCH and the tables are invalid. The load's CRC and word count
  stay until the next load starts, so a repeated COMMIT_TABLES (a retry after a lost reply)
  gets the same answer; a repeated LOAD_TABLES is carried out twice, which the CRC then
  refuses: the host loads again. A board whose tables are all fixed by the bitstream
  (``table_words`` 0) refuses both requests with BAD_ARGUMENT.

Resynchronisation. Both sides keep the bytes of a frame in progress and scan for frames the
same way: bytes outside a frame are skipped up to a SYNC; a candidate frame whose LENGTH is
above ``max_payload``, whose CRC fails or whose bytes stop arriving (the board waits
``timeout`` cycles, about 50 ms) is abandoned and the scan resumes at the byte after its
SYNC, over the bytes already received. A good frame behind garbage is therefore found
unless the garbage, with the bytes after it, forms a frame with a good CRC. The bound of the
board's buffer: it holds the bytes from the SYNC of the frame in progress on, up to
``max_payload + 8`` (one whole frame and a little; IDENTIFY's ``max_payload`` is chosen so
that the buffer is a power of two); the bytes of the frame the board is working on stay
there until its reply has gone out, and bytes that arrive while it works are kept behind
them as long as there is room (beyond that the UART drops them). A candidate with a
plausible LENGTH holds up the scan until its bytes came or the line fell silent, so a good
frame behind such garbage is answered after the timeout. Each abandoned candidate is
answered with a SEQ-0 ERROR (CRC, BAD_LENGTH or TIMEOUT, with the TYPE byte read or 0)
unless such an ERROR is still waiting to go out.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from amaranth.lib import data

__all__ = [
    "HEADER_BYTES",
    "MAX_LENGTH",
    "OVERHEAD_BYTES",
    "PROTOCOL_VERSION",
    "RESERVED_SEQ",
    "RING_SLACK",
    "SHAPE_HASH_BYTES",
    "SYNC",
    "Counters",
    "ErrorCode",
    "ErrorLayout",
    "FrameType",
    "GenerateFlags",
    "GenerateHeader",
    "HeaderLayout",
    "Identity",
    "InferBatchHeader",
    "LoadTablesHeader",
    "ModelKind",
    "ProtocolError",
    "default_max_payload",
    "value_bytes",
]

SYNC = 0xA5
PROTOCOL_VERSION = 3
HEADER_BYTES = 5  # SYNC, TYPE, SEQ, LENGTH
OVERHEAD_BYTES = HEADER_BYTES + 2
MAX_LENGTH = 0xFFFF
RESERVED_SEQ = 0  # the SEQ of ERRORs for frames that could not be parsed; never a request's
SHAPE_HASH_BYTES = 8
# the board's frame buffer holds max_payload + RING_SLACK bytes: TYPE, SEQ, LENGTH, payload,
# CRC, and two more
RING_SLACK = 8
_MIN_RING = 1024


def default_max_payload(vector_bytes: int) -> int:
    """The ``max_payload`` of a board whose input vectors take ``vector_bytes``: what fills
    the smallest power-of-two frame buffer of at least 1 kB that holds an INFER_BATCH of
    one vector. ``ValueError`` when no LENGTH can hold one vector."""
    need = vector_bytes + InferBatchHeader.size // 8
    if need > MAX_LENGTH - RING_SLACK:
        raise ValueError(
            f"an input vector of {vector_bytes} bytes does not fit the host link's largest "
            f"payload ({MAX_LENGTH - RING_SLACK} bytes); use fewer inputs or narrower values"
        )
    ring = _MIN_RING
    while ring < need + RING_SLACK:
        ring *= 2
    return min(ring - RING_SLACK, MAX_LENGTH - RING_SLACK)


class FrameType(enum.IntEnum):
    """TYPE byte of every frame."""

    IDENTIFY = 0x01
    LOAD_TABLES = 0x02
    INFER = 0x03
    INFER_BATCH = 0x04
    READ_COUNTERS = 0x05
    COMMIT_TABLES = 0x06
    GENERATE = 0x07
    SET_SAMPLER = 0x08
    OK = 0x80
    IDENTITY = 0x81
    RESULT = 0x83
    RESULT_BATCH = 0x84
    COUNTERS = 0x85
    GENERATED = 0x87
    ERROR = 0xFF


class ProtocolError(Exception):
    """A reply that breaks the protocol, or an ERROR reply (``code`` is then set)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class ErrorCode(enum.IntEnum):
    """First payload byte of an ERROR reply."""

    CRC = 1  # the CRC did not check out (SEQ 0)
    UNKNOWN_TYPE = 2  # TYPE is not a request this board (its core kind) serves
    BAD_LENGTH = 3  # LENGTH is above max_payload (SEQ 0), or wrong for TYPE
    TIMEOUT = 4  # the frame stopped arriving mid-way (SEQ 0)
    BAD_ARGUMENT = 5  # e.g. a layer or table address out of range, tables fixed
    NO_TABLES = 6  # INFER, INFER_BATCH or GENERATE while the board holds no valid tables
    TABLES_MISMATCH = 7  # COMMIT_TABLES: the CRC, hash or word count does not match the load


class ModelKind(enum.IntEnum):
    """What a board's core is (IDENTITY's ``kind``)."""

    CLASSIFIER = 0  # INFER, INFER_BATCH: one input vector in, one class index out
    LANGUAGE_MODEL = 1  # GENERATE, SET_SAMPLER: tokens in, chosen next tokens out


class GenerateFlags(enum.IntFlag):
    """The flags byte of a GENERATE request."""

    START = 1  # the sequence starts here: state reset, random state from the seed
    SAMPLE = 2  # sample with the exponential table (else greedy)


def value_bytes(width: int) -> int:
    """Bytes that hold one value of ``width`` bits."""
    if not isinstance(width, int) or not 1 <= width <= 64:
        raise ValueError(f"width must be 1..64 bits, not {width!r}")
    return (width + 7) // 8


@dataclass(frozen=True)
class Identity:
    """IDENTITY payload: what the board runs and how to talk to it.

    Wire format: version u8, kind u8 (:class:`ModelKind`), in_width u8, n_inputs u16,
    result_width u8, table_word_bits u8, table_addr_bits u8, n_layers u8, clock_hz u32,
    max_payload u16, table_words u32, vocab u16, exp_entries u16, hash_bytes u8, model_hash
    (hash_bytes), shape_hash (8 bytes), status u8 (bit 0: tables_valid), tables_hash
    (hash_bytes; zero when the tables are not valid). ``tables_hash`` may be given empty
    for zeros. ``vocab`` and ``exp_entries`` (the tokens and the selector's exponential
    table entries) are a language model's, 0 for a classifier.
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
    shape_hash: bytes = bytes(SHAPE_HASH_BYTES)
    table_words: int = 0
    tables_valid: bool = False
    tables_hash: bytes = b""
    version: int = PROTOCOL_VERSION
    kind: ModelKind = ModelKind.CLASSIFIER
    vocab: int = 0
    exp_entries: int = 0

    _FMT = "<BBBHBBBBIHIHHB"

    def __post_init__(self):
        object.__setattr__(self, "model_hash", bytes(self.model_hash))
        object.__setattr__(self, "shape_hash", bytes(self.shape_hash))
        tables_hash = bytes(self.tables_hash) or bytes(len(self.model_hash))
        object.__setattr__(self, "tables_hash", tables_hash)
        object.__setattr__(self, "tables_valid", bool(self.tables_valid))
        object.__setattr__(self, "kind", ModelKind(self.kind))
        if not 1 <= len(self.model_hash) <= 255:
            raise ValueError(f"a model hash must be 1..255 bytes, not {len(self.model_hash)}")
        if len(self.tables_hash) != len(self.model_hash):
            raise ValueError("tables_hash must be as long as model_hash")
        if len(self.shape_hash) != SHAPE_HASH_BYTES:
            raise ValueError(f"shape_hash must be {SHAPE_HASH_BYTES} bytes")

    @property
    def static_bytes(self) -> int:
        """Bytes of the payload fixed by the bitstream; the status and the tables hash
        follow them."""
        return struct.calcsize(self._FMT) + len(self.model_hash) + SHAPE_HASH_BYTES

    def encode(self) -> bytes:
        """The payload bytes."""
        head = struct.pack(
            self._FMT,
            self.version,
            self.kind,
            self.in_width,
            self.n_inputs,
            self.result_width,
            self.table_word_bits,
            self.table_addr_bits,
            self.n_layers,
            self.clock_hz,
            self.max_payload,
            self.table_words,
            self.vocab,
            self.exp_entries,
            len(self.model_hash),
        )
        status = bytes([int(self.tables_valid)])
        return head + self.model_hash + self.shape_hash + status + self.tables_hash

    @classmethod
    def decode(cls, payload: bytes) -> Identity:
        """Parse an IDENTITY payload; raises ProtocolError when malformed."""
        size = struct.calcsize(cls._FMT)
        if len(payload) < size:
            raise ProtocolError(f"IDENTITY payload of {len(payload)} bytes is shorter than {size}")
        fields = struct.unpack_from(cls._FMT, payload)
        version, kind, in_w, n_in, res_w, tw_bits, ta_bits, n_layers, clock = fields[:9]
        max_payload, table_words, vocab, exp_entries, n_hash = fields[9:]
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"board speaks host-link protocol {version}, this host {PROTOCOL_VERSION}"
            )
        if n_hash == 0 or len(payload) != size + 2 * n_hash + SHAPE_HASH_BYTES + 1:
            raise ProtocolError("IDENTITY payload length does not match its hash length")
        try:
            kind = ModelKind(kind)
        except ValueError:
            raise ProtocolError(f"IDENTITY reports an unknown core kind {kind}") from None
        at = size + n_hash
        return cls(
            in_width=in_w,
            n_inputs=n_in,
            result_width=res_w,
            table_word_bits=tw_bits,
            table_addr_bits=ta_bits,
            n_layers=n_layers,
            clock_hz=clock,
            max_payload=max_payload,
            model_hash=bytes(payload[size:at]),
            shape_hash=bytes(payload[at : at + SHAPE_HASH_BYTES]),
            table_words=table_words,
            tables_valid=bool(payload[at + SHAPE_HASH_BYTES] & 1),
            tables_hash=bytes(payload[at + SHAPE_HASH_BYTES + 1 :]),
            version=version,
            kind=kind,
            vocab=vocab,
            exp_entries=exp_entries,
        )

    def holds(self, model_hash: bytes) -> bool:
        """True when the board's tables are valid and those of the model ``model_hash``."""
        return self.tables_valid and self.tables_hash == bytes(model_hash)

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

    @property
    def is_language_model(self) -> bool:
        """True for a language-model board (GENERATE, SET_SAMPLER)."""
        return self.kind == ModelKind.LANGUAGE_MODEL

    @property
    def max_prompt(self) -> int:
        """Most prompt tokens one GENERATE can carry."""
        return self.max_payload - GenerateHeader.size // 8

    @property
    def max_generate(self) -> int:
        """Most tokens one GENERATE can ask for."""
        return self.max_payload


@dataclass(frozen=True)
class Counters:
    """COUNTERS payload: inferences u32, errors u32, frames u32, cycles u48 (little-endian).

    ``inferences`` counts the core's answers (an input vector's; a language model's, one per
    token fed, the answers GENERATE drops included), ``frames`` good request frames,
    ``errors`` ERROR replies, ``cycles`` the clock cycles spent in INFER, INFER_BATCH and
    GENERATE except those in which an answer waits for the reply (the UART transmitter).
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
# what the parser reports of a frame it could not parse: why, and the TYPE read (or 0); its
# reply carries RESERVED_SEQ
ErrorLayout = data.StructLayout({"code": 8, "type": 8})
# the fixed head of a LOAD_TABLES payload (the words follow)
LoadTablesHeader = data.StructLayout({"layer": 8, "offset": 32, "count": 16})
# the fixed head of an INFER_BATCH payload (the vectors follow)
InferBatchHeader = data.StructLayout({"count": 16})
# the fixed head of a GENERATE payload (the prompt follows); flags: GenerateFlags
GenerateHeader = data.StructLayout({"flags": 8, "seed": 32, "count": 16})
