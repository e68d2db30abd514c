"""The parameters of the host link, checked once: what IDENTIFY reports and how vectors are fed.

:class:`LinkParams` is what :class:`~spikelut.hdl.hostlink.link.HostLink` and its parts are
built from; its constructor raises ``ValueError`` naming the first bad value, so nothing is
built from parameters that cannot work.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikelut.hdl.hostlink.wire import (
    RING_SLACK,
    SHAPE_HASH_BYTES,
    GenerateHeader,
    Identity,
    InferBatchHeader,
    LoadTablesHeader,
    ModelKind,
    default_max_payload,
    value_bytes,
)
from spikelut.hdl.params import check_int

__all__ = ["MAX_HASH_BYTES", "LinkParams"]

MAX_HASH_BYTES = 64


@dataclass(frozen=True, kw_only=True)
class LinkParams:
    """The host link of a board: ``in_width`` (signed bits of an input value), ``n_inputs``,
    ``result_width`` (bits of a result word), ``table_word_bits`` and ``table_addr_bits`` (of
    a LOAD_TABLES word and its address), ``n_layers``, ``clock_hz``, ``model_hash`` (the
    bitstream's model, 1..64 bytes), ``shape_hash`` (8 bytes: the fingerprint of what the
    bitstream fixes, :mod:`~spikelut.hdl.hostlink.wire`), ``table_words`` (words a complete
    LOAD_TABLES load writes; 0: the tables are fixed, loads are refused), ``tables_at_reset``
    (the tables are valid at reset, with ``model_hash``: the bitstream initialises them),
    ``lanes`` (input values per core beat, dividing ``n_inputs``; default all),
    ``max_payload`` (bytes of the largest request payload; default
    :func:`~spikelut.hdl.hostlink.wire.default_max_payload` of the vector) and
    ``timeout_cycles`` (silence that abandons a frame).

    ``kind`` (:class:`~spikelut.hdl.hostlink.wire.ModelKind`): a language model's link
    serves GENERATE and SET_SAMPLER instead of INFER; its tokens are bytes (``in_width``
    8, ``n_inputs`` 1, ``result_width`` 8), ``vocab`` of them (2..256), and its selector
    has an exponential table of ``exp_entries`` 16-bit weights.
    """

    in_width: int
    n_inputs: int
    result_width: int
    table_word_bits: int
    table_addr_bits: int
    n_layers: int
    clock_hz: int
    model_hash: bytes
    shape_hash: bytes = bytes(SHAPE_HASH_BYTES)
    table_words: int = 0
    tables_at_reset: bool = True
    lanes: int | None = None
    max_payload: int | None = None
    timeout_cycles: int
    kind: ModelKind = ModelKind.CLASSIFIER
    vocab: int = 0
    exp_entries: int = 0

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        for name, lo, hi in (
            ("in_width", 1, 32),
            ("n_inputs", 1, 0xFFFF),
            ("result_width", 1, 64),
            ("table_word_bits", 1, 64),
            ("table_addr_bits", 1, 32),
            ("n_layers", 1, 255),
            ("clock_hz", 1, 0xFFFFFFFF),
            ("timeout_cycles", 1, 1 << 32),
        ):
            put(name, check_int(name, getattr(self, name), lo, hi))
        put("table_words", check_int("table_words", self.table_words, 0, 0xFFFFFFFF))
        put("kind", ModelKind(self.kind))
        self._check_kind()
        put("tables_at_reset", bool(self.tables_at_reset))
        put("model_hash", bytes(self.model_hash))
        if not 1 <= len(self.model_hash) <= MAX_HASH_BYTES:
            raise ValueError(
                f"model_hash must be 1..{MAX_HASH_BYTES} bytes, not {len(self.model_hash)}"
            )
        put("shape_hash", bytes(self.shape_hash))
        if len(self.shape_hash) != SHAPE_HASH_BYTES:
            raise ValueError(
                f"shape_hash must be {SHAPE_HASH_BYTES} bytes, not {len(self.shape_hash)}"
            )
        lanes = self.n_inputs if self.lanes is None else self.lanes
        put("lanes", check_int("lanes", lanes, 1, self.n_inputs))
        if self.n_inputs % self.lanes:
            raise ValueError(f"lanes ({self.lanes}) must divide n_inputs ({self.n_inputs})")
        vector = self.n_inputs * value_bytes(self.in_width)
        if self.max_payload is None:
            put("max_payload", default_max_payload(vector))
        put("max_payload", check_int("max_payload", self.max_payload, 1, 0xFFFF - RING_SLACK))
        self._check_payload()

    def _check_kind(self) -> None:
        if self.kind == ModelKind.CLASSIFIER:
            if self.vocab or self.exp_entries:
                raise ValueError(
                    "vocab and exp_entries are a language model's; a classifier's are 0"
                )
            return
        if (self.in_width, self.n_inputs, self.result_width) != (8, 1, 8):
            raise ValueError(
                "a language model's tokens are bytes: in_width 8, n_inputs 1, result_width 8"
            )
        object.__setattr__(self, "vocab", check_int("vocab", self.vocab, 2, 256))
        object.__setattr__(
            self, "exp_entries", check_int("exp_entries", self.exp_entries, 2, 0x7FFF)
        )

    def _check_payload(self) -> None:
        ident = self.identity
        need = max(
            ident.vector_bytes + InferBatchHeader.size // 8,
            LoadTablesHeader.size // 8 + ident.table_word_bytes,
            self.commit_bytes,
        )
        if self.kind == ModelKind.LANGUAGE_MODEL:
            need = max(need, GenerateHeader.size // 8 + 1, self.sampler_bytes)
        if self.max_payload < need:
            raise ValueError(
                f"max_payload {self.max_payload} cannot hold one input vector, table word or "
                f"commit; use at least {need}"
            )
        if self.max_vectors * ident.result_bytes > 0xFFFF:
            raise ValueError("max_payload allows a batch whose reply exceeds 65535 bytes; lower it")

    @property
    def identity(self) -> Identity:
        """What IDENTIFY replies at reset."""
        return Identity(
            in_width=self.in_width,
            n_inputs=self.n_inputs,
            result_width=self.result_width,
            table_word_bits=self.table_word_bits,
            table_addr_bits=self.table_addr_bits,
            n_layers=self.n_layers,
            clock_hz=self.clock_hz,
            max_payload=self.max_payload,
            model_hash=self.model_hash,
            shape_hash=self.shape_hash,
            table_words=self.table_words,
            tables_valid=self.tables_at_reset,
            tables_hash=self.model_hash if self.tables_at_reset else b"",
            kind=self.kind,
            vocab=self.vocab,
            exp_entries=self.exp_entries,
        )

    @property
    def is_language_model(self) -> bool:
        """True for a language model's link."""
        return self.kind == ModelKind.LANGUAGE_MODEL

    @property
    def sampler_bytes(self) -> int:
        """Bytes of a SET_SAMPLER payload: the exponential table, 16 bits an entry."""
        return 2 * self.exp_entries

    @property
    def hash_bytes(self) -> int:
        """Bytes of a model hash (the bitstream's, the tables', a commit's)."""
        return len(self.model_hash)

    @property
    def commit_bytes(self) -> int:
        """Bytes of a COMMIT_TABLES payload: the hash and the CRC."""
        return self.hash_bytes + 2

    @property
    def ring_bytes(self) -> int:
        """Bytes of the parser's frame buffer: the smallest power of two that holds
        ``max_payload + RING_SLACK``."""
        return 1 << (self.max_payload + RING_SLACK - 1).bit_length()

    @property
    def value_bytes(self) -> int:
        """Bytes of one input value on the wire."""
        return value_bytes(self.in_width)

    @property
    def vector_bytes(self) -> int:
        """Bytes of one input vector on the wire (:attr:`Identity.vector_bytes`)."""
        return self.identity.vector_bytes

    @property
    def result_bytes(self) -> int:
        """Bytes of one result on the wire (:attr:`Identity.result_bytes`)."""
        return self.identity.result_bytes

    @property
    def table_word_bytes(self) -> int:
        """Bytes of one LOAD_TABLES word on the wire (:attr:`Identity.table_word_bytes`)."""
        return self.identity.table_word_bytes

    @property
    def beats_per_vector(self) -> int:
        """Core beats (of ``lanes`` values) per input vector."""
        return self.n_inputs // self.lanes

    @property
    def max_vectors(self) -> int:
        """Most vectors one payload can hold."""
        return self.max_payload // self.vector_bytes
