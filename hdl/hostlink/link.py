"""The board's side of the host link: frame parser, command executor and reply framer joined.

The frame format and the commands are specified in :mod:`spikelut.hdl.hostlink.wire`. One
frame is handled at a time; bytes that arrive while the link is busy are not accepted (the
UART receiver then drops them). The parts, one module each: :class:`~.parser.FrameParser`
(bytes to CRC-checked frames and their payload buffer), :class:`~.executor.CommandExecutor`
(request to reply), :class:`~.feeder.VectorFeeder` (payload to input vectors),
:class:`~.tables.TableWriter` (payload to table writes), :class:`~.tablestate.TablesState`
(whose tables, valid or not, and the load in progress), :class:`~.payload.ReplyPayload`
(the reply's bytes), :class:`~.counters.LinkCounters` and :class:`~.framer.ReplyFramer`
(reply to bytes); for a language model :class:`~.generator.TokenGenerator` (GENERATE's token
loop) and :class:`~.generator.SamplerWriter` (SET_SAMPLER) instead of the feeder.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.hostlink.counters import LinkCounters
from spikelut.hdl.hostlink.executor import CommandExecutor
from spikelut.hdl.hostlink.feeder import VectorFeeder
from spikelut.hdl.hostlink.framer import ReplyFramer
from spikelut.hdl.hostlink.generator import (
    SamplerWriter,
    TokenGenerator,
    exp_write_layout,
    token_layout,
)
from spikelut.hdl.hostlink.params import LinkParams
from spikelut.hdl.hostlink.parser import FrameParser
from spikelut.hdl.hostlink.payload import ReplyPayload
from spikelut.hdl.hostlink.tables import TableWriter, table_write_layout
from spikelut.hdl.hostlink.tablestate import TablesState
from spikelut.hdl.hostlink.wire import Identity
from spikelut.hdl.selector import selector_config_layout

__all__ = ["HostLink"]


class HostLink(wiring.Component):
    """The board's side of the host link, between a UART and a network core.

    Parameters: as :class:`~spikelut.hdl.hostlink.params.LinkParams` (checked before
    anything is built). UART side: ``uart_rx`` (bytes received) and ``uart_tx`` (bytes to
    send). Core side:

    - ``o_vector``: input vectors for the core's ``i_stream``, ``n_inputs // lanes`` beats per
      vector, each an ``ArrayLayout(signed(in_width), lanes)`` (lane 0 holds the lowest index);
    - ``i_result``: one ``result_width``-bit word per inference, in order;
    - ``o_table``: table writes from LOAD_TABLES, ``{layer, addr, data}``, one word per beat,
      issued only after the whole frame passed its CRC and range checks.

    A language model's link (``kind`` LANGUAGE_MODEL) has, instead of ``o_vector`` and
    ``i_result``: ``o_token`` (tokens for an :class:`~spikelut.hdl.recurrent.RNNCore`'s
    ``i_stream``: ``token``, ``first``), ``i_answer`` (its chosen tokens), ``o_cfg`` (for its
    ``cfg_stream``) and ``o_exp`` (for its ``w_exp``).

    Board side: ``hold`` (take no request while high: the boot load runs), ``set_tables``
    (a strobe: a boot load passed) with ``set_hash`` (its model hash, first byte lowest),
    ``tables_valid`` (the tables are valid: INFER is answered).

    ``busy`` is high while a command runs; ``error`` pulses for each ERROR reply (for LEDs).
    IDENTIFY answers with the parameters and the tables' status (see
    :class:`~spikelut.hdl.hostlink.wire.Identity`). The counters are 32 bits (cycles 48
    bits) and wrap.
    """

    def __init__(self, **params):
        self._p = p = LinkParams(**params)
        ports = {
            "uart_rx": In(stream.Signature(8)),
            "uart_tx": Out(stream.Signature(8)),
            "o_table": Out(stream.Signature(table_write_layout(p))),
            "hold": In(1),
            "set_tables": In(1),
            "set_hash": In(8 * p.hash_bytes),
            "tables_valid": Out(1),
            "busy": Out(1),
            "error": Out(1),
        }
        if p.is_language_model:
            ports["o_token"] = Out(stream.Signature(token_layout()))
            ports["i_answer"] = In(stream.Signature(8))
            ports["o_cfg"] = Out(stream.Signature(selector_config_layout()))
            ports["o_exp"] = Out(stream.Signature(exp_write_layout(p)))
        else:
            ports["o_vector"] = Out(stream.Signature(data.ArrayLayout(signed(p.in_width), p.lanes)))
            ports["i_result"] = In(stream.Signature(p.result_width))
        super().__init__(ports)

    @property
    def params(self) -> LinkParams:
        """The checked parameters."""
        return self._p

    @property
    def identity(self) -> Identity:
        """What IDENTIFY replies."""
        return self._p.identity

    @property
    def lanes(self) -> int:
        """Input values per ``o_vector`` beat."""
        return self._p.lanes

    def elaborate(self, platform):
        m = Module()
        p = self._p
        m.submodules.parser = parser = FrameParser(
            max_payload=p.max_payload, timeout_cycles=p.timeout_cycles
        )
        m.submodules.executor = ex = CommandExecutor(p)
        m.submodules.tables = tables = TableWriter(p)
        m.submodules.payload = payload = ReplyPayload(p)
        m.submodules.tables_state = state = TablesState(p)
        m.submodules.counters = counters = LinkCounters()
        m.submodules.framer = framer = ReplyFramer()

        wiring.connect(m, wiring.flipped(self.uart_rx), parser.i_stream)
        wiring.connect(m, parser.o_frame, ex.i_frame)
        wiring.connect(m, parser.o_error, ex.i_error)
        wiring.connect(m, ex.tables, tables.control)
        wiring.connect(m, ex.tables_state, state.control)
        wiring.connect(m, ex.reply, payload.control)
        wiring.connect(m, tables.o_table, wiring.flipped(self.o_table))
        readers, inference = self._core_side(m, ex)
        wiring.connect(m, ex.o_header, framer.i_header)
        wiring.connect(m, payload.o_stream, framer.i_stream)
        wiring.connect(m, framer.o_stream, wiring.flipped(self.uart_tx))

        # the payload reader: the buffer byte at ``ptr`` is always on ``rd_data``
        ptr = Signal(16)
        advance = ex.advance | tables.advance
        for reader in readers:
            advance = advance | reader.advance
            m.d.comb += reader.i_byte.eq(parser.rd_data)
        ptr_next = Mux(ex.restart, ex.restart_at, ptr + advance)
        m.d.comb += parser.rd_addr.eq(ptr_next)
        m.d.sync += ptr.eq(ptr_next)
        m.d.comb += [
            ex.i_byte.eq(parser.rd_data),
            tables.i_byte.eq(parser.rd_data),
            state.take.eq(advance & ex.table_bytes),
            state.byte.eq(parser.rd_data),
            state.set.eq(self.set_tables),
            state.set_hash.eq(self.set_hash),
            ex.hold.eq(self.hold),
            payload.tables_valid.eq(state.valid),
            payload.tables_hash.eq(state.hash),
            self.tables_valid.eq(state.valid),
            ex.reply_idle.eq(framer.idle),
            counters.frame.eq(ex.frame),
            counters.error.eq(ex.error),
            counters.inference.eq(inference),
            counters.cycle.eq(ex.cycle),
            payload.counters.eq(counters.value),
            self.busy.eq(ex.busy),
            self.error.eq(ex.error),
        ]
        return m

    def _core_side(self, m, ex):
        """The parts between the executor and the core; returns the payload readers among
        them and the strobe of a core answer."""
        p = self._p
        if not p.is_language_model:
            m.submodules.feeder = feeder = VectorFeeder(p)
            wiring.connect(m, ex.feed, feeder.control)
            wiring.connect(m, wiring.flipped(self.i_result), ex.i_result)
            wiring.connect(m, feeder.o_vector, wiring.flipped(self.o_vector))
            return [feeder], ex.inference
        m.submodules.generator = gen = TokenGenerator(p)
        m.submodules.sampler = sampler = SamplerWriter(p)
        wiring.connect(m, ex.generate, gen.control)
        wiring.connect(m, ex.sampler, sampler.control)
        wiring.connect(m, gen.o_token, wiring.flipped(self.o_token))
        wiring.connect(m, wiring.flipped(self.i_answer), gen.i_answer)
        wiring.connect(m, gen.o_result, ex.i_result)
        wiring.connect(m, ex.o_cfg, wiring.flipped(self.o_cfg))
        wiring.connect(m, sampler.o_exp, wiring.flipped(self.o_exp))
        return [gen, sampler], gen.answered
