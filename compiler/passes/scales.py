"""What every quantisation pass shares: the default width, the error, the candidate scales."""

from __future__ import annotations

__all__ = ["DEFAULT_TABLE_BITS", "QuantizeError", "candidate_scales", "check_table_bits"]

DEFAULT_TABLE_BITS = 8


class QuantizeError(ValueError):
    """The network cannot be quantised as asked; the message names the problem and the fix."""


def candidate_scales(s_fit: int) -> list[int]:
    """Scales a calibrated pass tries around the clip-free ``s_fit``, best first."""
    # In order of preference on equal agreement: no clipping first. Larger scales clip the
    # largest entries but resolve the small ones, which pays at few table bits.
    return [s_fit, s_fit + 1, s_fit - 1, s_fit + 2, s_fit + 3]


def check_table_bits(table_bits) -> int:
    """``table_bits`` as an int in 2..16, else :class:`QuantizeError`."""
    if isinstance(table_bits, bool) or not isinstance(table_bits, int) or not 2 <= table_bits <= 16:
        raise QuantizeError(f"table bits must be 2..16, not {table_bits!r}")
    return table_bits
