"""Quantisation-aware fine-tuning (compiler/passes/quant_aware.py): the scales chosen, then
made coarser on request, the float tables fine-tuned through the integer grid, the network
quantised at exactly those scales; pruned columns stay 0; bad arguments refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_models import pixel_data

from spikelut.cli.main import main
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.ir.fixed_point import quantize_tables
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.prune import prune_classifier
from spikelut.compiler.passes.quant_aware import quantize_aware
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.passes.scales import QuantizeError
from spikelut.compiler.train.classifier import (
    fine_tune_classifier,
    train_classifier,
    train_on_dataset,
)


@pytest.fixture(scope="module")
def trained():
    x, y = pixel_data(400, 10, noise=2.0)
    model = train_classifier(x, y, n_tables=48, n_c=4, epochs=6, seed=1, n_classes=4)
    return model, x, y


def test_without_training_or_coarsening_it_is_the_plain_quantisation(trained):
    model, x, y = trained
    plain = quantize_classifier(model, table_bits=3, calib_raw=x)
    same = quantize_aware(model, x, y, table_bits=3, epochs=0)
    assert same.quant == plain.quant
    np.testing.assert_array_equal(same.layers[0].tables, plain.layers[0].tables)
    info = same.meta["quantization"]["aware"]
    assert info["epochs"] == 0 and info["scales_log2"] == info["chosen_scales_log2"]


def test_coarser_scales_and_training_through_the_grid_win_back_accuracy(trained):
    model, x, y = trained
    chosen = quantize_classifier(model, table_bits=3, calib_raw=x).quant[0].out_scale_log2
    coarse = quantize_aware(model, x, y, table_bits=3, epochs=0, coarsen=2)
    tuned = quantize_aware(model, x, y, table_bits=3, epochs=8, coarsen=2)
    assert coarse.quant[0].out_scale_log2 == tuned.quant[0].out_scale_log2 == chosen - 2
    fine = quantize_classifier(model, table_bits=3, calib_raw=x)
    assert np.count_nonzero(coarse.layers[0].tables) < np.count_nonzero(fine.layers[0].tables)

    def acc(q):
        return float(np.mean(int_predict(q, x) == y))

    # the rounding to the coarse grid costs training accuracy; training through it wins
    # (most of) it back
    assert acc(coarse) < acc(fine) and acc(tuned) > acc(coarse) + 0.02
    # the grid trained through is the quantiser's: the integer network of the fine-tuned
    # tables, at that scale, adds exactly what the training's forward pass read
    s = tuned.quant[0].out_scale_log2
    again = fine_tune_classifier(model, x, y, fixed=[None], epochs=8, seed=0, grid=[(s, 3)])
    assert again.meta["fine_tune"]["grid"] == [[s, 3]]
    q = quantize_classifier(again, table_bits=3, calib_raw=x, fixed_scales={0: s})
    read = again.layers[0].with_tables(quantize_tables(again.layers[0].tables, s, 3) * 2.0**-s)
    x_int = q.encoding.encode_int(x)
    np.testing.assert_array_equal(
        run_classifier(q, x_int).outputs[-1], read.forward(again.encoding.encode_float(x)) * 2**s
    )


def test_pruned_columns_stay_zero(trained):
    model, x, y = trained
    pruned = prune_classifier(model, x, y, keep=5, epochs=2, rounds=1)
    zero = (pruned.layers[0].tables == 0).all(axis=1)
    q = quantize_aware(pruned, x, y, table_bits=3, epochs=4, coarsen=1)
    assert (
        q.layers[0].tables[np.broadcast_to(zero[:, None, :], q.layers[0].tables.shape)] == 0
    ).all()
    assert ((q.layers[0].tables != 0).any(axis=1).sum(axis=0) <= 5).all()


def test_bad_arguments_are_refused(trained):
    model, x, y = trained
    for kwargs, match in (
        ({"epochs": -1}, "epochs must be >= 0"),
        ({"epochs": 1, "coarsen": -1}, "coarsen must be 0 or more"),
    ):
        with pytest.raises(QuantizeError, match=match):
            quantize_aware(model, x, y, table_bits=3, **kwargs)
    with pytest.raises(QuantizeError, match="starts a scale group"):
        quantize_classifier(model, table_bits=3, calib_raw=x, fixed_scales={1: 2})


def test_quantize_command_trains_through_the_grid(tmp_path, capsys):
    src, out = tmp_path / "f.lutnet", tmp_path / "q.lutnet"
    save_model(train_on_dataset(load_dataset("digits"), n_tables=16, n_c=4, epochs=2), src)
    args = ["quantize", str(src), "-o", str(out), "--bits", "3"]
    assert main([*args, "--qat-epochs", "1", "--coarsen", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    qa = report["quantization_aware"]
    assert qa["epochs"] == 1 and qa["coarsen"] == 1
    assert qa["scales_log2"]["0"] == qa["chosen_scales_log2"]["0"] - 1
    assert load_model(out).quant[0].out_scale_log2 == qa["scales_log2"]["0"]
    assert report["int_accuracy"] > 0.5
    assert main([*args, "--coarsen", "1", "--no-calibrate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drop --no-calibrate" in err[0]
    assert main([*args, "--qat-epochs", "-1"]) == 2
