"""The LUT transformer core (hdl/transformer.py) against the integer golden model.

Every chosen byte, every logit and the stream after every layer's heads and FFN are
compared with :func:`spikelut.compiler.ir.golden.run_transformer` over windows cut as the
core cuts them; the first divergence is reported with its token, position, layer and
stage (heads, FFN, unembedder or selector).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers_sim import run

from spikelut.compiler.backend.compile_transformer import TransformerPlan, transformer_core
from spikelut.compiler.ir.golden import run_transformer
from spikelut.compiler.ir.integer_sequence import IntegerTransformer
from spikelut.compiler.ir.selection import Selection, Xorshift32, select_byte
from spikelut.hdl.storage import Storage, bank_image


def random_transformer(rng, *, vocab=16, dim=6, layers=1, heads=1, n_t=3, n_c=2, n_p=1,
                       context=6, bits=4):  # fmt: skip
    """A random integer transformer with small tables."""

    def anchors(*shape):
        a = rng.integers(0, dim, shape)
        b = (a + rng.integers(1, dim, shape)) % dim
        return a, b

    lim = 1 << (bits - 1)
    aa, ab = anchors(layers, heads, n_t, n_c)
    fa, fb = anchors(layers, n_t, n_c)
    ua, ub = anchors(n_t, n_c)
    return IntegerTransformer(
        embedding=rng.integers(-lim, lim, (vocab, dim)),
        attn_a=aa,
        attn_b=ab,
        attn_tables=rng.integers(-lim, lim, (layers, heads, n_t, 1 << (2 * n_c + n_p), dim)),
        pe_bits=rng.integers(0, 2, (layers, heads, context, n_t, n_p)),
        ffn_a=fa,
        ffn_b=fb,
        ffn_tables=rng.integers(-lim, lim, (layers, n_t, 1 << n_c, dim)),
        unemb_a=ua,
        unemb_b=ub,
        unemb_tables=rng.integers(-lim, lim, (n_t, 1 << n_c, vocab)),
        table_bits=bits,
        unemb_bits=bits,
    )


def window_starts(firsts, context: int) -> list[int]:
    """Where the core starts windows: at a ``first`` token, or after ``context`` tokens."""
    starts, pos = [], context - 1
    for k, f in enumerate(firsts):
        pos = 0 if f or pos == context - 1 else pos + 1
        if pos == 0:
            starts.append(k)
    return starts


def golden_trace(model, tokens, firsts):
    """Per token: streams (2 L + 1, E), logits (V,), position, from ``run_transformer``."""
    starts = [*window_starts(firsts, model.context), len(tokens)]
    streams, logits, positions = [], [], []
    for lo, hi in itertools.pairwise(starts):
        tr = run_transformer(model, np.asarray(tokens[lo:hi])[None])
        streams += [np.stack([s[0, q] for s in tr.streams]) for q in range(hi - lo)]
        logits += list(tr.logits[0])
        positions += list(range(hi - lo))
    return streams, logits, positions


def run_core(core, tokens, firsts, *, one_at_a_time=False, before=None):
    """Feed ``tokens`` (each after the previous answer if ``one_at_a_time``; after the
    testbench ``before`` returns, if given); collect the taps and answers, and the cycles
    from each token's transfer to its answer."""
    n_layers, vocab = core.n_layers, core.vocab
    got = {"heads": [[] for _ in range(n_layers)], "layer": [[] for _ in range(n_layers)],
           "logits": [], "choice": [], "cycles": []}  # fmt: skip

    async def tb_in(ctx):
        if before is not None:
            await before(ctx)
        for k, (t, f) in enumerate(zip(tokens, firsts, strict=True)):
            while one_at_a_time and len(got["choice"]) < k:
                await ctx.tick()
            ctx.set(core.i_stream.payload, {"token": int(t), "first": int(f)})
            ctx.set(core.i_stream.valid, 1)
            await ctx.tick().until(core.i_stream.ready)
            ctx.set(core.i_stream.valid, 0)

    async def tb_watch(ctx):
        taps = [(core.o_logits, "logits", None)]
        for k in range(n_layers):
            taps += [(getattr(core, f"o_heads{k}"), "heads", k),
                     (getattr(core, f"o_layer{k}"), "layer", k)]  # fmt: skip
        ctx.set(core.o_stream.ready, 1)
        chunk = []
        cycle = 0
        in_cycles = []
        while len(got["choice"]) < len(tokens):
            args = [core.i_stream.valid, core.i_stream.ready, core.o_stream.valid,
                    core.o_stream.payload]  # fmt: skip
            for tap, _, _ in taps:
                args += [tap.valid, tap.payload]
            _, _, iv, ir, ov, op, *rest = await ctx.tick().sample(*args)
            cycle += 1
            assert cycle < 200 * len(tokens) * 64, "the core stopped answering"
            if iv and ir:
                in_cycles.append(cycle)
            for (_, name, k), valid, payload in zip(taps, rest[0::2], rest[1::2], strict=True):
                if not valid:
                    continue
                if name == "logits":
                    chunk += [int(v) for v in payload.values]
                    if len(chunk) >= vocab:
                        got["logits"].append(chunk[:vocab])
                        chunk = []
                else:
                    got[name][k].append([int(v) for v in payload])
            if ov:
                got["choice"].append(int(op.index))
                got["cycles"].append(cycle - in_cycles[len(got["choice"]) - 1])

    run(core, tb_in, tb_watch)
    return got


