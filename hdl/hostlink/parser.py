"""The host link's frame parser: bytes in, CRC-checked frames (or the reason they were bad) out.

The frame format and the resynchronisation rule are specified in
:mod:`spikelut.hdl.hostlink.wire`. Every byte received goes into a ring buffer; a scanner
reads it from there, so that when a candidate frame fails (a LENGTH above ``max_payload``,
a bad CRC, silence) it can scan again from the byte after the candidate's SYNC over the
bytes already received. The ring holds the bytes from the oldest byte still needed (the one
after the SYNC of the candidate being scanned, or of the frame being worked on) up to the
newest; it needs at most one whole frame after its SYNC (``max_payload + 6`` bytes), and has
:data:`~spikelut.hdl.hostlink.wire.RING_SLACK` more rounded up to a power of two. A frame is
handed on only after its CRC checked out, so nothing (no table write, no inference) ever
happens on behalf of a bad frame.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.crc import INIT as CRC_INIT
from spikelut.hdl.crc import crc16_next
from spikelut.hdl.hostlink.wire import RING_SLACK, SYNC, ErrorCode, ErrorLayout, HeaderLayout
from spikelut.hdl.params import check_int

__all__ = ["FrameParser"]

_HEADER_BYTES = HeaderLayout.size // 8  # TYPE, SEQ, LENGTH: the bytes between SYNC and payload


class _Ring:
    """The ring buffer's pointers (indices into the ring) and counts.

    ``wr``: where the next byte received goes; ``rd``: the next byte to scan; ``keep``: the
    oldest byte still needed. ``fill`` = ``wr - keep`` and ``ahead`` = ``wr - rd`` (bytes
    received but not scanned), kept as counts so that a full ring is told from an empty one.
    """

    def __init__(self, size: int):
        bits = size.bit_length() - 1
        self.size = size
        self.wr = Signal(bits)
        self.rd = Signal(bits)
        self.keep = Signal(bits)
        self.fill = Signal(bits + 1)
        self.ahead = Signal(bits + 1)
        # this cycle's events
        self.wrote = Signal()  # a byte received is written at wr
        self.take = Signal()  # the byte at rd is scanned
        self.drop = Signal()  # ... and is no longer needed (outside any frame)
        self.rescan = Signal()  # scan again from keep
        self.release = Signal()  # the frame is done with: nothing before rd is needed

    def update(self, m) -> None:
        """The pointers and counts after this cycle's events."""
        with m.If(self.wrote):
            m.d.sync += self.wr.eq(self.wr + 1)
        fill = Mux(self.rescan, self.fill, Mux(self.release, self.ahead, self.fill - self.drop))
        ahead = Mux(self.rescan, self.fill, self.ahead - self.take)
        m.d.sync += [self.fill.eq(fill + self.wrote), self.ahead.eq(ahead + self.wrote)]
        with m.If(self.rescan):
            m.d.sync += self.rd.eq(self.keep)
        with m.Elif(self.take):
            m.d.sync += self.rd.eq(self.rd + 1)
        with m.If(self.release):
            m.d.sync += self.keep.eq(self.rd)
        with m.Elif(self.drop):
            m.d.sync += self.keep.eq(self.keep + 1)


class _Registers:
    """The scanner's state beside its FSM."""

    def __init__(self):
        self.fetched = Signal()  # the read port shows the byte at rd
        self.got = Signal()  # ... and the scanner may take it
        self.holding = Signal()  # a good frame is held for the consumer
        self.header = Signal(HeaderLayout)
        self.field = Signal(range(_HEADER_BYTES))  # the header byte to read next
        self.ptr = Signal(16)  # payload bytes scanned
        self.in_frame = Signal()  # a candidate is being scanned
        self.fail = Signal()  # the candidate fails this cycle, with code
        self.code = Signal(8)


