"""The multiply-accumulate (MAC) baseline core: a dense integer network on ``M`` MAC units.

The network is the integer MAC classifier of :mod:`spikelut.compiler.ir.mac`: per layer
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

from spikelut.hdl.layouts import label_layout, vector_layout
from spikelut.hdl.params import check_int, signed_width
from spikelut.hdl.storage import Storage

__all__ = ["MACCore", "MACLayerShape", "MACParams", "mac_geometry"]

# cycles from issuing a layer's last read to its last result being written back
_DRAIN = 3


@dataclass(frozen=True)
class MACLayerShape:
    """The dimensions of one dense layer of a :class:`MACCore` (what a board top reads):
    its weights are fixed by the bitstream (``storage`` LOGIC: nothing for a host link to
    load)."""

    in_dim: int
    in_width: int
    out_dim: int
    groups: int
    storage: Storage = Storage.LOGIC


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


class MACParams:
    """A dense integer classifier on ``macs`` multiply-accumulate units, checked.

    Fields: ``weights`` (one int array (in, out) per layer, entries in the
    signed ``weight_bits`` range), ``biases`` (one int array (out,) per layer), ``shifts``
    (one requantisation shift per hidden layer), ``in_width`` (signed width of the input
    values), ``weight_bits`` (2..18), ``act_bits`` (hidden activations, unsigned, 1..16),
    ``macs`` (M, 1..the widest layer's outputs).

    The constructor raises ``ValueError`` naming the first bad value and computes the exact
    accumulator widths and the schedule, so every figure of the core is known without
    building it.
    """

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
        # exact accumulator ranges, as in spikelut.compiler.ir.mac.MACLayer.acc_bounds
        self._acc_widths = []
        lo, hi = -(1 << (self._in_width - 1)), (1 << (self._in_width - 1)) - 1
        for w, b in zip(ws, bs, strict=True):
            top = np.where(w > 0, w * hi, w * lo).sum(axis=0) + b
            bot = np.where(w > 0, w * lo, w * hi).sum(axis=0) + b
            self._acc_widths.append(signed_width(int(bot.min()), int(top.max())))
            lo, hi = 0, (1 << self._act_bits) - 1
        self._geo = mac_geometry([w.shape for w in ws], self._macs)

    @property
    def in_width(self) -> int:
        """Signed width of an input value."""
        return self._in_width

    @property
    def weights(self) -> list[np.ndarray]:
        """Every layer's weights (in, out), int64."""
        return list(self._w)

    @property
    def shifts(self) -> list[int]:
        """The requantisation shift of every hidden layer."""
        return list(self._shifts)

    @property
    def weight_bits(self) -> int:
        """Signed width of a weight."""
        return self._weight_bits

    @property
    def act_bits(self) -> int:
        """Unsigned width of a hidden activation."""
        return self._act_bits

    @property
    def groups(self) -> list[int]:
        """Groups of ``macs`` outputs of every layer."""
        return list(self._geo["groups"])

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

    def weight_image(self, k: int) -> list[int]:
        """Words of layer ``k``'s weight memory (word ``g * I + i``: the ``M`` weights of
        input ``i`` for group ``g``, unit 0 in the low bits)."""
        w, m, wb = self._w[k], self._macs, self._weight_bits
        n_in, n_out = w.shape
        g = -(-n_out // m)
        padded = np.zeros((n_in, g * m), np.int64)
        padded[:, :n_out] = w
        # word g * I + i holds w[i, g*M : g*M + M], unit 0 in the low bits
        words = padded.reshape(n_in, g, m).transpose(1, 0, 2).reshape(g * n_in, m)
        return _pack(words, wb)

    def bias_image(self, k: int) -> list[int]:
        """Words of layer ``k``'s bias memory (one word of ``M`` biases per group)."""
        b, m = self._b[k], self._macs
        g = -(-b.size // m)
        padded = np.zeros(g * m, np.int64)
        padded[: b.size] = b
        return _pack(padded.reshape(g, m), self._acc_widths[k])


class MACCore(wiring.Component):
    """The :class:`MACParams` network computed by its ``macs`` multiply-accumulate units.

    Ports: ``i_stream`` (``vector_layout(in_width, in_dim)``), ``o_stream``
    (``label_layout(n_classes, logit_width)``: the argmax, ties to the lowest index, and the
    logits). One inference at a time; ``i_stream`` is ready only when the core is idle, and a
    result waits in ``o_stream``'s registers until taken while the next input is computed.
    """

    def __init__(self, params: MACParams):
        self._params = params
        super().__init__(
            {
                "i_stream": In(stream.Signature(vector_layout(params.in_width, params.in_dim))),
                "o_stream": Out(
                    stream.Signature(label_layout(params.n_classes, params.logit_width))
                ),
            }
        )

    @property
    def params(self) -> MACParams:
        """The network and schedule the core computes."""
        return self._params

    @property
    def layers(self) -> list[MACLayerShape]:
        """Dimensions of every layer (see :attr:`MACParams.layers`)."""
        return self._params.layers

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive inputs at full rate."""
        return self._params.cycles_per_inference

    # -- gateware -------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        r = _Registers(self._params)
        w_ports, b_ports = self._memories(m, r)
        stage1 = self._fetch(m, r, w_ports, b_ports)
        accs, stage3 = self._accumulate(m, r, stage1)
        self._write_back(m, r, accs, stage3)
        self._control(m, r)
        return m

    def _memories(self, m, r):
        """One weight and one bias memory per layer, read at stage 0's ``addr`` and group."""
        p = self._params
        w_ports, b_ports = [], []
        for k, (w, groups) in enumerate(zip(p.weights, p.groups, strict=True)):
            m.submodules[f"weights{k}"] = wmem = memory.Memory(
                shape=unsigned(p.macs * p.weight_bits),
                depth=groups * w.shape[0],
                init=p.weight_image(k),
            )
            m.submodules[f"biases{k}"] = bmem = memory.Memory(
                shape=unsigned(p.macs * p.acc_widths[k]), depth=groups, init=p.bias_image(k)
            )
            w_ports.append(wmem.read_port())
            b_ports.append(bmem.read_port())
            m.d.comb += [w_ports[k].addr.eq(r.addr), b_ports[k].addr.eq(r.g0)]
        return w_ports, b_ports

    def _fetch(self, m, r, w_ports, b_ports):
        """Stage 1: the weights, biases and input value of stage 0's read arrive; returns
        ``(x, weights, biases, stage)``."""
        p = self._params
        s1 = _Stage(r, "1")
        x1 = Signal(signed(r.x_w))
        m.d.sync += [
            s1.valid.eq(r.state == _State.RUN),
            s1.first.eq(r.i0 == 0),
            s1.last.eq(r.i0 == r.last_i),
            s1.group.eq(r.g0),
            s1.layer.eq(r.layer),
        ]
        with m.Switch(r.layer):
            for k, src in enumerate(r.sources):
                with m.Case(k):
                    m.d.sync += x1.eq(Array(src)[r.i0] if len(src) > 1 else src[0])
        w1 = [Signal(signed(p.weight_bits), name=f"w1_{u}") for u in range(p.macs)]
        b1 = [Signal(signed(r.acc_w), name=f"b1_{u}") for u in range(p.macs)]
        wb = p.weight_bits
        with m.Switch(s1.layer):
            for k in range(len(p.weights)):
                with m.Case(k):
                    wd, bd, aw = w_ports[k].data, b_ports[k].data, p.acc_widths[k]
                    for u in range(p.macs):
                        m.d.comb += w1[u].eq(wd[u * wb : (u + 1) * wb].as_signed())
                        m.d.comb += b1[u].eq(bd[u * aw : (u + 1) * aw].as_signed())
        return x1, w1, b1, s1

    def _accumulate(self, m, r, stage1):
        """Stage 2 multiplies, stage 3 accumulates (from the group's biases); returns the
        accumulators and stage 3."""
        p = self._params
        x1, w1, b1, s1 = stage1
        s2, s3 = _Stage(r, "2"), _Stage(r, "3")
        prods = [Signal(signed(r.x_w + p.weight_bits), name=f"p{u}") for u in range(p.macs)]
        b2 = [Signal(signed(r.acc_w), name=f"b2_{u}") for u in range(p.macs)]
        m.d.sync += s2.follow(s1)
        for u in range(p.macs):
            m.d.sync += [prods[u].eq(x1 * w1[u]), b2[u].eq(b1[u])]
        accs = [Signal(signed(r.acc_w), name=f"acc{u}") for u in range(p.macs)]
        m.d.sync += [s3.valid.eq(s2.valid & s2.last), s3.group.eq(s2.group), s3.layer.eq(s2.layer)]
        with m.If(s2.valid):
            for u in range(p.macs):
                m.d.sync += accs[u].eq(Mux(s2.first, b2[u], accs[u]) + prods[u])
        return accs, s3

    def _write_back(self, m, r, accs, s3):
        """Stage 4: a group's results requantised (hidden layers) or kept (the logits)."""
        p = self._params
        n_layers, amax = len(p.weights), (1 << p.act_bits) - 1
        with m.If(s3.valid), m.Switch(s3.layer):
            for k in range(n_layers):
                dest = r.hidden[k] if k < n_layers - 1 else r.logits
                with m.Case(k), m.Switch(s3.group):
                    for g in range(p.groups[k]):
                        with m.Case(g):
                            for u, j in enumerate(
                                range(g * p.macs, min(len(dest), (g + 1) * p.macs))
                            ):
                                if k < n_layers - 1:
                                    q = Mux(accs[u] < 0, 0, accs[u] >> p.shifts[k])
                                    m.d.sync += dest[j].eq(Mux(q > amax, amax, q))
                                else:
                                    m.d.sync += dest[j].eq(accs[u])

    def _control(self, m, r):
        """Stage 0 and the sequence of layers; the result waits in ``o_stream``'s registers
        until taken."""
        o, i = self.o_stream, self.i_stream
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        m.d.comb += i.ready.eq(r.state == _State.IDLE)
        with m.Switch(r.state):
            with m.Case(_State.IDLE), m.If(i.valid):
                m.d.sync += [r.x_in.eq(i.payload), r.state.eq(_State.RUN), *r.restart(0)]
            with m.Case(_State.RUN):
                m.d.sync += [r.addr.eq(r.addr + 1), r.i0.eq(r.i0 + 1)]
                with m.If(r.i0 == r.last_i):
                    m.d.sync += [r.i0.eq(0), r.g0.eq(r.g0 + 1)]
                    with m.If(r.g0 == r.last_g):
                        m.d.sync += [r.state.eq(_State.DRAIN), r.drain.eq(_DRAIN)]
            with m.Case(_State.DRAIN):
                self._drain(m, r)
            with m.Case(_State.ARGMAX):
                self._argmax(m, r)
            with m.Case(_State.DONE), m.If(~o.valid | o.ready):
                m.d.sync += [
                    r.state.eq(_State.IDLE),
                    o.valid.eq(1),
                    o.payload.index.eq(r.best_i),
                    o.payload.logits.eq(Cat(*r.logits)),
                ]

    def _drain(self, m, r):
        """The last results of a layer are written back; then the next layer, or the argmax."""
        m.d.sync += r.drain.eq(r.drain - 1)
        with m.If(r.drain == 0):
            with m.If(r.layer == len(self._params.weights) - 1):
                m.d.sync += [
                    r.state.eq(_State.ARGMAX),
                    r.best_i.eq(0),
                    r.best_v.eq(r.logits[0]),
                    r.j_arg.eq(1),
                ]
            with m.Else():
                m.d.sync += [r.state.eq(_State.RUN), *r.restart(r.layer + 1)]

    def _argmax(self, m, r):
        """One comparison per cycle; strict, so ties keep the lower index."""
        n = self._params.n_classes
        if n > 1:
            v = Array(r.logits)[r.j_arg]
            with m.If(v > r.best_v):
                m.d.sync += [r.best_i.eq(r.j_arg), r.best_v.eq(v)]
            m.d.sync += r.j_arg.eq(r.j_arg + 1)
        with m.If(r.j_arg >= n - 1):
            m.d.sync += r.state.eq(_State.DONE)


class _Registers:
    """The core's activations, stage 0's counters and the argmax's state."""

    def __init__(self, p: MACParams):
        dims = [w.shape for w in p.weights]
        n_layers = len(dims)
        self.acc_w = max(p.acc_widths) + 1  # + 1: the sum with the next product stays exact
        self.x_w = max(p.in_width, p.act_bits + 1)
        # activations: layer k's input registers (layer 0: the input vector)
        self.x_in = Signal(vector_layout(p.in_width, p.in_dim))
        self.hidden = [
            [Signal(unsigned(p.act_bits), name=f"x{k + 1}_{j}") for j in range(dims[k][1])]
            for k in range(n_layers - 1)
        ]
        self.logits = [Signal(signed(p.logit_width), name=f"logit{j}") for j in range(p.n_classes)]
        self.sources = [list(self.x_in), *self.hidden]
        # stage 0: the counters issue one read per cycle
        self.state = Signal(_State)
        self.layer = Signal(range(n_layers))
        self.i0 = Signal(range(max(d[0] for d in dims)))
        self.g0 = Signal(range(max(p.groups)))
        words = max(g * d[0] for g, d in zip(p.groups, dims, strict=True))
        self.addr = Signal(range(words + 1))
        self.drain = Signal(range(_DRAIN + 1))
        self.last_i = Array(Const(d[0] - 1, self.i0.shape()) for d in dims)[self.layer]
        self.last_g = Array(Const(g - 1, self.g0.shape()) for g in p.groups)[self.layer]
        # the serial argmax
        self.best_i = Signal(range(p.n_classes))
        self.best_v = Signal(signed(p.logit_width))
        self.j_arg = Signal(range(p.n_classes + 1))

    def restart(self, layer) -> list:
        """Assignments starting stage 0 on ``layer``."""
        return [self.layer.eq(layer), self.i0.eq(0), self.g0.eq(0), self.addr.eq(0)]


class _Stage:
    """What a pipeline stage hands on with its data: ``valid``, ``first`` and ``last``
    (input of the group), the ``group`` and the ``layer``."""

    def __init__(self, r: _Registers, n: str):
        self.valid = Signal(name=f"v{n}")
        self.first = Signal(name=f"first{n}")
        self.last = Signal(name=f"last{n}")
        self.group = Signal.like(r.g0, name=f"g{n}")
        self.layer = Signal.like(r.layer, name=f"layer{n}")

    def follow(self, prev: _Stage) -> list:
        """Assignments taking ``prev``'s values one cycle later."""
        names = ("valid", "first", "last", "group", "layer")
        return [getattr(self, k).eq(getattr(prev, k)) for k in names]


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
