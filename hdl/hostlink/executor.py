"""The host link's command executor: one good frame (or bad-frame report) at a time, to its reply.

It checks a request's TYPE, LENGTH and header fields (:mod:`~spikelut.hdl.hostlink.wire`),
starts the work (table writes, vectors to the core), collects the results and picks the
reply's header and payload source. A request is answered only after it was checked whole,
so a bad request changes nothing but the counters.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.hostlink.feeder import feed_control
from spikelut.hdl.hostlink.params import LinkParams
from spikelut.hdl.hostlink.payload import ReplySource, reply_control
from spikelut.hdl.hostlink.tables import table_control
from spikelut.hdl.hostlink.wire import (
    Counters,
    ErrorCode,
    ErrorLayout,
    FrameType,
    HeaderLayout,
    InferBatchHeader,
    LoadTablesHeader,
)

__all__ = ["CommandExecutor", "CommandState"]

_LOAD_HEAD = LoadTablesHeader.size // 8
_BATCH_HEAD = InferBatchHeader.size // 8
_HEAD_BITS = max(LoadTablesHeader.size, InferBatchHeader.size)


class CommandState(enum.Enum, shape=3):
    """What the executor is doing."""

    IDLE = 0  # waiting for a good frame or a bad-frame report
    DISPATCH = 1  # checking TYPE and LENGTH
    HEADER = 2  # reading a LOAD_TABLES or INFER_BATCH payload's head
    CHECK = 3  # checking the head's fields; starting the work
    TABLES = 4  # table words going out
    RUN = 5  # vectors going to the core, results coming back
    REPLY = 6  # the reply going out; the frame is released after it
    DONE_ERROR = 7  # the reply to a bad frame going out


def _head(layout: data.StructLayout, shifted) -> data.View:
    """The request head of ``layout`` in ``shifted``, into which it was shifted from the top."""
    return layout(shifted[len(shifted) - layout.size :])


class _Registers:
    """The executor's state beside the reply header."""

    def __init__(self):
        self.state = Signal(CommandState)
        self.ftype = Signal(8)  # the request's TYPE
        self.flen = Signal(16)  # its LENGTH
        self.head = Signal(_HEAD_BITS)  # the payload's head, shifted in from the top
        self.head_left = Signal(range(_LOAD_HEAD + 1))
        self.count = Signal(16)  # vectors or table words of the request
        self.results = Signal(16)  # results taken so far

    def goto(self, m, state: CommandState) -> None:
        """Move to ``state`` next cycle."""
        m.d.sync += self.state.eq(state)


