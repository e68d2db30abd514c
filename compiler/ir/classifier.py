"""The classifier IR: input encoding, a chain of LUT layers, argmax; and its float forward pass.

The same classes hold float networks (``tables`` float32) and integer networks (``tables``
int64 plus a :class:`LayerQuant` per layer); the integer semantics are in
:mod:`spikelut.compiler.ir.golden`. Every IR class converts to and from ``(header, arrays)``:
a JSON-able dict and a dict of numpy arrays, which is what the model file
(:mod:`spikelut.compiler.ir.modelfile`) stores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from spikelut.compiler.ir.lut import IRError, LUTLayer
from spikelut.hdl.params import check_int

__all__ = ["ClassifierMLP", "InputEncoding", "LayerQuant"]


@dataclass(frozen=True)
class LayerQuant:
    """Integer format of one layer of a quantised network.

    ``table_bits``: signed width of the table entries (2..16). ``in_shift``: arithmetic
    right shift applied to the layer's input before the comparators (0 = none; a non-zero
    shift can create ties and is always reported). ``out_scale_log2``: the layer's output
    integers represent ``value * 2**out_scale_log2`` of the float network (metadata only;
    the integer semantics never use it).
    """

    table_bits: int = 8
    in_shift: int = 0
    out_scale_log2: int = 0

    def __post_init__(self) -> None:
        check_int("table_bits", self.table_bits, 2, 16, error=IRError)
        check_int("in_shift", self.in_shift, 0, 62, error=IRError)
        check_int("out_scale_log2", self.out_scale_log2, -64, 64, error=IRError)


@dataclass(frozen=True, eq=False)
class InputEncoding:
    """How raw features become the network's input vector.

    Float input: ``x = (raw - offset) * gain`` per feature, followed by the ``constants``
    (the same values for every sample; none by default). Integer input (quantised networks):
    ``clip(round(x * 2**frac_bits), -(2**(bits-1)), 2**(bits-1) - 1)``, a signed
    ``bits``-wide integer. Digits pixels (0..16) use offset 0, gain 1, frac_bits 0, bits 6.

    Constant inputs let the first layer's comparisons be thresholds: ``x[i] > c`` is a
    comparison of feature ``i`` with a constant input. The encoding runs on the host, so the
    network (golden model and hardware alike) sees ``width = dim + len(constants)`` integers.
    """

    offset: np.ndarray
    gain: np.ndarray
    bits: int = 16
    frac_bits: int = 0
    constants: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        offset = np.asarray(self.offset, np.float64)
        gain = np.asarray(self.gain, np.float64)
        if offset.ndim != 1 or offset.shape != gain.shape:
            raise IRError(
                f"offset and gain must be vectors of one length, not {offset.shape!r} and {gain.shape!r}"
            )
        if not np.all(np.isfinite(offset)) or not np.all(np.isfinite(gain)):
            raise IRError("offset and gain must be finite")
        constants = np.asarray(self.constants, np.float64).reshape(-1)
        if not np.all(np.isfinite(constants)):
            raise IRError("constant inputs must be finite")
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "gain", gain)
        object.__setattr__(self, "constants", constants)
        check_int("input bits", self.bits, 2, 32, error=IRError)
        check_int("input frac_bits", self.frac_bits, -32, 32, error=IRError)

    @property
    def dim(self) -> int:
        """The number of raw input features."""
        return self.offset.shape[0]

    @property
    def width(self) -> int:
        """The length of the network's input vector: the features, then the constants."""
        return self.offset.shape[0] + self.constants.shape[0]

    @classmethod
    def identity(cls, dim: int, *, bits: int = 16) -> InputEncoding:
        """Raw features used as they are."""
        return cls(offset=np.zeros(dim), gain=np.ones(dim), bits=bits)

    def encode_float(self, raw: np.ndarray, in_shift: int = 0) -> np.ndarray:
        """Float network input for raw features of shape (..., dim), as float32.

        ``in_shift`` > 0: the inputs as the integer network's first layer compares them after
        that input shift, on the float scale: the integer input (:meth:`encode_int`, clipped
        as it clips) with its low ``in_shift`` bits cleared, so that every comparison (and
        every tie of ``x >> in_shift``) is the hardware's. Networks trained so (``train
        classifier --in-shift``) learn those ties."""
        if in_shift:
            check_int("in_shift", in_shift, 0, 62, error=IRError)
            x = (self.encode_int(raw) >> in_shift) << in_shift
            return (x * 2.0**-self.frac_bits).astype(np.float32)
        raw = np.asarray(raw, np.float64)
        if raw.shape[-1] != self.dim:
            raise IRError(f"inputs must have {self.dim} features, not {raw.shape[-1]!r}")
        x = (raw - self.offset) * self.gain
        if self.constants.size:
            x = np.concatenate(
                [x, np.broadcast_to(self.constants, (*x.shape[:-1], self.constants.size))], axis=-1
            )
        return x.astype(np.float32)

    def encode_int(self, raw: np.ndarray) -> np.ndarray:
        """Integer network input for raw features of shape (..., dim), as int64."""
        raw = np.asarray(raw, np.float64)
        if raw.shape[-1] != self.dim:
            raise IRError(f"inputs must have {self.dim} features, not {raw.shape[-1]!r}")
        x = np.rint((raw - self.offset) * self.gain * 2.0**self.frac_bits)
        if self.constants.size:
            c = np.rint(self.constants * 2.0**self.frac_bits)
            x = np.concatenate([x, np.broadcast_to(c, (*x.shape[:-1], c.size))], axis=-1)
        lim = 1 << (self.bits - 1)
        return np.clip(x, -lim, lim - 1).astype(np.int64)


