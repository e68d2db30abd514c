"""The multiply-accumulate (MAC) baseline core: a dense integer network on ``M`` MAC units.

The network is the integer MAC classifier of :mod:`spikelut.sim.mac_golden`: per layer
``acc = x @ w + b``; hidden layers ``min(max(acc, 0) >> shift, 2**act_bits - 1)``; the last
layer's accumulators are the logits, and the result is their argmax (ties to the lowest index).

Schedule: the layers run one after the other. A layer of ``I`` inputs and ``O`` outputs is
computed in ``G = ceil(O / M)`` groups of ``M`` outputs; for one group, input ``i`` is
multiplied by the ``M`` weights of word ``g * I + i`` of the layer's weight memory (one
``M * weight_bits`` word per cycle, block RAM initialised by the bitstream) and added into
``M`` accumulators that start from the group's biases (a second, small memory). Every product
is a plain ``*`` of a signed ``max(in_width, act_bits + 1)``-bit input by a signed
``weight_bits``-bit weight, which Yosys maps onto the device's DSP blocks where it has them.
The pipeline is read -> multiply -> accumulate -> requantise; the next layer starts when the
previous one's results are written back. The argmax is serial too (one comparison per cycle),
so no comparator tree limits the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .bank import Storage
from .layouts import label_layout, vector_layout
from .params import check_int, signed_width, silent_on_error

__all__ = ["MACCore", "mac_geometry"]

# cycles from issuing a layer's last read to its last result being written back
_DRAIN = 3


@dataclass(frozen=True)
class _FixedWeights:
    """Stands in for a LUT layer's bank: the weights are fixed by the bitstream
    (``storage`` LOGIC: nothing for a host link to load)."""

    storage: Storage = Storage.LOGIC


@dataclass(frozen=True)
class MACLayerShape:
    """The dimensions of one dense layer of a :class:`MACCore` (what a board top reads)."""

    in_dim: int
    in_width: int
    out_dim: int
    groups: int
    bank: _FixedWeights = _FixedWeights()


class _State(enum.Enum, shape=3):
    IDLE = 0
    RUN = 1
    DRAIN = 2
    ARGMAX = 3
    DONE = 4


def mac_geometry(dims: Sequence[tuple[int, int]], macs: int) -> dict:
    """Schedule figures of layers ``(in, out)`` on ``macs`` units: ``groups`` per layer,
    ``cycles_per_inference`` (between consecutive inputs at full rate), ``weight_words``
    read per inference and the multiplies the units perform (zero-padded groups included)."""
    groups = [-(-o // macs) for _, o in dims]
    words = [g * i for g, (i, _) in zip(groups, dims, strict=True)]
    # accept (1) + per layer: reads then drain, + the serial argmax + the hand-off (1)
    cycles = 1 + sum(w + _DRAIN + 1 for w in words) + (dims[-1][1] - 1) + 1
    return {
        "groups": groups,
        "cycles_per_inference": cycles,
        "weight_words": sum(words),
        "unit_multiplies": sum(words) * macs,
    }


class MACCore(wiring.Component):
    """A dense integer classifier computed by ``macs`` multiply-accumulate units.

    Parameters (keyword-only): ``weights`` (one int array (in, out) per layer, entries in the
    signed ``weight_bits`` range), ``biases`` (one int array (out,) per layer), ``shifts``
    (one requantisation shift per hidden layer), ``in_width`` (signed width of the input
    values), ``weight_bits`` (2..18), ``act_bits`` (hidden activations, unsigned, 1..16),
    ``macs`` (M, 1..the widest layer's outputs).

    Ports: ``i_stream`` (``vector_layout(in_width, in_dim)``), ``o_stream``
    (``label_layout(n_classes, logit_width)``: the argmax, ties to the lowest index, and the
    logits). One inference at a time; ``i_stream`` is ready only when the core is idle, and a
    result waits in ``o_stream``'s registers until taken while the next input is computed.
    """

    @silent_on_error
    def __init__(
        self,
        *,
        weights: Sequence,
        biases: Sequence,
        shifts: Sequence[int],
        in_width: int,
        weight_bits: int = 8,
        act_bits: int = 8,
        macs: int = 1,
    ):
        self._in_width = check_int("in_width", in_width, 2, 32)
        self._weight_bits = check_int("weight_bits", weight_bits, 2, 18)
        self._act_bits = check_int("act_bits", act_bits, 1, 16)
        if not isinstance(weights, Sequence) or not weights:
            raise ValueError(
                f"weights must be a non-empty list of (in, out) arrays, not {weights!r}"
            )
        if not isinstance(biases, Sequence) or len(biases) != len(weights):
            raise ValueError(f"biases must be a list of {len(weights)} arrays, one per layer")
        if len(shifts) != len(weights) - 1:
            raise ValueError(
                f"shifts must give one shift per hidden layer ({len(weights) - 1}), not {shifts!r}"
            )
        wlim = 1 << (self._weight_bits - 1)
        ws, bs = [], []
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            w, b = np.asarray(w), np.asarray(b)
            if w.ndim != 2 or w.size == 0 or not np.issubdtype(w.dtype, np.integer):
                raise ValueError(f"layer {k}: weights must be a 2-d integer array (in, out)")
            if b.shape != (w.shape[1],) or not np.issubdtype(b.dtype, np.integer):
                raise ValueError(f"layer {k}: biases must be {w.shape[1]} integers")
            if w.min() < -wlim or w.max() >= wlim:
                raise ValueError(
                    f"layer {k}: weights {int(w.min())}..{int(w.max())} do not fit "
                    f"weight_bits={self._weight_bits}"
                )
            if k and w.shape[0] != ws[-1].shape[1]:
                raise ValueError(
                    f"layer {k} reads {w.shape[0]} values but layer {k - 1} gives {ws[-1].shape[1]}"
                )
            ws.append(w.astype(np.int64))
            bs.append(b.astype(np.int64))
        self._shifts = [check_int(f"shifts[{k}]", s, 0, 64) for k, s in enumerate(shifts)]
        self._macs = check_int("macs", macs, 1, max(w.shape[1] for w in ws))
        self._w, self._b = ws, bs
        # exact accumulator ranges, as in sim.mac_golden.MACLayer.acc_bounds
        self._acc_widths = []
        lo, hi = -(1 << (self._in_width - 1)), (1 << (self._in_width - 1)) - 1
        for w, b in zip(ws, bs, strict=True):
            top = np.where(w > 0, w * hi, w * lo).sum(axis=0) + b
            bot = np.where(w > 0, w * lo, w * hi).sum(axis=0) + b
            self._acc_widths.append(signed_width(int(bot.min()), int(top.max())))
            lo, hi = 0, (1 << self._act_bits) - 1
        self._geo = mac_geometry([w.shape for w in ws], self._macs)
        super().__init__(
            {
                "i_stream": In(stream.Signature(vector_layout(self._in_width, self.in_dim))),
                "o_stream": Out(stream.Signature(label_layout(self.n_classes, self.logit_width))),
            }
        )

    # -- parameters -----------------------------------------------------------------------

    @property
    def in_dim(self) -> int:
        """Values per input vector."""
        return self._w[0].shape[0]

    @property
    def n_classes(self) -> int:
        """Outputs of the last layer."""
        return self._w[-1].shape[1]

    @property
    def macs(self) -> int:
        """Multiply-accumulate units (M)."""
        return self._macs

    @property
    def logit_width(self) -> int:
        """Signed width of a logit (the last layer's exact accumulator width)."""
        return self._acc_widths[-1]

    @property
    def acc_widths(self) -> list[int]:
        """Exact signed accumulator width of every layer."""
        return list(self._acc_widths)

    @property
    def layers(self) -> list[MACLayerShape]:
        """Dimensions of every layer (input width: ``in_width``, then ``act_bits``)."""
        widths = [self._in_width] + [self._act_bits] * (len(self._w) - 1)
        return [
            MACLayerShape(w.shape[0], iw, w.shape[1], g)
            for w, iw, g in zip(self._w, widths, self._geo["groups"], strict=True)
        ]

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive inputs at full rate."""
        return self._geo["cycles_per_inference"]

    @property
    def weight_bits_read(self) -> int:
        """Memory bits read per inference: every weight word (zero padding included) and
        every group's bias word."""
        m = self._macs
        wb = self._geo["weight_words"] * m * self._weight_bits
        bb = sum(g * m * a for g, a in zip(self._geo["groups"], self._acc_widths, strict=True))
        return wb + bb

    @property
    def memory_bits(self) -> int:
        """Bits of all weight and bias memories."""
        return self.weight_bits_read  # every word is read exactly once per inference

    @property
    def unit_multiplies(self) -> int:
        """Multiplies the units perform per inference (zero-padded outputs included)."""
        return self._geo["unit_multiplies"]

    # -- memory images --------------------------------------------------------------------

    def _weight_image(self, k: int) -> list[int]:
        w, m, wb = self._w[k], self._macs, self._weight_bits
        n_in, n_out = w.shape
        g = -(-n_out // m)
        padded = np.zeros((n_in, g * m), np.int64)
        padded[:, :n_out] = w
        # word g * I + i holds w[i, g*M : g*M + M], unit 0 in the low bits
        words = padded.reshape(n_in, g, m).transpose(1, 0, 2).reshape(g * n_in, m)
        return _pack(words, wb)

    def _bias_image(self, k: int) -> list[int]:
        b, m = self._b[k], self._macs
        g = -(-b.size // m)
        padded = np.zeros(g * m, np.int64)
        padded[: b.size] = b
        return _pack(padded.reshape(g, m), self._acc_widths[k])

    # -- gateware -------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        n_layers, M = len(self._w), self._macs
        acc_w = max(self._acc_widths) + 1  # + 1: the sum with the next product stays exact
        x_w = max(self._in_width, self._act_bits + 1)
        amax = (1 << self._act_bits) - 1
        groups = self._geo["groups"]
        dims = [w.shape for w in self._w]

        # activations: layer k's input registers (layer 0: the input vector)
        x_in = Signal(vector_layout(self._in_width, self.in_dim))
        hidden = [
            [Signal(unsigned(self._act_bits), name=f"x{k + 1}_{j}") for j in range(dims[k][1])]
            for k in range(n_layers - 1)
        ]
        logits = [Signal(signed(self.logit_width), name=f"logit{j}") for j in range(self.n_classes)]
        sources = [list(x_in), *hidden]

        # memories, one weight and one bias memory per layer
        w_ports, b_ports = [], []
        for k in range(n_layers):
            wmem = memory.Memory(
                shape=unsigned(M * self._weight_bits),
                depth=groups[k] * dims[k][0],
                init=self._weight_image(k),
            )
            bmem = memory.Memory(
                shape=unsigned(M * self._acc_widths[k]), depth=groups[k], init=self._bias_image(k)
            )
            m.submodules[f"weights{k}"] = wmem
            m.submodules[f"biases{k}"] = bmem
            w_ports.append(wmem.read_port())
            b_ports.append(bmem.read_port())

        # stage 0: the counters issue one read per cycle
        state = Signal(_State)
        layer = Signal(range(n_layers))
        i0 = Signal(range(max(d[0] for d in dims)))
        g0 = Signal(range(max(groups)))
        addr = Signal(range(max(g * d[0] for g, d in zip(groups, dims, strict=True)) + 1))
        drain = Signal(range(_DRAIN + 1))
        v0 = state == _State.RUN
        for k in range(n_layers):
            m.d.comb += [w_ports[k].addr.eq(addr), b_ports[k].addr.eq(g0)]

        # stage 1: weights, biases and the input value arrive
        v1, first1, last1 = Signal(), Signal(), Signal()
        g1, layer1 = Signal.like(g0), Signal.like(layer)
        x1 = Signal(signed(x_w))
        m.d.sync += [v1.eq(v0), first1.eq(i0 == 0), g1.eq(g0), layer1.eq(layer)]
        last_i = Array(Const(d[0] - 1, i0.shape()) for d in dims)[layer]
        m.d.sync += last1.eq(i0 == last_i)
        with m.Switch(layer):
            for k in range(n_layers):
                with m.Case(k):
                    src = sources[k]
                    m.d.sync += x1.eq(Array(src)[i0] if len(src) > 1 else src[0])
        w1 = [Signal(signed(self._weight_bits), name=f"w1_{u}") for u in range(M)]
        b1 = [Signal(signed(acc_w), name=f"b1_{u}") for u in range(M)]
        with m.Switch(layer1):
            for k in range(n_layers):
                with m.Case(k):
                    wd, bd, aw = w_ports[k].data, b_ports[k].data, self._acc_widths[k]
                    for u in range(M):
                        wb = self._weight_bits
                        m.d.comb += w1[u].eq(wd[u * wb : (u + 1) * wb].as_signed())
                        m.d.comb += b1[u].eq(bd[u * aw : (u + 1) * aw].as_signed())

        # stage 2: the products
        v2, first2, last2 = Signal(), Signal(), Signal()
        g2, layer2 = Signal.like(g0), Signal.like(layer)
        prods = [Signal(signed(x_w + self._weight_bits), name=f"p{u}") for u in range(M)]
        b2 = [Signal(signed(acc_w), name=f"b2_{u}") for u in range(M)]
        m.d.sync += [v2.eq(v1), first2.eq(first1), last2.eq(last1), g2.eq(g1), layer2.eq(layer1)]
        for u in range(M):
            m.d.sync += [prods[u].eq(x1 * w1[u]), b2[u].eq(b1[u])]

        # stage 3: the accumulators
        v3 = Signal()
        g3, layer3 = Signal.like(g0), Signal.like(layer)
        accs = [Signal(signed(acc_w), name=f"acc{u}") for u in range(M)]
        m.d.sync += [v3.eq(v2 & last2), g3.eq(g2), layer3.eq(layer2)]
        with m.If(v2):
            for u in range(M):
                m.d.sync += accs[u].eq(Mux(first2, b2[u], accs[u]) + prods[u])

        # stage 4: requantise (hidden layers) or keep (the logits); write back
        with m.If(v3), m.Switch(layer3):
            for k in range(n_layers):
                with m.Case(k):
                    dest = hidden[k] if k < n_layers - 1 else logits
                    with m.Switch(g3):
                        for g in range(groups[k]):
                            with m.Case(g):
                                for u in range(M):
                                    j = g * M + u
                                    if j >= len(dest):
                                        break
                                    if k < n_layers - 1:
                                        q = Mux(accs[u] < 0, 0, accs[u] >> self._shifts[k])
                                        m.d.sync += dest[j].eq(Mux(q > amax, amax, q))
                                    else:
                                        m.d.sync += dest[j].eq(accs[u])

        # control; the result waits in o_stream's registers until taken
        o = self.o_stream
        best_i = Signal(range(self.n_classes))
        best_v = Signal(signed(self.logit_width))
        j_arg = Signal(range(self.n_classes + 1))
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        m.d.comb += self.i_stream.ready.eq(state == _State.IDLE)
        with m.Switch(state):
            with m.Case(_State.IDLE), m.If(self.i_stream.valid):
                m.d.sync += [
                    x_in.eq(self.i_stream.payload),
                    state.eq(_State.RUN),
                    layer.eq(0),
                    i0.eq(0),
                    g0.eq(0),
                    addr.eq(0),
                ]
            with m.Case(_State.RUN):
                m.d.sync += [addr.eq(addr + 1), i0.eq(i0 + 1)]
                with m.If(i0 == last_i):
                    m.d.sync += [i0.eq(0), g0.eq(g0 + 1)]
                    last_g = Array(Const(g - 1, g0.shape()) for g in groups)[layer]
                    with m.If(g0 == last_g):
                        m.d.sync += [state.eq(_State.DRAIN), drain.eq(_DRAIN)]
            with m.Case(_State.DRAIN):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    with m.If(layer == n_layers - 1):
                        m.d.sync += [state.eq(_State.ARGMAX), best_i.eq(0), best_v.eq(logits[0])]
                        m.d.sync += j_arg.eq(1)
                    with m.Else():
                        m.d.sync += [
                            state.eq(_State.RUN),
                            layer.eq(layer + 1),
                            g0.eq(0),
                            i0.eq(0),
                            addr.eq(0),
                        ]
            with m.Case(_State.ARGMAX):
                # one comparison per cycle; strict, so ties keep the lower index
                if self.n_classes > 1:
                    v = Array(logits)[j_arg]
                    with m.If(v > best_v):
                        m.d.sync += [best_i.eq(j_arg), best_v.eq(v)]
                    m.d.sync += j_arg.eq(j_arg + 1)
                with m.If(j_arg >= self.n_classes - 1):
                    m.d.sync += state.eq(_State.DONE)
            with m.Case(_State.DONE), m.If(~o.valid | o.ready):
                m.d.sync += [
                    state.eq(_State.IDLE),
                    o.valid.eq(1),
                    o.payload.index.eq(best_i),
                    o.payload.logits.eq(Cat(*logits)),
                ]
        return m


def _pack(words: np.ndarray, bits: int) -> list[int]:
    """Rows of signed integers packed into one unsigned word each, column 0 lowest."""
    mask = (1 << bits) - 1
    out = []
    for row in words:
        v = 0
        for u, x in enumerate(row):
            v |= (int(x) & mask) << (u * bits)
        out.append(v)
    return out
