"""The LUT transformer on a board: the board core's table space for its embedding, heads,
FFNs and unembedder, table loading over the host link, GENERATE through the host runtime,
the board build's refusals and ``board.json`` plan, all against the golden model.

The fast tests run the complete board core (:class:`~spikelut.boards.top.BoardCore` with a
:class:`~spikelut.hdl.transformer.TransformerCore`) in Amaranth's simulator behind the real
host client (``pysim_board`` of test_lm_board); the slow one runs the ULX3S design in
Verilator over the simulated UART (:func:`~spikelut.sim.board_sim.run_lm_board_sim`).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from test_lm_board import CLOCK_HZ, DIVISOR, pysim_board
from test_transformer_hw import random_transformer

from spikelut.boards.design import model_hash
from spikelut.boards.lm_design import (
    lm_board_fit,
    lm_build_tables,
    lm_plan_key,
    lm_plan_of_build,
    lm_selection,
    lm_tables,
    make_lm_core,
)
from spikelut.boards.lm_runtime import generate_on_board
from spikelut.boards.platforms import board
from spikelut.boards.runtime import BoardMismatch
from spikelut.boards.tables import lm_table_layers, lm_write_ports
from spikelut.cli.main import main
from spikelut.compiler.backend.compile_transformer import TransformerPlan
from spikelut.compiler.ir.golden import generate_transformer
from spikelut.compiler.ir.modelfile import save_model

# two heads reading 2 tables a cycle in 3-entry words, the FFN in memory (so the link writes
# it) read 2 tables a cycle, the unembedder in chunks of 5 logits, the embedding 4 a beat
PLAN = TransformerPlan(
    attn_tables_per_cycle=2,
    attn_lanes=3,
    ffn_tables_per_cycle=2,
    ffn_lanes=3,
    unemb_lanes=5,
    embedding_lanes=4,
)
INFO = {"board": "ulx3s-85f", "transformer_plan": PLAN.to_json()}  # a build's board.json


def tiny(seed: int = 5):
    return random_transformer(
        np.random.default_rng(seed), vocab=20, dim=6, layers=1, heads=2, n_t=3, n_c=2, n_p=1,
        context=6,
    )  # fmt: skip


def retrained(model, seed: int = 9):
    """Same anchors and positional bits, every table different."""
    rng = np.random.default_rng(seed)
    lim = 1 << (model.table_bits - 1)

    def fresh(a):
        return rng.integers(-lim, lim, a.shape)

    return dataclasses.replace(
        model,
        embedding=fresh(model.embedding),
        attn_tables=fresh(model.attn_tables),
        ffn_tables=fresh(model.ffn_tables),
        unemb_tables=fresh(model.unemb_tables),
        meta={},
    )


def _core(model, selection=None, **options):
    selection = selection or lm_selection(model, 0.5, 1)
    return make_lm_core(model, PLAN, selection, clock_hz=CLOCK_HZ, divisor=DIVISOR, **options)


def test_the_table_space_names_every_memory_and_its_port():
    """Embedding, one layer per head, the FFN, the unembedder: each has its write port, and
    the tables the host sends are that model's in the same order."""
    model = tiny()
    core = _core(model).net
    ports = lm_write_ports(core)
    assert ports == ["w_embedding", "w_attn0_0", "w_attn0_1", "w_ffn0", "w_unembedder"]
    tables = lm_tables(model)
    layers = lm_table_layers(core)
    assert len(tables) == len(layers) == len(ports)
    assert np.array_equal(tables[2], model.attn_tables[0, 1])
    assert np.array_equal(tables[3], model.ffn_tables[0])
    assert layers[1].tables_per_cycle == 2 and layers[1].lanes == 3
    assert all(hasattr(core, p) for p in ports)


def test_tables_load_over_the_link_and_the_board_generates_as_that_model():
    """The board boots with its bitstream's model; another model's tables (same anchors and
    positional bits) load over the link into every memory, and the board then generates as
    that model, greedy and sampled, across window boundaries (C = 6), every byte checked by
    the host runtime against the golden model."""
    model, other = tiny(), retrained(tiny())
    core = _core(model)
    build = lm_build_tables(other, INFO)
    assert build.shape_hash == core.shape_hash and model_hash(other) != model_hash(model)
    prompt = bytes(np.random.default_rng(1).integers(0, model.vocab, 9).tolist())
    greedy, sampled = lm_selection(other, 0, 1), lm_selection(other, 0.7, 321)

    def body(link):
        with pytest.raises(BoardMismatch, match="give the build folder"):
            generate_on_board(link, other, prompt, 5, greedy)
        a = generate_on_board(link, other, prompt, 20, greedy, chunk=8, build=build)
        b = generate_on_board(link, other, prompt[:2], 16, sampled, chunk=16, build=build)
        return a, b

    a, b = pysim_board(core, body)
    assert a["table_frames"] >= 2 and b["table_frames"] == 0
    for r, sel, pr in ((a, greedy, prompt), (b, sampled, prompt[:2])):
        assert r["agree"] == r["n"] and not r["mismatches"]
        assert r["generated"].encode("latin-1") == generate_transformer(other, pr, r["n"], sel)
        assert r["identity"]["tables_hash"] == model_hash(other).hex()
    assert a["generated"] != generate_transformer(model, prompt, 20, greedy).decode("latin-1")


