"""The MAC baseline backend: compile_mac's files and manifest, and the core on Verilator."""

import json
import warnings

import numpy as np
import pytest

from spikelut.compiler.backend.mac import (
    compile_mac,
    default_macs,
    mac_figures,
    mac_params,
    quantize_for,
)
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.frontend.ann import DenseNet, from_sklearn
from spikelut.compiler.ir.mac import mac_predict
from spikelut.sim.mac_sim import check_mac_core


@pytest.fixture(scope="module")
def digits_mlp():
    from sklearn.neural_network import MLPClassifier

    from spikelut.compiler.frontend.datasets import load_dataset

    data = load_dataset("digits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32,), max_iter=100, random_state=0).fit(data.X_train, data.y_train)
    return clf, data


def test_compile_writes_core_and_manifest(tmp_path, digits_mlp):
    clf, data = digits_mlp
    man = compile_mac(clf, tmp_path, target=TARGETS["ice40-up5k"])
    assert (tmp_path / "core.v").read_text().count("module spikelut_core") == 1
    assert "spikelut_core" in (tmp_path / "core.il").read_text()
    assert json.loads((tmp_path / "manifest.json").read_text()) == man
    # one unit per SB_MAC16 of the UltraPlus; 64-32-10 in groups of 8
    assert man["macs"] == 8
    assert man["cycles_per_inference"] == 1 + (4 * 64 + 4) + (2 * 32 + 4) + 9 + 1
    assert man["multiplications"] == man["additions"] == 64 * 32 + 32 * 10
    assert man["unit_multiplies"] == 8 * (4 * 64 + 2 * 32)
    acc = man["acc_widths"]
    assert man["weight_bits_read"] == (4 * 64 + 2 * 32) * 8 * 8 + 4 * 8 * acc[0] + 2 * 8 * acc[1]
    assert man["ports"]["i_stream"]["payload"]["length"] == 64
    assert man["ports"]["o_stream"]["direction"] == "out"
    net, _ = quantize_for(from_sklearn(clf), "digits")
    want = float(np.mean(mac_predict(net, data.X_test) == data.y_test))
    assert man["test_accuracy"] == want > 0.9


def test_default_macs_follow_the_target(digits_mlp):
    net, _ = quantize_for(from_sklearn(digits_mlp[0]), "digits")
    assert default_macs(net, TARGETS["ice40-up5k"]) == 8
    assert default_macs(net, TARGETS["ecp5-85"]) == 32  # the widest layer
    assert default_macs(net, TARGETS["ice40-hx8k"]) == 1  # no DSP blocks
    fig = mac_figures(mac_params(net, macs=32))
    assert fig["cycles_per_inference"] == 1 + 68 + 36 + 9 + 1


def test_bad_input_is_rejected(tmp_path, digits_mlp):
    small = DenseNet([(np.ones((4, 3)), np.zeros(3), "identity")])
    with pytest.raises(ValueError, match="features"):
        compile_mac(small, tmp_path)
    with pytest.raises(ValueError, match="cannot compile"):
        compile_mac(object(), tmp_path)


@pytest.mark.slow
def test_core_on_verilator_matches_run_mac_on_the_digits_test_set(tmp_path, digits_mlp):
    clf, data = digits_mlp
    net, _ = quantize_for(from_sklearn(clf), "digits")
    x = net.encoding.encode_int(data.X_test)
    res = check_mac_core(net, x, macs=8, case_dir=tmp_path / "case", seed=1)
    assert res["checked"] == len(x) == 450
    assert res["mismatches"] == 0
    assert (
        res["cycles_per_inference"] == mac_figures(mac_params(net, macs=8))["cycles_per_inference"]
    )
