"""The latency of a compiled network core, measured in Amaranth's simulator.

:func:`measure_latency` simulates the elaborated core (no platform: SPRAM lanes are plain
memories, left empty) for one input vector: it sends the vector, with ``o_stream.ready``
held high, and counts the clock edges from the vector's last ``i_stream``
transfer (its one payload, or its final AER event for the temporal indexer) to the result's
``o_stream`` transfer, as ``spikelut sim`` measures latency in cocotb. No control path of
a core depends on table contents, so the empty SPRAM (not loaded: loading the digits core's
20,480 words would cost seconds of compile time) gives the latency of the loaded core; the
tests check that against simulations with every bank loaded.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from spikelut.hdl.indexer import IndexerKind, spike_events

__all__ = ["input_payloads", "measure_latency"]


def input_payloads(net, x) -> list:
    """The ``i_stream`` payloads of value vector ``x`` for ``net``: the vector itself, or for
    a temporal indexer its AER events (:func:`~spikelut.hdl.indexer.spike_events`), the
    final one flagged ``last``."""
    first = net.layers[0]
    if first.indexer != IndexerKind.TEMPORAL:
        return [[int(v) for v in x]]
    events = spike_events(x, first.in_width)
    return [
        {"neuron": n, "time": t, "last": int(k == len(events) - 1)}
        for k, (n, t) in enumerate(events)
    ]


def measure_latency(net, x=None, *, timeout: int = 1_000_000) -> int:
    """Clock cycles from the last ``i_stream`` transfer of one input vector to the
    ``o_stream`` transfer of its result, ``o_stream.ready`` held high, in ``net`` (a
    :class:`~spikelut.hdl.layer.Network` or :class:`~spikelut.hdl.serial_core.SerialNetwork`)
    after reset.

    ``x``: the value vector (default: a fixed pseudo-random one in the input range). Raises
    ``RuntimeError`` if no result comes within ``timeout`` cycles of the input.
    """
    first = net.layers[0]
    if x is None:
        half = 1 << (first.in_width - 1)
        x = np.random.default_rng(0).integers(-half, half, first.in_dim)
    payloads = input_payloads(net, x)
    found: list[int] = []

    async def bench(ctx):
        ctx.set(net.o_stream.ready, 1)
        i = net.i_stream
        ctx.set(i.valid, 1)
        for p in payloads:
            ctx.set(i.payload, p)
            await ctx.tick().until(i.ready)
        ctx.set(i.valid, 0)
        for cycle in range(1, timeout + 1):
            _, _, valid = await ctx.tick().sample(net.o_stream.valid)
            if valid:
                found.append(cycle)
                return

    sim = Simulator(net)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    if not found:
        raise RuntimeError(f"no result within {timeout} cycles of the input")
    return found[0]