def test_the_fingerprint_covers_anchors_and_positional_bits():
    """Tables of a model whose anchors or positional bits differ cannot go into the build:
    those are fixed in the bitstream's logic."""
    model = tiny()
    same = lm_build_tables(retrained(model), INFO).shape_hash
    assert same == lm_build_tables(model, INFO).shape_hash
    flipped = dataclasses.replace(model, pe_bits=1 - model.pe_bits, meta={})
    moved = dataclasses.replace(model, attn_b=(model.attn_a + 1) % model.dim, meta={})
    for other in (flipped, moved):
        assert lm_build_tables(other, INFO).shape_hash != same


def test_board_json_plans_round_trip_and_bad_ones_are_refused():
    plan = lm_board_fit(tiny(), board("ulx3s-85f")).plan
    assert lm_plan_key(plan) == "transformer_plan"
    spec, back = lm_plan_of_build({"board": "ulx3s-85f", "transformer_plan": plan.to_json()})
    assert back == plan and spec.name == "ulx3s-85f"
    bad = {**plan.to_json(), "attn_storage": "flash"}
    with pytest.raises(ValueError, match="no storage"):
        lm_plan_of_build({"board": "ulx3s-85f", "transformer_plan": bad})
    with pytest.raises(ValueError, match="positive integer"):
        TransformerPlan.from_json({**plan.to_json(), "attn_lanes": 0})
    with pytest.raises(ValueError, match="that build runs a transformer"):
        from test_lm_board import tiny_rnn

        lm_build_tables(tiny_rnn(), INFO)
    with pytest.raises(ValueError, match="one kind"):
        lm_board_fit(tiny(), board("ulx3s-85f"), kind="serial")


def test_build_refuses_a_transformer_a_board_cannot_hold(tmp_path, capsys):
    """Attention tables of 2**(2*5 + 2) rows need more block RAMs than the iCEBreaker has:
    one line naming them, exit 2, nothing written."""
    model = random_transformer(
        np.random.default_rng(0), vocab=64, dim=16, heads=2, n_t=8, n_c=5, n_p=2, context=8
    )
    path = tmp_path / "big.lutnet"
    save_model(model, path)
    out = tmp_path / "b"
    assert main(["build", str(path), "--board", "icebreaker", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs" in err and "block RAMs" in err and "ice40-up5k has 26" in err
    assert len(err.splitlines()) == 1 and not out.exists()
    assert main(["build", str(path), "--board", "ulx3s-85f", "--core", "serial", "-o",
                 str(out)]) == 2  # fmt: skip
    assert "one kind" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_the_simulated_ulx3s_generates_as_the_golden_model():
    """The ULX3S design of a transformer (tables in block RAM, from the bitstream) generates
    400 tokens over the simulated UART, greedy then sampled, every byte the golden model's,
    with windows restarting every C tokens."""
    from spikelut.sim.board_sim import run_lm_board_sim

    model = random_transformer(
        np.random.default_rng(3), vocab=32, dim=8, layers=2, heads=2, n_t=4, n_c=2, n_p=2,
        context=8,
    )  # fmt: skip
    prompt = bytes(np.random.default_rng(2).integers(0, model.vocab, 11).tolist())
    for temperature in (0.0, 0.6):
        selection = lm_selection(model, temperature, 77)
        r = run_lm_board_sim(
            model, prompt, 200, selection, spec=board("ulx3s-85f"), plan=PLAN,
            progress=lambda msg: None,
        )  # fmt: skip
        assert r["agree"] == r["n"] == 200 and not r["mismatches"]
        assert r["generated"].encode("latin-1") == generate_transformer(
            model, prompt, 200, selection
        )
        assert r["counters"]["errors"] == 0 and r["tokens_fed"] == 11 + 200 - 1
        assert r["core_cycles_per_token"] > 0 and json.dumps(r["plan"])
