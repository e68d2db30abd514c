"""Named language-model configurations: one place for the shapes measured on each device.

A preset is the spiking RNN's shape (what :func:`~spikelut.compiler.train.lm.new_model`
takes) and the table width it is quantised to. ``spikelut train lm --preset NAME`` starts
from a preset's shape (an explicit option overrides one of its values) and
``spikelut demo --lm`` trains, quantises and builds it. Only this table holds these
numbers; change a preset here after a measurement sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikelut.compiler.errors import UserError

__all__ = ["LM_PRESETS", "LMPreset", "lm_preset", "lm_preset_for_target"]


@dataclass(frozen=True)
class LMPreset:
    """A spiking RNN's shape and table width: hidden size ``dim``, the cell's ``n_tables``
    tables of ``n_c`` comparisons, the unembedder's ``unembed_tables`` of
    ``unembed_n_c``, ``table_bits``-bit integer tables; ``target``: the device it was
    measured on (a :data:`~spikelut.compiler.backend.targets.TARGETS` name)."""

    dim: int
    n_tables: int
    n_c: int
    unembed_tables: int
    unembed_n_c: int
    table_bits: int
    target: str
    arch: str = "rnn"

    def shape(self) -> dict:
        """Keyword arguments of :func:`~spikelut.compiler.train.lm.new_model` (``arch`` apart)."""
        return {
            "dim": self.dim,
            "n_tables": self.n_tables,
            "n_c": self.n_c,
            "unembed_tables": self.unembed_tables,
            "unembed_n_c": self.unembed_n_c,
        }


LM_PRESETS: dict[str, LMPreset] = {
    # the largest shape whose memories fit the UP5K beside the host link's (bench/rnn_sizes.py
    # over trained candidates: 1.876 float, 1.891 integer nats; the core's logic does not fit
    # the device yet, see README "Language models on a board")
    "up5k": LMPreset(
        dim=48,
        n_tables=16,
        n_c=6,
        unembed_tables=8,
        unembed_n_c=5,
        table_bits=6,
        target="ice40-up5k",
    ),
    "ecp5-85": LMPreset(
        dim=48,
        n_tables=16,
        n_c=6,
        unembed_tables=16,
        unembed_n_c=6,
        table_bits=8,
        target="ecp5-85",
    ),
}


def lm_preset(name: str) -> LMPreset:
    """The preset called ``name``; UserError listing the names otherwise."""
    try:
        return LM_PRESETS[name]
    except KeyError:
        raise UserError(
            f"no language-model preset {name!r}; choose one of {', '.join(LM_PRESETS)}"
        ) from None


def lm_preset_for_target(target: str) -> str | None:
    """The name of the preset measured on the device ``target``, or None."""
    return next((name for name, p in LM_PRESETS.items() if p.target == target), None)
