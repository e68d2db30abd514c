"""A LUT layer (indexer + synapse bank + optional residual add) and a network of layers.

Both are built from checked :class:`~spikelut.hdl.layer_params.LayerParams`: their
constructors only declare ports; the sub-components are built in ``elaborate``.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from spikelut.hdl.bank import LUTBank
from spikelut.hdl.indexer import IndexerKind, make_indexer
from spikelut.hdl.layer_params import LayerParams, network_cycles
from spikelut.hdl.layouts import event_layout, label_layout, vector_layout
from spikelut.hdl.storage import Storage
from spikelut.hdl.streams import Broadcast
from spikelut.hdl.vector import Argmax, ResidualAdd

__all__ = ["Layer", "Network", "check_chain", "input_layout"]


def input_layout(params: LayerParams):
    """The payload of a layer's ``i_stream``: the value vector, or for a temporal indexer
    one AER spike event (``event_layout(D, in_width)``)."""
    if params.indexer == IndexerKind.TEMPORAL:
        return event_layout(params.in_dim, params.in_width)
    return vector_layout(params.in_width, params.in_dim)


class Layer(wiring.Component):
    """One integer LUT layer: ``y = sum_i T[i, j_i] (+ x if residual)``, bit-exact with
    :func:`spikelut.compiler.ir.golden.lut_layer` ``(layer, x, in_shift)``.

    Ports: ``i_stream`` (:func:`input_layout`), ``o_stream``
    (``params.out_layout``), and for memory storage ``w_stream`` (the bank's
    table write port).
    """

    def __init__(self, params: LayerParams):
        self._p = params
        ports = {
            "i_stream": In(stream.Signature(input_layout(params))),
            "o_stream": Out(stream.Signature(params.out_layout)),
        }
        if params.storage != Storage.LOGIC:
            ports["w_stream"] = In(params.write_signature)
        super().__init__(ports)

    @property
    def params(self) -> LayerParams:
        """The layer's parameters."""
        return self._p

    def elaborate(self, platform):
        m = Module()
        p = self._p
        m.submodules.indexer = idx = make_indexer(
            p.indexer,
            anchors_a=p.anchors_a,
            anchors_b=p.anchors_b,
            in_dim=p.in_dim,
            in_width=p.in_width,
            in_shift=p.in_shift,
        )
        m.submodules.bank = bank = LUTBank(p)
        wiring.connect(m, idx.o_stream, bank.i_stream)
        if p.storage != Storage.LOGIC:
            wiring.connect(m, wiring.flipped(self.w_stream), bank.w_stream)
        if not p.residual:
            wiring.connect(m, wiring.flipped(self.i_stream), idx.i_stream)
            wiring.connect(m, bank.o_stream, wiring.flipped(self.o_stream))
            return m
        layout = vector_layout(p.in_width, p.in_dim)
        m.submodules.fork = fork = Broadcast(shape=layout)
        m.submodules.skip = skip = fifo.SyncFIFO(width=layout.size, depth=p.residual_depth)
        m.submodules.add = add = ResidualAdd(
            dim=p.in_dim, in_width=p.out_width, res_width=p.in_width, out_width=p.out_width
        )
        wiring.connect(m, wiring.flipped(self.i_stream), fork.i_stream)
        wiring.connect(m, fork.a_stream, idx.i_stream)
        wiring.connect(m, fork.b_stream, skip.w_stream)
        wiring.connect(m, skip.r_stream, add.r_stream)
        wiring.connect(m, bank.o_stream, add.i_stream)
        wiring.connect(m, add.o_stream, wiring.flipped(self.o_stream))
        return m


def check_chain(layers: Sequence[LayerParams]) -> None:
    """Raise ``ValueError`` unless ``layers`` is a non-empty chain: layer ``k+1`` reads what
    layer ``k`` gives (dimension and width), only layer 0 may be temporal and only the last
    may be chunked."""
    if isinstance(layers, LayerParams) or not layers:
        raise ValueError(f"layers must be a non-empty list of LayerParams, not {layers!r}")
    for k, p in enumerate(layers):
        if not isinstance(p, LayerParams):
            raise ValueError(f"layer {k} must be a LayerParams, not {p!r}")
        if k and (p.in_dim, p.in_width) != (layers[k - 1].out_dim, layers[k - 1].out_width):
            prev = layers[k - 1]
            raise ValueError(
                f"layer {k} reads {p.in_dim} values of {p.in_width} bits but layer {k - 1} "
                f"gives {prev.out_dim} of {prev.out_width} bits"
            )
        if k and p.indexer != IndexerKind.PARALLEL:
            raise ValueError(f"layer {k}: only layer 0 may use the temporal indexer")
        if p.chunked and k != len(layers) - 1:
            raise ValueError(f"layer {k} is chunked: only the last layer may stream chunks")


def check_classifier_chain(layers: Sequence[LayerParams]) -> None:
    """:func:`check_chain` for a classifier core, whose head takes whole vectors: no layer
    is chunked."""
    check_chain(layers)
    if any(p.chunked for p in layers):
        raise ValueError("a classifier core takes whole vectors: no chunked layer")


class Network(wiring.Component):
    """A chain of :class:`Layer` s joined by streams, optionally followed by :class:`~.vector.Argmax`.

    ``layers``: one :class:`LayerParams` per layer (a chain, :func:`check_chain`);
    ``argmax``: end with the argmax.

    Ports: ``i_stream`` (layer 0's input), ``o_stream`` (``label_layout(Y, out_width)`` with
    argmax, else ``vector_layout(out_width, Y)``), and ``w{k}_stream`` for every layer ``k``
    whose tables are in memory (that layer's bank write port).
    """

    def __init__(self, *, layers: Sequence[LayerParams], argmax: bool = True):
        check_classifier_chain(layers)
        self._layers = tuple(layers)
        self._argmax = bool(argmax)
        last = self._layers[-1]
        if self._argmax:
            out = label_layout(last.out_dim, last.out_width)
        else:
            out = vector_layout(last.out_width, last.out_dim)
        ports = {
            "i_stream": In(stream.Signature(input_layout(self._layers[0]))),
            "o_stream": Out(stream.Signature(out)),
        }
        for k, p in enumerate(self._layers):
            if p.storage != Storage.LOGIC:
                ports[f"w{k}_stream"] = In(p.write_signature)
        super().__init__(ports)

    @property
    def layers(self) -> tuple[LayerParams, ...]:
        """The layers' parameters, in order."""
        return self._layers

    @property
    def argmax(self) -> bool:
        """True when the network ends with the argmax."""
        return self._argmax

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive inputs at full rate (the slowest layer)."""
        return network_cycles(self._layers)

    def elaborate(self, platform):
        m = Module()
        prev = wiring.flipped(self.i_stream)
        for k, p in enumerate(self._layers):
            m.submodules[f"layer{k}"] = layer = Layer(p)
            if p.storage != Storage.LOGIC:
                wiring.connect(m, wiring.flipped(getattr(self, f"w{k}_stream")), layer.w_stream)
            wiring.connect(m, prev, layer.i_stream)
            prev = layer.o_stream
        if self._argmax:
            last = self._layers[-1]
            m.submodules.argmax = head = Argmax(dim=last.out_dim, width=last.out_width)
            wiring.connect(m, prev, head.i_stream)
            prev = head.o_stream
        wiring.connect(m, prev, wiring.flipped(self.o_stream))
        return m
