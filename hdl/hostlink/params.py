"""The parameters of the host link, checked once: what IDENTIFY reports and how vectors are fed.

:class:`LinkParams` is what :class:`~spikelut.hdl.hostlink.link.HostLink` and its parts are
built from; its constructor raises ``ValueError`` naming the first bad value, so nothing is
built from parameters that cannot work.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikelut.hdl.hostlink.wire import (
    Identity,
    InferBatchHeader,
    LoadTablesHeader,
    value_bytes,
)
from spikelut.hdl.params import check_int

__all__ = ["MAX_HASH_BYTES", "LinkParams"]

MAX_HASH_BYTES = 64


@dataclass(frozen=True, kw_only=True)
class LinkParams:
    """The host link of a board: ``in_width`` (signed bits of an input value), ``n_inputs``,
    ``result_width`` (bits of a result word), ``table_word_bits`` and ``table_addr_bits`` (of
    a LOAD_TABLES word and its address), ``n_layers``, ``clock_hz``, ``model_hash`` (at most
    64 bytes), ``lanes`` (input values per core beat, dividing ``n_inputs``; default all),
    ``max_payload`` (bytes of the largest request payload) and ``timeout_cycles`` (silence
    that abandons a frame).
    """

    in_width: int
    n_inputs: int
    result_width: int
    table_word_bits: int
    table_addr_bits: int
    n_layers: int
    clock_hz: int
    model_hash: bytes
    lanes: int | None = None
    max_payload: int = 512
    timeout_cycles: int

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
            ("max_payload", 1, 0xFFFF),
            ("timeout_cycles", 1, 1 << 32),
        ):
            put(name, check_int(name, getattr(self, name), lo, hi))
        put("model_hash", bytes(self.model_hash))
        if len(self.model_hash) > MAX_HASH_BYTES:
            raise ValueError(
                f"model_hash must be at most {MAX_HASH_BYTES} bytes, not {len(self.model_hash)}"
            )
        lanes = self.n_inputs if self.lanes is None else self.lanes
        put("lanes", check_int("lanes", lanes, 1, self.n_inputs))
        if self.n_inputs % self.lanes:
            raise ValueError(f"lanes ({self.lanes}) must divide n_inputs ({self.n_inputs})")
        self._check_payload()

    def _check_payload(self) -> None:
        ident = self.identity
        need = max(
            ident.vector_bytes + InferBatchHeader.size // 8,
            LoadTablesHeader.size // 8 + ident.table_word_bytes,
        )
        if self.max_payload < need:
            raise ValueError(
                f"max_payload {self.max_payload} cannot hold one input vector or table word; "
                f"use at least {need}"
            )
        if self.max_vectors * ident.result_bytes > 0xFFFF:
            raise ValueError("max_payload allows a batch whose reply exceeds 65535 bytes; lower it")

    @property
    def identity(self) -> Identity:
        """What IDENTIFY replies."""
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
        )

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
