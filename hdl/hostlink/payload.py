"""The bytes of a reply's payload, from the source the command executor selects."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import enum, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.hostlink.params import LinkParams
from spikelut.hdl.hostlink.wire import Counters

__all__ = ["COUNTER_BITS", "ReplyPayload", "ReplySource", "reply_control"]

COUNTER_BITS = 8 * Counters.SIZE


class ReplySource(enum.Enum, shape=2):
    """Where a reply's payload bytes come from."""

    BYTES = 0  # the one or two bytes given with the selection (OK, ERROR)
    IDENTITY = 1  # the IDENTITY payload: constant but for the tables' status and hash
    COUNTERS = 2  # the counters, read live (they hold still while a COUNTERS reply goes out)
    RESULTS = 3  # the core's results, each sent as it arrives


def reply_control(result_bytes: int) -> wiring.Signature:
    """How the command executor drives a :class:`ReplyPayload` (the executor's side):
    ``select`` (a strobe) starts a payload from ``source`` (``small``: the bytes of
    :attr:`ReplySource.BYTES`, low byte first); ``result_load`` (a strobe) queues the
    ``result_bytes``-byte word ``result``; ``result_empty`` once it has been sent."""
    return wiring.Signature(
        {
            "select": Out(1),
            "source": Out(ReplySource),
            "small": Out(16),
            "result": Out(8 * result_bytes),
            "result_load": Out(1),
            "result_empty": In(1),
        }
    )


class ReplyPayload(wiring.Component):
    """Offers the payload bytes of the reply being sent on ``o_stream``, from the source
    selected through ``control`` (:func:`reply_control`); a result goes out little-endian.
    ``counters``: the COUNTERS payload bits (:class:`~spikelut.hdl.hostlink.wire.Counters`
    order); ``tables_valid`` and ``tables_hash`` (first byte lowest): the live end of the
    IDENTITY payload.
    """

    def __init__(self, params: LinkParams):
        ident = params.identity
        self._identity = ident.encode()
        self._static = ident.static_bytes
        self._result_bytes = params.result_bytes
        super().__init__(
            {
                "control": In(reply_control(self._result_bytes)),
                "counters": In(COUNTER_BITS),
                "tables_valid": In(1),
                "tables_hash": In(8 * params.hash_bytes),
                "o_stream": Out(stream.Signature(8)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        o, ctl = self.o_stream, self.control
        source = Signal(ReplySource)
        small = Signal(16)
        idx = Signal(range(max(len(self._identity), Counters.SIZE) + 1))
        live = [self.tables_valid.as_unsigned()]
        live += [self.tables_hash[8 * k : 8 * k + 8] for k in range(len(self.tables_hash) // 8)]
        rom = Array([*(Const(b, 8) for b in self._identity[: self._static]), *live])
        counters = Array(self.counters[8 * k : 8 * k + 8] for k in range(Counters.SIZE))
        result = Signal.like(ctl.result)
        result_left = Signal(range(self._result_bytes + 1))
        m.d.comb += ctl.result_empty.eq(result_left == 0)

        with m.Switch(source):
            with m.Case(ReplySource.BYTES):
                m.d.comb += [o.valid.eq(1), o.payload.eq(small[:8])]
                with m.If(o.ready):
                    m.d.sync += small.eq(small >> 8)
            with m.Case(ReplySource.IDENTITY):
                m.d.comb += [o.valid.eq(1), o.payload.eq(rom[idx])]
                with m.If(o.ready):
                    m.d.sync += idx.eq(idx + 1)
            with m.Case(ReplySource.COUNTERS):
                m.d.comb += [o.valid.eq(1), o.payload.eq(counters[idx])]
                with m.If(o.ready):
                    m.d.sync += idx.eq(idx + 1)
            with m.Case(ReplySource.RESULTS):
                m.d.comb += [o.valid.eq(result_left != 0), o.payload.eq(result[:8])]
                with m.If(o.valid & o.ready):
                    m.d.sync += [result.eq(result >> 8), result_left.eq(result_left - 1)]
        with m.If(ctl.result_load):
            m.d.sync += [result.eq(ctl.result), result_left.eq(self._result_bytes)]
        with m.If(ctl.select):
            m.d.sync += [
                source.eq(ctl.source),
                small.eq(ctl.small),
                idx.eq(0),
                result_left.eq(0),
            ]
        return m
