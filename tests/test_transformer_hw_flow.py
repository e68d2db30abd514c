"""The transformer core through the tools: Verilator/cocotb generation against the golden
model, ``spikelut compile`` and ``spikelut sim`` of a quantised transformer (and their
refusals), and the one temperature rule of every sampler."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_transformer_hw import random_transformer

from spikelut.boards.lm_design import lm_selection
from spikelut.cli.main import main
from spikelut.compiler.backend.compile_transformer import TransformerPlan
from spikelut.compiler.ir.golden import generate_transformer
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.compiler.ir.selection import Selection
from spikelut.compiler.passes.evaluate import rnn_int_logits, transformer_int_logits
from spikelut.compiler.passes.quantize_sequence import quantize_rnn, quantize_transformer
from spikelut.compiler.train.lm import new_model
from spikelut.sim.transformer_sim import simulate_transformer


@pytest.mark.slow
def test_transformer_core_generates_as_the_golden_model_in_verilator():
    """Two layers of two heads, windows of 8 cut by the core, sampled: 300 generated tokens
    (after a prompt under stream gaps and stalls), every answer and 40 steps of logits."""
    rng = np.random.default_rng(11)
    model = random_transformer(rng, vocab=24, layers=2, heads=2, n_p=2, context=8)
    selection = Selection.sampled(2.0, 0, seed=9)
    prompt = bytes([1, 2, 3, 4, 5])
    plan = TransformerPlan(attn_tables_per_cycle=2, attn_lanes=3, unemb_lanes=5)
    r = simulate_transformer(model, prompt, 300, plan=plan, selection=selection, seed=4,
                             check_logits=40)  # fmt: skip
    assert r.steps == 305 and r.mismatches == 0, r.first_mismatch
    assert r.logit_chunks_checked == 40 * 5 and r.logit_mismatches == 0
    assert r.generated.encode("latin-1") == generate_transformer(model, prompt, 300, selection)
    assert len(set(r.generated)) > 3
    assert r.cycles_per_token >= r.table_cycles_per_token


def _quantised(tmp_path, **shape):
    model = new_model("transformer", 0, **shape)
    path = tmp_path / "tf.lutnet"
    save_model(quantize_transformer(model, table_bits=6), path)
    return path


def test_compile_a_transformer(tmp_path, capsys):
    path = _quantised(tmp_path, context=8, dim=8, n_layers=1, n_heads=1, n_tables=2, n_c=3, n_pe=2)
    out = tmp_path / "out"
    assert main(["compile", str(path), "-o", str(out), "--target", "ecp5-85", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (out / "core.v").exists() and json.loads((out / "manifest.json").read_text()) == r
    assert r["architecture"] == "transformer-int" and r["context"] == 8
    assert r["layers"][0]["attention"]["tables_per_cycle"] == 2  # both tables a cycle fit
    assert r["cycles_per_token"] >= r["table_cycles_per_token"] > 0
    assert r["block_rams"] <= r["block_rams_available"]
    # attention tables of 2**(2*5 + 2) rows do not fit the UP5K's block RAM
    big = _quantised(tmp_path, context=8, dim=8, n_layers=1, n_heads=1, n_tables=2, n_c=5, n_pe=2)
    assert main(["compile", str(big), "-o", str(tmp_path / "o2"), "--target", "ice40-up5k"]) == 2
    err = capsys.readouterr().err
    assert "block RAMs" in err and "ice40-up5k has 30" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o2" / "core.v").exists()


@pytest.mark.slow
def test_sim_command_runs_a_transformer_and_samples_as_the_board_would(tmp_path, capsys):
    """``spikelut sim`` of a transformer: the core ``compile --target`` places, sampled at
    a temperature with the rule the board uses (``lm_selection``), every byte checked."""
    path = _quantised(tmp_path, context=8, dim=8, n_layers=1, n_heads=2, n_tables=2, n_c=3, n_pe=1)
    args = ["sim", str(path), "--dataset", "random", "--vectors", "12", "--generate", "60",
            "--temperature", "0.7", "--sample-seed", "5", "--json"]  # fmt: skip
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["core_of"] == "compile --target ecp5-85" and r["mismatches"] == 0
    assert r["steps"] == 72 and r["logit_mismatches"] == 0 and r["logit_chunks_checked"] > 0
    model = load_model(path)
    prompt = bytes(np.random.default_rng(0).integers(0, model.vocab, 12).tolist())
    want = generate_transformer(model, prompt, 60, lm_selection(model, 0.7, 5))
    assert r["generated"].encode("latin-1") == want


@pytest.mark.parametrize(
    "flags, named",
    [(["--netlist", "ecp5"], "--netlist"), (["--core", "serial"], "--core serial")],
)  # fmt: skip
def test_sim_refuses_what_does_not_apply_to_a_transformer(tmp_path, capsys, flags, named):
    path = _quantised(tmp_path, context=8, dim=8, n_layers=1, n_heads=1, n_tables=2, n_c=3, n_pe=1)
    assert main(["sim", str(path), "--dataset", "random", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and "transformer" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_the_temperature_applies_to_the_float_logits(arch):
    """One scale rule for every sampler: integer logits times 2**logit_scale_log2 are the
    float logits the quantiser evaluated, and the exponential table decays by
    exp(-that step / T)."""
    shape = {"rnn": dict(dim=8, n_tables=2, n_c=3), "transformer": dict(
        context=8, dim=8, n_layers=1, n_heads=1, n_tables=2, n_c=3, n_pe=1)}[arch]  # fmt: skip
    model = new_model(arch, 0, **shape)
    rng = np.random.default_rng(2)
    unembedder = model.unemb_tables if arch == "transformer" else model.unembedder.tables
    unembedder[...] = rng.normal(0, 0.5, unembedder.shape)  # a fresh model's are zero
    model.embedding[...] = rng.normal(0, 0.5, model.embedding.shape)
    q = (quantize_transformer if arch == "transformer" else quantize_rnn)(model, table_bits=6)
    tokens = np.arange(8, dtype=np.int64)[None, :] * 37 % q.vocab
    logits = (transformer_int_logits if arch == "transformer" else rnn_int_logits)(q, tokens)
    raw = logits / 2.0**q.logit_scale_log2
    assert np.array_equal(raw, np.rint(raw)) and np.abs(raw).max() >= 1
    exp = np.asarray(lm_selection(q, 0.5, 1).exp, float)
    assert exp[1] / exp[0] == pytest.approx(np.exp(-(2.0**q.logit_scale_log2) / 0.5), rel=0.02)