def first_divergence(model, got, tokens, firsts, selection) -> str | None:
    """None, or where the core first differs from the golden model."""
    streams, logits, positions = golden_trace(model, tokens, firsts)
    rng = Xorshift32(selection.seed)
    n_layers = model.attn_tables.shape[0]
    for k in range(len(tokens)):
        where = f"token {k} (window position {positions[k]})"
        for layer in range(n_layers):
            exp_heads = streams[k][2 * layer + 1]
            if got["heads"][layer][k] != exp_heads.tolist():
                return (f"{where}: layer {layer} attention (heads 0..{model.attn_tables.shape[1] - 1}"
                        f"): z after heads {got['heads'][layer][k]} != {exp_heads.tolist()}")  # fmt: skip
            exp_layer = streams[k][2 * layer + 2]
            if got["layer"][layer][k] != exp_layer.tolist():
                return (f"{where}: layer {layer} FFN table: {got['layer'][layer][k]} != "
                        f"{exp_layer.tolist()}")  # fmt: skip
        if got["logits"][k] != logits[k].tolist():
            return f"{where}: unembedder: {got['logits'][k]} != {logits[k].tolist()}"
        want = select_byte(logits[k], selection, rng)
        if got["choice"][k] != want:
            return f"{where}: selector chose {got['choice'][k]}, the golden model {want}"
    return None


CASES = {
    "1layer-bram": (
        dict(layers=1, heads=1, n_t=3, n_c=2, n_p=1, context=6),
        TransformerPlan(),
    ),
    "2layers-2heads-lanes": (
        dict(layers=2, heads=2, n_t=3, n_c=2, n_p=2, context=5),
        TransformerPlan(
            attn_tables_per_cycle=2,
            attn_lanes=4,
            ffn_storage=Storage.LOGIC,
            unemb_tables_per_cycle=2,
            unemb_lanes=5,
            embedding_lanes=4,
        ),
    ),
}


def check_core(model, plan, selection, tokens, firsts):
    got = run_core(transformer_core(model, plan, selection), tokens, firsts)
    assert len(got["choice"]) == len(tokens)
    msg = first_divergence(model, got, tokens, firsts, selection)
    if msg is not None:
        pytest.fail(msg)


def token_stream(rng, vocab, context, n):
    """``n`` tokens with windows started by ``first``: at 0, early, a window of one token,
    and otherwise full windows cut by the context."""
    firsts = np.zeros(n, bool)
    firsts[[0, context + 2, context + 3]] = True
    return rng.integers(0, vocab, n), firsts


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("sampled", [False, True])
def test_transformer_core_is_bit_exact(case, sampled):
    shape, plan = CASES[case]
    rng = np.random.default_rng(sorted(CASES).index(case) * 2 + sampled)
    model = random_transformer(rng, **shape)
    context = shape["context"]
    selection = Selection.sampled(2.0, 0, seed=99) if sampled else Selection()
    check_core(model, plan, selection, *token_stream(rng, model.vocab, context, 8 * context))