class FrameParser(wiring.Component):
    """Parses frames from ``i_stream`` into a ring buffer and checks their CRC.

    A good frame is offered on ``o_frame`` (type, seq and length) and stays there, with its
    payload readable through ``rd_addr``/``rd_data`` (synchronous: ``rd_data`` shows the
    payload byte at the ``rd_addr`` of the previous cycle), until the consumer accepts it;
    only then does scanning resume. Bytes keep being received meanwhile, as long as the ring
    has room (``i_stream.ready`` is low when it is full).

    A candidate frame fails on a LENGTH above ``max_payload`` (BAD_LENGTH, at once), a CRC
    mismatch (CRC), or no byte for ``timeout_cycles`` cycles while it waits for one
    (TIMEOUT); the scan then resumes at the byte after its SYNC. The failure is offered on
    ``o_error`` (the code and the TYPE read, or 0) unless a failure is already waiting
    there, in which case it is not reported; scanning never waits for ``o_error``.
    """

    def __init__(self, *, max_payload: int, timeout_cycles: int):
        self._max_payload = check_int("max_payload", max_payload, 1, 0xFFFF - RING_SLACK)
        self._timeout = check_int("timeout_cycles", timeout_cycles, 1, 1 << 32)
        self._ring = 1 << (self._max_payload + RING_SLACK - 1).bit_length()
        super().__init__(
            {
                "i_stream": In(stream.Signature(8)),
                "o_frame": Out(stream.Signature(HeaderLayout)),
                "o_error": Out(stream.Signature(ErrorLayout)),
                "rd_addr": In(range(self._max_payload)),
                "rd_data": Out(8),
            }
        )

    @property
    def max_payload(self) -> int:
        """Largest payload accepted, in bytes."""
        return self._max_payload

    @property
    def ring_bytes(self) -> int:
        """Bytes of the ring buffer."""
        return self._ring

    def elaborate(self, platform):
        m = Module()
        i = self.i_stream
        ring = _Ring(self._ring)
        r = _Registers()
        byte = self._memory(m, ring, r.holding)
        m.d.comb += [
            i.ready.eq(ring.fill != ring.size),
            ring.wrote.eq(i.valid & i.ready),
            self.o_frame.payload.eq(r.header),
        ]
        ring.update(m)
        # a byte is ready to scan when the read port shows it; fetching takes a cycle
        m.d.sync += r.fetched.eq(~r.holding & (ring.ahead != 0) & ~r.fetched & ~ring.rescan)
        m.d.comb += r.got.eq(r.fetched & ~r.holding)
        crc = Signal(16, init=CRC_INIT)
        crc_next = crc16_next(crc, byte)
        with m.If(ring.take):
            m.d.sync += crc.eq(crc_next)
        timed_out = self._timeout_timer(m, r.in_frame & (ring.ahead == 0), ring.take)
        self._report(m, r)
        self._scanner(m, r, ring, byte, crc, crc_next, timed_out)
        return m

    def _scanner(self, m, r, ring, byte, crc, crc_next, timed_out):
        """The scanner's FSM: HUNT for SYNC, the candidate's header, payload and CRC, then
        hold the good FRAME until the consumer is done with it."""

        def fail(code):
            """Give up on the candidate: report ``code``, scan again after its SYNC."""
            m.d.comb += [r.fail.eq(1), r.code.eq(code), ring.rescan.eq(1)]
            m.d.sync += r.fetched.eq(0)
            m.next = "HUNT"

        def scan():
            """A state inside a candidate: take the byte fetched; give up on silence."""
            m.d.comb += [r.in_frame.eq(1), ring.take.eq(r.got)]
            with m.If(timed_out):
                fail(ErrorCode.TIMEOUT)

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += [ring.take.eq(r.got), ring.drop.eq(r.got)]
                m.d.sync += [crc.eq(CRC_INIT), r.header.eq(0), r.field.eq(0), r.ptr.eq(0)]
                with m.If(r.got & (byte == SYNC)):
                    m.next = "HEADER"
            with m.State("HEADER"):
                scan()
                with m.If(r.got):
                    self._header_byte(m, r, byte, fail)
            with m.State("PAYLOAD"):
                scan()
                with m.If(r.got):
                    m.d.sync += r.ptr.eq(r.ptr + 1)
                    with m.If(r.ptr == r.header.length - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                scan()
                with m.If(r.got):
                    m.next = "CRC1"
            with m.State("CRC1"):
                scan()
                with m.If(r.got):
                    with m.If(crc_next == 0):
                        m.next = "FRAME"
                    with m.Else():
                        fail(ErrorCode.CRC)
            with m.State("FRAME"):
                m.d.comb += [r.holding.eq(1), self.o_frame.valid.eq(1)]
                with m.If(self.o_frame.ready):
                    m.d.comb += ring.release.eq(1)
                    m.next = "HUNT"

    def _memory(self, m, ring: _Ring, consumer):
        """The ring's memory: written at ``wr``; read at ``rd`` for the scanner, or at the
        payload byte ``rd_addr`` of the frame held while ``consumer``. Returns the byte read."""
        m.submodules.ring = mem = memory.Memory(shape=8, depth=ring.size, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        bits = ring.size.bit_length() - 1
        payload_at = (ring.keep + _HEADER_BYTES + self.rd_addr)[:bits]
        m.d.comb += [
            wr.addr.eq(ring.wr),
            wr.data.eq(self.i_stream.payload),
            wr.en.eq(ring.wrote),
            rd.addr.eq(Mux(consumer, payload_at, ring.rd)),
            self.rd_data.eq(rd.data),
        ]
        return rd.data

    def _header_byte(self, m, r, byte, fail):
        """Store header byte ``r.field``; after the last, refuse a LENGTH too long, else
        read on."""
        m.d.sync += [r.header.as_value().word_select(r.field, 8).eq(byte), r.field.eq(r.field + 1)]
        length = Cat(r.header.length[:8], byte)
        with m.If(r.field == _HEADER_BYTES - 1):
            with m.If(length > self._max_payload):
                fail(ErrorCode.BAD_LENGTH)
            with m.Elif(length == 0):
                m.next = "CRC0"
            with m.Else():
                m.next = "PAYLOAD"

    def _report(self, m, r):
        """``o_error``: one failure waits there until taken; others meanwhile are dropped."""
        err = self.o_error
        with m.If(err.ready):
            m.d.sync += err.valid.eq(0)
        with m.If(r.fail & (~err.valid | err.ready)):
            m.d.sync += [
                err.valid.eq(1),
                err.payload.code.eq(r.code),
                err.payload.type.eq(r.header.type),
            ]

    def _timeout_timer(self, m, waiting, took):
        """High when a candidate has been ``waiting`` for a byte ``timeout_cycles`` cycles
        in a row (on the cycle that makes it so, with no byte taken)."""
        idle = Signal(range(self._timeout + 1))
        with m.If(~waiting | took):
            m.d.sync += idle.eq(0)
        with m.Else():
            m.d.sync += idle.eq(idle + 1)
        return ~took & (idle >= self._timeout - 1)
