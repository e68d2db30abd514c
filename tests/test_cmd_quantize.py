"""``spikelut quantize``: writes the integer model, reports widths and agreement, refuses."""

import json

import numpy as np
import pytest

from spikelut.cli.main import main
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.compiler.ir.sequence import SpikingRNN
from spikelut.compiler.passes.evaluate import int_predict


def _digits_model(path):
    rng = np.random.default_rng(0)
    layers = [
        LUTLayer.random(in_dim=64, out_dim=16, n_tables=8, n_c=4, rng=rng, init_scale=1.0),
        LUTLayer.random(in_dim=16, out_dim=10, n_tables=8, n_c=4, rng=rng, init_scale=1.0),
    ]
    enc = InputEncoding(offset=np.zeros(64), gain=np.ones(64), bits=6)
    save_model(
        ClassifierMLP(encoding=enc, layers=layers, n_classes=10, meta={"dataset": "digits"}), path
    )


def test_classifier_quantize_json(tmp_path, capsys):
    src, out = tmp_path / "f.lutnet", tmp_path / "q.lutnet"
    _digits_model(src)
    rc = main(["quantize", str(src), "-o", str(out), "--bits", "6", "--shift", "1=2", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    q = load_model(out)
    assert q.is_integer and [lq.table_bits for lq in q.quant] == [6, 6]
    assert [lq.in_shift for lq in q.quant] == [0, 2]
    assert [w["in_shift"] for w in r["layers"]] == [0, 2]
    assert r["layers"][0]["in_width"] == 6 and r["n"] == 450
    assert r["layers"][1]["compare_width"] < r["layers"][1]["in_width"]
    assert r["table_memory_bits"] == (8 * 16 * 16 + 8 * 16 * 10) * 6
    assert 0.0 <= r["agreement"] <= 1.0
    assert q.meta["quantization"]["evaluation"]["agreement"] == r["agreement"]


def test_centre_inputs_narrows_the_pixels_and_keeps_every_answer(tmp_path, capsys):
    src = tmp_path / "f.lutnet"
    _digits_model(src)
    runs = {}
    for name, extra in (("plain", []), ("centred", ["--centre-inputs"])):
        out = tmp_path / f"{name}.lutnet"
        argv = ["quantize", str(src), "-o", str(out), "--shift", "0=2", "--json", *extra]
        assert main(argv) == 0
        runs[name] = (json.loads(capsys.readouterr().out), load_model(out))
    (plain, qp), (centred, qc) = runs["plain"], runs["centred"]
    assert plain["input"]["bits"] == 6 and centred["input"]["bits"] == 5
    assert centred["layers"][0]["in_width"] == plain["layers"][0]["in_width"] - 1
    assert centred["int_accuracy"] == plain["int_accuracy"]
    pixels = np.random.default_rng(1).integers(0, 17, (200, 64))
    np.testing.assert_array_equal(int_predict(qc, pixels), int_predict(qp, pixels))
    # standardised features have no unused sign bit to take
    assert main(["quantize", str(_standardised(tmp_path)), "-o", str(tmp_path / "s.lutnet"),
                 "--centre-inputs"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--centre-inputs" in err and "standardised" in err
    assert len(err.strip().splitlines()) == 1


def _standardised(tmp_path):
    path = tmp_path / "std.lutnet"
    rng = np.random.default_rng(0)
    layers = [LUTLayer.random(in_dim=64, out_dim=10, n_tables=8, n_c=4, rng=rng)]
    enc = InputEncoding(offset=np.full(64, 4.0), gain=np.full(64, 0.25), bits=8, frac_bits=3)
    model = ClassifierMLP(encoding=enc, layers=layers, n_classes=10, meta={"dataset": "digits"})
    save_model(model, path)
    return path


def test_classifier_quantize_refusals(tmp_path, capsys):
    src = tmp_path / "f.lutnet"
    _digits_model(src)
    out = tmp_path / "q.lutnet"
    assert main(["quantize", str(src), "-o", str(out), "--max-width", "8"]) == 2
    err = capsys.readouterr().err
    assert "layer 0: the accumulator needs" in err and "maximum width 8" in err
    assert not out.exists()
    assert main(["quantize", str(src), "-o", str(out), "--shift", "one=2"]) == 2
    assert "LAYER=BITS" in capsys.readouterr().err
    assert main(["quantize", str(src), "-o", str(out), "--bits", "1"]) == 2
    assert "table bits must be 2..16" in capsys.readouterr().err


@pytest.mark.slow  # compiles the RNN engine on a cold numba cache
def test_rnn_quantize_reports_validation_loss(tmp_path, capsys):
    rng = np.random.default_rng(0)
    m = SpikingRNN.create(rng=rng, context=8, vocab=256, dim=8, n_tables=4, n_c=3)
    m.cell.tables[:] = rng.normal(0, 0.3, m.cell.tables.shape)
    m.unembedder.tables[:] = rng.normal(0, 0.3, m.unembedder.tables.shape)
    m.meta["training"] = {"seed": 1, "val_windows": 30}
    src, out, text = tmp_path / "r.lutnet", tmp_path / "ri.lutnet", tmp_path / "t.txt"
    save_model(m, src)
    text.write_bytes(bytes(rng.integers(32, 127, size=4000).astype(np.uint8)))
    argv = ["quantize", str(src), "-o", str(out), "--data", str(text), "--bits", "6", "--json"]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    q = load_model(out)
    assert isinstance(q, IntegerRNN) and q.cell_quant.table_bits == 6
    assert r["n_windows"] == 30 and r["arch"] == "rnn"
    assert abs(r["val_loss_change"] - (r["int_val_loss"] - r["float_val_loss"])) < 1e-12
    assert [w["name"] for w in r["layers"]] == ["cell", "unembedder"]
