"""Next-byte selection in gateware: greedy, or sampled at a temperature, from chunked logits.

:class:`NextByte` takes a language model's ``V`` logits as a chunk stream (``L`` at a time,
from a chunked layer: :func:`~spikelut.hdl.layouts.chunk_layout`) and answers one index,
bit-exact with :func:`spikelut.compiler.ir.selection.select_byte`:

- greedy: the argmax (ties to the lowest index), found while the chunks arrive (a chunk of
  more than 8 lanes passes a register halfway through its comparator tree: the answer
  leaves 2 cycles after the last chunk instead of 1);
- sampled: weights ``w_i = EXP[min(max - l_i, K - 1)]`` from an exponential table in block
  RAM, their sum ``S`` (one pass over the logits, kept in a small memory as they arrive), a
  draw ``r`` by rejection from an xorshift32 source (one try a clock: the next state,
  masked to the bit length of ``S``, until it is below ``S``) and a second pass to the first
  index whose running sum of weights exceeds ``r``. No multiplier: about ``2 V`` cycles.

``cfg_stream`` sets the rule and the random source's state (``greedy``, ``seed``; taken
only between vectors); ``w_exp`` rewrites the exponential table (between vectors).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layouts import chunk_layout, vector_layout
from spikelut.hdl.params import check_int

__all__ = [
    "NextByte",
    "check_exp_table",
    "sampled_choice_cycles",
    "selector_config_layout",
    "xorshift32",
]


def selector_config_layout() -> data.StructLayout:
    """``cfg_stream`` payload: ``greedy`` (1: argmax, 0: sample), ``seed`` (the random
    source's new 32-bit state; non-zero, since zero is xorshift's fixed point) and ``keep``
    (1: the random state stays as it is and ``seed`` is ignored: a change of rule only)."""
    return data.StructLayout({"greedy": 1, "seed": unsigned(32), "keep": 1})


def check_exp_table(exp, bits: int) -> np.ndarray:
    """An exponential table checked (``>= 2`` unsigned ``bits``-bit entries, the first
    positive), as int64; ``ValueError`` naming what is wrong."""
    exp = np.asarray(exp)
    if exp.ndim != 1 or len(exp) < 2 or not np.issubdtype(exp.dtype, np.integer):
        raise ValueError("exp must be a list of at least 2 integers")
    if exp.min() < 0 or exp.max() >= 1 << bits:
        raise ValueError(f"exp must hold unsigned {bits}-bit entries")
    if exp[0] == 0:
        raise ValueError("exp[0] must be positive (the most likely index weighs most)")
    return exp.astype(np.int64)


def sampled_choice_cycles(vocab: int) -> int:
    """The most cycles a sampled choice takes beyond a greedy one, one draw assumed (each
    rejected draw adds one): two passes over the ``vocab`` logits and their pipelines."""
    return 2 * (vocab + 3) + 3


MAX_COMB_LEVELS = 3
"""The deepest comparator tree :class:`NextByte` keeps in one cycle; a deeper one (more
than 8 lanes) is cut by registers after its first half."""


def _join_levels(m, nodes, *, levels: int, width: int, lanes: int, name: str):
    """``nodes`` (value, lane, in-vocabulary) joined pairwise for up to ``levels`` levels of
    the argmax tree (fewer if one node is left); the nodes that remain."""
    for level in range(levels):
        if len(nodes) == 1:
            break
        joined = []
        for n in range(0, len(nodes) - 1, 2):
            (lv, li, lok), (rv, ri, rok) = nodes[n], nodes[n + 1]
            # a signal per node, so the next level refers to each value once
            nv = Signal(signed(width), name=f"{name}_best_l{level}_{n}")
            ni = Signal(range(lanes), name=f"{name}_at_l{level}_{n}")
            right = rok & (rv > lv)
            m.d.comb += [nv.eq(Mux(right, rv, lv)), ni.eq(Mux(right, ri, li))]
            joined.append((nv, ni, lok))
        if len(nodes) % 2:  # the odd range out passes to the next level
            joined.append(nodes[-1])
        nodes = joined
    return nodes


def xorshift32(x):
    """One step of Marsaglia's xorshift32 (13, 17, 5) on a 32-bit Amaranth value."""
    x = (x ^ (x << 13))[:32]
    x = x ^ (x >> 17)
    return (x ^ (x << 5))[:32]


