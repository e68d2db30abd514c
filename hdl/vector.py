"""Element-wise stream operators on value vectors: the residual add and the argmax."""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.layouts import label_layout, vector_layout
from spikelut.hdl.params import check_int

__all__ = ["Argmax", "ResidualAdd", "check_vector"]


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


class Argmax(wiring.Component):
    """The index of the largest value of each vector (ties: the lowest index), with the vector.

    Parameters: ``dim``, ``width``. ``i_stream``: ``vector_layout(width, dim)``;
    ``o_stream``: ``label_layout(dim, width)``. A comparator tree, one cycle of latency.
    """

    def __init__(self, *, dim: int, width: int):
        self._dim, self._width = check_vector(dim, width=width)
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

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream

        def best(lo, hi):  # (index, value) of the maximum of i.payload[lo:hi]
            if hi - lo == 1:
                return lo, i.payload[lo]
            mid = (lo + hi) // 2
            li, lv = best(lo, mid)
            ri, rv = best(mid, hi)
            right = rv > lv  # strict: ties keep the lower (left) index
            return Mux(right, ri, li), Mux(right, rv, lv)

        index, _ = best(0, self._dim)
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(i.valid & i.ready):
            m.d.sync += [
                o.valid.eq(1),
                o.payload.index.eq(index),
                o.payload.logits.eq(i.payload),
            ]
        return m
