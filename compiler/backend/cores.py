"""The kinds of network core, the one rule that picks one, and their cycle counts.

- ``parallel``: every anchor comparison at once (:class:`spikelut.hdl.layer.Network` with
  the parallel indexer): ``N_T * N_C`` comparators per layer, one vector per clock at the
  comparators, tables read at the bank's rate.
- ``temporal``: the same network fed with AER spike events, one per clock (the temporal
  indexer): a vector takes ``D`` cycles to arrive; only asked for, never picked.
- ``serial``: a few comparators per clock index one group of tables while the previous
  group is read (:class:`spikelut.hdl.serial_core.SerialNetwork`): far less logic at the
  same table rate; no residual layers.

Cycles per inference are a pure function of the layers' parameters
(:func:`spikelut.hdl.layer_params.network_cycles`): for one placement every kind reads the
tables at the same rate, the memory-bandwidth floor ``ceil(N_T/P) * ceil(Y/L)`` of its
slowest layer (a temporal core is also bound by ``D`` events per vector).

:func:`choose_core` is the one automatic choice, used by ``spikelut compile`` and by board
builds alike: among the kinds that can run the model, the one with the fewest estimated
logic cells (ties to the serial core).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layer import Network
from spikelut.hdl.layer_params import LayerParams, network_cycles
from spikelut.hdl.serial_core import SerialNetwork

__all__ = [
    "AUTO_KINDS",
    "CoreKind",
    "build_core",
    "choose_core",
    "core_cycles",
    "eligible_kinds",
    "unsupported_reason",
]


class CoreKind(enum.Enum):
    """A kind of network core (see the module docstring)."""

    PARALLEL = "parallel"
    TEMPORAL = "temporal"
    SERIAL = "serial"

    @property
    def indexer(self) -> IndexerKind:
        """The indexer of layer 0 (the serial core indexes on its own)."""
        return IndexerKind.TEMPORAL if self is CoreKind.TEMPORAL else IndexerKind.PARALLEL

    @classmethod
    def parse(cls, value: str | CoreKind) -> CoreKind:
        """``value`` as a kind; ValueError naming the kinds for anything else."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(k.value for k in cls)
            raise ValueError(f"unknown core kind {value!r}; choose one of: {names}") from None


# the kinds the automatic choice considers, in order of preference on a tie (a temporal core
# needs an AER input stream, which only a user who has one asks for)
AUTO_KINDS = (CoreKind.SERIAL, CoreKind.PARALLEL)


def unsupported_reason(kind: CoreKind, model) -> str | None:
    """Why ``kind`` cannot run ``model`` (an integer classifier), or None when it can."""
    if kind is CoreKind.SERIAL and any(layer.residual for layer in model.layers):
        return "the serial core has no residual add"
    return None


def eligible_kinds(model, kinds: Sequence[CoreKind] = AUTO_KINDS) -> list[CoreKind]:
    """The kinds of ``kinds`` that can run ``model``, in order."""
    return [k for k in kinds if unsupported_reason(k, model) is None]


def choose_core(logic_cells: Mapping[CoreKind, int]) -> CoreKind:
    """The kind with the fewest estimated logic cells (ties go to the earlier kind of
    :data:`AUTO_KINDS`); ``logic_cells`` holds the candidates that fit."""
    if not logic_cells:
        raise ValueError("no core kind to choose from")
    order = {k: n for n, k in enumerate([*AUTO_KINDS, *CoreKind])}
    return min(logic_cells, key=lambda k: (logic_cells[k], order[k]))


def build_core(kind: CoreKind, layers: Sequence[LayerParams], *, argmax: bool = True):
    """The network core of ``kind`` for ``layers`` (checked parameters, so it does not fail
    for a kind that supports them): a :class:`~spikelut.hdl.layer.Network` (ending with the
    argmax unless ``argmax`` is False: its output is then the last layer's vector) or a
    :class:`~spikelut.hdl.serial_core.SerialNetwork` (always with the argmax)."""
    if kind is CoreKind.SERIAL:
        if not argmax:
            raise ValueError("the serial core always ends with the argmax")
        return SerialNetwork(layers=layers)
    return Network(layers=layers, argmax=argmax)


def core_cycles(layers: Sequence[LayerParams]) -> int:
    """Cycles per inference of a core of ``layers`` at full rate (any kind: see the module
    docstring)."""
    return network_cycles(layers)