@dataclass(eq=False)
class ClassifierMLP:
    """A classifier: input encoding, a chain of LUT layers, argmax over the last layer.

    ``quant`` is None for a float network and one :class:`LayerQuant` per layer for an
    integer network (whose tables are then integers). ``meta`` holds training metadata and
    provenance; it must be JSON-serialisable.
    """

    ARCH: ClassVar[str] = "classifier"

    encoding: InputEncoding
    layers: list[LUTLayer]
    n_classes: int
    quant: list[LayerQuant] | None = None
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.layers:
            raise IRError("a classifier needs at least one LUT layer")
        check_int("n_classes", self.n_classes, 2, error=IRError)
        if self.layers[0].in_dim != self.encoding.width:
            raise IRError(
                f"layer 0 reads {self.layers[0].in_dim} inputs but the encoding gives {self.encoding.width}"
            )
        for k in range(1, len(self.layers)):
            if self.layers[k].in_dim != self.layers[k - 1].out_dim:
                raise IRError(
                    f"layer {k} reads {self.layers[k].in_dim} values but layer {k - 1} gives "
                    f"{self.layers[k - 1].out_dim}"
                )
        if self.layers[-1].out_dim != self.n_classes:
            raise IRError(
                f"the last layer gives {self.layers[-1].out_dim} values for {self.n_classes} classes"
            )
        if self.quant is not None:
            self._check_quant()
        if self.class_names is not None and len(self.class_names) != self.n_classes:
            raise IRError(f"{len(self.class_names)} class names for {self.n_classes} classes")

    def _check_quant(self) -> None:
        """IRError unless there is one format per layer and the tables fit it."""
        if len(self.quant) != len(self.layers):
            raise IRError(f"quant has {len(self.quant)} entries for {len(self.layers)} layers")
        for k, layer in enumerate(self.layers):
            if not layer.is_integer:
                raise IRError(f"layer {k} of a quantised network has non-integer tables")
            lim = 1 << (self.quant[k].table_bits - 1)
            if layer.tables.size and (layer.tables.min() < -lim or layer.tables.max() >= lim):
                raise IRError(
                    f"layer {k} has table entries outside {self.quant[k].table_bits}-bit range"
                )

    @property
    def is_integer(self) -> bool:
        """True for a quantised (integer) network."""
        return self.quant is not None

    def float_logits(self, raw: np.ndarray) -> np.ndarray:
        """The float network's last-layer output (B, n_classes) for raw features (B, dim)."""
        return self.float_outputs(raw)[-1]

    def float_outputs(self, raw: np.ndarray) -> list[np.ndarray]:
        """Every layer's float output for raw features (B, dim), first layer first."""
        if self.is_integer:
            raise ValueError(
                "the float forward pass runs float networks; integer ones run on the golden model"
            )
        x = self.encoding.encode_float(np.atleast_2d(raw), self.float_in_shift)
        outs = []
        for layer in self.layers:
            x = layer.forward(x)
            outs.append(x)
        return outs

    @property
    def float_in_shift(self) -> int:
        """The first-layer input shift a float network's tables were trained for (its float
        forward pass compares the inputs so, :meth:`InputEncoding.encode_float`): the
        training's ``in_shift`` hyper-parameter, recorded in ``meta``; 0 for none and for
        integer networks (their shifts are in ``quant``)."""
        if self.is_integer:
            return 0
        return int((self.meta.get("hyperparameters") or {}).get("in_shift", 0))

    def float_predict(self, raw: np.ndarray) -> np.ndarray:
        """Float predictions (argmax, ties to the lowest index) for raw features (B, dim)."""
        return np.argmax(self.float_logits(raw), axis=-1)

    # -- serialisation (see spikelut.compiler.ir.modelfile) --------------------------------

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Header (JSON-able) and arrays that :meth:`from_arrays` rebuilds exactly."""
        arrays: dict[str, np.ndarray] = {
            "encoding/offset": self.encoding.offset,
            "encoding/gain": self.encoding.gain,
        }
        if self.encoding.constants.size:  # absent in files without constant inputs
            arrays["encoding/constants"] = self.encoding.constants
        layers = []
        for k, layer in enumerate(self.layers):
            arrays[f"layers/{k}/a"] = layer.a
            arrays[f"layers/{k}/b"] = layer.b
            arrays[f"layers/{k}/tables"] = layer.tables
            layers.append(
                {
                    "in_dim": layer.in_dim,
                    "out_dim": layer.out_dim,
                    "n_tables": layer.n_tables,
                    "n_c": layer.n_c,
                    "residual": layer.residual,
                }
            )
        header = {
            "encoding": {"bits": self.encoding.bits, "frac_bits": self.encoding.frac_bits},
            "layers": layers,
            "n_classes": self.n_classes,
            "class_names": self.class_names,
            "quant": None if self.quant is None else [dataclasses.asdict(q) for q in self.quant],
            "meta": self.meta,
        }
        return header, arrays

    @classmethod
    def from_arrays(cls, header: dict, arrays: dict[str, np.ndarray]) -> ClassifierMLP:
        """Rebuild from :meth:`to_arrays` output; raises IRError/KeyError when inconsistent."""
        enc = InputEncoding(
            offset=arrays["encoding/offset"],
            gain=arrays["encoding/gain"],
            bits=header["encoding"]["bits"],
            frac_bits=header["encoding"]["frac_bits"],
            constants=arrays.get("encoding/constants", np.zeros(0)),
        )
        layers = []
        for k, spec in enumerate(header["layers"]):
            layer = LUTLayer(
                a=arrays[f"layers/{k}/a"],
                b=arrays[f"layers/{k}/b"],
                tables=arrays[f"layers/{k}/tables"],
                in_dim=spec["in_dim"],
                residual=spec["residual"],
            )
            if (layer.out_dim, layer.n_tables, layer.n_c) != (
                spec["out_dim"],
                spec["n_tables"],
                spec["n_c"],
            ):
                raise IRError(f"layer {k}'s arrays do not match its header")
            layers.append(layer)
        quant = header["quant"]
        return cls(
            encoding=enc,
            layers=layers,
            n_classes=header["n_classes"],
            quant=None if quant is None else [LayerQuant(**q) for q in quant],
            class_names=header["class_names"],
            meta=header["meta"],
        )
