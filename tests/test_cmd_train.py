"""``spikelut train classifier`` end to end through the CLI entry point."""

import json

import numpy as np
import pytest

from spikelut.cli.main import main
from spikelut.compiler.ir.modelfile import load_model


def test_train_wine_json(tmp_path, capsys):
    out = tmp_path / "wine.lutnet"
    status = main(
        ["train", "classifier", "--data", "wine", "-o", str(out), "--epochs", "3", "--json"]
    )
    captured = capsys.readouterr()
    assert status == 0
    result = json.loads(captured.out)
    model = load_model(out)
    assert result["dataset"] == "wine" and result["n_test"] == 45
    assert result["test_accuracy"] == model.meta["test_accuracy"] > 0.8
    assert result["layers"] == [{"in": 13, "out": 3, "n_tables": 256, "n_c": 4}]
    assert model.encoding.frac_bits > 0  # real-valued features are standardised


def test_train_csv_two_layers_human(tmp_path, capsys, caplog):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6))
    y = (X[:, 0] > X[:, 1]).astype(int)
    path = tmp_path / "d.csv"
    path.write_text(
        "a,b,c,d,e,f,label\n"
        + "".join(",".join(map(str, [*row, lab])) + "\n" for row, lab in zip(X, y, strict=True))
    )
    out = tmp_path / "m.lutnet"
    argv = ["train", "classifier", "--data", str(path), "-o", str(out)]
    argv += ["--epochs", "2", "--hidden", "8", "--tables", "16,8", "--n-c", "3", "--seed", "4"]
    with caplog.at_level("INFO"):
        assert main(argv) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "6 -> 8 (16 x N_C 3) -> 2 (8 x N_C 3)" in text
    assert "epoch 2/2" in caplog.text
    model = load_model(out)
    assert [lay.n_tables for lay in model.layers] == [16, 8]
    assert model.meta["seed"] == 4 and model.class_names == ["0", "1"]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--data", "nosuchset"], "unknown data set 'nosuchset'"),
        (["--data", "missing.npz"], "not found"),
        (["--tables", "4,4,4"], "--tables has 3 values for 1 layers"),
        (["--n-c", "17"], "--n-c values must be 1..16, not 17"),
        (["--epochs", "0"], "--epochs"),
        (["--auto", "--in-shift", "2"], "--in-shift is for a network of the shape you give"),
        (["--in-shift", "-1"], "--in-shift"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, extra, message):
    out = tmp_path / "m.lutnet"
    status = main(["train", "classifier", "-o", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith("spikelut train: error: ") and message in err[-1]
    assert not out.exists()


def test_train_needs_a_sub_choice(capsys):
    assert main(["train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spikelut train: error: ")
