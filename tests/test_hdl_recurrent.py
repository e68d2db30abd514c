"""Embedding and recurrent LUT cell: a small spiking RNN over token sequences."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from helpers_sim import idle_latencies, ints, layer_width, recv, run, send

from spikelut.compiler.backend.plan import LayerPlan
from spikelut.compiler.backend.sequence import RNNPlan, rnn_core
from spikelut.compiler.ir.classifier import LayerQuant
from spikelut.compiler.ir.golden import argmax_lowest, rnn_choices, run_rnn
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.selection import Selection
from spikelut.hdl.layer import Layer
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.params import signed_width, sum_range
from spikelut.hdl.recurrent import (
    Embedding,
    RecurrentCell,
    check_cell,
    check_embedding,
)
from spikelut.hdl.storage import Storage, bank_image
from spikelut.hdl.vector import Argmax


def reference_rnn(emb, cell, in_shift, unembed, out_shift, tokens, firsts):
    """States and logits from ``spikelut.compiler.ir.golden.run_rnn``, one sequence at a time."""
    model = SimpleNamespace(
        vocab=emb.shape[0],
        dim=emb.shape[1],
        embedding=emb,
        cell=cell,
        cell_quant=SimpleNamespace(in_shift=in_shift),
        unembedder=unembed,
        unembedder_quant=SimpleNamespace(in_shift=out_shift),
    )
    starts = [*np.flatnonzero(firsts), len(tokens)]
    states, logits = [], []
    for lo, hi in itertools.pairwise(starts):
        trace = run_rnn(model, tokens[None, lo:hi])
        states.append(trace.states[0])
        logits.append(trace.logits[0])
    return np.concatenate(states), np.concatenate(logits)


def rnn_parts(rng, vocab=11, dim=6, zw=4, tw=4, storage=Storage.BRAM):
    emb = rng.integers(-(1 << (zw - 1)), 1 << (zw - 1), (vocab, dim))
    cell = LUTLayer.random(in_dim=dim, out_dim=dim, n_tables=5, n_c=3, rng=rng)
    cell = cell.with_tables(rng.integers(-(1 << (tw - 1)), 1 << (tw - 1), cell.tables.shape))
    unembed = LUTLayer.random(in_dim=dim, out_dim=vocab, n_tables=4, n_c=4, rng=rng)
    unembed = unembed.with_tables(rng.integers(-8, 8, unembed.tables.shape))
    lo, hi = sum_range(cell.tables)
    sw = signed_width(int(lo.min()) - (1 << (zw - 1)), int(hi.max()) + (1 << (zw - 1)) - 1)
    return emb, cell, unembed, sw


def cell_params(cell, *, state_width, table_width=4, **kw):
    """The :class:`LayerParams` of a recurrent cell's LUT: state to state, ``state_width``."""
    return LayerParams(
        anchors_a=cell.a,
        anchors_b=cell.b,
        tables=cell.tables,
        in_dim=cell.in_dim,
        in_width=state_width,
        table_width=table_width,
        out_width=state_width,
        **kw,
    )


