"""The latency of a compiled network core, measured in Amaranth's simulator.

:func:`measure_latency` simulates the elaborated core (no platform: SPRAM lanes are plain
memories, left empty) for one input vector: it offers the vector, with ``o_stream.ready``
held high, and counts the clock edges from the cycle its first ``i_stream`` payload is
offered (its one payload, or its first AER event for the temporal indexer) to the result's
``o_stream`` transfer, as ``spikelut sim`` measures latency in cocotb. No control path of
a core depends on table contents, so the empty SPRAM (not loaded: loading the digits core's
20,480 words would cost seconds of compile time) gives the latency of the loaded core; the
tests check that against simulations with every bank loaded.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from spikelut.hdl.indexer import IndexerKind, spike_events
from spikelut.hdl.selector import sampled_choice_cycles
from spikelut.hdl.transformer import TransformerCore

__all__ = ["input_payloads", "measure_latency", "measure_token_cycles", "token_cycles"]

IDLE_CYCLES = 4


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
    """Clock cycles from the cycle one input vector is first offered to ``net`` (its first
    ``i_stream`` payload valid, the core idle after reset) to the ``o_stream`` transfer of
    its result, ``o_stream.ready`` held high; ``net`` is a
    :class:`~spikelut.hdl.layer.Network` or :class:`~spikelut.hdl.serial_core.SerialNetwork`.

    Counting from the offer, not from the input's last transfer, is what makes the figure
    comparable across core kinds: a serial core holds its input stream (it reads operands
    straight from the payload) until it has indexed the whole vector, so its last transfer
    comes near the end of the work.

    ``x``: the value vector (default: a fixed pseudo-random one in the input range). Raises
    ``RuntimeError`` if no result comes within ``timeout`` cycles of the offer.
    """
    first = net.layers[0]
    if x is None:
        half = 1 << (first.in_width - 1)
        x = np.random.default_rng(0).integers(-half, half, first.in_dim)
    payloads = input_payloads(net, x)
    found: list[int] = []

    async def bench(ctx):
        ctx.set(net.o_stream.ready, 1)
        # a few idle cycles first, as a loaded core sees before its first vector (a core
        # may spend its first cycle after reset settling its control state)
        await ctx.tick().repeat(IDLE_CYCLES)
        i = net.i_stream
        ctx.set(i.valid, 1)
        ctx.set(i.payload, payloads[0])
        sent = 0
        for cycle in range(1, timeout + 1):
            _, _, ready, valid = await ctx.tick().sample(i.ready, net.o_stream.valid)
            if sent < len(payloads) and ready:
                sent += 1
                if sent < len(payloads):
                    ctx.set(i.payload, payloads[sent])
                else:
                    ctx.set(i.valid, 0)
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


def measure_token_cycles(core, *, tokens: int = 4, timeout: int = 1_000_000) -> tuple[int, float]:
    """``(latency, cycles per token)`` of a language-model core
    (:class:`~spikelut.hdl.recurrent.RNNCore`) generating: token 0 is offered after a few
    idle cycles, then each answer is offered back as the next token at once, as a host
    link's GENERATE does. Latency counts from the first offer to the first answer; cycles
    per token are the mean interval between the answers. Its selector's rule at reset is
    used (greedy: the sampled rule adds its two passes). Tables not loaded (SPRAM is empty
    in simulation) change no control path of a greedy choice."""
    found: list[int] = []

    async def bench(ctx):
        i, o = core.i_stream, core.o_stream
        ctx.set(o.ready, 1)
        await ctx.tick().repeat(IDLE_CYCLES)
        ctx.set(i.payload, {"token": 0, "first": 1})
        ctx.set(i.valid, 1)
        for cycle in range(1, timeout + 1):
            _, _, ready, valid, answer = await ctx.tick().sample(i.ready, o.valid, o.payload)
            if ready:
                ctx.set(i.valid, 0)
            if valid:
                found.append(cycle)
                if len(found) == tokens:
                    return
                ctx.set(i.payload, {"token": int(answer.index), "first": 0})
                ctx.set(i.valid, 1)

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    if len(found) < tokens:
        raise RuntimeError(f"{len(found)} of {tokens} answers within {timeout} cycles")
    return found[0], (found[-1] - found[0]) / (tokens - 1)


def token_cycles(core) -> tuple[int, float, float]:
    """``(latency, greedy cycles per token, sampled cycles per token at most)`` of a
    language-model core (an :class:`~spikelut.hdl.recurrent.RNNCore`, or a
    :class:`~spikelut.hdl.transformer.TransformerCore`, whose cost grows with the position:
    measured over a full window) built with the greedy rule (``Selection()``): measured in
    Amaranth's simulator, plus the sampled rule's extra passes over the logits
    (:func:`~spikelut.hdl.selector.sampled_choice_cycles`). The one source of these figures
    for manifests and board builds."""
    tokens = core.context + 1 if isinstance(core, TransformerCore) else 4
    latency, per_token = measure_token_cycles(core, tokens=tokens)
    return latency, per_token, per_token + sampled_choice_cycles(core.unembedder.out_dim)
