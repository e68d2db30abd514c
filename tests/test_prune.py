"""Pruning per output (compiler/passes/prune.py): each class sums at most K tables, pruned
columns are exactly 0 and held there by fine-tuning, unused tables go; the frozen core of a
pruned network equals the golden model and its pruned classes' adder trees are smaller."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from amaranth.back import rtlil
from helpers_models import pixel_data
from helpers_sim import ints, recv, run, send

from spikelut.cli.main import main
from spikelut.compiler.backend.compile import plan_core
from spikelut.compiler.backend.cores import CoreKind, build_core
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.compiler.passes.prune import prune_classifier
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.passes.scales import QuantizeError
from spikelut.compiler.train.classifier import train_classifier, train_on_dataset
from spikelut.hdl.frozen import FrozenBank
from spikelut.hdl.layer_params import frozen_fan_in, frozen_latency


@pytest.fixture(scope="module")
def trained():
    x, y = pixel_data()
    model = train_classifier(x, y, n_tables=12, n_c=3, epochs=3, seed=1, n_classes=4)
    return model, x, y


def test_each_class_keeps_at_most_k_tables_and_pruned_columns_stay_zero(trained):
    model, x, y = trained
    pruned = prune_classifier(model, x, y, keep=3, epochs=2, rounds=2)
    tables = pruned.layers[-1].tables
    varies = (tables != 0).any(axis=1)  # (N_T, Y): columns that are not all 0
    assert varies.sum(axis=0).max() <= 3
    assert varies.any(axis=1).all()  # a table no class keeps is gone, with its anchors
    info = pruned.meta["pruning"]
    assert info["tables_after"] == pruned.layers[-1].n_tables < 12
    assert [len(k) for k in info["kept"]] == [3] * 4 and info["schedule"][-1] == 3
    assert pruned.meta["fine_tune"]["fixed_columns"][-1] > 0
    assert model.layers[-1].tables.shape[0] == 12  # the input model is untouched
    for bad in (0, 13, 2.5, True):
        with pytest.raises(QuantizeError, match="tables per class"):
            prune_classifier(model, x, y, keep=bad)


def test_pruned_frozen_core_matches_golden_and_its_trees_are_smaller(trained):
    model, x, y = trained
    full = quantize_classifier(model, table_bits=3, calib_raw=x)
    qmodel = quantize_classifier(
        prune_classifier(model, x, y, keep=3, epochs=2, rounds=1), table_bits=3, calib_raw=x
    )
    plan = plan_core(qmodel, TARGETS["ice40-up5k"], kind="frozen")
    bank = FrozenBank(plan.params[-1])
    # structural: column c's tree adds exactly its kept tables, k - 1 adders, no more
    text = rtlil.convert(bank)
    for c, inputs in enumerate(bank.column_inputs):
        assert len(inputs) <= 3
        adders = set(re.findall(rf"wire .* \\add\d+_\d+_{c}\b", text))
        assert len(adders) == max(len(inputs) - 1, 0)
    full_plan = plan_core(full, TARGETS["ice40-up5k"], kind="frozen")
    assert frozen_fan_in(full_plan.params[-1].tables) > 3  # unpruned: classes sum more
    assert frozen_fan_in(plan.params[-1].tables) <= 3
    # bit-exact: every logit and label of the pruned core equal the golden model's
    net = build_core(CoreKind.FROZEN, plan.params)
    assert net.latency == frozen_latency(plan.params) < frozen_latency(full_plan.params)
    x_int = qmodel.encoding.encode_int(np.vstack([x[:40], pixel_data(40, seed=9)[0]]))
    rng = np.random.default_rng(2)
    got = []

    async def tb_in(ctx):
        await send(ctx, net.i_stream, x_int.tolist(), rng, 0.3)

    async def tb_out(ctx):
        got.extend(await recv(ctx, net.o_stream, len(x_int), rng, 0.7))

    run(net, tb_in, tb_out)
    trace = run_classifier(qmodel, x_int)
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], trace.outputs[-1])
    np.testing.assert_array_equal([int(p.index) for _, p in got], trace.predictions)


def test_quantize_prune_to_from_the_command_line(tmp_path, capsys):
    src, out = tmp_path / "f.lutnet", tmp_path / "q.lutnet"
    save_model(train_on_dataset(load_dataset("digits"), n_tables=12, n_c=3, epochs=1), src)
    args = ["quantize", str(src), "-o", str(out), "--bits", "3", "--prune-to"]
    assert main([*args, "4", "--prune-epochs", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pruning"]["keep_per_class"] == 4 and report["int_accuracy"] > 0.3
    assert (load_model(out).layers[-1].tables != 0).any(axis=1).sum(axis=0).max() <= 4
    assert main([*args, "13"]) == 2
    err = capsys.readouterr().err
    assert "give 1..12" in err and len(err.strip().splitlines()) == 1


def test_training_for_an_input_shift_learns_the_comparisons_the_hardware_makes():
    """``in_shift``: the first layer trains on ``encode_float(X, in_shift)`` (the integer
    inputs with their low bits cleared, clipped as the encoding clips), which is training on
    the shifted pixels themselves: the same anchors and, a one-layer network seeing only the
    comparisons, the same tables; the model's float forward pass, pruning and fine-tuning
    see the same inputs."""
    x, y = pixel_data()
    shift = 2
    model = train_classifier(x, y, n_tables=12, n_c=3, epochs=2, seed=3, n_classes=4,
                             in_shift=shift)  # fmt: skip
    enc = model.encoding
    np.testing.assert_array_equal(
        enc.encode_float(x, shift), ((enc.encode_int(x) >> shift) << shift).astype(np.float32)
    )
    coarse = np.floor(x / (1 << shift))
    ref = train_classifier(coarse, y, n_tables=12, n_c=3, epochs=2, seed=3, n_classes=4)
    for got, want in zip(model.layers, ref.layers, strict=True):
        np.testing.assert_array_equal(got.a, want.a)
        np.testing.assert_array_equal(got.tables, want.tables)
    assert model.float_in_shift == shift and ref.float_in_shift == 0
    np.testing.assert_array_equal(model.float_logits(x), ref.float_logits(coarse))
    pruned = prune_classifier(model, x, y, keep=3, epochs=2, rounds=1)
    ref_pruned = prune_classifier(ref, coarse, y, keep=3, epochs=2, rounds=1)
    np.testing.assert_array_equal(pruned.layers[-1].tables, ref_pruned.layers[-1].tables)
    assert pruned.meta["pruning"]["in_shift"] == shift
    # unshifted training does not see those ties: its tables differ
    plain = train_classifier(x, y, n_tables=12, n_c=3, epochs=2, seed=3, n_classes=4)
    assert not np.array_equal(plain.layers[0].tables, model.layers[0].tables)


def test_quantize_takes_the_shift_the_model_was_trained_for(tmp_path, capsys):
    src, out = tmp_path / "f.lutnet", tmp_path / "q.lutnet"
    data = load_dataset("digits")
    save_model(train_on_dataset(data, n_tables=12, n_c=3, epochs=1, in_shift=2), src)
    args = ["quantize", str(src), "-o", str(out), "--bits", "3", "--json"]
    assert main([*args, "--prune-to", "4", "--prune-epochs", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layers"][0]["in_shift"] == 2 and report["pruning"]["in_shift"] == 2
    assert load_model(out).quant[0].in_shift == 2
    assert main([*args, "--shift", "0=1"]) == 0  # an explicit shift wins
    assert json.loads(capsys.readouterr().out)["layers"][0]["in_shift"] == 1
