"""Host runtime transport layer: talk to a spikelut board (real or simulated) over the host link.

A :class:`Transport` moves bytes; :class:`BoardClient` speaks :mod:`spikelut.boards.protocol`
over any transport. The same client code runs over a serial port (:class:`SerialTransport`,
pyserial; also a pseudo-terminal a simulation exposes), a TCP socket to a simulation
(:class:`SocketTransport`), or in-process queues (:class:`QueueTransport`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import time
from collections.abc import Sequence

from spikelut.boards import protocol as p
from spikelut.boards.protocol import Frame
from spikelut.hdl.hostlink.wire import (
    RESERVED_SEQ,
    Counters,
    FrameType,
    Identity,
    ProtocolError,
)


class Transport:
    """A byte pipe to a board. Subclasses implement :meth:`write`, :meth:`read`, :meth:`close`.

    ``byte_seconds`` is the wire time of one byte (10 bits at the baud rate) when the
    transport knows it, else 0; :class:`BoardClient` adds it to its reply timeouts.
    """

    byte_seconds: float = 0.0

    def write(self, data: bytes) -> None:
        """Send all of ``data``."""
        raise NotImplementedError

    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes: whatever arrives first, waiting at most ``timeout`` seconds.

        Returns ``b""`` when nothing arrived in time.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SerialTransport(Transport):
    """A serial port (or a pseudo-terminal's device path) through pyserial, 8N1."""

    def __init__(self, port: str, baud: int = 115200):
        try:
            import serial
        except ImportError:
            raise ConnectionError("pyserial is not installed; pip install pyserial") from None
        try:
            self._ser = serial.Serial(port, baudrate=baud, timeout=0, write_timeout=10)
        except (serial.SerialException, OSError) as e:
            raise ConnectionError(f"cannot open serial port {port!r}: {e}") from None
        self.port = port
        self.byte_seconds = 10.0 / baud

    def write(self, data: bytes) -> None:
        self._ser.write(bytes(data))
        self._ser.flush()

    def read(self, n: int, timeout: float) -> bytes:
        self._ser.timeout = max(timeout, 0.0)
        first = self._ser.read(1)
        if not first or n <= 1:
            return first
        self._ser.timeout = 0
        return first + self._ser.read(min(n - 1, self._ser.in_waiting))

    def close(self) -> None:
        self._ser.close()


class SocketTransport(Transport):
    """A TCP connection, e.g. to a simulation that bridges the socket to its UART pins."""

    def __init__(
        self, host: str, port: int, *, connect_timeout: float = 10.0, byte_seconds: float = 0.0
    ):
        try:
            self._sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as e:
            raise ConnectionError(f"cannot connect to {host}:{port}: {e}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.byte_seconds = byte_seconds

    def write(self, data: bytes) -> None:
        self._sock.settimeout(None)
        self._sock.sendall(bytes(data))

    def read(self, n: int, timeout: float) -> bytes:
        self._sock.settimeout(max(timeout, 1e-6))
        try:
            data = self._sock.recv(n)
        except TimeoutError:
            return b""
        if not data:
            raise ConnectionError("the simulation closed the connection")
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class QueueTransport(Transport):
    """In-process transport: bytes written go to ``to_board``, bytes read come from ``from_board``.

    Both are :class:`queue.Queue` of ``bytes`` chunks; a simulation thread serves the other end.
    """

    def __init__(self, *, byte_seconds: float = 0.0):
        self.to_board: queue.Queue[bytes] = queue.Queue()
        self.from_board: queue.Queue[bytes] = queue.Queue()
        self._pending = b""
        self.byte_seconds = byte_seconds

    def write(self, data: bytes) -> None:
        self.to_board.put(bytes(data))

    def read(self, n: int, timeout: float) -> bytes:
        if not self._pending:
            try:
                self._pending = self.from_board.get(timeout=max(timeout, 1e-6))
            except queue.Empty:
                return b""
        out, self._pending = self._pending[:n], self._pending[n:]
        return out


def open_transport(port: str, *, baud: int = 115200) -> Transport:
    """``tcp:HOST:PORT`` gives a :class:`SocketTransport`, anything else a serial device path."""
    if port.startswith("tcp:"):
        host, _, num = port[4:].rpartition(":")
        if not num.isdigit():
            raise ValueError(f"expected tcp:HOST:PORT, not {port!r}")
        return SocketTransport(host or "localhost", int(num), byte_seconds=10.0 / baud)
    if not os.path.exists(port):
        raise ConnectionError(f"no such port {port!r}; give a serial device or tcp:HOST:PORT")
    return SerialTransport(port, baud)


class LinkTimeout(ProtocolError):
    """No reply arrived in time (after every retry)."""


class BoardClient:
    """Client of a board's host link: one request at a time, replies checked.

    ``timeout`` is the base wait for a reply, to which the wire time of the request and the
    expected reply is added; a request that gets no reply is resent up to ``retries`` times
    (every request is idempotent apart from the counters and a load's record, whose
    COMMIT_TABLES then fails). Requests carry SEQ 1..255, never
    :data:`~spikelut.hdl.hostlink.wire.RESERVED_SEQ`; an ERROR reply with the request's SEQ
    raises :class:`~spikelut.boards.protocol.ProtocolError` with its ``code``, a SEQ-0 ERROR
    (the board could not parse some frame) is counted in ``board_errors`` and the wait goes
    on.
    """

    def __init__(self, transport: Transport, *, timeout: float = 1.0, retries: int = 2):
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self._decoder = p.FrameDecoder()
        self._identity: Identity | None = None
        self._seq = 0
        self._load = p.LoadRecord()
        self.stale_replies = 0  # replies dropped because their SEQ was not the one awaited
        self.board_errors = 0  # SEQ-0 ERRORs: frames the board could not parse

    def _next_seq(self) -> int:
        # 1..255 cyclically: never RESERVED_SEQ (0), the board's for frames it could not parse
        self._seq = self._seq % 255 + 1
        return self._seq

    # --- framing ------------------------------------------------------------------------

    def _drain(self) -> None:
        """Throw away stale bytes (late replies to earlier, timed-out requests)."""
        while self.transport.read(4096, 0.0):
            pass
        self._decoder = p.FrameDecoder()

    def request(self, ftype: int, payload: bytes = b"", *, reply_bytes: int = 64) -> Frame:
        """Send one request and return its reply frame (not ERROR: that raises).

        Only a reply carrying the request's SEQ counts; others are stale and dropped.
        """
        wait = self.timeout + self.transport.byte_seconds * (len(payload) + reply_bytes + 16) * 1.5
        for _attempt in range(self.retries + 1):
            seq = self._next_seq()
            self._drain()
            self.transport.write(p.encode_frame(ftype, payload, seq))
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    frames = self._decoder.flush()
                else:
                    frames = self._decoder.feed(self.transport.read(4096, min(left, 0.05)))
                for frame in frames:
                    if frame.seq == seq:
                        return self._check(frame, ftype)
                    if frame.seq == RESERVED_SEQ and frame.type == FrameType.ERROR:
                        self.board_errors += 1
                    else:
                        self.stale_replies += 1
                if left <= 0:
                    break
        raise LinkTimeout(
            f"no reply to request 0x{ftype:02x} after {self.retries + 1} attempts of {wait:.2f} s; "
            "check the port, baud rate and board"
        )

    @staticmethod
    def _check(frame: Frame, ftype: int) -> Frame:
        if frame.type == FrameType.ERROR:
            code, offending = p.parse_error(frame.payload)
            raise ProtocolError(
                f"board rejected request 0x{ftype:02x}: {p.error_name(code)}"
                f" (offending type 0x{offending:02x})",
                code,
            )
        return frame

    def _expect(self, frame: Frame, rtype: FrameType) -> bytes:
        if frame.type != rtype:
            raise ProtocolError(f"expected a {rtype.name} reply, got type 0x{frame.type:02x}")
        return frame.payload

    # --- commands -----------------------------------------------------------------------

    def identify(self) -> Identity:
        """Ask the board what it runs; the answer is kept as :attr:`identity`."""
        frame = self.request(FrameType.IDENTIFY, reply_bytes=32 + 2 * 64)
        ident = Identity.decode(self._expect(frame, FrameType.IDENTITY))
        self._identity = ident
        return ident

    @property
    def identity(self) -> Identity:
        """The board's identity (asked for on first use)."""
        if self._identity is None:
            self.identify()
        return self._identity

    def check_model_hash(self, model_hash: bytes) -> None:
        """Raise ProtocolError unless the board holds valid tables of the model with
        ``model_hash`` (asks IDENTIFY afresh)."""
        ident = self.identify()
        if not ident.holds(model_hash):
            held = ident.tables_hash.hex() if ident.tables_valid else "no valid tables"
            raise ProtocolError(
                f"the board holds {held}, not the tables of model {bytes(model_hash).hex()}"
            )

    def begin_tables(self) -> None:
        """Start a new table load (a LOAD_TABLES of no words): the board's tables are
        invalid until :meth:`commit_tables`."""
        payload = p.load_tables_payload(0, 0, [], self.identity.table_word_bits)
        self._expect(self.request(FrameType.LOAD_TABLES, payload, reply_bytes=1), FrameType.OK)
        self._load = p.LoadRecord()

    def commit_tables(self, model_hash: bytes) -> None:
        """End the load: the tables become valid as those of ``model_hash`` if the board
        carried out exactly the load this client sent; ProtocolError with code
        TABLES_MISMATCH otherwise (the tables stay invalid)."""
        ident = self.identity
        model_hash = bytes(model_hash)
        if len(model_hash) != len(ident.model_hash):
            raise ValueError(
                f"the board takes {len(ident.model_hash)}-byte model hashes, not {len(model_hash)}"
            )
        if self._load.words != ident.table_words:
            raise ValueError(
                f"this load wrote {self._load.words} table words; the board's tables take "
                f"{ident.table_words}"
            )
        payload = self._load.commit_payload(model_hash)
        frame = self.request(FrameType.COMMIT_TABLES, payload, reply_bytes=1)
        self._expect(frame, FrameType.OK)

    def load_tables(self, layer: int, words: Sequence[int], *, offset: int = 0) -> int:
        """Write ``words`` into layer ``layer``'s table memory from ``offset``, in chunks,
        as part of the load in progress (:meth:`begin_tables`, :meth:`commit_tables`).

        Returns the number of LOAD_TABLES frames sent.
        """
        ident = self.identity
        words = list(words)
        if offset + len(words) > (1 << ident.table_addr_bits):
            raise ValueError(
                f"{len(words)} words from offset {offset} exceed the board's "
                f"{1 << ident.table_addr_bits}-word table space"
            )
        chunk = ident.max_table_words
        sent = 0
        for start in range(0, len(words), chunk):
            part = words[start : start + chunk]
            payload = p.load_tables_payload(layer, offset + start, part, ident.table_word_bits)
            self._expect(self.request(FrameType.LOAD_TABLES, payload, reply_bytes=1), FrameType.OK)
            self._load.add(payload)
            sent += 1
        return sent

    def infer(self, vector: Sequence[int]) -> int:
        """The board's result for one input vector."""
        ident = self.identity
        self._check_vector_length(len(vector))
        frame = self.request(
            FrameType.INFER, p.infer_payload(vector, ident.in_width), reply_bytes=ident.result_bytes
        )
        return p.unpack_values(self._expect(frame, FrameType.RESULT), ident.result_width)[0]

    def infer_batch(self, vectors: Sequence[Sequence[int]]) -> list[int]:
        """The board's results for many vectors, sent in batches as large as the board takes."""
        ident = self.identity
        out: list[int] = []
        step = ident.max_batch
        for start in range(0, len(vectors), step):
            part = vectors[start : start + step]
            for v in part:
                self._check_vector_length(len(v))
            frame = self.request(
                FrameType.INFER_BATCH,
                p.infer_batch_payload(part, ident.in_width),
                reply_bytes=len(part) * ident.result_bytes,
            )
            results = p.unpack_values(
                self._expect(frame, FrameType.RESULT_BATCH), ident.result_width
            )
            if len(results) != len(part):
                raise ProtocolError(f"asked for {len(part)} results, got {len(results)}")
            out += results
        return out

    def generate(
        self,
        prompt: bytes,
        count: int,
        *,
        start: bool = True,
        sample: bool = False,
        seed: int = 1,
    ) -> bytes:
        """One GENERATE: ``count`` tokens the language-model board chooses after ``prompt``
        (``start``: a new sequence, random state ``seed``; without it and with an empty
        prompt, the continuation of the last one), greedy or sampled (``sample``). ValueError when
        the request cannot be one frame; ProtocolError with the board's code when refused."""
        ident = self.identity
        if not ident.is_language_model:
            raise ValueError("the board runs a classifier, not a language model")
        prompt = bytes(prompt)
        if len(prompt) > ident.max_prompt:
            raise ValueError(
                f"a prompt of {len(prompt)} tokens exceeds one GENERATE's {ident.max_prompt}"
            )
        if not 1 <= count <= ident.max_generate:
            raise ValueError(f"count must be 1..{ident.max_generate}, not {count}")
        payload = p.generate_payload(prompt, count, start=start, sample=sample, seed=seed)
        frame = self.request(FrameType.GENERATE, payload, reply_bytes=count)
        tokens = self._expect(frame, FrameType.GENERATED)
        if len(tokens) != count:
            raise ProtocolError(f"asked for {count} tokens, got {len(tokens)}")
        return tokens

    def set_sampler(self, exp: Sequence[int]) -> None:
        """Write the language-model board's exponential table (SET_SAMPLER): ``exp_entries``
        unsigned 16-bit weights, the first positive."""
        ident = self.identity
        if not ident.is_language_model:
            raise ValueError("the board runs a classifier, not a language model")
        if len(exp) != ident.exp_entries:
            raise ValueError(
                f"the board's exponential table has {ident.exp_entries} entries, not {len(exp)}"
            )
        frame = self.request(FrameType.SET_SAMPLER, p.sampler_payload(exp), reply_bytes=1)
        self._expect(frame, FrameType.OK)

    def read_counters(self) -> Counters:
        """The board's inference, error, frame and cycle counters."""
        frame = self.request(FrameType.READ_COUNTERS, reply_bytes=Counters.SIZE)
        return Counters.decode(self._expect(frame, FrameType.COUNTERS))

    def _check_vector_length(self, n: int) -> None:
        if n != self.identity.n_inputs:
            raise ValueError(
                f"input vector has {n} values; the board takes {self.identity.n_inputs}"
            )

    def close(self) -> None:
        """Close the transport."""
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
