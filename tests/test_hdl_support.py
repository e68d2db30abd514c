"""Simulation helpers shared by the gateware tests (stream drivers, monitors, widths).

The drivers follow the ``lib.stream`` rules from the testbench side: a payload is offered
with ``valid`` and held until a clock edge at which ``ready`` was high. The monitor checks
the other side: once ``valid`` is high it stays high, with the same payload, until taken.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from spikelut.hdl.params import signed_width, sum_range


def layer_width(tables, in_width: int, residual: bool) -> int:
    """Exact output width of a layer (stand-in for compiler/widths.py)."""
    lo, hi = sum_range(np.asarray(tables, np.int64))
    lo, hi = int(lo.min()), int(hi.max())
    if residual:
        lo, hi = lo - (1 << (in_width - 1)), hi + (1 << (in_width - 1)) - 1
    return signed_width(lo, hi)


async def send(ctx, stream, payloads, rng=None, gap_p=0.0):
    """Send every payload in order, with random idle cycles (probability ``gap_p``)."""
    for payload in payloads:
        while rng is not None and rng.random() < gap_p:
            await ctx.tick()
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)


async def recv(ctx, stream, count, rng=None, ready_p=1.0, timeout=100_000):
    """Receive ``count`` payloads, ready high with probability ``ready_p`` each cycle.

    Also checks the stream rules: a payload, once valid, stays valid and unchanged until
    transferred. Returns ``[(cycle, payload)]`` with the cycle of each transfer.
    """
    out = []
    pending = None
    cycle = 0
    while len(out) < count:
        ready = rng is None or rng.random() < ready_p
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        cycle += 1
        assert cycle < timeout, f"timeout after {len(out)} of {count} transfers"
        if pending is not None:
            assert valid, "valid dropped before the transfer"
            assert payload.as_value().value == pending, "payload changed while waiting for ready"
        if valid and ready:
            out.append((cycle, payload))
            pending = None
        elif valid:
            pending = payload.as_value().value
    ctx.set(stream.ready, 0)
    return out


def run(dut, *testbenches, vcd=None):
    """Simulate ``dut`` with a 1 MHz clock until every testbench returns."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


def ints(payload) -> list[int]:
    """A sampled array payload as a list of Python ints."""
    return [int(v) for v in payload]


def test_layer_width_is_exact():
    t = np.array([[[3, -4]], [[1, 2]]]).reshape(2, 1, 2)
    t = np.concatenate([t, t], axis=1)  # (2, 2, 2)
    assert layer_width(t, 4, False) == signed_width(-2, 5) == 4
    assert layer_width(t, 4, True) == signed_width(-2 - 8, 5 + 7) == 5


def vector_events(x, in_width: int) -> list[dict]:
    """``i_stream`` payloads of a temporal indexer for the value vectors ``x`` (B, D)."""
    from spikelut.hdl.indexer import spike_events

    out = []
    for v in np.atleast_2d(x):
        ev = spike_events(v, in_width)
        out += [
            {"neuron": n, "time": t, "last": int(k == len(ev) - 1)} for k, (n, t) in enumerate(ev)
        ]
    return out
