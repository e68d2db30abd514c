"""``spikelut demo --lm``: the presets, ``train lm --preset``, the demo's option checks, and
(slow) the whole language-model demo run for real on a small network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikelut.cli.main import build_parser, main
from spikelut.cli.train_lm import _arch, _shape_args
from spikelut.compiler.backend.compile_transformer import fit_transformer
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.errors import UserError
from spikelut.compiler.ir.modelfile import load_model
from spikelut.compiler.passes.quantize_sequence import quantize_transformer
from spikelut.compiler.train.lm import new_model
from spikelut.compiler.train.presets import (
    LM_PRESETS,
    TRANSFORMER_PRESETS,
    LMPreset,
    lm_preset,
    lm_preset_for_target,
)
from spikelut.flows.demo_lm import LM_STAGES, LMDemoOptions, run_lm_demo


def test_presets_name_their_devices():
    for name, p in LM_PRESETS.items():
        assert p.arch == "rnn" and lm_preset(name) is p
        assert lm_preset_for_target(p.target) == name
        assert set(p.shape()) == {"dim", "n_tables", "n_c", "unembed_tables", "unembed_n_c"}
    assert lm_preset_for_target("ecp5-12") is None
    with pytest.raises(UserError, match="choose one of up5k"):
        lm_preset("huge")


def test_the_transformer_preset_trains_its_shape_and_its_core_fits_its_device():
    preset = TRANSFORMER_PRESETS["ecp5-85"]
    args = _train_args("--arch", "transformer", "--preset", "ecp5-85", "--heads", "1")
    assert _shape_args(args) == {**preset.shape(), "n_heads": 1}  # an option overrides
    assert _shape_args(_train_args("--arch", "transformer", "--preset", "ecp5-85")) == (
        preset.shape()
    )
    # untrained, at its table width: its core fits the device it names
    model = quantize_transformer(new_model("transformer", 0, **preset.shape()),
                                 table_bits=preset.table_bits)  # fmt: skip
    _, blocks = fit_transformer(model, TARGETS[preset.target])
    assert blocks <= TARGETS[preset.target].block_rams


def _train_args(*extra: str):
    args = build_parser().parse_args(["train", "lm", "--text", "t.txt", *extra])
    args.arch = _arch(args)
    return args


def test_train_lm_preset_gives_its_shape_and_options_override_it():
    up5k = LM_PRESETS["up5k"]
    args = _train_args("--preset", "up5k")
    assert args.arch == "rnn" and _shape_args(args) == {"context": 32, **up5k.shape()}
    args = _train_args("--preset", "up5k", "--n-c", "3", "--unembed-tables", "2")
    assert _shape_args(args) == {
        "context": 32, **up5k.shape(), "n_c": 3, "unembed_tables": 2,
    }  # fmt: skip
    # without a preset: the reference's defaults, as before
    assert _train_args().arch == "transformer"
    rnn = _shape_args(_train_args("--arch", "rnn"))
    assert (rnn["dim"], rnn["n_tables"], rnn["n_c"], rnn["unembed_tables"]) == (48, 16, 6, None)
    tf = _shape_args(_train_args())
    assert (tf["dim"], tf["n_tables"], tf["n_c"]) == (32, 16, 6)
    with pytest.raises(UserError, match="is a spiking RNN"):
        _train_args("--preset", "up5k", "--arch", "transformer")


def test_train_lm_preset_trains_that_shape(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_bytes(b"def f(x):\n    return x + 1\n\n" * 200)
    out = tmp_path / "m.lutnet"
    argv = ["train", "lm", "--text", str(text), "--preset", "up5k", "--dim", "8", "--context"]
    argv += ["8", "--steps", "3", "--val-windows", "4", "--sample-bytes", "0", "-o", str(out)]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == "rnn"
    m, p = load_model(out), LM_PRESETS["up5k"]
    assert m.dim == 8 and (m.cell.n_tables, m.cell.n_c) == (p.n_tables, p.n_c)
    assert (m.unembedder.n_tables, m.unembedder.n_c) == (p.unembed_tables, p.unembed_n_c)
    assert main([*argv, "--arch", "transformer"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a spiking RNN" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--lm", "--run-examples", "5"], "--run-examples is the classifier demo's"),
        (["--steps", "10"], "--steps applies to the language-model demo; add --lm"),
        (["--tokens", "10"], "--tokens applies to the language-model demo"),
        (["--lm", "--tokens", "0"], "--tokens: must be an integer >= 1"),
        (["--lm", "--steps", "many"], "--steps"),
        (["--lm", "--preset", "huge"], "invalid choice: 'huge'"),
        (["--lm", "--board", "ulx3s-12f"], "no language-model preset was measured on ecp5-12"),
        (["--lm", "--board", "no-such-board"], "unknown board"),
    ],
)
def test_demo_lm_refuses_bad_options_in_one_line(tmp_path, capsys, argv, says):
    assert main(["demo", *argv, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err
    assert not (tmp_path / "out").exists()  # nothing ran


# A network small enough for the test's time, on the smallest ECP5 board (the default
# board's flow, the up5k preset on the iCEBreaker, is measured in the README): the real
# build, bitstream and board simulation of another family than the classifier tests'.
SMALL = LMPreset(
    dim=16, n_tables=8, n_c=4, unembed_tables=4, unembed_n_c=4, table_bits=6, target="ecp5-12"
)


@pytest.mark.slow
def test_the_lm_demo(tmp_path):
    """Every stage for real (no stage skipped or mocked): the standard-library corpus, 1,000
    training steps, quantisation, the core in cocotb (32 prompt bytes + 20 generated, greedy
    and sampled), the Yosys/nextpnr bitstream and the simulated board over the UART (20
    tokens each rule); 0 mismatches. 189 s here with cold Verilator caches, 103 s warm."""
    opts = LMDemoOptions(
        board="ulx3s-12f", preset=SMALL, steps=1000, prompt_bytes=32, sim_tokens=20, run_tokens=20
    )
    s = run_lm_demo(tmp_path, opts)
    assert list(s["stage_seconds"]) == [stage.name for stage in LM_STAGES]
    assert s["corpus_bytes"] == 8 * 2**20 and s["corpus_files"] > 100
    assert s["train_steps"] == 1000 and s["shape"]["dim"] == 16
    assert 0 < s["float_val_loss"] < 5.5 and abs(s["int_val_loss"] - s["float_val_loss"]) < 0.5
    assert s["val_windows"] == 10_000 and s["table_bits"] == 6
    assert s["sim_tokens_checked"] == 2 * (32 + 20) and s["sim_mismatches"] == 0
    assert s["board_tokens_checked"] == 2 * 20 and s["board_mismatches"] == 0
    assert set(s["generated"]) == {"greedy", "sampled"}
    # cycles per token: the manifest's, measured in cocotb and by the board's counter
    assert s["cycles_per_token"] == s["sim_cycles_per_token"]["greedy"]
    assert s["board_cycles_per_token"]["greedy"] >= s["cycles_per_token"]
    assert s["sim_cycles_per_token"]["sampled"] <= s["sampled_cycles_per_token"]
    assert s["tokens_per_second"] > s["uart_tokens_per_second"] > 0
    assert s["sim_uart_tokens_per_second"]["greedy"] > 0 and s["sim_baud"] > 0
    assert 0 < s["logic_cells"]["used"] <= s["logic_cells"]["available"]
    assert s["block_rams"]["used"] > 0 and s["fmax_mhz"] >= s["clock_mhz"]
    for files in s["files"].values():
        assert files and all(Path(f).exists() for f in files)
    assert json.loads((tmp_path / "summary.json").read_text())["board_mismatches"] == 0
    corpus = Path(s["files"]["corpus"][0]).read_bytes()
    assert corpus.startswith(b'"""') and len(corpus) == s["corpus_bytes"]
