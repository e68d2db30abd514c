"""A language model's side of the host link: GENERATE's token loop and SET_SAMPLER's writes.

:class:`TokenGenerator` feeds a GENERATE request's prompt to the core, drops the answers to
all but its last token and then feeds every answer back as the next token until the request
has its answers, each handed to the reply as it is chosen
(:mod:`~spikelut.hdl.hostlink.wire`, "Language models"). :class:`SamplerWriter` writes a
SET_SAMPLER payload into the selector's exponential table.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.hostlink.params import LinkParams

__all__ = [
    "SamplerWriter",
    "TokenGenerator",
    "exp_write_layout",
    "generate_control",
    "sampler_control",
    "token_layout",
]


def token_layout() -> data.StructLayout:
    """A token for the core: ``token`` (a byte) and ``first`` (it starts a sequence)."""
    return data.StructLayout({"token": 8, "first": 1})


def exp_write_layout(params: LinkParams) -> data.StructLayout:
    """One exponential-table write: entry ``addr`` and its 16-bit weight ``data``."""
    return data.StructLayout({"addr": range(params.exp_entries), "data": 16})


def generate_control() -> wiring.Signature:
    """How the command executor drives a :class:`TokenGenerator` (the executor's side):
    ``start`` (a strobe) a GENERATE of ``prompt`` tokens (read from the payload at the
    reader's position), ``first`` (START: the first token fed starts the sequence),
    ``resume`` (feed the last generated token first) and ``count`` answers; ``busy`` until
    the last answer has been taken."""
    return wiring.Signature(
        {
            "start": Out(1),
            "prompt": Out(16),
            "count": Out(16),
            "first": Out(1),
            "resume": Out(1),
            "busy": In(1),
        }
    )


def sampler_control() -> wiring.Signature:
    """How the command executor drives a :class:`SamplerWriter`: ``start`` (a strobe);
    ``done`` in the cycle the last entry is written."""
    return wiring.Signature({"start": Out(1), "done": In(1)})


class TokenGenerator(wiring.Component):
    """GENERATE's token loop between the payload, the core and the reply.

    ``control`` (:func:`generate_control`); the payload reader: ``i_byte`` (the byte at the
    reader's position), ``advance``; the core: ``o_token`` (:func:`token_layout`) and
    ``i_answer`` (its chosen token); the reply: ``o_result``, the answers the request
    returns, in order. ``answered`` pulses for every answer taken from the core. The last
    answer handed to the reply is kept across requests: ``resume`` feeds it first. A token
    is fed only after the previous answer has been taken by the reply, so that the cycles
    in which an answer waits on the UART are the core's idle cycles.
    """

    def __init__(self, params: LinkParams):
        self._p = params
        super().__init__(
            {
                "control": In(generate_control()),
                "i_byte": In(8),
                "advance": Out(1),
                "o_token": Out(stream.Signature(token_layout())),
                "i_answer": In(stream.Signature(8)),
                "o_result": Out(stream.Signature(8)),
                "answered": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        ctl, tok, ans, res = self.control, self.o_token, self.i_answer, self.o_result
        left = Signal(16)  # prompt tokens still to read
        need = Signal(16)  # answers still to hand to the reply
        first = Signal()  # the next token fed starts the sequence
        token = Signal(8)
        answer = Signal(8)
        last = Signal(8)  # the last answer handed to the reply, kept across requests
        m.d.comb += [
            tok.payload.token.eq(token),
            tok.payload.first.eq(first),
            res.payload.eq(answer),
        ]
        with m.FSM():
            with m.State("IDLE"), m.If(ctl.start):
                m.d.sync += [
                    left.eq(ctl.prompt),
                    need.eq(ctl.count),
                    first.eq(ctl.first),
                    token.eq(last),
                ]
                with m.If(ctl.resume):
                    m.next = "FEED"
                with m.Else():
                    m.next = "READ"
            with m.State("READ"):  # the next prompt token from the payload
                m.d.comb += [ctl.busy.eq(1), self.advance.eq(1)]
                m.d.sync += [token.eq(self.i_byte), left.eq(left - 1)]
                m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += [ctl.busy.eq(1), tok.valid.eq(1)]
                with m.If(tok.ready):
                    m.d.sync += first.eq(0)
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += [ctl.busy.eq(1), ans.ready.eq(1)]
                with m.If(ans.valid):
                    m.d.comb += self.answered.eq(1)
                    m.d.sync += answer.eq(ans.payload)
                    with m.If(left != 0):  # an answer within the prompt: dropped
                        m.next = "READ"
                    with m.Else():
                        m.next = "OFFER"
            with m.State("OFFER"):
                m.d.comb += [ctl.busy.eq(1), res.valid.eq(1)]
                with m.If(res.ready):
                    m.d.sync += [last.eq(answer), token.eq(answer), need.eq(need - 1)]
                    with m.If(need == 1):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "FEED"
        return m


class SamplerWriter(wiring.Component):
    """Writes a SET_SAMPLER payload (``exp_entries`` 16-bit weights, little-endian, read
    from the reader's position) to ``o_exp`` (:func:`exp_write_layout`), entry 0 first.
    ``control``: :func:`sampler_control`."""

    def __init__(self, params: LinkParams):
        self._p = params
        super().__init__(
            {
                "control": In(sampler_control()),
                "i_byte": In(8),
                "advance": Out(1),
                "o_exp": Out(stream.Signature(exp_write_layout(params))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        ctl, o = self.control, self.o_exp
        low = Signal(8)
        m.d.comb += o.payload.data.eq(Cat(low, self.i_byte))
        with m.FSM():
            with m.State("IDLE"), m.If(ctl.start):
                m.d.sync += o.payload.addr.eq(0)
                m.next = "LOW"
            with m.State("LOW"):
                m.d.comb += self.advance.eq(1)
                m.d.sync += low.eq(self.i_byte)
                m.next = "HIGH"
            with m.State("HIGH"):  # the high byte is on i_byte: write the entry
                m.d.comb += o.valid.eq(1)
                with m.If(o.ready):
                    m.d.comb += self.advance.eq(1)
                    m.d.sync += o.payload.addr.eq(o.payload.addr + 1)
                    with m.If(o.payload.addr == self._p.exp_entries - 1):
                        m.d.comb += ctl.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "LOW"
        return m
