"""The host link's frame parser: bytes in, CRC-checked frames (or the reason they were bad) out.

The frame format is specified in :mod:`spikelut.hdl.hostlink.wire`. A frame's payload is
stored in a buffer and the frame is handed on only after its CRC checks out, so nothing (no
table write, no inference) ever happens on behalf of a bad frame.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.crc import INIT as CRC_INIT
from spikelut.hdl.crc import crc16_next
from spikelut.hdl.hostlink.wire import SYNC, ErrorCode, ErrorLayout, HeaderLayout
from spikelut.hdl.params import check_int

__all__ = ["FrameParser"]

_HEADER_BYTES = HeaderLayout.size // 8  # TYPE, SEQ, LENGTH: the bytes between SYNC and payload


class _Registers:
    """The parser's state beside its FSM."""

    def __init__(self):
        self.took = Signal()  # a byte is taken this cycle
        self.header = Signal(HeaderLayout)
        self.field = Signal(range(_HEADER_BYTES))  # the header byte to read next
        self.ptr = Signal(16)  # the payload byte to write next
        self.write = Signal()  # write the byte taken at ptr
        self.code = Signal(8)  # why the frame is bad
        self.in_frame = Signal()

    def fail(self, m, code) -> None:
        """Give up on the frame, reporting ``code``."""
        m.d.sync += self.code.eq(code)
        m.next = "ERROR"


class FrameParser(wiring.Component):
    """Parses frames from ``i_stream`` into a payload buffer and checks their CRC.

    A good frame is offered on ``o_frame`` (type, seq and length) and stays there, with its
    payload readable through ``rd_addr``/``rd_data`` (synchronous: ``rd_data`` shows the byte
    at the ``rd_addr`` of the previous cycle), until the consumer accepts it; only then does
    parsing resume. A bad frame is offered on ``o_error`` instead, with the TYPE and SEQ read
    so far (0 when not yet read): a LENGTH above ``max_payload`` (BAD_LENGTH, at once), a CRC
    mismatch (CRC), or no byte for ``timeout_cycles`` cycles in the middle of a frame
    (TIMEOUT). Bytes outside frames are skipped up to the next SYNC.
    """

    def __init__(self, *, max_payload: int, timeout_cycles: int):
        self._max_payload = check_int("max_payload", max_payload, 1, 0xFFFF)
        self._timeout = check_int("timeout_cycles", timeout_cycles, 1, 1 << 32)
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

    def elaborate(self, platform):
        m = Module()
        i = self.i_stream
        r = _Registers()
        m.d.comb += [
            r.took.eq(i.valid & i.ready),
            self.o_frame.payload.eq(r.header),
            self.o_error.payload.code.eq(r.code),
            self.o_error.payload.type.eq(r.header.type),
            self.o_error.payload.seq.eq(r.header.seq),
        ]
        self._buffer(m, r)
        crc, crc_next = self._crc(m, r.took, i.payload)
        timed_out = self._timeout_timer(m, r.in_frame, r.took)

        def receive():
            """A state inside a frame: take bytes, give up on silence."""
            m.d.comb += [i.ready.eq(1), r.in_frame.eq(1)]
            with m.If(timed_out):
                r.fail(m, ErrorCode.TIMEOUT)

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += i.ready.eq(1)
                m.d.sync += [crc.eq(CRC_INIT), r.header.eq(0), r.field.eq(0), r.ptr.eq(0)]
                with m.If(r.took & (i.payload == SYNC)):
                    m.next = "HEADER"
            with m.State("HEADER"):
                receive()
                with m.If(r.took):
                    self._header_byte(m, r, i.payload)
            with m.State("PAYLOAD"):
                receive()
                m.d.comb += r.write.eq(r.took)
                with m.If(r.took):
                    m.d.sync += r.ptr.eq(r.ptr + 1)
                    with m.If(r.ptr == r.header.length - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                receive()
                with m.If(r.took):
                    m.next = "CRC1"
            with m.State("CRC1"):
                receive()
                with m.If(r.took):
                    with m.If(crc_next == 0):
                        m.next = "FRAME"
                    with m.Else():
                        r.fail(m, ErrorCode.CRC)
            with m.State("FRAME"):
                m.d.comb += self.o_frame.valid.eq(1)
                with m.If(self.o_frame.ready):
                    m.next = "HUNT"
            with m.State("ERROR"):
                m.d.comb += self.o_error.valid.eq(1)
                with m.If(self.o_error.ready):
                    m.next = "HUNT"
        return m

    def _buffer(self, m, r):
        """The payload buffer: written at ``r.ptr`` when ``r.write``, read at ``rd_addr``."""
        m.submodules.buf = buf = memory.Memory(shape=8, depth=self._max_payload, init=[])
        wr = buf.write_port()
        rd = buf.read_port()
        m.d.comb += [
            rd.addr.eq(self.rd_addr),
            self.rd_data.eq(rd.data),
            wr.addr.eq(r.ptr),
            wr.data.eq(self.i_stream.payload),
            wr.en.eq(r.write),
        ]

    def _header_byte(self, m, r, byte):
        """Store header byte ``r.field``; after the last, refuse a LENGTH too long, else
        read on."""
        m.d.sync += [r.header.as_value().word_select(r.field, 8).eq(byte), r.field.eq(r.field + 1)]
        length = Cat(r.header.length[:8], byte)
        with m.If(r.field == _HEADER_BYTES - 1):
            with m.If(length > self._max_payload):
                r.fail(m, ErrorCode.BAD_LENGTH)
            with m.Elif(length == 0):
                m.next = "CRC0"
            with m.Else():
                m.next = "PAYLOAD"

    @staticmethod
    def _crc(m, took, byte):
        """The CRC register over every byte taken (HUNT restarts it: SYNC is outside), and
        its value with ``byte`` shifted in."""
        crc = Signal(16, init=CRC_INIT)
        crc_next = Signal(16)
        m.d.comb += crc_next.eq(crc16_next(crc, byte))
        with m.If(took):
            m.d.sync += crc.eq(crc_next)
        return crc, crc_next

    def _timeout_timer(self, m, in_frame, took):
        """High when a frame has been silent for ``timeout_cycles`` (on the cycle that makes
        it so, with no byte taken)."""
        idle = Signal(range(self._timeout + 1))
        with m.If(~in_frame | took):
            m.d.sync += idle.eq(0)
        with m.Else():
            m.d.sync += idle.eq(idle + 1)
        return ~took & (idle >= self._timeout - 1)