@pytest.mark.parametrize(
    ("storage", "p", "lanes", "chunked"),
    [
        (Storage.BRAM, 2, 3, False),
        (Storage.LOGIC, None, None, False),
        # sums in a chunk memory shifting into the state, the last chunk partial (6 = 4 + 2)
        (Storage.BRAM, 2, 4, True),
    ],
)
def test_spiking_rnn_over_token_sequences(storage, p, lanes, chunked):
    rng = np.random.default_rng(21)
    emb, cell, unembed, sw = rnn_parts(rng)
    in_shift = 1
    tokens = rng.integers(0, 11, 30)
    firsts = np.zeros(30, bool)
    firsts[[0, 12, 13]] = True  # three sequences, one of length 1
    hw_emb = Embedding(table=emb, width=4)
    lut = cell_params(
        cell,
        state_width=sw,
        in_shift=in_shift,
        storage=storage,
        tables_per_cycle=p,
        lanes=lanes,
        chunked=chunked,
    )
    hw_cell = RecurrentCell(lut, in_width=4)
    assert ("w_stream" in hw_cell.signature.members) == (storage != Storage.LOGIC)
    ow = layer_width(unembed.tables, sw, False)
    hw_unembed = Layer(
        LayerParams(
            anchors_a=unembed.a,
            anchors_b=unembed.b,
            tables=unembed.tables,
            in_dim=6,
            in_width=sw,
            table_width=4,
            out_width=ow,
            in_shift=2,
            tables_per_cycle=4,
            lanes=4,
        )
    )
    hw_argmax = Argmax(dim=11, width=ow)
    top = Module()
    top.submodules += [hw_emb, hw_cell, hw_unembed, hw_argmax]
    wiring.connect(top, hw_emb.o_stream, hw_cell.i_stream)
    wiring.connect(top, hw_unembed.o_stream, hw_argmax.i_stream)
    # the states are observed between the cell and the unembedder
    got_states, got_out = [], []

    async def tb_in(ctx):
        payloads = [{"token": int(t), "first": int(f)} for t, f in zip(tokens, firsts, strict=True)]
        await send(ctx, hw_emb.i_stream, payloads, rng, 0.3)

    async def tb_tap(ctx):
        for _ in range(len(tokens)):
            ((_, h),) = await recv(ctx, hw_cell.o_stream, 1, rng, 0.6)
            got_states.append(ints(h))
            await send(ctx, hw_unembed.i_stream, [ints(h)])

    async def tb_out(ctx):
        got_out.extend(await recv(ctx, hw_argmax.o_stream, len(tokens), rng, 0.5))

    run(top, tb_in, tb_tap, tb_out)
    states, logits = reference_rnn(emb, cell, in_shift, unembed, 2, tokens, firsts)
    np.testing.assert_array_equal(got_states, states)
    np.testing.assert_array_equal([ints(q.logits) for _, q in got_out], logits)
    assert [int(q.index) for _, q in got_out] == argmax_lowest(logits).tolist()


