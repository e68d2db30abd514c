"""The host link's reply framer: a header and its payload bytes in, a whole frame out."""

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.crc import INIT as CRC_INIT
from spikelut.hdl.crc import crc16_next
from spikelut.hdl.hostlink.wire import SYNC, HeaderLayout

__all__ = ["ReplyFramer"]

_HEAD_BYTES = 1 + HeaderLayout.size // 8  # SYNC, TYPE, SEQ, LENGTH


class ReplyFramer(wiring.Component):
    """Wraps a payload into a frame: SYNC, TYPE, SEQ, LENGTH, payload, CRC on ``o_stream``.

    Each header accepted on ``i_header`` is followed by exactly ``length`` bytes taken from
    ``i_stream``. ``idle`` is high while no frame is being sent.
    """

    i_header: In(stream.Signature(HeaderLayout))
    i_stream: In(stream.Signature(8))
    o_stream: Out(stream.Signature(8))
    idle: Out(1)

    def elaborate(self, platform):
        m = Module()
        out = self.o_stream
        header = Signal(HeaderLayout)
        n = Signal(range(max(_HEAD_BYTES, 2)))  # the byte of the head or the CRC to send
        count = Signal(16)  # payload bytes sent
        crc = Signal(16, init=CRC_INIT)
        sent = out.valid & out.ready
        fields = header.as_value()
        head = Array([Const(SYNC, 8), *(fields[8 * k : 8 * k + 8] for k in range(_HEAD_BYTES - 1))])

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.idle.eq(1), self.i_header.ready.eq(1)]
                m.d.sync += [header.eq(self.i_header.payload), n.eq(0), count.eq(0)]
                m.d.sync += crc.eq(CRC_INIT)
                with m.If(self.i_header.valid):
                    m.next = "HEAD"
            with m.State("HEAD"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(head[n])]
                with m.If(sent & (n != 0)):  # SYNC is outside the CRC
                    m.d.sync += crc.eq(crc16_next(crc, out.payload))
                with m.If(sent):
                    m.d.sync += n.eq(n + 1)
                    with m.If(n == _HEAD_BYTES - 1):
                        m.d.sync += n.eq(0)
                        with m.If(header.length == 0):
                            m.next = "CRC"
                        with m.Else():
                            m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [
                    out.valid.eq(self.i_stream.valid),
                    out.payload.eq(self.i_stream.payload),
                    self.i_stream.ready.eq(out.ready),
                ]
                with m.If(sent):
                    m.d.sync += [crc.eq(crc16_next(crc, out.payload)), count.eq(count + 1)]
                    with m.If(count == header.length - 1):
                        m.next = "CRC"
            with m.State("CRC"):
                # most significant byte first; the CRC bytes are not part of the CRC
                m.d.comb += [out.valid.eq(1), out.payload.eq(Mux(n == 0, crc[8:], crc[:8]))]
                with m.If(sent):
                    m.d.sync += n.eq(n + 1)
                    with m.If(n == 1):
                        m.next = "IDLE"
        return m
