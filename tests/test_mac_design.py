"""The MAC baseline as a board design: units per board, identity hash, the board core, and
``spikelut build --baseline mac`` to a bitstream."""

import json
import pickle
import warnings

import pytest
from amaranth.hdl import Fragment

from spikelut.boards.mac_design import mac_hash, make_mac_core
from spikelut.boards.platforms import board
from spikelut.cli.main import main
from spikelut.compiler.backend.mac import default_macs, quantize_for
from spikelut.compiler.frontend.ann import from_sklearn


@pytest.fixture(scope="module")
def small_mlp(tmp_path_factory):
    """A 64-4-10 digits MLP, pickled: small enough for a quick build."""
    from sklearn.neural_network import MLPClassifier

    from spikelut.compiler.frontend.datasets import load_dataset

    data = load_dataset("digits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((4,), max_iter=60, random_state=0).fit(data.X_train, data.y_train)
    path = tmp_path_factory.mktemp("ann") / "mlp.pkl"
    path.write_bytes(pickle.dumps(clf))
    net, _ = quantize_for(from_sklearn(clf), "digits")
    return path, net


def test_board_macs_follow_the_dsp_blocks(small_mlp):
    _, net = small_mlp
    # icebreaker (UP5K): 8 SB_MAC16, but the widest layer has 10 outputs
    assert default_macs(net, board("icebreaker").target) == 8
    assert default_macs(net, board("ulx3s-85f").target) == 10


def test_mac_hash_tracks_the_weights(small_mlp):
    _, net = small_mlp
    h = mac_hash(net)
    assert len(h) == 16 and h == mac_hash(net)
    layer = net.layers[0]
    w = layer.w.copy()
    w[0, 0] += 1
    changed = type(net)(net.encoding, [type(layer)(**{**layer.__dict__, "w": w}), *net.layers[1:]])
    assert mac_hash(changed) != h


def test_make_mac_core_reports_the_network(small_mlp):
    _, net = small_mlp
    core = make_mac_core(net, macs=2, clock_hz=12_000_000, divisor=104)
    params = core.link_params
    assert params["n_inputs"] == 64 and params["result_width"] == 4
    assert params["model_hash"] == mac_hash(net) and not core.boot_load
    assert core.net.params.macs == 2
    Fragment.get(core, None)  # it elaborates (and is used: no UnusedElaboratable)
    with pytest.raises(ValueError, match="macs"):
        make_mac_core(net, macs=11, clock_hz=12_000_000, divisor=104)


def test_build_baseline_rejects_lut_options(small_mlp, tmp_path, capsys):
    path, _ = small_mlp
    out = str(tmp_path / "out")
    args = ["build", str(path), "--baseline", "mac", "--board", "icebreaker", "-o", out]
    args.append("--trust-pickle")  # the MLP is a pickle
    assert main([*args, "--indexer", "serial"]) == 2
    assert "LUT-core options" in capsys.readouterr().err
    assert main([*args[:2], *args[4:], "--macs", "2"]) == 2  # --macs without --baseline
    assert "--baseline mac only" in capsys.readouterr().err
    assert main([*args[:2], *args[4:], "--data", "digits"]) == 2
    assert "--baseline mac only" in capsys.readouterr().err
    assert main([*args, "--data", "wine"]) == 2  # 64 inputs against 13 features
    assert "MAC baseline" in capsys.readouterr().err


@pytest.mark.slow
def test_build_baseline_mac_gives_a_bitstream(small_mlp, tmp_path, capsys):
    path, net = small_mlp
    out = tmp_path / "mac"
    argv = ["build", str(path), "--baseline", "mac", "--board", "icebreaker", "-o", str(out)]
    status = main([*argv, "--trust-pickle", "--macs", "2"])  # two units keep the build short
    printed = capsys.readouterr().out
    r = json.loads((out / "board.json").read_text())
    assert "MAC baseline on 2 multiply-accumulate units" in printed and "PASS" in printed
    assert status == 0 and r["ok"] and r["baseline"] == "mac" and r["macs"] == 2
    assert r["resources"]["dsps"]["used"] >= 1  # the products sit on SB_MAC16 blocks
    assert r["resources"]["logic_cells"]["used"] > 100
    assert min(r["fmax_mhz"].values()) >= r["target_mhz"] == 12.0
    assert r["model_hash"] == mac_hash(net).hex()
    assert r["weight_bits_read"] >= sum(layer.w.size * 8 for layer in net.layers)
    assert (out / "spikelut.bin").stat().st_size > 100_000