@pytest.mark.parametrize(
    ("storage", "lanes"), [(Storage.BRAM, None), (Storage.SPRAM, 2), (Storage.LUTRAM, 1)]
)
def test_embedding_lookup_and_rewrite(storage, lanes):
    rng = np.random.default_rng(22)
    table = rng.integers(-8, 8, (7, 3))
    new_row = [5, -6, 7]
    dut = Embedding(table=table, width=4, storage=storage, lanes=lanes)
    image = dut.image
    tokens = rng.integers(0, 7, 20)
    got = []
    lanes_ = dut.lanes
    beats = -(-3 // lanes_)
    padded = new_row + [0] * (beats * lanes_ - 3)
    rewrite = [
        {"lane": 0, "addr": b * 7 + 3, "data": padded[b * lanes_ : (b + 1) * lanes_]}
        for b in range(beats)
    ]

    async def tb_in(ctx):
        if storage == Storage.SPRAM:  # not initialised by a bitstream: load it
            loads = [{"lane": 0, "addr": a, "data": image[a].tolist()} for a in range(len(image))]
            await send(ctx, dut.w_stream, loads)
        await send(
            ctx, dut.i_stream, [{"token": int(t), "first": 0} for t in tokens[:10]], rng, 0.3
        )
        await send(ctx, dut.w_stream, rewrite)
        await send(
            ctx, dut.i_stream, [{"token": int(t), "first": 1} for t in tokens[10:]], rng, 0.3
        )

    async def tb_out(ctx):
        got.extend(await recv(ctx, dut.o_stream, 20, rng, 0.4))

    run(dut, tb_in, tb_out)
    expected = table[tokens]
    after = table.copy()
    after[3] = new_row
    expected[10:] = after[tokens[10:]]
    np.testing.assert_array_equal([ints(q.z) for _, q in got], expected)
    assert [int(q.first) for _, q in got] == [0] * 10 + [1] * 10


@pytest.mark.parametrize(("storage", "lanes"), [(Storage.BRAM, None), (Storage.LUTRAM, 2)])
def test_embedding_answers_one_cycle_a_word(storage, lanes):
    """A token's first word is read in the cycle it is taken and its row leaves with the
    last word: B cycles (the embedding is on the critical loop of every generated token)."""
    table = np.random.default_rng(5).integers(-8, 8, (9, 5))
    dut = Embedding(table=table, width=4, storage=storage, lanes=lanes)
    beats = -(-5 // dut.lanes)
    got = idle_latencies(dut, [{"token": t, "first": 0} for t in (3, 8, 0)])
    assert [cycles for cycles, _ in got] == [beats] * 3
    np.testing.assert_array_equal([ints(q.z) for _, q in got], table[[3, 8, 0]])


def test_cell_checks_state_width():
    """What RecurrentCell (and RNNCore) check the cell's LUT with."""
    rng = np.random.default_rng(23)
    _, cell, _, sw = rnn_parts(rng)
    lo, hi = sum_range(cell.tables)
    check_cell(cell_params(cell, state_width=sw), 4)
    # a wider z: the sums alone still fit the state, the sums plus z do not
    need = signed_width(int(lo.min()) - 32, int(hi.max()) + 31)
    assert need > sw
    with pytest.raises(
        ValueError, match=f"state width {sw} cannot hold LUT sums plus z; use at least {need}"
    ):
        check_cell(cell_params(cell, state_width=sw), 6)
    # ... unless z stays within narrower bounds than its full range
    check_cell(cell_params(cell, state_width=sw), 6, z_bounds=(-1, 1))
    with pytest.raises(ValueError, match="maps the state to itself"):
        check_cell(cell_params(cell, state_width=sw).replace(out_width=sw + 1), 4)


def small_integer_rnn(rng, vocab=16, dim=6):
    """A random integer RNN (what quantize_rnn gives, without training)."""
    emb = rng.integers(-8, 8, (vocab, dim))
    cell = LUTLayer.random(in_dim=dim, out_dim=dim, n_tables=5, n_c=3, rng=rng)
    cell = cell.with_tables(rng.integers(-8, 8, cell.tables.shape))
    unembed = LUTLayer.random(in_dim=dim, out_dim=vocab, n_tables=4, n_c=4, rng=rng)
    unembed = unembed.with_tables(rng.integers(-8, 8, unembed.tables.shape))
    return IntegerRNN(
        embedding=emb,
        cell=cell,
        unembedder=unembed,
        cell_quant=LayerQuant(table_bits=4, in_shift=1),
        unembedder_quant=LayerQuant(table_bits=4, in_shift=2, out_scale_log2=-2),
        embedding_bits=4,
    )


def run_core(dut, tokens, rng, *, loads=(), ready_p=0.5):
    """Feed ``tokens`` (one sequence) through an RNN core after ``loads`` (stream name,
    payloads); every answer and every logit chunk the tap shows."""
    got, chunks = [], []

    async def tb_in(ctx):
        for name, payloads in loads:
            await send(ctx, getattr(dut, name), payloads)
        payloads = [{"token": int(t), "first": int(k == 0)} for k, t in enumerate(tokens)]
        await send(ctx, dut.i_stream, payloads, rng, 0.3)

    async def tb_out(ctx):
        got.extend(await recv(ctx, dut.o_stream, len(tokens), rng, ready_p))

    async def tb_tap(ctx):
        async for _, _, valid, payload in ctx.tick().sample(
            dut.o_logits.valid, dut.o_logits.payload
        ):
            if valid:
                chunks.append(ints(payload.values))
            if len(got) == len(tokens):
                return

    run(dut, tb_in, tb_out, tb_tap)
    return [int(q.index) for _, q in got], chunks


@pytest.mark.parametrize(
    ("kind", "sampled", "emb_lanes", "storage"),
    [
        ("parallel", False, None, Storage.BRAM),
        ("serial", True, 2, Storage.BRAM),
        ("parallel", True, 4, Storage.SPRAM),
        ("serial", False, 1, Storage.LUTRAM),
    ],
)
def test_rnn_core_chooses_as_the_golden_model(kind, sampled, emb_lanes, storage):
    """The whole core (embedding, cell, chunked unembedder, selector) against
    ``rnn_choices``: every chosen token and every logit, greedy and sampled."""
    rng = np.random.default_rng(24)
    model = small_integer_rnn(rng)
    plan = RNNPlan(
        kind=kind,
        embedding=LayerPlan(storage, 1, emb_lanes),
        cell=LayerPlan(storage, 2, 3),
        unembedder=LayerPlan(storage, 2, 3),
    )
    selection = Selection.sampled(1.5, -2, seed=77) if sampled else Selection()
    dut = rnn_core(model, plan, selection)
    tokens = rng.integers(0, 16, 24)
    loads = []
    if storage == Storage.SPRAM:  # SPRAM starts empty: load every memory
        emb = dut.embedding_image
        loads.append(("w_embedding", [{"lane": 0, "addr": a, "data": emb[a].tolist()}
                                      for a in range(len(emb))]))  # fmt: skip
        for name, p in (("w_cell", dut.cell), ("w_unembedder", dut.unembedder)):
            img = bank_image(p.tables, tables_per_cycle=p.tables_per_cycle, lanes=p.lanes)
            loads.append((name, [{"lane": q, "addr": a, "data": img[q, a].tolist()}
                                 for q in range(img.shape[0]) for a in range(img.shape[1])]))  # fmt: skip
    got, chunks = run_core(dut, tokens, rng, loads=loads)
    logits, choices = rnn_choices(model, tokens, selection)
    assert got == choices.tolist()
    beats = -(-16 // 3)
    flat = [chunks[n * beats : (n + 1) * beats] for n in range(len(tokens))]
    seen = [[v for c in vec for v in c][:16] for vec in flat]
    np.testing.assert_array_equal(seen, logits)
    if sampled:
        assert got != rnn_choices(model, tokens, Selection())[1].tolist()


def test_embedding_is_checked():
    """What Embedding and RNNCore check the embedding table with."""
    table, width = check_embedding(np.array([[1, -2], [3, 0]], np.int8), 3)
    assert table.dtype == np.int64 and width == 3
    with pytest.raises(ValueError, match=r"table entries -2\.\.3 do not fit width=2"):
        check_embedding([[1, -2], [3, 0]], 2)
    with pytest.raises(ValueError, match="must be an integer array of shape"):
        check_embedding(np.zeros((2, 2)), 4)
    with pytest.raises(ValueError, match=r"width must be 1\.\.64"):
        check_embedding([[0]], 0)


@pytest.mark.slow
def test_trained_quantised_rnn_over_text_matches_run_rnn():
    """A small SpikingRNN trained on text, quantised by ``quantize_rnn`` with its inferred
    widths, through Embedding + RecurrentCell + the unembedder Layer + Argmax, bit-exact
    with ``run_rnn`` over a text sequence, state by state and logit by logit."""
    from spikelut.compiler.ir.sequence import SpikingRNN
    from spikelut.compiler.passes.quantize_sequence import quantize_rnn
    from spikelut.compiler.passes.widths import rnn_widths
    from spikelut.compiler.train.lm import LMTrainConfig, train_lm

    text = np.frombuffer(("the quick brown fox jumps over the lazy dog. " * 40).encode(), np.uint8)
    model = SpikingRNN.create(rng=np.random.default_rng(5), context=16, dim=12, n_tables=6, n_c=4)
    cfg = LMTrainConfig(steps=300, val_every=300, val_windows=20, log_every=300, sample_bytes=0)
    train_lm(model, text, cfg)
    q = quantize_rnn(model, table_bits=6)
    w = rnn_widths(q)
    tokens = text[:24].astype(np.int64)

    hw_emb = Embedding(table=q.embedding, width=q.embedding_bits)
    lut = cell_params(
        q.cell,
        state_width=w.state_width,
        table_width=q.cell_quant.table_bits,
        in_shift=q.cell_quant.in_shift,
        tables_per_cycle=3,
        lanes=6,
    )
    # z takes the embedding's values (as in RNNCore)
    z_bounds = (q.embedding.min(axis=0), q.embedding.max(axis=0))
    hw_cell = RecurrentCell(lut, in_width=q.embedding_bits, z_bounds=z_bounds)
    hw_unembed = Layer(
        LayerParams(
            anchors_a=q.unembedder.a,
            anchors_b=q.unembedder.b,
            tables=q.unembedder.tables,
            in_dim=q.dim,
            in_width=w.state_width,
            table_width=q.unembedder_quant.table_bits,
            out_width=w.unembedder.out_width,
            in_shift=q.unembedder_quant.in_shift,
            tables_per_cycle=6,
            lanes=64,
        )
    )
    hw_argmax = Argmax(dim=q.vocab, width=w.unembedder.out_width)
    top = Module()
    top.submodules += [hw_emb, hw_cell, hw_unembed, hw_argmax]
    wiring.connect(top, hw_emb.o_stream, hw_cell.i_stream)
    wiring.connect(top, hw_cell.o_stream, hw_unembed.i_stream)
    wiring.connect(top, hw_unembed.o_stream, hw_argmax.i_stream)
    rng = np.random.default_rng(6)
    got = []

    async def tb_in(ctx):
        payloads = [{"token": int(t), "first": int(k == 0)} for k, t in enumerate(tokens)]
        await send(ctx, hw_emb.i_stream, payloads, rng, 0.2)

    async def tb_out(ctx):
        got.extend(await recv(ctx, hw_argmax.o_stream, len(tokens), rng, 0.7))

    run(top, tb_in, tb_out)
    trace = run_rnn(q, tokens[None])
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], trace.logits[0])
    assert [int(p.index) for _, p in got] == trace.predictions[0].tolist()
    # trained, not random: the model predicts this text better than chance
    assert np.mean(trace.predictions[0][:-1] == tokens[1:]) > 0.2