@pytest.mark.parametrize("seed", range(4))
def test_random_transformers_are_bit_exact(seed):
    """Seeded random shapes (vocab 16-32, context 4-8, 1-2 layers, 1-2 heads, P 0-2) and
    placements (table memories, tables and lanes a cycle)."""
    rng = np.random.default_rng(100 + seed)
    layers, heads = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    n_t, n_c, n_p = int(rng.integers(1, 5)), int(rng.integers(1, 3)), int(rng.integers(0, 3))
    dim, vocab, context = (
        int(rng.integers(3, 9)),
        int(rng.integers(16, 33)),
        int(rng.integers(4, 9)),
    )
    model = random_transformer(rng, vocab=vocab, dim=dim, layers=layers, heads=heads, n_t=n_t,
                               n_c=n_c, n_p=n_p, context=context, bits=int(rng.integers(3, 7)))  # fmt: skip
    mem = [Storage.BRAM, Storage.LUTRAM]
    plan = TransformerPlan(
        attn_storage=mem[seed % 2],
        attn_tables_per_cycle=int(rng.integers(1, n_t + 1)),
        attn_lanes=int(rng.integers(1, dim + 1)),
        ffn_storage=[Storage.LOGIC, Storage.BRAM][seed // 2],
        unemb_lanes=int(rng.integers(1, vocab + 1)),
    )
    selection = Selection.sampled(1.0, 0, seed=5 + seed) if seed % 2 else Selection()
    check_core(model, plan, selection, *token_stream(rng, vocab, context, 6 * context))


def test_attention_tables_rewritten_through_the_write_ports():
    """A core built with one model's attention and FFN tables, loaded over its write ports
    with another's, answers as the other."""
    rng = np.random.default_rng(7)
    model = random_transformer(rng, layers=2, heads=2, context=5)
    other = random_transformer(rng, layers=2, heads=2, context=5)
    for name in ("attn_a", "attn_b", "pe_bits", "ffn_a", "ffn_b", "unemb_a", "unemb_b",
                 "unemb_tables", "embedding"):  # fmt: skip
        setattr(other, name, getattr(model, name))
    plan = TransformerPlan(attn_tables_per_cycle=2, attn_lanes=3)
    core = transformer_core(model, plan)
    tokens, firsts = token_stream(rng, model.vocab, 5, 20)
    writes = []
    for k in range(core.n_layers):
        for h in range(core.attention[k].n_heads):
            image = bank_image(other.attn_tables[k, h], tables_per_cycle=2, lanes=3)
            writes.append((getattr(core, f"w_attn{k}_{h}"), image))
        image = bank_image(other.ffn_tables[k], tables_per_cycle=1, lanes=other.dim)
        writes.append((getattr(core, f"w_ffn{k}"), image))

    async def tb_load(ctx):
        for port, image in writes:
            for lane, addr in itertools.product(range(image.shape[0]), range(image.shape[1])):
                ctx.set(port.payload, {"lane": lane, "addr": addr,
                                       "data": [int(v) for v in image[lane, addr]]})  # fmt: skip
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)

    got = run_core(core, tokens, firsts, before=tb_load)
    msg = first_divergence(other, got, tokens, firsts, Selection())
    if msg is not None:
        pytest.fail(msg)
    assert first_divergence(model, got, tokens, firsts, Selection()) is not None


def test_cycles_per_token_sit_at_the_attention_floor():
    """Generating one token at a time, a token at position ``pos`` takes exactly the
    memories' floor (``table_cycles``: ``pos x N_T`` attention rows per head) plus a fixed
    pipeline overhead, and a window of 16 stays within 10% of the floor."""
    rng = np.random.default_rng(3)
    model = random_transformer(rng, dim=8, n_t=8, context=16)
    core = transformer_core(model, TransformerPlan(attn_lanes=2))
    tokens, firsts = rng.integers(0, model.vocab, 16), np.eye(1, 16, dtype=bool)[0]
    got = run_core(core, tokens, firsts, one_at_a_time=True)
    floor = [core.table_cycles(q) for q in range(16)]
    assert core.table_cycles(1) - core.table_cycles(0) == 8 * 4  # G * B with P=1, L=2
    over = np.subtract(got["cycles"], floor)
    assert len(set(over[1:].tolist())) == 1, over  # the same overhead at every position
    assert np.mean(got["cycles"]) <= 1.10 * core.window_table_cycles
    msg = first_divergence(model, got, tokens, firsts, Selection())
    assert msg is None, msg
