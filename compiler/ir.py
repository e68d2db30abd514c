"""The typed IR of LUT networks: the LUT layer and the classifier MLP.

A LUT layer (DESIGN.md section 1) maps ``x`` (``D`` values) to ``y`` (``Y`` values) with
``N_T`` tables; table ``i`` compares ``N_C`` anchor pairs ``(a[i, r], b[i, r])`` and selects
row ``j[i] = sum_r (x[a[i, r]] > x[b[i, r]]) << r`` of ``tables[i]``;
``y = sum_i tables[i, j[i]]`` (``+ x`` when residual).

The same classes hold float networks (``tables`` float32) and integer networks (``tables``
int64 plus a :class:`LayerQuant` per layer); integer semantics are in ``spikelut.sim.golden``.

Every IR class converts to and from ``(header, arrays)``: a JSON-able dict and a dict of
numpy arrays, which is what the model file (``spikelut.compiler.modelfile``) stores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

MAX_N_C = 16


class IRError(ValueError):
    """An IR object was built from inconsistent or out-of-range parameters."""


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise IRError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise IRError(f"{name} must be {bound}, not {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class LUTLayer:
    """One LUT layer: anchors ``a``, ``b`` of shape (N_T, N_C), ``tables`` (N_T, 2**N_C, Y).

    ``in_dim`` is D, the length of the input vector the anchors index into. ``residual``
    adds the input to the output (requires Y == D). Construction validates every shape and
    index and raises :class:`IRError` quoting the offending value.
    """

    a: np.ndarray
    b: np.ndarray
    tables: np.ndarray
    in_dim: int
    residual: bool = False

    def __post_init__(self) -> None:
        in_dim = _check_int("in_dim", self.in_dim, 2)
        a = np.asarray(self.a)
        b = np.asarray(self.b)
        tables = np.asarray(self.tables)
        if a.ndim != 2 or a.shape != b.shape:
            raise IRError(
                f"anchors a and b must both have shape (N_T, N_C), not {a.shape!r} and {b.shape!r}"
            )
        if not (np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)):
            raise IRError(f"anchors must be integers, not {a.dtype} and {b.dtype}")
        n_t, n_c = a.shape
        _check_int("N_T", n_t, 1)
        _check_int("N_C", n_c, 1, MAX_N_C)
        for name, arr in (("a", a), ("b", b)):
            bad = np.argwhere((arr < 0) | (arr >= in_dim))
            if len(bad):
                i, r = bad[0]
                raise IRError(
                    f"anchor {name}[{i}][{r}] = {int(arr[i, r])!r} is out of range 0..{in_dim - 1}"
                )
        same = np.argwhere(a == b)
        if len(same):
            i, r = same[0]
            raise IRError(
                f"anchor pair {(int(i), int(r))!r} compares neuron {int(a[i, r])} with itself"
            )
        if tables.ndim != 3 or tables.shape[:2] != (n_t, 1 << n_c):
            raise IRError(
                f"tables must have shape (N_T={n_t}, 2**N_C={1 << n_c}, Y), not {tables.shape!r}"
            )
        if tables.shape[2] < 1:
            raise IRError(f"tables must have at least one output column, not {tables.shape!r}")
        if not (
            np.issubdtype(tables.dtype, np.floating) or np.issubdtype(tables.dtype, np.integer)
        ):
            raise IRError(f"tables must be float or integer, not {tables.dtype}")
        if self.residual and tables.shape[2] != in_dim:
            raise IRError(
                f"a residual layer needs Y == D, not Y={tables.shape[2]!r} and D={in_dim!r}"
            )
        object.__setattr__(self, "a", a.astype(np.int64, copy=False))
        object.__setattr__(self, "b", b.astype(np.int64, copy=False))
        object.__setattr__(self, "tables", tables)
        object.__setattr__(self, "in_dim", in_dim)
        object.__setattr__(self, "residual", bool(self.residual))

    @property
    def n_tables(self) -> int:
        """N_T, the number of tables."""
        return self.a.shape[0]

    @property
    def n_c(self) -> int:
        """N_C, the number of anchor pairs (index bits) per table."""
        return self.a.shape[1]

    @property
    def out_dim(self) -> int:
        """Y, the length of the output vector."""
        return self.tables.shape[2]

    @property
    def is_integer(self) -> bool:
        """True when the tables hold integers (a quantised layer)."""
        return bool(np.issubdtype(self.tables.dtype, np.integer))

    @classmethod
    def random(
        cls,
        *,
        in_dim: int,
        out_dim: int,
        n_tables: int,
        n_c: int,
        rng: np.random.Generator,
        residual: bool = False,
        init_scale: float = 0.0,
    ) -> LUTLayer:
        """A layer with random anchors (``a != b``) and tables uniform in ±``init_scale``."""
        in_dim = _check_int("in_dim", in_dim, 2)
        n_tables = _check_int("N_T", n_tables, 1)
        n_c = _check_int("N_C", n_c, 1, MAX_N_C)
        out_dim = _check_int("out_dim", out_dim, 1)
        a = rng.integers(0, in_dim, size=(n_tables, n_c))
        # b uniform over the other D-1 neurons
        b = (a + rng.integers(1, in_dim, size=(n_tables, n_c))) % in_dim
        shape = (n_tables, 1 << n_c, out_dim)
        if init_scale:
            tables = rng.uniform(-init_scale, init_scale, size=shape).astype(np.float32)
        else:
            tables = np.zeros(shape, np.float32)
        return cls(a=a, b=b, tables=tables, in_dim=in_dim, residual=residual)

    def with_tables(self, tables: np.ndarray) -> LUTLayer:
        """The same anchors with other tables (e.g. quantised ones)."""
        return dataclasses.replace(self, tables=tables)


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
        _check_int("table_bits", self.table_bits, 2, 16)
        _check_int("in_shift", self.in_shift, 0, 62)
        _check_int("out_scale_log2", self.out_scale_log2, -64, 64)


@dataclass(frozen=True, eq=False)
class InputEncoding:
    """How raw features become the network's input vector.

    Float input: ``x = (raw - offset) * gain`` per feature. Integer input (quantised
    networks): ``clip(round(x * 2**frac_bits), -(2**(bits-1)), 2**(bits-1) - 1)``, a signed
    ``bits``-wide integer. Digits pixels (0..16) use offset 0, gain 1, frac_bits 0, bits 6.
    """

    offset: np.ndarray
    gain: np.ndarray
    bits: int = 16
    frac_bits: int = 0

    def __post_init__(self) -> None:
        offset = np.asarray(self.offset, np.float64)
        gain = np.asarray(self.gain, np.float64)
        if offset.ndim != 1 or offset.shape != gain.shape:
            raise IRError(
                f"offset and gain must be vectors of one length, not {offset.shape!r} and {gain.shape!r}"
            )
        if not np.all(np.isfinite(offset)) or not np.all(np.isfinite(gain)):
            raise IRError("offset and gain must be finite")
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "gain", gain)
        _check_int("input bits", self.bits, 2, 32)
        _check_int("input frac_bits", self.frac_bits, -32, 32)

    @property
    def dim(self) -> int:
        """The number of input features."""
        return self.offset.shape[0]

    @classmethod
    def identity(cls, dim: int, *, bits: int = 16) -> InputEncoding:
        """Raw features used as they are."""
        return cls(offset=np.zeros(dim), gain=np.ones(dim), bits=bits)

    def encode_float(self, raw: np.ndarray) -> np.ndarray:
        """Float network input for raw features of shape (..., dim), as float32."""
        raw = np.asarray(raw, np.float64)
        if raw.shape[-1] != self.dim:
            raise IRError(f"inputs must have {self.dim} features, not {raw.shape[-1]!r}")
        return ((raw - self.offset) * self.gain).astype(np.float32)

    def encode_int(self, raw: np.ndarray) -> np.ndarray:
        """Integer network input for raw features of shape (..., dim), as int64."""
        raw = np.asarray(raw, np.float64)
        if raw.shape[-1] != self.dim:
            raise IRError(f"inputs must have {self.dim} features, not {raw.shape[-1]!r}")
        x = np.rint((raw - self.offset) * self.gain * 2.0**self.frac_bits)
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
        _check_int("n_classes", self.n_classes, 2)
        if self.layers[0].in_dim != self.encoding.dim:
            raise IRError(
                f"layer 0 reads {self.layers[0].in_dim} inputs but the encoding gives {self.encoding.dim}"
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
        if self.class_names is not None and len(self.class_names) != self.n_classes:
            raise IRError(f"{len(self.class_names)} class names for {self.n_classes} classes")

    @property
    def is_integer(self) -> bool:
        """True for a quantised (integer) network."""
        return self.quant is not None

    # -- serialisation (see spikelut.compiler.modelfile) --------------------------------

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Header (JSON-able) and arrays that :meth:`from_arrays` rebuilds exactly."""
        arrays: dict[str, np.ndarray] = {
            "encoding/offset": self.encoding.offset,
            "encoding/gain": self.encoding.gain,
        }
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
