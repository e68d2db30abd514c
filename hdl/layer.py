"""A LUT layer (indexer + synapse bank + optional residual add) and a network of layers.

Both are built from plain parameters; :class:`Layer` takes them as keyword arguments and
:class:`Network` takes one dict of :class:`Layer` keyword arguments per layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .bank import LUTBank, Storage
from .indexer import IndexerKind, make_indexer
from .layouts import label_layout, vector_layout
from .params import check_int, discard, signed_width, silent_on_error, sum_range
from .streams import Broadcast
from .vector import Argmax, ResidualAdd

__all__ = ["Layer", "Network"]


class Layer(wiring.Component):
    """One integer LUT layer: ``y = sum_i T[i, j_i] (+ x if residual)``, bit-exact with
    ``spikelut.sim.golden.lut_layer(layer, x, in_shift)``.

    Keyword parameters: ``anchors_a``, ``anchors_b`` (N_T, N_C); ``tables`` (N_T, 2**N_C, Y)
    integers; ``in_dim`` D; ``in_width`` (signed width of an input value); ``table_width``;
    ``out_width`` (signed width of an output value, checked against the exact bound);
    ``in_shift``; ``residual`` (Y == D, parallel indexer only); ``in_bounds``: ``(lo, hi)``,
    scalars or per-element arrays, the values the input can take (default: the full
    ``in_width`` range), which bound a residual layer's output; ``storage``, ``tables_per_cycle``,
    ``lanes`` (see :class:`~.bank.LUTBank`); ``indexer`` (:class:`~.indexer.IndexerKind`);
    ``residual_depth``: vectors buffered for the residual add (default: the fewest that keep
    the layer at its full rate: 3 for LOGIC; 5, 3, 2 for a memory bank of 1, 2, >= 3 cycles per
    inference).

    Ports: ``i_stream`` (``vector_layout(in_width, D)``, or ``event_layout(D, in_width)`` for a
    temporal indexer), ``o_stream`` (``vector_layout(out_width, Y)``), and for memory storage
    ``w_stream`` (the bank's table write port).
    """

    @silent_on_error
    def __init__(
        self,
        *,
        anchors_a,
        anchors_b,
        tables,
        in_dim: int,
        in_width: int,
        table_width: int,
        out_width: int,
        in_shift: int = 0,
        residual: bool = False,
        in_bounds=None,
        storage: Storage = Storage.BRAM,
        tables_per_cycle: int | None = None,
        lanes: int | None = None,
        indexer: IndexerKind = IndexerKind.PARALLEL,
        residual_depth: int | None = None,
    ):
        try:
            kind = IndexerKind(indexer)
        except ValueError:
            raise ValueError(f"indexer must be an IndexerKind, not {indexer!r}") from None
        self._indexer = make_indexer(
            kind,
            anchors_a=anchors_a,
            anchors_b=anchors_b,
            in_dim=in_dim,
            in_width=in_width,
            in_shift=in_shift,
        )
        try:
            self._residual = bool(residual)
            self._out_width = check_int("out_width", out_width, 1, 64)
            self._bank = LUTBank(
                tables=tables,
                table_width=table_width,
                acc_width=self._out_width,
                modular=self._residual,
                storage=storage,
                tables_per_cycle=tables_per_cycle,
                lanes=lanes,
            )
            if self._bank.n_tables != self._indexer.n_tables or self._bank.n_c != self._indexer.n_c:
                raise ValueError(
                    f"tables of shape {self._bank.tables.shape!r} do not match anchors of shape "
                    f"{self._indexer.anchors_a.shape!r}"
                )
            if self._residual:
                if self.out_dim != self.in_dim:
                    raise ValueError(
                        f"a residual layer needs Y == D, not Y={self.out_dim!r} and D={self.in_dim!r}"
                    )
                if kind != IndexerKind.PARALLEL:
                    raise ValueError(
                        "a residual layer needs the parallel indexer (events carry no values)"
                    )
                in_lo, in_hi = _input_bounds(in_bounds, self.in_width, self.in_dim)
                lo, hi = sum_range(self._bank.tables)
                lo, hi = int((lo + in_lo).min()), int((hi + in_hi).max())
                need = signed_width(lo, hi)
                if self._out_width < need:
                    raise ValueError(
                        f"out_width={out_width!r} cannot hold the residual sums {lo}..{hi}; "
                        f"use at least {need}"
                    )
            if residual_depth is None:
                # enough for the vectors in flight between the fork and the add at full rate
                if self._bank.storage == Storage.LOGIC:
                    residual_depth = 3
                else:
                    residual_depth = {1: 5, 2: 3}.get(self._bank.cycles_per_inference, 2)
            self._residual_depth = check_int("residual_depth", residual_depth, 1, 64)
        except (TypeError, ValueError):
            discard(self._indexer, getattr(self, "_bank", None))
            raise
        ports = {
            "i_stream": In(_in_port(self._indexer, "i_stream")),
            "o_stream": Out(stream.Signature(vector_layout(self._out_width, self.out_dim))),
        }
        if self._bank.storage != Storage.LOGIC:
            ports["w_stream"] = In(_in_port(self._bank, "w_stream"))
        super().__init__(ports)
        # owned parts: only the layer itself reports being left unused
        discard(self._indexer, self._bank)

    @property
    def indexer(self):
        """The indexer sub-component (parameters: anchors, in_dim, in_width, in_shift)."""
        return self._indexer

    @property
    def bank(self) -> LUTBank:
        """The synapse bank sub-component (tables, widths, storage, P, L, depth)."""
        return self._bank

    @property
    def in_dim(self) -> int:
        """D."""
        return self._indexer.in_dim

    @property
    def in_width(self) -> int:
        """Signed width of an input value."""
        return self._indexer.in_width

    @property
    def out_dim(self) -> int:
        """Y."""
        return self._bank.out_dim

    @property
    def out_width(self) -> int:
        """Signed width of an output value."""
        return self._out_width

    @property
    def residual(self) -> bool:
        """True when the input is added to the output."""
        return self._residual

    @property
    def indexer_kind(self) -> IndexerKind:
        """Which indexer the layer uses."""
        return self._indexer.kind

    @property
    def residual_depth(self) -> int | None:
        """Vectors buffered for the residual add (None when not residual)."""
        return self._residual_depth if self._residual else None

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive vectors at full rate (the slower of the indexer,
        one event per clock for a temporal one, and the bank)."""
        idx = self.in_dim if self.indexer_kind == IndexerKind.TEMPORAL else 1
        return max(idx, self._bank.cycles_per_inference)

    def elaborate(self, platform):
        m = Module()
        m.submodules.indexer = idx = self._indexer
        m.submodules.bank = bank = self._bank
        wiring.connect(m, idx.o_stream, bank.i_stream)
        if self._bank.storage != Storage.LOGIC:
            wiring.connect(m, wiring.flipped(self.w_stream), bank.w_stream)
        if not self._residual:
            wiring.connect(m, wiring.flipped(self.i_stream), idx.i_stream)
            wiring.connect(m, bank.o_stream, wiring.flipped(self.o_stream))
            return m
        layout = vector_layout(self.in_width, self.in_dim)
        m.submodules.fork = fork = Broadcast(shape=layout)
        m.submodules.skip = skip = fifo.SyncFIFO(width=layout.size, depth=self._residual_depth)
        m.submodules.add = add = ResidualAdd(
            dim=self.in_dim,
            in_width=self._out_width,
            res_width=self.in_width,
            out_width=self._out_width,
        )
        wiring.connect(m, wiring.flipped(self.i_stream), fork.i_stream)
        wiring.connect(m, fork.a_stream, idx.i_stream)
        m.d.comb += [
            skip.w_data.eq(fork.b_stream.payload),
            skip.w_en.eq(fork.b_stream.valid),
            fork.b_stream.ready.eq(skip.w_rdy),
            add.r_stream.payload.eq(skip.r_data),
            add.r_stream.valid.eq(skip.r_rdy),
            skip.r_en.eq(add.r_stream.ready),
        ]
        wiring.connect(m, bank.o_stream, add.i_stream)
        wiring.connect(m, add.o_stream, wiring.flipped(self.o_stream))
        return m


def _input_bounds(in_bounds, in_width: int, in_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-element ``(lo, hi)`` of a layer's input: ``in_bounds`` or the full signed range."""
    if in_bounds is None:
        lo, hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    else:
        try:
            lo, hi = in_bounds
        except (TypeError, ValueError):
            raise ValueError(f"in_bounds must be a pair (lo, hi), not {in_bounds!r}") from None
    lo = np.broadcast_to(np.asarray(lo, np.int64), (in_dim,))
    hi = np.broadcast_to(np.asarray(hi, np.int64), (in_dim,))
    full_lo, full_hi = -(1 << (in_width - 1)), (1 << (in_width - 1)) - 1
    if (lo > hi).any() or lo.min() < full_lo or hi.max() > full_hi:
        raise ValueError(
            f"in_bounds {int(lo.min())}..{int(hi.max())} must be ordered and within the "
            f"{in_width}-bit input range"
        )
    return lo, hi


def _in_port(component, name):
    """The stream signature of ``component``'s input port ``name`` (as declared with In)."""
    return component.signature.members[name].signature.flip()


class Network(wiring.Component):
    """A chain of :class:`Layer` s joined by streams, optionally followed by :class:`~.vector.Argmax`.

    ``layers``: one dict of :class:`Layer` keyword arguments per layer (layer ``k+1``'s
    ``in_dim`` and ``in_width`` must equal layer ``k``'s ``out_dim`` and ``out_width``; only
    layer 0 may use the temporal indexer). ``argmax``: end with the argmax.

    Ports: ``i_stream`` (layer 0's input), ``o_stream`` (``label_layout(Y, out_width)`` with
    argmax, else ``vector_layout(out_width, Y)``), and ``w{k}_stream`` for every layer ``k``
    whose tables are in memory (that layer's bank write port).
    """

    @silent_on_error
    def __init__(self, *, layers: Sequence[Mapping], argmax: bool = True):
        if isinstance(layers, Mapping) or not isinstance(layers, Sequence) or not layers:
            raise ValueError(f"layers must be a non-empty list of parameter dicts, not {layers!r}")
        built = []
        try:
            for k, params in enumerate(layers):
                if not isinstance(params, Mapping):
                    raise ValueError(
                        f"layer {k} must be a dict of Layer parameters, not {params!r}"
                    )
                try:
                    layer = Layer(**params)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"layer {k}: {e}") from None
                built.append(layer)
                if k:
                    prev = built[-2]
                    if (layer.in_dim, layer.in_width) != (prev.out_dim, prev.out_width):
                        raise ValueError(
                            f"layer {k} reads {layer.in_dim} values of {layer.in_width} bits but layer "
                            f"{k - 1} gives {prev.out_dim} of {prev.out_width} bits"
                        )
                    if layer.indexer_kind != IndexerKind.PARALLEL:
                        raise ValueError(f"layer {k}: only layer 0 may use the temporal indexer")
        except ValueError:
            for layer in built:
                discard(layer, layer.indexer, layer.bank)
            raise
        self._layers = built
        self._argmax = bool(argmax)
        last = built[-1]
        if self._argmax:
            self._head = Argmax(dim=last.out_dim, width=last.out_width)
            out = label_layout(last.out_dim, last.out_width)
        else:
            self._head = None
            out = vector_layout(last.out_width, last.out_dim)
        ports = {
            "i_stream": In(_in_port(built[0], "i_stream")),
            "o_stream": Out(stream.Signature(out)),
        }
        for k, layer in enumerate(built):
            if "w_stream" in layer.signature.members:
                ports[f"w{k}_stream"] = In(_in_port(layer, "w_stream"))
        super().__init__(ports)
        discard(*built, self._head)

    @property
    def layers(self) -> list[Layer]:
        """The layer sub-components, in order."""
        return list(self._layers)

    @property
    def argmax(self) -> bool:
        """True when the network ends with the argmax."""
        return self._argmax

    @property
    def cycles_per_inference(self) -> int:
        """Clock cycles between consecutive inputs at full rate (the slowest layer)."""
        return max(layer.cycles_per_inference for layer in self._layers)

    def elaborate(self, platform):
        m = Module()
        for k, layer in enumerate(self._layers):
            m.submodules[f"layer{k}"] = layer
            if f"w{k}_stream" in self.signature.members:
                wiring.connect(m, wiring.flipped(getattr(self, f"w{k}_stream")), layer.w_stream)
        wiring.connect(m, wiring.flipped(self.i_stream), self._layers[0].i_stream)
        for prev, nxt in zip(self._layers, self._layers[1:], strict=False):
            wiring.connect(m, prev.o_stream, nxt.i_stream)
        tail = self._layers[-1].o_stream
        if self._head is not None:
            m.submodules.argmax = self._head
            wiring.connect(m, tail, self._head.i_stream)
            tail = self._head.o_stream
        wiring.connect(m, tail, wiring.flipped(self.o_stream))
        return m
