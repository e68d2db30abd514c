"""The next-byte selector: greedy and sampled choices bit-exact with the golden rule
(:func:`spikelut.compiler.ir.selection.select_byte`), the random source carried from choice
to choice, reconfigured between vectors, under input gaps and output back-pressure."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers_sim import idle_latencies, recv, run, send

from spikelut.compiler.ir.selection import Selection, Xorshift32, exp_table, select_byte
from spikelut.hdl.selector import NextByte, check_exp_table


def chunks(logits, lanes):
    out = []
    beats = -(-len(logits) // lanes)
    padded = np.zeros(beats * lanes, np.int64)
    padded[: len(logits)] = logits
    padded[len(logits) :] = 7  # padding lanes must never win or weigh
    for b in range(beats):
        out.append({"values": padded[b * lanes : (b + 1) * lanes].tolist(), "last": b == beats - 1})
    return out


@pytest.mark.parametrize(
    ("vocab", "lanes", "width"), [(20, 3, 6), (256, 2, 10), (9, 9, 5), (70, 16, 4), (77, 64, 5)]
)
def test_selector_matches_the_golden_rule(vocab, lanes, width):
    rng = np.random.default_rng(vocab + lanes)
    lim = 1 << (width - 1)
    # logits in a narrow band so sampling spreads; some vectors with ties at the top
    logits = rng.integers(-lim, lim, (30, vocab)) // 4 - lim // 2
    logits[3, 5:8] = logits[3].max() + 1
    exp = exp_table(0.7, -2)
    plan = [(n % 3 != 0, 1 + n) for n in range(len(logits))]  # (sampled?, seed at n == 0)
    dut = NextByte(vocab=vocab, width=width, lanes=lanes, exp=exp, greedy=True, seed=1)
    want, src = [], None
    for n, lg in enumerate(logits):
        sampled = plan[n][0]
        if n in (0, 12):  # reconfigure: sampling, a new seed
            src = Xorshift32(plan[n][1])
        sel = Selection(tuple(int(v) for v in exp), 1) if sampled else Selection(None, 1)
        want.append(select_byte(lg, sel, src))
    pace = random.Random(3)
    got = []

    async def tb_in(ctx):
        for n, lg in enumerate(logits):
            cfg = {"greedy": int(not plan[n][0]), "seed": 0}
            if n in (0, 12):
                cfg["seed"] = plan[n][1]
                await send(ctx, dut.cfg_stream, [cfg])
            elif plan[n][0] != plan[n - 1][0]:
                # a mode change keeps the random state: write it back as it is
                cfg["seed"] = expected_state[n]
                await send(ctx, dut.cfg_stream, [cfg])
            await send(ctx, dut.i_stream, chunks(lg, lanes), rng=pace, gap_p=0.2)
            # the answer may leave with the last chunk (a greedy choice), or later
            while transfers[0] <= n:
                await ctx.tick()

    transfers = [0]

    async def tb_out(ctx):
        got.extend(p for _, p in await recv(ctx, dut.o_stream, len(logits), rng=pace, ready_p=0.5))

    async def count_answers(ctx):
        while transfers[0] < len(logits):
            _, _, valid, ready = await ctx.tick().sample(dut.o_stream.valid, dut.o_stream.ready)
            transfers[0] += bool(valid and ready)

    # the random state the hardware holds before each vector (mode changes rewrite it)
    expected_state, src2 = {}, None
    for n, lg in enumerate(logits):
        if n in (0, 12):
            src2 = Xorshift32(plan[n][1])
        expected_state[n] = src2.state
        if plan[n][0]:
            select_byte(lg, Selection(tuple(int(v) for v in exp), 1), src2)

    run(dut, tb_in, tb_out, count_answers)
    assert [int(g.index) for g in got] == want
    assert len(set(want)) > 3  # sampling spread over several indices


def test_selector_rejects_bad_tables():
    with pytest.raises(ValueError, match=r"exp\[0\] must be positive"):
        check_exp_table([0, 0], 16)
    with pytest.raises(ValueError, match="unsigned 16-bit"):
        check_exp_table([1 << 16, 1], 16)


@pytest.mark.parametrize(("lanes", "cycles"), [(8, 1), (16, 2), (64, 2)])
def test_a_greedy_answer_leaves_one_or_two_cycles_after_the_last_chunk(lanes, cycles):
    """The argmax tree of more than 8 lanes is cut by registers halfway: one more cycle a
    vector (on the loop of every generated token), never one more a chunk."""
    rng = np.random.default_rng(lanes)
    logits = rng.integers(-20, 20, (4, lanes))
    dut = NextByte(vocab=lanes, width=6, lanes=lanes, exp=exp_table(0.7, -2), greedy=True)
    got = idle_latencies(dut, [chunks(lg, lanes)[0] for lg in logits])
    assert [c for c, _ in got] == [cycles] * 4
    assert [int(p.index) for _, p in got] == [int(np.argmax(lg)) for lg in logits]
