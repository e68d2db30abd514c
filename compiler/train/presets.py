"""Named language-model configurations: one place for the shapes measured on each device.

A preset is a language model's shape (what :func:`~spikelut.compiler.train.lm.new_model`
takes) and the table width it is quantised to: the spiking RNN's in :data:`LM_PRESETS`, the
LUT transformer's in :data:`TRANSFORMER_PRESETS`. ``spikelut train lm --preset NAME``
starts from a preset's shape (``--arch transformer --preset NAME`` from a transformer's; an
explicit option overrides one of its values) and ``spikelut demo --lm`` trains, quantises
and builds an RNN preset. Only these tables hold these numbers; change a preset here after
a measurement sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikelut.compiler.errors import UserError

__all__ = [
    "LM_PRESETS",
    "TRANSFORMER_PRESETS",
    "LMPreset",
    "TransformerPreset",
    "lm_preset",
    "lm_preset_for_target",
]


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
    # the best validation loss among the trained shapes whose whole iCEBreaker design builds
    # with room for the spread of trained tables (200,000 steps, 10,000 windows: 2.311
    # float, 2.318 integer nats; 5,172 of 5,280 logic cells, 12 block RAMs, 3 SPRAMs, Fmax
    # 21.9 MHz). Hidden 16 with cell 4 x N_C 4 and unembedder 4 x N_C 6 reaches 2.221 /
    # 2.250 but fits only by 12 cells on one corpus and misses by 20 on another (the
    # integer sums' widths follow the trained tables). The language-model board top takes
    # about 3,000 cells beside the core, more than a classifier's, so the larger shapes
    # whose memories fit (hidden 48, cell 16 x 6, unembedder 8 x 5: about 4,900 cells
    # bare; hidden 24, 4 x 6, 4 x 7: 5,840 cells in all) do not; README "Language models
    # on a board".
    "up5k": LMPreset(
        dim=16,
        n_tables=4,
        n_c=5,
        unembed_tables=4,
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


@dataclass(frozen=True)
class TransformerPreset:
    """A LUT transformer's shape and table width: ``context`` positions, embedding ``dim``,
    ``layers`` of ``heads`` heads, ``n_tables`` attention and FFN tables of ``n_c``
    comparisons, ``n_pe`` positional bits, ``table_bits``-bit integer tables; ``target``:
    the device whose block RAMs its core was measured to fit (``spikelut compile
    --target``)."""

    context: int
    dim: int
    layers: int
    heads: int
    n_tables: int
    n_c: int
    n_pe: int
    table_bits: int
    target: str
    arch: str = "transformer"

    def shape(self) -> dict:
        """Keyword arguments of :func:`~spikelut.compiler.train.lm.new_model` (``arch`` apart)."""
        return {
            "context": self.context,
            "dim": self.dim,
            "n_layers": self.layers,
            "n_heads": self.heads,
            "n_tables": self.n_tables,
            "n_c": self.n_c,
            "n_pe": self.n_pe,
        }


TRANSFORMER_PRESETS: dict[str, TransformerPreset] = {
    # the best validation loss of six shapes that fit the ECP5-85's block RAMs as
    # ``spikelut compile --target ecp5-85`` places them (bench/transformer_sizes.py, 50,000
    # steps each at 6 bits: 2.042 float, 2.132 integer nats). Quantised to 8 bits: after
    # 200,000 steps (10,000 validation windows) 6-bit tables lose 0.167 nats to the float
    # model, 8-bit ones 0.029, and
    # the 8-bit core still fits the ECP5-85 board build (205 block RAMs, 8 attention tables
    # a cycle instead of 12).
    "ecp5-85": TransformerPreset(
        context=32,
        dim=32,
        layers=1,
        heads=2,
        n_tables=16,
        n_c=3,
        n_pe=2,
        table_bits=8,
        target="ecp5-85",
    ),
}


def lm_preset(name: str, arch: str = "rnn") -> LMPreset | TransformerPreset:
    """The preset of architecture ``arch`` called ``name``; UserError listing that
    architecture's names otherwise."""
    presets, other = (
        (TRANSFORMER_PRESETS, "spiking RNN")
        if arch == "transformer"
        else (LM_PRESETS, "transformer")
    )
    if name in presets:
        return presets[name]
    what = f"is a {other}'s" if name in {**LM_PRESETS, **TRANSFORMER_PRESETS} else "is unknown"
    raise UserError(
        f"language-model preset {name!r} {what}; for a {arch.replace('rnn', 'spiking RNN')} "
        f"choose one of {', '.join(presets)}"
    )


def lm_preset_for_target(target: str) -> str | None:
    """The name of the preset measured on the device ``target``, or None."""
    return next((name for name, p in LM_PRESETS.items() if p.target == target), None)
