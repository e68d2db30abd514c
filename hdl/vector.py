"""Element-wise stream operators on value vectors: the residual add and the argmax."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layouts import label_layout, vector_layout
from spikelut.hdl.params import check_int

__all__ = ["Argmax", "ResidualAdd", "argmax_stages", "check_vector"]


def check_vector(dim: int, **widths: int) -> tuple[int, ...]:
    """``dim`` (at least 1) and each of ``widths`` (signed widths, 1..64), in that order, as
    ints; ``ValueError`` naming the first bad one."""
    return (check_int("dim", dim, 1), *(check_int(k, w, 1, 64) for k, w in widths.items()))


class ResidualAdd(wiring.Component):
    """``o = i + r`` element-wise, joining two vector streams transfer by transfer.

    Parameters: ``dim``, ``in_width`` (of ``i_stream``), ``res_width`` (of ``r_stream``),
    ``out_width`` (of ``o_stream``; the sum is truncated to it, so the caller sizes it to
    the exact bound). One cycle of latency, one vector per clock.
    """

    def __init__(self, *, dim: int, in_width: int, res_width: int, out_width: int):
        self._dim, self._in_width, self._res_width, self._out_width = check_vector(
            dim, in_width=in_width, res_width=res_width, out_width=out_width
        )
        super().__init__(
            {
                "i_stream": In(stream.Signature(vector_layout(self._in_width, self._dim))),
                "r_stream": In(stream.Signature(vector_layout(self._res_width, self._dim))),
                "o_stream": Out(stream.Signature(vector_layout(self._out_width, self._dim))),
            }
        )

    @property
    def dim(self) -> int:
        """The vector length."""
        return self._dim

    @property
    def out_width(self) -> int:
        """Signed width of an output value."""
        return self._out_width

    def elaborate(self, platform):
        m = Module()
        i, r, o = self.i_stream, self.r_stream, self.o_stream
        take = i.valid & r.valid & (~o.valid | o.ready)
        m.d.comb += [i.ready.eq(take), r.ready.eq(take)]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(take):
            m.d.sync += o.valid.eq(1)
            m.d.sync += [o.payload[k].eq(i.payload[k] + r.payload[k]) for k in range(self._dim)]
        return m


def argmax_stages(dim: int, levels_per_stage: int | None = None) -> int:
    """Register stages of an :class:`Argmax` of ``dim`` values (its latency in cycles at
    full rate): its comparator tree has ``ceil(log2(dim))`` levels; ``levels_per_stage``
    ``None``: the whole tree in one cycle, 1 stage; ``k``: a register after every ``k``
    levels and after the last, ``max(1, ceil(ceil(log2(dim)) / k))``."""
    levels = (dim - 1).bit_length()
    if levels_per_stage is None:
        return 1
    return max(1, -(-levels // levels_per_stage))


class Argmax(wiring.Component):
    """The index of the largest value of each vector (ties: the lowest index), with the vector.

    Parameters: ``dim``, ``width``, ``levels_per_stage``. ``i_stream``:
    ``vector_layout(width, dim)``; ``o_stream``: ``label_layout(dim, width)``. A balanced
    tree of ``ceil(log2(dim))`` levels of comparators, each level joining neighbouring
    index ranges (the left one lower; ``right > left`` strictly, so a tie keeps the lower
    index). ``levels_per_stage`` ``None`` (the default): the whole tree in one cycle, one
    cycle of latency; ``k >= 1``: pipelined, a register after every ``k`` levels (each
    range's winning index, local to the range, and its value, with the vector alongside),
    :func:`argmax_stages` cycles of latency. Either way one vector per clock while
    ``o_stream.ready`` is high; every register advances together when the output can take
    a result (``i_stream.ready`` is ``~o_stream.valid | o_stream.ready``); with ``lockstep``
    only when ``o_stream.ready`` is high (``i_stream.ready`` is ``o_stream.ready``): every
    register's enable is that one signal, for stages chained under one enable
    (:mod:`spikelut.hdl.frozen`), whose consumer must not wait for ``valid`` before ``ready``.
    """

    def __init__(
        self, *, dim: int, width: int, levels_per_stage: int | None = None, lockstep: bool = False
    ):
        self._dim, self._width = check_vector(dim, width=width)
        self._lockstep = bool(lockstep)
        if levels_per_stage is not None:
            levels_per_stage = check_int("levels_per_stage", levels_per_stage, 1)
        self._levels_per_stage = levels_per_stage
        super().__init__(
            {
                "i_stream": In(stream.Signature(vector_layout(self._width, self._dim))),
                "o_stream": Out(stream.Signature(label_layout(self._dim, self._width))),
            }
        )

    @property
    def dim(self) -> int:
        """The vector length."""
        return self._dim

    @property
    def width(self) -> int:
        """Signed width of a value."""
        return self._width

    @property
    def levels_per_stage(self) -> int | None:
        """Comparator levels between registers (``None``: the whole tree in one cycle)."""
        return self._levels_per_stage

    @property
    def stages(self) -> int:
        """Register stages from a vector to its label (:func:`argmax_stages`)."""
        return argmax_stages(self._dim, self._levels_per_stage)

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        advance = Signal()
        m.d.comb += [
            advance.eq(o.ready if self._lockstep else ~o.valid | o.ready),
            i.ready.eq(advance),
        ]

        levels = (self._dim - 1).bit_length()
        every = self._levels_per_stage or max(levels, 1)
        # per index range [lo, hi): (lo, hi, the winner's index - lo, its value). Neighbours
        # join, so every left range holds 2**(level - 1) values and the winner's index is
        # its decision bits: Cat(Mux(right, ri, li), right). (Adding the offset instead,
        # ``right ? ri + 2**(level - 1) : li``, gave bits ``right ? 1 : 0``, which Yosys
        # mapped onto the iCE40 flip-flops' set/reset pins, the slow net that was then the
        # critical path.)
        nodes = [(k, k + 1, None, i.payload[k]) for k in range(self._dim)]
        logits, valid = i.payload, i.valid
        for level in range(1, levels + 1):
            nxt = []
            for k in range(0, len(nodes), 2):
                if k + 1 == len(nodes):  # the odd range out passes to the next level
                    nxt.append(nodes[k])
                    continue
                (lo, mid, li, lv), (_, hi, ri, rv) = nodes[k], nodes[k + 1]
                assert mid - lo == 1 << (level - 1)
                right = rv > lv  # strict: ties keep the lower (left) index
                idx = (
                    right if li is None else Cat(Mux(right, ri if ri is not None else 0, li), right)
                )
                nxt.append((lo, hi, idx, Mux(right, rv, lv)))
            nodes = nxt
            if level % every or level == levels:
                continue
            # a pipeline register after this level: every range's winner, and the vector
            regs = []
            for lo, hi, idx, val in nodes:
                name = f"l{level}_{lo}_{hi}"
                r_val = Signal(signed(self._width), name=f"val_{name}", reset_less=True)
                with m.If(advance):
                    m.d.sync += r_val.eq(val)
                if idx is not None:
                    r_idx = Signal(len(idx), name=f"idx_{name}", reset_less=True)
                    with m.If(advance):
                        m.d.sync += r_idx.eq(idx)
                    idx = r_idx
                regs.append((lo, hi, idx, r_val))
            nodes = regs
            r_logits = Signal(
                vector_layout(self._width, self._dim), name=f"logits_l{level}", reset_less=True
            )
            r_valid = Signal(name=f"valid_l{level}")
            with m.If(advance):
                m.d.sync += [r_logits.eq(logits), r_valid.eq(valid)]
            logits, valid = r_logits, r_valid
        # the output registers: the payload's without a reset (as the stages'), so that
        # synthesis does not fold the reset into the index's last multiplexer (on the
        # iCE40 that put the slow set/reset net on the critical path)
        index = Signal(range(self._dim), name="index", reset_less=True)
        out = Signal(vector_layout(self._width, self._dim), name="logits", reset_less=True)
        with m.If(advance):
            m.d.sync += [
                o.valid.eq(valid),
                index.eq(0 if nodes[0][2] is None else nodes[0][2]),
                out.eq(logits),
            ]
        m.d.comb += [o.payload.index.eq(index), o.payload.logits.eq(out)]
        return m
