"""Reusable cocotb testbench parts for the stream ports of spikelut cores (cocotb 2).

Every part wakes Python once per transfer (or per random gap), never per idle clock: a
driver or monitor samples the handshake in the ``ReadOnly`` phase and, while it is pending,
sleeps until the other side's signal changes (a transfer costs two wakes when the other side
is ready, four when it is not; a gap or stall of n cycles one). With a Verilator build that
shows Python only the ports (:func:`spikelut.sim.cocotb_runner.run_cocotb`,
``public="ports"``) the digits core runs at over 200,000 clock cycles per CPU second, and a
core that takes 11 cycles per inference at about 140,000.

- :class:`StreamPort`: the ``valid``/``ready``/``payload`` handles of an Amaranth stream port.
- :class:`StreamDriver`: sends payloads, with random ``valid`` gaps.
- :class:`StreamMonitor`: receives payloads, with random ``ready`` back-pressure.
- :class:`StreamProbe`: passively records every transfer of an internal stream (wakes every
  cycle: for debug runs only).
- :class:`AERDriver`: sends value vectors as AER spike events to a temporal indexer
  (:func:`aer_payloads`: the event payloads of a vector).
- :class:`Scoreboard`: compares each output with the golden model's and describes the first
  mismatch; :func:`locate_divergence` names the first layer and table where a debug run's
  per-layer values leave the golden model's.
- :func:`pack_vector`, :func:`unpack_vector`, :func:`pack_fields`, :func:`pack_value`,
  :func:`unpack_fields`:
  payload integers to and from values (``lib.data`` layouts as described by
  :func:`spikelut.compiler.backend.manifest.describe_shape`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from spikelut.compiler.progress import report_to_parent

__all__ = [
    "AERDriver",
    "Scoreboard",
    "StreamDriver",
    "StreamMonitor",
    "StreamPort",
    "StreamProbe",
    "aer_payloads",
    "locate_divergence",
    "pack_fields",
    "pack_value",
    "pack_vector",
    "spike_events",
    "unpack_fields",
    "unpack_vector",
]


# -- payload packing ----------------------------------------------------------------------------


def pack_vector(values: Iterable[int], width: int) -> int:
    """The payload integer of a ``vector_layout(width, n)``: element 0 in the low bits."""
    mask = (1 << width) - 1
    out = 0
    for k, v in enumerate(values):
        out |= (int(v) & mask) << (k * width)
    return out


def unpack_vector(payload: int, width: int, n: int, signed: bool = True) -> list[int]:
    """The ``n`` elements of ``width`` bits of a payload integer (two's complement if signed)."""
    mask, top = (1 << width) - 1, 1 << (width - 1)
    out = []
    for k in range(n):
        v = (payload >> (k * width)) & mask
        out.append(v - (1 << width) if signed and v & top else v)
    return out


def _field_value(desc: dict, raw: int):
    if "array" in desc:
        elem = desc["array"]
        return [
            _field_value(elem, (raw >> (k * elem["width"])) & ((1 << elem["width"]) - 1))
            for k in range(desc["length"])
        ]
    if "struct" in desc:
        return unpack_fields(raw, desc)
    if desc.get("signed") and raw >> (desc["width"] - 1):
        return raw - (1 << desc["width"])
    return raw


def unpack_fields(payload: int, desc: dict) -> dict:
    """The fields of a struct payload, given its description (``{"struct": {...}}``)."""
    out = {}
    for name, f in desc["struct"].items():
        raw = (payload >> f["offset"]) & ((1 << f["width"]) - 1)
        out[name] = _field_value(f, raw)
    return out


def pack_fields(desc: dict, **values: int) -> int:
    """The payload integer of a struct of scalar fields (missing fields are 0)."""
    out = 0
    for name, value in values.items():
        f = desc["struct"].get(name)
        if f is None:
            raise ValueError(f"no field {name!r} in the payload; fields: {sorted(desc['struct'])}")
        out |= (int(value) & ((1 << f["width"]) - 1)) << f["offset"]
    return out


def pack_value(desc: dict, value) -> int:
    """The payload integer of ``value`` (an int, a list for an array, a dict for a struct)
    in the layout ``desc`` describes; the inverse of :func:`unpack_fields` / arrays."""
    if "array" in desc:
        elem = desc["array"]
        if len(value) != desc["length"]:
            raise ValueError(f"an array of {desc['length']} elements, not {len(value)}")
        out = 0
        for k, v in enumerate(value):
            out |= pack_value(elem, v) << (k * elem["width"])
        return out
    if "struct" in desc:
        out = 0
        for name, v in value.items():
            f = desc["struct"][name]
            out |= pack_value(f, v) << f["offset"]
        return out
    return int(value) & ((1 << desc["width"]) - 1)


def spike_events(x: Sequence[int], in_width: int) -> list[tuple[int, int]]:
    """``(neuron, time)`` events of a value vector, time order, stable (as the temporal
    indexer expects: ``time = 2**(in_width-1) - 1 - x``, so the largest value spikes first)."""
    top = (1 << (in_width - 1)) - 1
    times = [top - int(v) for v in x]
    return [(n, times[n]) for n in sorted(range(len(times)), key=times.__getitem__)]


def aer_payloads(x: Sequence[int], event_desc: dict, in_width: int) -> list[int]:
    """The AER event payloads of value vector ``x`` (:func:`spike_events` in the layout
    ``event_desc`` describes, the final one flagged ``last``)."""
    ev = spike_events(x, in_width)
    return [
        pack_fields(event_desc, neuron=n, time=t, last=int(k == len(ev) - 1))
        for k, (n, t) in enumerate(ev)
    ]


# -- stream handshakes --------------------------------------------------------------------------


@dataclass
class StreamPort:
    """The handles of one Amaranth stream port ``NAME__valid``/``__ready``/``__payload``."""

    valid: object
    ready: object
    payload: object

    @classmethod
    def of(cls, scope, name: str) -> StreamPort:
        """The port ``name`` (e.g. ``"i_stream"``) of a module handle ``scope``."""
        return cls(
            getattr(scope, f"{name}__valid"),
            getattr(scope, f"{name}__ready"),
            getattr(scope, f"{name}__payload"),
        )


class _Clocked:
    def __init__(self, clk, period_ns: float):
        self.clk = clk
        self.period_ns = period_ns

    def cycle(self) -> int:
        """The number of rising clock edges so far (the clock starts at time 0)."""
        return int(get_sim_time("ns") // self.period_ns)


class StreamDriver(_Clocked):
    """Drives a stream's ``valid`` and ``payload``; before each transfer, with probability
    ``gap_prob``, leaves ``valid`` low for 1..``max_gap`` cycles. Call :meth:`idle` once
    after reset."""

    def __init__(self, clk, port: StreamPort, *, rng=None, gap_prob=0.0, max_gap=4, period_ns=10):
        super().__init__(clk, period_ns)
        self.port = port
        self.rng = rng or random.Random(0)
        self.gap_prob = gap_prob
        self.max_gap = max_gap
        self.sent = 0

    def idle(self) -> None:
        """Drive ``valid`` low."""
        self.port.valid.value = 0

    async def send(self, payload: int) -> int:
        """Transfer one payload; returns the cycle of the clock edge that took it. Must be
        called in a writable phase (after a clock edge), as every method here leaves it."""
        if self.gap_prob and self.rng.random() < self.gap_prob:
            self.port.valid.value = 0
            await ClockCycles(self.clk, self.rng.randint(1, self.max_gap))
        self.port.payload.value = payload
        self.port.valid.value = 1
        while True:
            await ReadOnly()
            if self.port.ready.value:
                break
            await self.port.ready.value_change
        await RisingEdge(self.clk)
        self.sent += 1
        return self.cycle()

    async def send_each(self, payloads: Iterable[int]) -> int:
        """Send the payloads one after another (``valid`` stays as the last left it);
        returns the cycle of the last transfer (0 when there was none)."""
        cycle = 0
        for payload in payloads:
            cycle = await self.send(payload)
        return cycle

    async def send_all(self, payloads: Iterable[int]) -> list[int]:
        """Send every payload, then drop ``valid``; returns the transfer cycles."""
        cycles = [await self.send(p) for p in payloads]
        self.idle()
        return cycles


class StreamMonitor(_Clocked):
    """Takes transfers from a stream it drives ``ready`` of; before each transfer, with
    probability ``stall_prob``, holds ``ready`` low for 1..``max_stall`` cycles."""

    def __init__(
        self, clk, port: StreamPort, *, rng=None, stall_prob=0.0, max_stall=4, period_ns=10
    ):
        super().__init__(clk, period_ns)
        self.port = port
        self.rng = rng or random.Random(1)
        self.stall_prob = stall_prob
        self.max_stall = max_stall

    async def recv(self) -> tuple[int, int]:
        """The next payload (as an integer) and the cycle of the edge that took it."""
        if self.stall_prob and self.rng.random() < self.stall_prob:
            self.port.ready.value = 0
            await ClockCycles(self.clk, self.rng.randint(1, self.max_stall))
        self.port.ready.value = 1
        while True:
            await ReadOnly()
            if self.port.valid.value:
                payload = int(self.port.payload.value)
                break
            await self.port.valid.value_change
        await RisingEdge(self.clk)
        return payload, self.cycle()


class StreamProbe(_Clocked):
    """Records ``(cycle, payload)`` of every transfer of a stream it does not drive.

    It samples each clock cycle, so it slows a simulation down: use it in debug runs.
    :meth:`start` launches it with ``cocotb.start_soon``.
    """

    def __init__(self, clk, port: StreamPort, *, period_ns=10):
        super().__init__(clk, period_ns)
        self.port = port
        self.transfers: list[tuple[int, int]] = []

    async def _run(self) -> None:
        while True:
            await ReadOnly()
            if self.port.valid.value and self.port.ready.value:
                self.transfers.append((self.cycle() + 1, int(self.port.payload.value)))
            await RisingEdge(self.clk)

    def start(self):
        """Start recording in the background; returns the task."""
        import cocotb

        return cocotb.start_soon(self._run())

    @property
    def payloads(self) -> list[int]:
        """The recorded payloads, in order."""
        return [p for _, p in self.transfers]


class AERDriver:
    """Sends value vectors as AER spike events through a :class:`StreamDriver`.

    ``event_desc`` describes ``event_layout(D, W)`` (fields ``neuron``, ``time``, ``last``);
    each neuron spikes once at ``2**(W-1) - 1 - x``, in time order, the final event flagged
    ``last``. One event per transfer; gaps come from the driver.
    """

    def __init__(self, driver: StreamDriver, event_desc: dict, in_width: int):
        self.driver = driver
        self.desc = event_desc
        self.in_width = in_width

    def events(self, x: Sequence[int]) -> list[int]:
        """The event payloads of one vector."""
        return aer_payloads(x, self.desc, self.in_width)

    async def send(self, x: Sequence[int]) -> int:
        """Send one vector; returns the cycle of its ``last`` event."""
        return await self.driver.send_each(self.events(x))


# -- checking -----------------------------------------------------------------------------------


@dataclass
class Mismatch:
    """One output that differs from the golden model."""

    index: int
    input: list | str
    expected: object
    actual: object


@dataclass
class Scoreboard:
    """Compares the ``n``-th output payload with ``expected[n]``.

    ``decode`` turns a payload integer into something readable for the report;
    ``inputs[n]`` is shown with a mismatch. Counts every mismatch, keeps the first ones,
    and reports the count checked to the process that started the simulation (its progress
    display, :func:`spikelut.compiler.progress.report_to_parent`).
    """

    expected: Sequence[int]
    inputs: Sequence
    decode: Callable[[int], object] = lambda p: p
    keep: int = 5
    checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    n_mismatches: int = 0

    def check(self, n: int, actual: int) -> bool:
        """Record output ``n``; True when it matches."""
        self.checked += 1
        report_to_parent(self.checked, len(self.expected))
        if int(actual) == int(self.expected[n]):
            return True
        self.n_mismatches += 1
        if len(self.mismatches) < self.keep:
            self.mismatches.append(
                Mismatch(
                    n,
                    self.inputs[n] if isinstance(self.inputs[n], str) else list(self.inputs[n]),
                    self.decode(int(self.expected[n])),
                    self.decode(int(actual)),
                )
            )
        return False

    def report(self) -> str:
        """One paragraph on the first mismatch ('' when there is none)."""
        if not self.mismatches:
            return ""
        m = self.mismatches[0]
        return (
            f"{self.n_mismatches} of {self.checked} outputs differ from the golden model; "
            f"first: vector {m.index}, input {m.input}, expected {m.expected}, actual {m.actual}"
        )


def locate_divergence(
    n: int,
    golden: Sequence[dict],
    design: Sequence[dict],
) -> str:
    """Where the design's layer values for vector ``n`` first leave the golden model's.

    ``golden[k]`` and ``design[k]`` hold layer ``k``'s ``"indices"`` (one row index per
    table) and ``"sums"`` (the bank's output vector, before any residual add), each a list
    over vectors (the design's may be shorter when it produced fewer, and lacks the
    indices where the design has no stream of them). Returns e.g.
    ``"layer 0 table 17: index 5 (golden 4)"``, or a sentence saying all agree.
    """
    for k, (g, d) in enumerate(zip(golden, design, strict=True)):
        for what in ("indices", "sums"):
            if what not in d:
                continue
            if n >= len(d[what]):
                return f"layer {k}: the design produced no {what} for vector {n}"
            gv, dv = list(g[what][n]), list(d[what][n])
            if gv != dv:
                i = next(i for i, (a, b) in enumerate(zip(gv, dv, strict=True)) if a != b)
                unit = "table" if what == "indices" else "output"
                label = "index" if what == "indices" else "sum"
                return (
                    f"layer {k} {unit} {i}: {label} {dv[i]} (golden {gv[i]}); "
                    f"layer {k} {what}: design {dv}, golden {gv}"
                )
    return "every layer's indices and sums agree with the golden model (the difference is after the last bank: residual add or argmax)"
