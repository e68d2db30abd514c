"""Gateware side of the host link: frame parser, reply framer, and the command executor.

The frame format and the commands are those of :mod:`spikelut.boards.protocol` (its
docstring is the specification). The parser stores a frame's payload in a buffer and hands
the frame on only after its CRC checks out, so nothing (no table write, no inference) ever
happens on behalf of a bad frame. One frame is handled at a time; bytes that arrive while
the link is busy are not accepted (the UART receiver then drops them).
"""

from amaranth import Array, Cat, Const, Module, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.boards.protocol import (
    PROTOCOL_VERSION,
    SYNC,
    Counters,
    ErrorCode,
    FrameType,
    Identity,
    value_bytes,
)

from .crc import INIT as CRC_INIT
from .crc import crc16_next
from .params import silent_on_error

HeaderLayout = data.StructLayout({"type": 8, "seq": 8, "length": 16})
ErrorLayout = data.StructLayout({"code": 8, "type": 8, "seq": 8})


def _int_param(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer {lo}..{hi}, not {value!r}")
    return value


class FrameParser(wiring.Component):
    """Parses frames from ``i_stream`` into a payload buffer and checks their CRC.

    A good frame is offered on ``o_frame`` (type, seq and length) and stays there, with its payload
    readable through ``rd_addr``/``rd_data`` (synchronous: ``rd_data`` shows the byte at the
    ``rd_addr`` of the previous cycle), until the consumer accepts it; only then does parsing
    resume. A bad frame is offered on ``o_error`` instead: a LENGTH above ``max_payload``
    (BAD_LENGTH, at once), a CRC mismatch (CRC), or no byte for ``timeout_cycles`` cycles in
    the middle of a frame (TIMEOUT). Bytes outside frames are skipped up to the next SYNC.
    """

    @silent_on_error
    def __init__(self, *, max_payload: int, timeout_cycles: int):
        self._max_payload = _int_param("max_payload", max_payload, 1, 0xFFFF)
        self._timeout = _int_param("timeout_cycles", timeout_cycles, 1, 1 << 32)
        super().__init__(
            {
                "i_stream": In(stream.Signature(8)),
                "o_frame": Out(stream.Signature(HeaderLayout)),
                "o_error": Out(stream.Signature(ErrorLayout)),
                "rd_addr": In(range(max_payload)),
                "rd_data": Out(8),
            }
        )

    @property
    def max_payload(self) -> int:
        """Largest payload accepted, in bytes."""
        return self._max_payload

    def elaborate(self, platform):
        m = Module()
        m.submodules.buf = buf = memory.Memory(shape=8, depth=self._max_payload, init=[])
        wr = buf.write_port()
        rd = buf.read_port()
        m.d.comb += [rd.addr.eq(self.rd_addr), self.rd_data.eq(rd.data)]

        byte = self.i_stream.payload
        took = Signal()
        m.d.comb += took.eq(self.i_stream.valid & self.i_stream.ready)
        crc = Signal(16, init=CRC_INIT)
        crc_next = Signal(16)
        m.d.comb += crc_next.eq(crc16_next(crc, byte))
        ftype = Signal(8)
        seq = Signal(8)
        length = Signal(16)
        ptr = Signal(16)
        code = Signal(8)
        idle = Signal(range(self._timeout + 1))
        in_frame = Signal()

        m.d.comb += [
            self.o_frame.payload.type.eq(ftype),
            self.o_frame.payload.seq.eq(seq),
            self.o_frame.payload.length.eq(length),
            self.o_error.payload.code.eq(code),
            self.o_error.payload.type.eq(ftype),
            self.o_error.payload.seq.eq(seq),
            wr.addr.eq(ptr),
            wr.data.eq(byte),
        ]
        with m.If(took):
            m.d.sync += crc.eq(crc_next)
        with m.If(~in_frame | took):
            m.d.sync += idle.eq(0)
        with m.Else():
            m.d.sync += idle.eq(idle + 1)

        def fail(error_code):
            m.d.sync += code.eq(error_code)
            m.next = "ERROR"

        def in_frame_state():
            m.d.comb += [self.i_stream.ready.eq(1), in_frame.eq(1)]
            with m.If(~took & (idle >= self._timeout - 1)):
                fail(ErrorCode.TIMEOUT)

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.i_stream.ready.eq(1)
                m.d.sync += [crc.eq(CRC_INIT), ftype.eq(0), seq.eq(0)]
                with m.If(took & (byte == SYNC)):
                    m.next = "TYPE"
            with m.State("TYPE"):
                in_frame_state()
                with m.If(took):
                    m.d.sync += ftype.eq(byte)
                    m.next = "SEQ"
            with m.State("SEQ"):
                in_frame_state()
                with m.If(took):
                    m.d.sync += seq.eq(byte)
                    m.next = "LEN0"
            with m.State("LEN0"):
                in_frame_state()
                with m.If(took):
                    m.d.sync += length[:8].eq(byte)
                    m.next = "LEN1"
            with m.State("LEN1"):
                in_frame_state()
                new_length = Cat(length[:8], byte)
                with m.If(took):
                    m.d.sync += [length[8:].eq(byte), ptr.eq(0)]
                    with m.If(new_length > self._max_payload):
                        fail(ErrorCode.BAD_LENGTH)
                    with m.Elif(new_length == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                in_frame_state()
                m.d.comb += wr.en.eq(took)
                with m.If(took):
                    m.d.sync += ptr.eq(ptr + 1)
                    with m.If(ptr == length - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                in_frame_state()
                with m.If(took):
                    m.next = "CRC1"
            with m.State("CRC1"):
                in_frame_state()
                with m.If(took):
                    with m.If(crc_next == 0):
                        m.next = "FRAME"
                    with m.Else():
                        fail(ErrorCode.CRC)
            with m.State("FRAME"):
                m.d.comb += self.o_frame.valid.eq(1)
                with m.If(self.o_frame.ready):
                    m.next = "HUNT"
            with m.State("ERROR"):
                m.d.comb += self.o_error.valid.eq(1)
                with m.If(self.o_error.ready):
                    m.next = "HUNT"
        return m


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
        ftype = Signal(8)
        seq = Signal(8)
        length = Signal(16)
        count = Signal(16)
        crc = Signal(16, init=CRC_INIT)
        out = self.o_stream
        sent = Signal()
        m.d.comb += sent.eq(out.valid & out.ready)
        with m.If(sent):
            m.d.sync += crc.eq(crc16_next(crc, out.payload))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.idle.eq(1), self.i_header.ready.eq(1)]
                m.d.sync += crc.eq(CRC_INIT)
                with m.If(self.i_header.valid):
                    m.d.sync += [
                        ftype.eq(self.i_header.payload.type),
                        seq.eq(self.i_header.payload.seq),
                        length.eq(self.i_header.payload.length),
                        count.eq(0),
                    ]
                    m.next = "SYNC"
            with m.State("SYNC"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(SYNC)]
                # SYNC is outside the CRC
                m.d.sync += crc.eq(CRC_INIT)
                with m.If(out.ready):
                    m.next = "TYPE"
            with m.State("TYPE"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(ftype)]
                with m.If(out.ready):
                    m.next = "SEQ"
            with m.State("SEQ"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(seq)]
                with m.If(out.ready):
                    m.next = "LEN0"
            with m.State("LEN0"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(length[:8])]
                with m.If(out.ready):
                    m.next = "LEN1"
            with m.State("LEN1"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(length[8:])]
                with m.If(out.ready):
                    with m.If(length == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [
                    out.valid.eq(self.i_stream.valid),
                    out.payload.eq(self.i_stream.payload),
                    self.i_stream.ready.eq(out.ready),
                ]
                with m.If(sent):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == length - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(crc[8:])]
                m.d.sync += crc.eq(crc)  # hold it: the CRC bytes are not part of the CRC
                with m.If(out.ready):
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(crc[:8])]
                with m.If(out.ready):
                    m.next = "IDLE"
        return m


class HostLink(wiring.Component):
    """The board's side of the host link, between a UART and a network core.

    UART side: ``uart_rx`` (bytes received) and ``uart_tx`` (bytes to send).
    Core side:

    - ``o_vector``: input vectors for the core's ``i_stream``, ``n_inputs // lanes`` beats per
      vector, each an ``ArrayLayout(signed(in_width), lanes)`` (lane 0 holds the lowest index);
    - ``i_result``: one ``result_width``-bit word per inference, in order;
    - ``o_table``: table writes from LOAD_TABLES, ``{layer, addr, data}``, one word per beat,
      issued only after the whole frame passed its CRC and range checks.

    ``busy`` is high while a command runs; ``error`` pulses for each ERROR reply (for LEDs).
    IDENTIFY answers with the constructor's parameters (see :class:`~spikelut.boards.protocol.Identity`).
    The counters are 32 bits (cycles 48 bits) and wrap.
    """

    @silent_on_error
    def __init__(
        self,
        *,
        in_width: int,
        n_inputs: int,
        result_width: int,
        table_word_bits: int,
        table_addr_bits: int,
        n_layers: int,
        clock_hz: int,
        model_hash: bytes,
        lanes: int | None = None,
        max_payload: int = 512,
        timeout_cycles: int,
    ):
        self._identity = Identity(
            in_width=_int_param("in_width", in_width, 1, 32),
            n_inputs=_int_param("n_inputs", n_inputs, 1, 0xFFFF),
            result_width=_int_param("result_width", result_width, 1, 64),
            table_word_bits=_int_param("table_word_bits", table_word_bits, 1, 64),
            table_addr_bits=_int_param("table_addr_bits", table_addr_bits, 1, 32),
            n_layers=_int_param("n_layers", n_layers, 1, 255),
            clock_hz=_int_param("clock_hz", clock_hz, 1, 0xFFFFFFFF),
            max_payload=_int_param("max_payload", max_payload, 1, 0xFFFF),
            model_hash=bytes(model_hash),
        )
        if len(self._identity.model_hash) > 64:
            raise ValueError(f"model_hash must be at most 64 bytes, not {len(model_hash)}")
        self._lanes = n_inputs if lanes is None else _int_param("lanes", lanes, 1, n_inputs)
        if n_inputs % self._lanes:
            raise ValueError(f"lanes ({self._lanes}) must divide n_inputs ({n_inputs})")
        ident = self._identity
        need = max(ident.vector_bytes + 2, 7 + ident.table_word_bytes)
        if max_payload < need:
            raise ValueError(
                f"max_payload {max_payload} cannot hold one input vector or table word; "
                f"use at least {need}"
            )
        if (max_payload // ident.vector_bytes) * ident.result_bytes > 0xFFFF:
            raise ValueError("max_payload allows a batch whose reply exceeds 65535 bytes; lower it")
        self._timeout = _int_param("timeout_cycles", timeout_cycles, 1, 1 << 32)
        super().__init__(
            {
                "uart_rx": In(stream.Signature(8)),
                "uart_tx": Out(stream.Signature(8)),
                "o_vector": Out(stream.Signature(data.ArrayLayout(signed(in_width), self._lanes))),
                "i_result": In(stream.Signature(result_width)),
                "o_table": Out(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "layer": range(n_layers),
                                "addr": table_addr_bits,
                                "data": table_word_bits,
                            }
                        )
                    )
                ),
                "busy": Out(1),
                "error": Out(1),
            }
        )

    @property
    def identity(self) -> Identity:
        """What IDENTIFY replies."""
        return self._identity

    @property
    def lanes(self) -> int:
        """Input values per ``o_vector`` beat."""
        return self._lanes

    def elaborate(self, platform):
        m = Module()
        ident = self._identity
        m.submodules.parser = parser = FrameParser(
            max_payload=ident.max_payload, timeout_cycles=self._timeout
        )
        m.submodules.framer = framer = ReplyFramer()
        wiring.connect(m, wiring.flipped(self.uart_rx), parser.i_stream)
        wiring.connect(m, framer.o_stream, wiring.flipped(self.uart_tx))

        vb, rb, wb = value_bytes(ident.in_width), ident.result_bytes, ident.table_word_bytes
        beats_per_vector = ident.n_inputs // self._lanes

        # --- payload buffer reader: rd_data always shows buf[ptr] ---------------------------
        ptr = Signal(16)
        ptr_d = Signal(16)
        m.d.comb += [ptr_d.eq(ptr), parser.rd_addr.eq(ptr_d)]
        m.d.sync += ptr.eq(ptr_d)
        rd_byte = parser.rd_data

        # --- the reply: header register and payload sources ---------------------------------
        reply_valid = Signal()
        reply_type = Signal(8)
        reply_seq = Signal(8)
        reply_len = Signal(16)
        m.d.comb += [
            framer.i_header.valid.eq(reply_valid),
            framer.i_header.payload.type.eq(reply_type),
            framer.i_header.payload.seq.eq(reply_seq),
            framer.i_header.payload.length.eq(reply_len),
        ]
        with m.If(framer.i_header.ready):
            m.d.sync += reply_valid.eq(0)

        def reply(rtype, rlen):
            m.d.sync += [reply_valid.eq(1), reply_type.eq(rtype), reply_len.eq(rlen)]

        # --- counters -----------------------------------------------------------------------
        inferences = Signal(32)
        errors = Signal(32)
        frames = Signal(32)
        cycles = Signal(48)
        # they do not change while a COUNTERS reply is sent, so it reads them live
        counter_bytes = Cat(inferences, errors, frames, cycles)

        # payload sources: OK/ERROR bytes, the IDENTITY constants, the counters, results
        SRC_SMALL, SRC_ROM, SRC_COUNTERS, SRC_RESULT = 0, 1, 2, 3
        src = Signal(2)
        small = Signal(16)  # OK and ERROR payloads, low byte first
        rom_bytes = ident.encode()
        rom = Array(Const(b, 8) for b in rom_bytes)
        counters = Array(counter_bytes[8 * i : 8 * i + 8] for i in range(Counters.SIZE))
        idx = Signal(range(max(len(rom_bytes), Counters.SIZE) + 1))
        res_sr = Signal(rb * 8)
        res_left = Signal(range(rb + 1))
        pay = framer.i_stream
        with m.Switch(src):
            with m.Case(SRC_SMALL):
                m.d.comb += [pay.valid.eq(1), pay.payload.eq(small[:8])]
                with m.If(pay.ready):
                    m.d.sync += small.eq(small >> 8)
            with m.Case(SRC_ROM):
                m.d.comb += [pay.valid.eq(1), pay.payload.eq(rom[idx])]
                with m.If(pay.ready):
                    m.d.sync += idx.eq(idx + 1)
            with m.Case(SRC_COUNTERS):
                m.d.comb += [pay.valid.eq(1), pay.payload.eq(counters[idx])]
                with m.If(pay.ready):
                    m.d.sync += idx.eq(idx + 1)
            with m.Case(SRC_RESULT):
                m.d.comb += [pay.valid.eq(res_left != 0), pay.payload.eq(res_sr[:8])]
                with m.If(pay.valid & pay.ready):
                    m.d.sync += [res_sr.eq(res_sr >> 8), res_left.eq(res_left - 1)]
        m.d.comb += self.error.eq(
            reply_valid & framer.i_header.ready & (reply_type == FrameType.ERROR)
        )
        with m.If(self.error):
            m.d.sync += errors.eq(errors + 1)

        # --- command state ------------------------------------------------------------------
        ftype = Signal(8)
        flen = Signal(16)
        hdr = Signal(56)  # header fields of LOAD_TABLES/INFER_BATCH, shifted in from the top
        hdr_left = Signal(range(8))
        count = Signal(16)  # vectors or table words in this command
        layer = Signal(8)
        offset = Signal(ident.table_addr_bits)
        byte_idx = Signal(range(max(vb, wb) + 1))
        lane_idx = Signal(range(self._lanes + 1))
        max_beats = (ident.max_payload // ident.vector_bytes) * beats_per_vector
        beats_fed = Signal(range(max_beats + 2))
        results_seen = Signal(16)
        value_sr = Signal(max(vb, wb) * 8)
        vec_sr = Signal(ident.in_width * self._lanes)
        vec_pending = Signal()
        feeding = Signal()
        total_beats = Signal(range(max_beats + 2))

        # the byte just read completes a value (or table word) when it is its last byte
        assembled = Cat(value_sr, rd_byte)[8:]  # value_sr after shifting in rd_byte at the top

        m.d.comb += [self.o_vector.payload.eq(vec_sr), self.o_vector.valid.eq(vec_pending)]
        with m.If(self.o_vector.valid & self.o_vector.ready):
            m.d.sync += [vec_pending.eq(0), beats_fed.eq(beats_fed + 1)]

        # feeder: buffer bytes -> values -> lanes -> o_vector beats, concurrently with results
        with m.If(feeding & ~vec_pending):
            m.d.comb += ptr_d.eq(ptr + 1)
            m.d.sync += value_sr.eq(assembled)
            with m.If(byte_idx == vb - 1):
                value = assembled[(max(vb, wb) - vb) * 8 :][: ident.in_width]
                new_vec = Cat(vec_sr, value)[ident.in_width :]
                m.d.sync += [vec_sr.eq(new_vec), byte_idx.eq(0)]
                with m.If(lane_idx == self._lanes - 1):
                    m.d.sync += [lane_idx.eq(0), vec_pending.eq(1)]
                    with m.If(beats_fed + 1 == total_beats):
                        m.d.sync += feeding.eq(0)
                with m.Else():
                    m.d.sync += lane_idx.eq(lane_idx + 1)
            with m.Else():
                m.d.sync += byte_idx.eq(byte_idx + 1)

        def start_reply_from_sr(rtype, rlen, value):
            reply(rtype, rlen)
            m.d.sync += [src.eq(SRC_SMALL), small.eq(value)]

        def error_reply(error_code, offending):
            code = Const(error_code, 8) if isinstance(error_code, int) else error_code
            start_reply_from_sr(FrameType.ERROR, 2, Cat(code, offending))

        with m.FSM():
            with m.State("IDLE"):
                with m.If(parser.o_error.valid):
                    m.d.comb += parser.o_error.ready.eq(1)
                    m.d.sync += reply_seq.eq(parser.o_error.payload.seq)
                    error_reply(parser.o_error.payload.code, parser.o_error.payload.type)
                    m.next = "DONE_ERROR"
                with m.Elif(parser.o_frame.valid):
                    m.d.comb += ptr_d.eq(0)
                    m.d.sync += [
                        ftype.eq(parser.o_frame.payload.type),
                        reply_seq.eq(parser.o_frame.payload.seq),
                        flen.eq(parser.o_frame.payload.length),
                        frames.eq(frames + 1),
                    ]
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [hdr_left.eq(0), count.eq(1)]
                with m.Switch(ftype):
                    with m.Case(FrameType.IDENTIFY):
                        with m.If(flen == 0):
                            reply(FrameType.IDENTITY, len(rom_bytes))
                            m.d.sync += [src.eq(SRC_ROM), idx.eq(0)]
                            m.next = "REPLY"
                        with m.Else():
                            error_reply(ErrorCode.BAD_LENGTH, ftype)
                            m.next = "REPLY"
                    with m.Case(FrameType.READ_COUNTERS):
                        with m.If(flen == 0):
                            reply(FrameType.COUNTERS, Counters.SIZE)
                            m.d.sync += [src.eq(SRC_COUNTERS), idx.eq(0)]
                        with m.Else():
                            error_reply(ErrorCode.BAD_LENGTH, ftype)
                        m.next = "REPLY"
                    with m.Case(FrameType.LOAD_TABLES):
                        with m.If(flen >= 7):
                            m.d.sync += hdr_left.eq(7)
                            m.next = "HEADER"
                        with m.Else():
                            error_reply(ErrorCode.BAD_LENGTH, ftype)
                            m.next = "REPLY"
                    with m.Case(FrameType.INFER):
                        with m.If(flen == ident.vector_bytes):
                            m.next = "CHECK"
                        with m.Else():
                            error_reply(ErrorCode.BAD_LENGTH, ftype)
                            m.next = "REPLY"
                    with m.Case(FrameType.INFER_BATCH):
                        with m.If(flen >= 2):
                            m.d.sync += hdr_left.eq(2)
                            m.next = "HEADER"
                        with m.Else():
                            error_reply(ErrorCode.BAD_LENGTH, ftype)
                            m.next = "REPLY"
                    with m.Default():
                        error_reply(ErrorCode.UNKNOWN_TYPE, ftype)
                        m.next = "REPLY"
            with m.State("HEADER"):
                m.d.comb += [self.busy.eq(1), ptr_d.eq(ptr + 1)]
                m.d.sync += [hdr.eq(Cat(hdr[8:], rd_byte)), hdr_left.eq(hdr_left - 1)]
                with m.If(hdr_left == 1):
                    m.d.sync += count.eq(Cat(hdr[8:], rd_byte)[40:56])
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [
                    layer.eq(hdr[:8]),
                    offset.eq(hdr[8:40]),
                    byte_idx.eq(0),
                    lane_idx.eq(0),
                    beats_fed.eq(0),
                    results_seen.eq(0),
                    res_left.eq(0),
                    total_beats.eq(count * beats_per_vector),
                ]
                with m.Switch(ftype):
                    with m.Case(FrameType.LOAD_TABLES):
                        with m.If(flen != 7 + count * wb):
                            error_reply(ErrorCode.BAD_LENGTH, ftype)
                            m.next = "REPLY"
                        with m.Elif(
                            (hdr[:8] >= ident.n_layers)
                            | (hdr[8:40] + count > (1 << ident.table_addr_bits))
                        ):
                            error_reply(ErrorCode.BAD_ARGUMENT, ftype)
                            m.next = "REPLY"
                        with m.Elif(count == 0):
                            start_reply_from_sr(FrameType.OK, 1, ftype)
                            m.next = "REPLY"
                        with m.Else():
                            m.next = "TABLE_READ"
                    with m.Case(FrameType.INFER_BATCH):
                        with m.If(count == 0):
                            error_reply(ErrorCode.BAD_ARGUMENT, ftype)
                            m.next = "REPLY"
                        with m.Elif(flen != 2 + count * ident.vector_bytes):
                            error_reply(ErrorCode.BAD_LENGTH, ftype)
                            m.next = "REPLY"
                        with m.Else():
                            reply(FrameType.RESULT_BATCH, count * rb)
                            m.d.sync += [src.eq(SRC_RESULT), feeding.eq(1)]
                            m.next = "RUN"
                    with m.Default():  # INFER
                        reply(FrameType.RESULT, rb)
                        m.d.sync += [src.eq(SRC_RESULT), feeding.eq(1)]
                        m.next = "RUN"
            with m.State("TABLE_READ"):
                m.d.comb += [self.busy.eq(1), ptr_d.eq(ptr + 1)]
                m.d.sync += value_sr.eq(assembled)
                with m.If(byte_idx == wb - 1):
                    m.d.sync += byte_idx.eq(0)
                    m.next = "TABLE_WRITE"
                with m.Else():
                    m.d.sync += byte_idx.eq(byte_idx + 1)
            with m.State("TABLE_WRITE"):
                m.d.comb += [
                    self.busy.eq(1),
                    self.o_table.valid.eq(1),
                    self.o_table.payload.layer.eq(layer),
                    self.o_table.payload.addr.eq(offset),
                    self.o_table.payload.data.eq(value_sr[(max(vb, wb) - wb) * 8 :]),
                ]
                with m.If(self.o_table.ready):
                    m.d.sync += [offset.eq(offset + 1), count.eq(count - 1)]
                    with m.If(count == 1):
                        start_reply_from_sr(FrameType.OK, 1, ftype)
                        m.next = "REPLY"
                    with m.Else():
                        m.next = "TABLE_READ"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                res = self.i_result
                m.d.comb += res.ready.eq((res_left == 0) & (results_seen != count))
                with m.If(res.valid & res.ready):
                    m.d.sync += [
                        res_sr.eq(res.payload),
                        res_left.eq(rb),
                        results_seen.eq(results_seen + 1),
                        inferences.eq(inferences + 1),
                    ]
                # cycles stalled on the UART transmitter do not count as compute
                with m.If(~(res.valid & ~res.ready)):
                    m.d.sync += cycles.eq(cycles + 1)
                with m.If((results_seen == count) & (res_left == 0) & ~feeding & ~vec_pending):
                    m.next = "REPLY"
            with m.State("REPLY"):
                m.d.comb += self.busy.eq(1)
                with m.If(~reply_valid & framer.idle):
                    m.d.comb += parser.o_frame.ready.eq(1)
                    m.next = "IDLE"
            with m.State("DONE_ERROR"), m.If(~reply_valid & framer.idle):
                m.next = "IDLE"
        return m


__all__ = [
    "PROTOCOL_VERSION",
    "ErrorLayout",
    "FrameParser",
    "HeaderLayout",
    "HostLink",
    "ReplyFramer",
]