class NextByte(wiring.Component):
    """Chooses one of ``vocab`` indices from its logits (see the module docstring).

    Parameters: ``vocab`` V; ``width`` of a logit; ``lanes`` L per chunk; ``exp``: the
    initial exponential table (K unsigned entries of ``exp_bits`` bits, ``exp[0] > 0``);
    ``greedy`` and ``seed``: the rule and the random state at reset.

    Ports: ``i_stream`` ``chunk_layout(width, L)`` (``ceil(V/L)`` chunks a vector; lanes
    past ``V`` are ignored); ``o_stream`` the chosen ``index``; ``cfg_stream``
    (:func:`selector_config_layout`); ``w_exp`` (``addr``, ``data``) writes one table entry.
    """

    def __init__(
        self,
        *,
        vocab: int,
        width: int,
        lanes: int,
        exp,
        exp_bits: int = 16,
        greedy: bool = True,
        seed: int = 1,
    ):
        self._v = check_int("vocab", vocab, 2)
        self._w = check_int("width", width, 1, 32)
        self._l = check_int("lanes", lanes, 1, self._v)
        self._exp_bits = check_int("exp_bits", exp_bits, 2, 31)
        self._exp = exp = check_exp_table(exp, self._exp_bits)
        self._greedy = bool(greedy)
        self._seed = check_int("seed", seed, 1, (1 << 32) - 1)
        self._beats = -(-self._v // self._l)
        super().__init__(
            {
                "i_stream": In(stream.Signature(chunk_layout(self._w, self._l))),
                "o_stream": Out(stream.Signature(data.StructLayout({"index": range(self._v)}))),
                "cfg_stream": In(stream.Signature(selector_config_layout())),
                "w_exp": In(
                    stream.Signature(
                        data.StructLayout(
                            {"addr": range(len(exp)), "data": unsigned(self._exp_bits)}
                        )
                    )
                ),
            }
        )

    @property
    def cycles_per_choice(self) -> int:
        """:func:`sampled_choice_cycles` of this selector."""
        return sampled_choice_cycles(self._v)

    def elaborate(self, platform):  # noqa: PLR0915 (one FSM, its passes share the pipeline)
        m = Module()
        v, lanes, beats = self._v, self._l, self._beats
        k = len(self._exp)
        sum_bits = (v * ((1 << self._exp_bits) - 1)).bit_length()
        i, o = self.i_stream, self.o_stream

        m.submodules.logits = lmem = memory.Memory(
            shape=vector_layout(self._w, lanes), depth=beats, init=[]
        )
        lw, lr = lmem.write_port(), lmem.read_port()
        m.submodules.exp = emem = memory.Memory(
            shape=unsigned(self._exp_bits), depth=k, init=self._exp.tolist()
        )
        ew, er = emem.write_port(), emem.read_port()

        greedy = Signal(init=int(self._greedy))
        state = Signal(32, init=self._seed)
        beat = Signal(range(beats))
        top = Signal(signed(self._w))
        best = Signal(range(v))
        total = Signal(sum_bits)
        r = Signal(sum_bits)
        run = Signal(sum_bits + 1)
        choice = Signal(range(v))

        # -- collecting: the chunk's best lane (lowest on ties), against the running best.
        # A balanced tree of comparators, ceil(log2 L) deep (a chain over the lanes was L
        # deep: 64 for a transformer's unembedder, deep enough to exhaust Yosys's stack in
        # ABC9 on ECP5). Neighbouring lane ranges join, the right one (higher lanes) winning
        # only when strictly greater, so a tie keeps the lowest lane; lanes past V (the last
        # chunk's) never win, and lane 0 is always in V, so a range with a lane in V has its
        # leftmost lane in V. A tree deeper than MAX_COMB_LEVELS is cut by registers after
        # its first half: six levels plus the running best's compare were the critical path
        # of the ULX3S transformer build (23.3 MHz against 25). The cut costs one cycle a
        # vector, not one a chunk: the second half works on chunk k while chunk k+1 enters.
        chunk = i.payload.values
        take = i.valid & i.ready
        depth = (lanes - 1).bit_length()
        cut = depth // 2 if depth > MAX_COMB_LEVELS else 0
        nodes = [(chunk[c], Const(c, range(lanes)), beat * lanes + c < v) for c in range(lanes)]
        nodes = _join_levels(m, nodes, levels=cut, width=self._w, lanes=lanes, name="s1")
        # the chunk in the second half: its partial winners, beat number and last flag
        p_valid = Signal()
        p_beat = Signal(range(beats))
        p_last = Signal()
        if cut:
            staged = []
            for n, (nv, ni, nok) in enumerate(nodes):
                rv = Signal(signed(self._w), name=f"cut_best_{n}")
                ri = Signal(range(lanes), name=f"cut_at_{n}")
                rok = Signal(name=f"cut_ok_{n}")
                m.d.sync += [rv.eq(nv), ri.eq(ni), rok.eq(nok)]
                staged.append((rv, ri, rok))
            nodes = staged
            m.d.sync += [p_valid.eq(take), p_beat.eq(beat), p_last.eq(i.payload.last)]
        else:
            m.d.comb += [p_valid.eq(take), p_beat.eq(beat), p_last.eq(i.payload.last)]
        nodes = _join_levels(m, nodes, levels=depth, width=self._w, lanes=lanes, name="s2")
        c_val, c_idx, _ = nodes[0]
        index = p_beat * lanes + c_idx
        newer = (p_beat == 0) | (c_val > top)
        final_best = Mux(newer, index, best)
        with m.If(p_valid & newer):
            m.d.sync += [top.eq(c_val), best.eq(index)]

        # -- the passes: issue (word, lane) -> logit (stage 1) -> weight (stage 2)
        word = Signal(range(beats))
        lane = Signal(range(lanes))
        issued = Signal(range(v + 1))
        s1_valid, s1_lane, s1_idx = Signal(), Signal(range(lanes)), Signal(range(v))
        s2_valid, s2_idx = Signal(), Signal(range(v))
        issuing = Signal()
        logit = Signal(signed(self._w))
        m.d.comb += [
            lr.addr.eq(word),
            lr.en.eq(1),
            logit.eq(lr.data.as_value().word_select(s1_lane, self._w).as_signed()),
        ]
        dist = Signal(self._w + 1)
        m.d.comb += [
            dist.eq(top - logit),
            er.addr.eq(Mux(dist >= k - 1, k - 1, dist)),
            er.en.eq(1),
        ]
        m.d.sync += [s1_valid.eq(issuing), s1_lane.eq(lane), s1_idx.eq(issued)]
        m.d.sync += [s2_valid.eq(s1_valid), s2_idx.eq(s1_idx)]
        with m.If(issuing):
            m.d.sync += issued.eq(issued + 1)
            with m.If(lane == lanes - 1):
                m.d.sync += [lane.eq(0), word.eq(word + 1)]
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        weight = er.data

        mask = Signal(sum_bits)
        smear = total
        for sh in (1, 2, 4, 8, 16):
            smear = smear | (smear >> sh)
        m.d.comb += mask.eq(smear)
        drawn = Signal(32)
        m.d.comb += drawn.eq(xorshift32(state))
        cand = drawn[:sum_bits] & mask

        def start_pass():
            m.d.sync += [word.eq(0), lane.eq(0), issued.eq(0)]

        def choose():
            # the vector's last chunk leaves the tree: greedy answers, sampling starts
            with m.If(greedy):
                m.d.sync += choice.eq(final_best)
                m.next = "EMIT"
            with m.Else():
                start_pass()
                m.d.sync += total.eq(0)
                m.next = "SUM"

        with m.FSM():
            with m.State("COLLECT"):
                m.d.comb += [
                    i.ready.eq(1),
                    self.cfg_stream.ready.eq(beat == 0),
                    self.w_exp.ready.eq(beat == 0),
                    lw.addr.eq(beat),
                    lw.data.eq(chunk),
                    lw.en.eq(take),
                ]
                with m.If(self.cfg_stream.valid & self.cfg_stream.ready):
                    m.d.sync += greedy.eq(self.cfg_stream.payload.greedy)
                    with m.If(~self.cfg_stream.payload.keep):
                        m.d.sync += state.eq(self.cfg_stream.payload.seed)
                m.d.comb += [
                    ew.addr.eq(self.w_exp.payload.addr),
                    ew.data.eq(self.w_exp.payload.data),
                    ew.en.eq(self.w_exp.valid & self.w_exp.ready),
                ]
                with m.If(take):
                    m.d.sync += beat.eq(Mux(i.payload.last, 0, beat + 1))
                if cut:
                    with m.If(take & i.payload.last):
                        m.next = "CHOOSE"
                else:
                    with m.If(p_valid & p_last):
                        choose()
            if cut:
                # the last chunk in the tree's second half; no chunk is taken meanwhile
                with m.State("CHOOSE"):
                    choose()
            with m.State("SUM"):
                m.d.comb += issuing.eq(issued < v)
                with m.If(s2_valid):
                    m.d.sync += total.eq(total + weight)
                    with m.If(s2_idx == v - 1):
                        m.next = "DRAW"
            with m.State("DRAW"):
                m.d.sync += state.eq(drawn)
                with m.If(cand < total):
                    m.d.sync += [r.eq(cand), run.eq(0)]
                    start_pass()
                    m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += issuing.eq(issued < v)
                with m.If(s2_valid):
                    m.d.sync += run.eq(run + weight)
                    with m.If(run + weight > r):
                        m.d.sync += [choice.eq(s2_idx), issued.eq(v)]
                        m.next = "DRAIN"
            # let the pipeline empty before the next pass
            with m.State("DRAIN"), m.If(~s1_valid & ~s2_valid):
                m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += [o.valid.eq(1), o.payload.index.eq(choice)]
                with m.If(o.ready):
                    m.next = "COLLECT"
        return m