class CommandExecutor(wiring.Component):
    """Executes the requests of :class:`LinkParams` ``params``' host link.

    Ports: ``i_frame`` and ``i_error``, the parser's good frames and bad-frame reports (a
    frame is released when its reply has gone out); the payload reader: ``restart`` (back to
    byte 0), ``advance`` (on to the next byte), ``i_byte`` (the byte there); ``o_header``,
    the reply's header, and ``reply_idle`` (the framer has sent everything); ``reply``
    (:func:`~spikelut.hdl.hostlink.payload.reply_control`), ``feed``
    (:func:`~spikelut.hdl.hostlink.feeder.feed_control`) and ``tables``
    (:func:`~spikelut.hdl.hostlink.tables.table_control`), the parts it drives; ``i_result``,
    one word per inference; the counter strobes ``frame``, ``inference``, ``cycle`` (a
    compute cycle: in a run, not stalled on the reply) and ``error`` (an ERROR reply
    leaves); ``busy`` (a request is being worked on).
    """

    def __init__(self, params: LinkParams):
        self._p = params
        super().__init__(
            {
                "i_frame": In(stream.Signature(HeaderLayout)),
                "i_error": In(stream.Signature(ErrorLayout)),
                "restart": Out(1),
                "advance": Out(1),
                "i_byte": In(8),
                "o_header": Out(stream.Signature(HeaderLayout)),
                "reply_idle": In(1),
                "reply": Out(reply_control(params.result_bytes)),
                "feed": Out(feed_control()),
                "tables": Out(table_control()),
                "i_result": In(stream.Signature(params.result_width)),
                "frame": Out(1),
                "inference": Out(1),
                "cycle": Out(1),
                "error": Out(1),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        r = _Registers()
        hdr = self.o_header
        load = _head(LoadTablesHeader, r.head)
        replied = ~hdr.valid & self.reply_idle
        with m.If(hdr.ready):
            m.d.sync += hdr.valid.eq(0)
        m.d.comb += [
            self.error.eq(hdr.valid & hdr.ready & (hdr.payload.type == FrameType.ERROR)),
            self.busy.eq((r.state != CommandState.IDLE) & (r.state != CommandState.DONE_ERROR)),
            self.feed.count.eq(r.count),
            self.tables.count.eq(r.count),
            self.tables.layer.eq(load.layer),
            self.tables.offset.eq(load.offset),
        ]
        with m.Switch(r.state):
            with m.Case(CommandState.IDLE):
                self._idle(m, r)
            with m.Case(CommandState.DISPATCH):
                self._dispatch(m, r)
            with m.Case(CommandState.HEADER):
                self._header(m, r)
            with m.Case(CommandState.CHECK):
                self._check(m, r)
            with m.Case(CommandState.TABLES), m.If(self.tables.done):
                self._reply_bytes(m, FrameType.OK, 1, r.ftype)
                r.goto(m, CommandState.REPLY)
            with m.Case(CommandState.RUN):
                self._run(m, r)
            with m.Case(CommandState.REPLY), m.If(replied):
                m.d.comb += self.i_frame.ready.eq(1)
                r.goto(m, CommandState.IDLE)
            with m.Case(CommandState.DONE_ERROR), m.If(replied):
                r.goto(m, CommandState.IDLE)
        return m

    # -- the reply ------------------------------------------------------------------------

    def _reply(self, m, rtype, length) -> None:
        """Send a reply header of type ``rtype`` and ``length`` payload bytes."""
        p = self.o_header.payload
        m.d.sync += [self.o_header.valid.eq(1), p.type.eq(rtype), p.length.eq(length)]

    def _select(self, m, source: ReplySource, small=0) -> None:
        m.d.comb += [
            self.reply.select.eq(1),
            self.reply.source.eq(source),
            self.reply.small.eq(small),
        ]

    def _reply_bytes(self, m, rtype, length, value) -> None:
        """A reply whose payload is the ``length`` (1 or 2) low bytes of ``value``."""
        self._reply(m, rtype, length)
        self._select(m, ReplySource.BYTES, value)

    def _error_reply(self, m, code, offending) -> None:
        """ERROR with ``code`` for a request of TYPE ``offending``."""
        code = Const(code, 8) if isinstance(code, int) else code
        self._reply_bytes(m, FrameType.ERROR, 2, Cat(code, offending))

    def _refuse(self, m, r, code) -> None:
        """Answer the request with ERROR ``code`` and release it."""
        self._error_reply(m, code, r.ftype)
        r.goto(m, CommandState.REPLY)

    # -- the states -----------------------------------------------------------------------

    def _idle(self, m, r):
        err, frame = self.i_error, self.i_frame
        with m.If(err.valid):
            m.d.comb += err.ready.eq(1)
            m.d.sync += self.o_header.payload.seq.eq(err.payload.seq)
            self._error_reply(m, err.payload.code, err.payload.type)
            r.goto(m, CommandState.DONE_ERROR)
        with m.Elif(frame.valid):
            m.d.comb += [self.restart.eq(1), self.frame.eq(1)]
            m.d.sync += [
                r.ftype.eq(frame.payload.type),
                self.o_header.payload.seq.eq(frame.payload.seq),
                r.flen.eq(frame.payload.length),
            ]
            r.goto(m, CommandState.DISPATCH)

    def _dispatch(self, m, r):
        """Refuse an unknown TYPE or a LENGTH wrong for it; else start on the request."""
        length_ok = {
            FrameType.IDENTIFY: r.flen == 0,
            FrameType.READ_COUNTERS: r.flen == 0,
            FrameType.LOAD_TABLES: r.flen >= _LOAD_HEAD,
            FrameType.INFER: r.flen == self._p.vector_bytes,
            FrameType.INFER_BATCH: r.flen >= _BATCH_HEAD,
        }
        m.d.sync += [r.head_left.eq(0), r.count.eq(1)]
        with m.Switch(r.ftype):
            for ftype, ok in length_ok.items():
                with m.Case(ftype):
                    with m.If(ok):
                        self._accept(m, r, ftype)
                    with m.Else():
                        self._refuse(m, r, ErrorCode.BAD_LENGTH)
            with m.Default():
                self._refuse(m, r, ErrorCode.UNKNOWN_TYPE)

    def _accept(self, m, r, ftype: FrameType):
        if ftype == FrameType.IDENTIFY:
            self._reply(m, FrameType.IDENTITY, len(self._p.identity.encode()))
            self._select(m, ReplySource.IDENTITY)
            r.goto(m, CommandState.REPLY)
        elif ftype == FrameType.READ_COUNTERS:
            self._reply(m, FrameType.COUNTERS, Counters.SIZE)
            self._select(m, ReplySource.COUNTERS)
            r.goto(m, CommandState.REPLY)
        elif ftype == FrameType.INFER:
            r.goto(m, CommandState.CHECK)
        else:
            head = _LOAD_HEAD if ftype == FrameType.LOAD_TABLES else _BATCH_HEAD
            m.d.sync += r.head_left.eq(head)
            r.goto(m, CommandState.HEADER)

    def _header(self, m, r):
        """Shift the payload's head in, a byte a cycle; its last field is the count."""
        m.d.comb += self.advance.eq(1)
        shifted = Cat(r.head[8:], self.i_byte)
        m.d.sync += [r.head.eq(shifted), r.head_left.eq(r.head_left - 1)]
        with m.If(r.head_left == 1):
            with m.If(r.ftype == FrameType.LOAD_TABLES):
                m.d.sync += r.count.eq(_head(LoadTablesHeader, shifted).count)
            with m.Else():
                m.d.sync += r.count.eq(_head(InferBatchHeader, shifted).count)
            r.goto(m, CommandState.CHECK)

    def _check(self, m, r):
        m.d.sync += r.results.eq(0)
        with m.Switch(r.ftype):
            with m.Case(FrameType.LOAD_TABLES):
                self._check_load(m, r)
            with m.Case(FrameType.INFER_BATCH):
                self._check_batch(m, r)
            with m.Default():  # INFER
                self._start_run(m, r, FrameType.RESULT, self._p.result_bytes)

    def _check_load(self, m, r):
        p = self._p
        load = _head(LoadTablesHeader, r.head)
        with m.If(r.flen != _LOAD_HEAD + r.count * p.table_word_bytes):
            self._refuse(m, r, ErrorCode.BAD_LENGTH)
        with m.Elif(
            (load.layer >= p.n_layers) | (load.offset + r.count > (1 << p.table_addr_bits))
        ):
            self._refuse(m, r, ErrorCode.BAD_ARGUMENT)
        with m.Elif(r.count == 0):
            self._reply_bytes(m, FrameType.OK, 1, r.ftype)
            r.goto(m, CommandState.REPLY)
        with m.Else():
            m.d.comb += self.tables.start.eq(1)
            r.goto(m, CommandState.TABLES)

    def _check_batch(self, m, r):
        p = self._p
        with m.If(r.count == 0):
            self._refuse(m, r, ErrorCode.BAD_ARGUMENT)
        with m.Elif(r.flen != _BATCH_HEAD + r.count * p.vector_bytes):
            self._refuse(m, r, ErrorCode.BAD_LENGTH)
        with m.Else():
            self._start_run(m, r, FrameType.RESULT_BATCH, r.count * p.result_bytes)

    def _start_run(self, m, r, rtype, length):
        """Reply ``rtype`` of ``length`` bytes, each result sent as it arrives; start feeding."""
        self._reply(m, rtype, length)
        self._select(m, ReplySource.RESULTS)
        m.d.comb += self.feed.start.eq(1)
        r.goto(m, CommandState.RUN)

    def _run(self, m, r):
        """Take the results one at a time as the reply sends them; done when every vector
        went in and every result went out."""
        res, reply = self.i_result, self.reply
        m.d.comb += [
            res.ready.eq(reply.result_empty & (r.results != r.count)),
            self.cycle.eq(~(res.valid & ~res.ready)),  # stalls on the reply are not compute
        ]
        with m.If(res.valid & res.ready):
            m.d.comb += [reply.result.eq(res.payload), reply.result_load.eq(1)]
            m.d.comb += self.inference.eq(1)
            m.d.sync += r.results.eq(r.results + 1)
        with m.If((r.results == r.count) & reply.result_empty & ~self.feed.busy):
            r.goto(m, CommandState.REPLY)
