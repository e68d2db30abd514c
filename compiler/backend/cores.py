"""The kinds of network core, the one rule that picks one, and their cycle counts.

- ``parallel``: every anchor comparison at once (:class:`spikelut.hdl.layer.Network` with
  the parallel indexer): ``N_T * N_C`` comparators per layer, one vector per clock at the
  comparators, tables read at the bank's rate.
- ``temporal``: the same network fed with AER spike events, one per clock (the temporal
  indexer): a vector takes ``D`` cycles to arrive; only asked for, never picked.
- ``serial``: a few comparators per clock index one group of tables while the previous
  group is read (:class:`spikelut.hdl.serial_core.SerialNetwork`): far less logic at the
  same table rate; no residual layers.
- ``frozen``: every table in logic and the whole network pipelined
  (:class:`spikelut.hdl.frozen.FrozenNetwork`): one vector per clock, no table memory and
  no write ports (not reloadable); no residual layers. Only asked for, or picked for a
  stated goal (:data:`GOALS`).

Cycles per inference are a pure function of the layers' parameters
(:func:`spikelut.hdl.layer_params.network_cycles`): for one placement every kind reads the
tables at the same rate, the memory-bandwidth floor ``ceil(N_T/P) * ceil(Y/L)`` of its
slowest layer (a temporal core is also bound by ``D`` events per vector).

:func:`choose_core` is the one automatic choice, used by ``spikelut compile`` and by board
builds alike: among the kinds that can run the model, the one with the fewest estimated
logic cells (ties to the serial core). Given a goal (``throughput`` or ``area``) it also
considers the frozen core and picks by that goal (:func:`choose_core`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from spikelut.hdl.frozen import FrozenNetwork
from spikelut.hdl.indexer import IndexerKind
from spikelut.hdl.layer import Network
from spikelut.hdl.layer_params import LayerParams, network_cycles
from spikelut.hdl.serial_core import SerialNetwork

__all__ = [
    "AUTO_KINDS",
    "GOALS",
    "CoreKind",
    "auto_kinds",
    "build_core",
    "choice_reason",
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
    FROZEN = "frozen"

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
# what a user may ask the automatic choice to optimise; with a goal the frozen core is a
# candidate too (without one the choice is the fewest logic cells among AUTO_KINDS)
GOALS = ("throughput", "area")


def unsupported_reason(kind: CoreKind, model) -> str | None:
    """Why ``kind`` cannot run ``model`` (an integer classifier), or None when it can."""
    if kind is CoreKind.SERIAL and any(layer.residual for layer in model.layers):
        return "the serial core has no residual add"
    if kind is CoreKind.FROZEN and any(layer.residual for layer in model.layers):
        return "the frozen core has no residual add"
    return None


def auto_kinds(goal: str | None = None) -> tuple[CoreKind, ...]:
    """The kinds the automatic choice considers: :data:`AUTO_KINDS`, and the frozen core
    when the user states a goal (:data:`GOALS`)."""
    if goal is None:
        return AUTO_KINDS
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}; choose one of: {', '.join(GOALS)}")
    return (*AUTO_KINDS, CoreKind.FROZEN)


def eligible_kinds(model, kinds: Sequence[CoreKind] = AUTO_KINDS) -> list[CoreKind]:
    """The kinds of ``kinds`` that can run ``model``, in order."""
    return [k for k in kinds if unsupported_reason(k, model) is None]


def choose_core(
    logic_cells: Mapping[CoreKind, int],
    cycles: Mapping[CoreKind, int] | None = None,
    *,
    goal: str | None = None,
) -> CoreKind:
    """The kind with the fewest estimated logic cells (ties go to the earlier kind of
    :data:`AUTO_KINDS`); ``logic_cells`` holds the candidates that fit. With ``goal``
    ``"throughput"`` (and ``cycles``, cycles per inference per candidate): the fewest cycles
    per inference, then the fewest logic cells."""
    if not logic_cells:
        raise ValueError("no core kind to choose from")
    order = {k: n for n, k in enumerate([*AUTO_KINDS, *CoreKind])}
    if goal == "throughput":
        if cycles is None:
            raise ValueError("the throughput goal needs the cycles per inference of each kind")
        return min(logic_cells, key=lambda k: (cycles[k], logic_cells[k], order[k]))
    return min(logic_cells, key=lambda k: (logic_cells[k], order[k]))


def choice_reason(kind: CoreKind, goal: str | None) -> str:
    """One sentence saying why :func:`choose_core` picked ``kind``."""
    if goal == "throughput":
        return f"{kind.value}: the fewest cycles per inference that fits (goal: throughput)"
    among = "" if goal is None else " (goal: area, the frozen core included)"
    return f"{kind.value}: the fewest estimated logic cells that fits{among}"


def build_core(kind: CoreKind, layers: Sequence[LayerParams], *, argmax: bool = True):
    """The network core of ``kind`` for ``layers`` (checked parameters, so it does not fail
    for a kind that supports them): a :class:`~spikelut.hdl.layer.Network` or a
    :class:`~spikelut.hdl.frozen.FrozenNetwork` (ending with the argmax unless ``argmax``
    is False: its output is then the last layer's vector) or a
    :class:`~spikelut.hdl.serial_core.SerialNetwork` (always with the argmax)."""
    if kind is CoreKind.SERIAL:
        if not argmax:
            raise ValueError("the serial core always ends with the argmax")
        return SerialNetwork(layers=layers)
    if kind is CoreKind.FROZEN:
        return FrozenNetwork(layers=layers, argmax=argmax)
    return Network(layers=layers, argmax=argmax)


def core_cycles(layers: Sequence[LayerParams]) -> int:
    """Cycles per inference of a core of ``layers`` at full rate (any kind: see the module
    docstring)."""
    return network_cycles(layers)
