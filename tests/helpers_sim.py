"""Simulation helpers shared by the gateware and backend tests: stream drivers and monitors
for Amaranth's simulator, exact widths, table loads, and the golden model of a chain.

The drivers follow the ``lib.stream`` rules from the testbench side: a payload is offered
with ``valid`` and held until a clock edge at which ``ready`` was high. The monitor checks
the other side: once ``valid`` is high it stays high, with the same payload, until taken.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from spikelut.compiler.ir.golden import argmax_lowest, lut_layer, run_classifier
from spikelut.hdl.indexer import IndexerKind, spike_events
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.params import signed_width, sum_range
from spikelut.hdl.storage import bank_image


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


async def send_counted(ctx, stream, payloads) -> int:
    """Send ``payloads`` back to back (``valid`` held high); the clock edges it took."""
    edges = 0
    ctx.set(stream.valid, 1)
    for payload in payloads:
        ctx.set(stream.payload, payload)
        while True:
            _, _, ready = await ctx.tick().sample(stream.ready)
            edges += 1
            if ready:
                break
    ctx.set(stream.valid, 0)
    return edges


def idle_latencies(dut, payloads, *, writes=()) -> list:
    """Offer each payload to ``dut.i_stream`` only when ``dut`` is idle (its previous result
    taken, then 3 idle cycles), after sending ``writes`` to ``dut.w_stream``; returns
    ``[(cycles, result)]``: the clock edges from the one that took the payload to the one
    that took its result from ``dut.o_stream`` (always ready), and the result."""
    got, taken = [], []

    # each testbench counts the clock edges since the start: edge n is its n-th tick
    async def tb_in(ctx):
        edge = await send_counted(ctx, dut.w_stream, writes) if writes else 0
        for payload in payloads:
            for _ in range(3):
                await ctx.tick()
                edge += 1
            edge += await send_counted(ctx, dut.i_stream, [payload])
            taken.append(edge)
            while len(got) < len(taken):
                await ctx.tick()
                edge += 1

    async def tb_out(ctx):
        edge = 0
        ctx.set(dut.o_stream.ready, 1)
        while len(got) < len(payloads):
            _, _, valid, payload = await ctx.tick().sample(dut.o_stream.valid, dut.o_stream.payload)
            edge += 1
            if valid:
                got.append((edge, payload))

    run(dut, tb_in, tb_out)
    return [(edge - t, payload) for (edge, payload), t in zip(got, taken, strict=True)]


def stream_through(dut, payloads, rng, *, gap_p=0.0, ready_p=1.0) -> list:
    """Simulate ``dut``: send ``payloads`` into ``dut.i_stream`` (idle cycles with probability
    ``gap_p``) and receive as many transfers from ``dut.o_stream`` (ready with probability
    ``ready_p``); returns :func:`recv`'s ``[(cycle, payload)]``."""
    got = []

    async def tb_in(ctx):
        await send(ctx, dut.i_stream, payloads, rng, gap_p)

    async def tb_out(ctx):
        got.extend(await recv(ctx, dut.o_stream, len(payloads), rng, ready_p))

    run(dut, tb_in, tb_out)
    return got


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


def vector_events(x, in_width: int) -> list[dict]:
    """``i_stream`` payloads of a temporal indexer for the value vectors ``x`` (B, D)."""

    out = []
    for v in np.atleast_2d(x):
        ev = spike_events(v, in_width)
        out += [
            {"neuron": n, "time": t, "last": int(k == len(ev) - 1)} for k, (n, t) in enumerate(ev)
        ]
    return out


def golden(layers, shifts, x):
    """Every layer's output for inputs ``x``, the last one's argmax."""
    outs = []
    for layer, s in zip(layers, shifts, strict=True):
        x = lut_layer(layer, x, s)
        outs.append(x)
    return outs, argmax_lowest(x)


def layer_params(layers, shifts, in_width, table_width, configs):
    """:class:`LayerParams` keyword arguments with exact widths; ``configs``: per-layer extra
    arguments."""
    params, w = [], in_width
    for layer, s, cfg in zip(layers, shifts, configs, strict=True):
        ow = layer_width(layer.tables, w, layer.residual)
        params.append(
            dict(
                anchors_a=layer.a,
                anchors_b=layer.b,
                tables=layer.tables,
                in_dim=layer.in_dim,
                in_width=w,
                table_width=table_width,
                out_width=ow,
                in_shift=s,
                residual=layer.residual,
                **cfg,
            )
        )
        w = ow
    return params


def checked(params):
    """The :class:`LayerParams` of every layer's keyword arguments."""
    return [LayerParams(**p) for p in params]


def load_writes(net, layers):
    """``(stream name, payloads)`` writing ``layers``' tables into every memory of ``net``."""
    out = []
    for k, (hw, layer) in enumerate(zip(net.layers, layers, strict=True)):
        if f"w{k}_stream" not in net.signature.members:
            continue
        img = bank_image(layer.tables, tables_per_cycle=hw.tables_per_cycle, lanes=hw.lanes)
        payloads = [
            {"lane": p, "addr": a, "data": img[p, a].tolist()}
            for p in range(img.shape[0])
            for a in range(img.shape[1])
        ]
        out.append((f"w{k}_stream", payloads))
    return out


def simulated_latency(net, model, x):
    """Independently of :mod:`spikelut.compiler.backend.latency`: load every memory bank through its
    write stream, send the vector ``x``, take the result with ``ready`` high; the cycles
    from the cycle the input is first offered to the result's transfer (the result is
    checked against the golden model)."""
    temporal = net.layers[0].indexer == IndexerKind.TEMPORAL
    payloads = vector_events(x, model.encoding.bits) if temporal else [list(map(int, x))]
    sent, got = [], []

    async def tb_in(ctx):
        edges = 0  # this testbench's clock edges from the start, as recv counts its own
        for name, writes in [*load_writes(net, model.layers), ("i_stream", payloads)]:
            if name == "i_stream":
                sent.append(edges)  # the vector is offered from here
            edges += await send_counted(ctx, getattr(net, name), writes)

    async def tb_out(ctx):
        got.extend(await recv(ctx, net.o_stream, 1))

    run(net, tb_in, tb_out)
    ((cycle, payload),) = got
    trace = run_classifier(model, np.array([x]))
    assert ints(payload.logits) == trace.logits[0].tolist()
    return cycle - sent[0]
