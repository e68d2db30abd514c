"""``spikelut eval``: float and integer classifiers on their data set's split."""

import json

import numpy as np
import pytest

from spikelut.cli.main import main
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.modelfile import save_model
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.train.classifier import train_on_dataset


@pytest.fixture(scope="module")
def wine_model():
    data = load_dataset("wine")
    return data, train_on_dataset(data, n_tables=32, epochs=3)


def _eval(argv, capsys):
    status = main(["eval", *argv, "--json"])
    return status, capsys.readouterr()


def test_float_and_integer(tmp_path, capsys, wine_model):
    data, model = wine_model
    path = tmp_path / "w.lutnet"
    save_model(model, path)
    status, out = _eval([str(path)], capsys)
    result = json.loads(out.out)
    assert status == 0 and result["kind"] == "float" and result["dataset"] == "wine"
    assert result["test_accuracy"] == float(
        np.mean(model.float_predict(data.X_test) == data.y_test)
    )
    assert result["table_bits"] == 32 * 16 * 3 * 8

    qmodel = quantize_classifier(model, table_bits=6, calib_raw=data.X_train)
    qpath = tmp_path / "wq.lutnet"
    save_model(qmodel, qpath)
    status, out = _eval([str(qpath), "--data", "wine"], capsys)
    result = json.loads(out.out)
    golden = run_classifier(qmodel, qmodel.encoding.encode_int(data.X_test)).predictions
    assert status == 0 and result["kind"] == "integer"
    assert result["test_accuracy"] == float(np.mean(golden == data.y_test))
    assert result["table_bits"] == 32 * 16 * 3 * 6


def test_bad_input(tmp_path, capsys, wine_model):
    _, model = wine_model
    path = tmp_path / "w.lutnet"
    save_model(model, path)
    status, out = _eval([str(path), "--data", "digits"], capsys)
    assert status == 2 and "has 64 features, the model reads 13" in out.err
    status, out = _eval([str(tmp_path / "none.lutnet")], capsys)
    assert status == 2 and "no such model file" in out.err
    assert len(out.err.strip().splitlines()) == 1
