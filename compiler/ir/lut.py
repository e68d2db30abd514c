"""The LUT layer, the IR's building block, and its forward pass.

A LUT layer maps ``x`` (``D`` values) to ``y`` (``Y`` values) with ``N_T`` tables; table
``i`` compares ``N_C`` anchor pairs ``(a[i, r], b[i, r])`` and selects row
``j[i] = sum_r (x[a[i, r]] > x[b[i, r]]) << r`` of ``tables[i]`` (strict comparison: a tie
gives 0; pair 0 is the least significant bit); ``y = sum_i tables[i, j[i]]`` (``+ x`` when
residual). The same class holds float layers (``tables`` float32) and integer layers
(``tables`` int64); the integer semantics with input shifts are in
:mod:`spikelut.compiler.ir.golden`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from spikelut.hdl.params import check_anchors, check_int

__all__ = ["MAX_N_C", "IRError", "LUTLayer", "comparisons", "indices_from_u"]

MAX_N_C = 16


class IRError(ValueError):
    """An IR object was built from inconsistent or out-of-range parameters."""


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
        in_dim = check_int("in_dim", self.in_dim, 2, error=IRError)
        if np.ndim(self.a) == 2:
            check_int("N_C", np.shape(self.a)[1], 1, MAX_N_C, error=IRError)
        a, b = check_anchors(self.a, self.b, in_dim, names=("a", "b"), error=IRError)
        tables = np.asarray(self.tables)
        n_t, n_c = a.shape
        check_int("N_C", n_c, 1, MAX_N_C, error=IRError)
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
        in_dim = check_int("in_dim", in_dim, 2, error=IRError)
        n_tables = check_int("N_T", n_tables, 1, error=IRError)
        n_c = check_int("N_C", n_c, 1, MAX_N_C, error=IRError)
        out_dim = check_int("out_dim", out_dim, 1, error=IRError)
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

    def memory_bits(self, table_bits: int) -> int:
        """Bits the tables occupy at ``table_bits`` per entry: ``N_T * 2**N_C * Y * bits``."""
        return self.n_tables * (1 << self.n_c) * self.out_dim * int(table_bits)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Output ``y`` (B, Y) for inputs ``x`` (B, D): the float forward pass.

        Float tables compute in their dtype; integer tables keep the input's dtype (integer
        inputs then give the golden model's result for ``in_shift = 0``).
        """
        x = self.as_input(x)
        j = indices_from_u(comparisons(self, x))
        y = self.tables[np.arange(self.n_tables), j].sum(axis=1)
        return y + x if self.residual else y

    def as_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` checked to be (B, D) and cast to the tables' dtype when they are float."""
        x = np.asarray(x)
        if np.issubdtype(self.tables.dtype, np.floating):
            x = x.astype(self.tables.dtype, copy=False)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"layer input must have shape (B, {self.in_dim}), not {x.shape!r}")
        return x


def comparisons(layer: LUTLayer, x: np.ndarray) -> np.ndarray:
    """``u[b, i, r] = x[b, a[i, r]] - x[b, b[i, r]]``, shape (B, N_T, N_C)."""
    x = np.asarray(x)
    return x[:, layer.a] - x[:, layer.b]


def indices_from_u(u: np.ndarray) -> np.ndarray:
    """Row indices (B, N_T): bit ``r`` is ``u[..., r] > 0`` (strict), pair 0 the LSB."""
    weights = np.left_shift(np.int64(1), np.arange(u.shape[-1], dtype=np.int64))
    return (u > 0).astype(np.int64) @ weights
