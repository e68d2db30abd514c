"""``spikelut build``, ``run`` and ``sample`` with a language model (an integer spiking RNN):
the one-line refusals, and generation on the simulated board checked end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_lm_board import tiny_rnn

from spikelut.boards.lm_design import lm_selection
from spikelut.cli.main import main
from spikelut.compiler.ir.classifier import LayerQuant
from spikelut.compiler.ir.golden import generate_rnn
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import save_model


@pytest.fixture
def lm_file(tmp_path):
    path = tmp_path / "lm.lutnet"
    save_model(tiny_rnn(vocab=128, dim=8), path)
    return path


def _huge_rnn() -> IntegerRNN:
    """An RNN whose unembedder alone (12 tables of 2**12 rows of 256 8-bit logits) is
    beyond every board's memory."""
    rng = np.random.default_rng(0)
    dim, vocab = 16, 256
    cell = LUTLayer.random(in_dim=dim, out_dim=dim, n_tables=4, n_c=4, rng=rng)
    cell = cell.with_tables(rng.integers(-8, 8, cell.tables.shape))
    unemb = LUTLayer.random(in_dim=dim, out_dim=vocab, n_tables=12, n_c=12, rng=rng)
    unemb = unemb.with_tables(rng.integers(-128, 128, unemb.tables.shape))
    return IntegerRNN(
        embedding=rng.integers(-8, 8, (vocab, dim)),
        cell=cell,
        unembedder=unemb,
        cell_quant=LayerQuant(table_bits=5),
        unembedder_quant=LayerQuant(table_bits=8),
        embedding_bits=5,
    )


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("spikelut"), err
    return err


def test_build_refuses_an_rnn_that_does_not_fit_in_one_line(tmp_path, capsys):
    path = tmp_path / "huge.lutnet"
    save_model(_huge_rnn(), path)
    out = tmp_path / "out"
    assert main(["build", str(path), "--board", "icebreaker", "-o", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "ice40-up5k" in err and "kbit" in err  # what is short, by how much
    assert not (out / "board.json").exists()
    assert main(["build", str(path), "--board", "icebreaker", "--max-brams", "4"]) == 2
    assert "--max-brams" in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "LM", "--port", "sim", "--bytes", "5"], "--prompt"),
        (["run", "LM", "--port", "sim", "--prompt", "ab"], "--bytes"),
        (["run", "LM", "--port", "sim", "--prompt", "\u00ff", "--bytes", "3"], "prompt holds byte"),
        (
            ["run", "LM", "--port", "sim", "--prompt", "a", "--bytes", "3", "--seed", "0"],
            "non-zero",
        ),
        (
            ["run", "LM", "--port", "sim", "--prompt", "a", "--bytes", "3", "--limit", "2"],
            "classifier",
        ),
        (["sample", "LM", "--port", "sim", "--bytes", "0", "--prompt", "a"], "--bytes"),
        (["sample", "LM", "--port", "sim", "--temperature", "-1", "--prompt", "a"], "temperature"),
    ],
)
def test_run_and_sample_refuse_bad_generation_options(lm_file, capsys, argv, says):
    argv = [str(lm_file) if a == "LM" else a for a in argv]
    assert main(argv) == 2
    assert says in _one_line_error(capsys)


@pytest.mark.slow
def test_run_and_sample_generate_on_the_simulated_board(lm_file, capsys):
    """``run --port sim`` greedy and ``sample --port sim`` sampled: the text is the golden
    model's, every byte checked, the figures reported."""
    model = tiny_rnn(vocab=128, dim=8)
    argv = ["--port", "sim", "--prompt", "hello, board", "--bytes", "150", "--chunk", "50"]
    assert main(["run", str(lm_file), *argv, "--temperature", "0", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    want = generate_rnn(model, b"hello, board", 150, lm_selection(model, 0, 1))
    assert r["agree"] == r["n"] == 150 and r["generated"].encode("latin-1") == want
    assert r["requests"] == 3 and r["sim_tokens_per_second"] > 0
    assert main(["sample", str(lm_file), *argv, "--temperature", "0.8", "--seed", "42"]) == 0
    out = capsys.readouterr()
    want = generate_rnn(model, b"hello, board", 150, lm_selection(model, 0.8, 42))
    assert out.out.encode("latin-1") == b"hello, board" + want + b"\n"
    assert "board tokens equal to the golden model: 150/150" in out.err
