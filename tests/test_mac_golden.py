"""The integer reference of the multiply-accumulate baseline."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikelut.compiler.frontend.ann import DenseNet
from spikelut.compiler.ir.classifier import InputEncoding
from spikelut.compiler.ir.mac import MACLayer, MACNetwork, run_mac
from spikelut.compiler.passes.quantize_mac import quantize_mac


def _random_net(seed: int) -> DenseNet:
    rng = np.random.default_rng(seed)
    return DenseNet(
        [
            (rng.normal(size=(6, 5)), rng.normal(size=5), "relu"),
            (rng.normal(size=(5, 3)), rng.normal(size=3), "identity"),
        ]
    )


@given(seed=st.integers(0, 1000), data=st.data())
@settings(max_examples=30, deadline=None)
def test_accumulators_stay_within_their_bounds(seed, data):
    ann = _random_net(seed)
    enc = InputEncoding(offset=np.zeros(6), gain=np.ones(6), bits=6, frac_bits=0)
    rng = np.random.default_rng(seed)
    net = quantize_mac(ann, enc, rng.integers(-32, 32, size=(50, 6)))
    x = np.array(data.draw(st.lists(st.integers(-32, 31), min_size=6, max_size=6)))[None]
    trace = run_mac(net, x)
    for layer, acc, out in zip(net.layers, trace.accumulators, trace.outputs, strict=True):
        lo, hi = layer.acc_bounds
        assert lo <= acc.min() and acc.max() <= hi
        assert layer.acc_bits >= 2
        if layer.relu:
            assert out.min() >= 0 and out.max() <= (1 << layer.act_bits) - 1
        assert np.all(np.abs(layer.w) <= 128)


def test_argmax_ties_to_lowest_index():
    enc = InputEncoding(offset=np.zeros(2), gain=np.ones(2), bits=4)
    layer = MACLayer(np.zeros((2, 3), np.int64), np.array([5, 7, 7]), False, 0, 8, 8, -8, 7)
    assert run_mac(MACNetwork(enc, [layer]), np.array([[1, 2]])).predictions[0] == 1


def test_only_relu_hidden_layers():
    ann = DenseNet([(np.ones((2, 2)), np.zeros(2), "tanh"), (np.ones((2, 2)), 0.0, "identity")])
    enc = InputEncoding(offset=np.zeros(2), gain=np.ones(2))
    with pytest.raises(ValueError, match="ReLU"):
        quantize_mac(ann, enc, np.zeros((1, 2)))


def test_digits_mlp_as_integers_agrees_with_the_float_mlp():
    from sklearn.neural_network import MLPClassifier

    from spikelut.compiler.frontend.ann import from_sklearn
    from spikelut.compiler.frontend.datasets import load_dataset
    from spikelut.compiler.frontend.encoding import choose_encoding
    from spikelut.compiler.ir.mac import mac_predict

    ds = load_dataset("digits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0)
        mlp.fit(ds.X_train, ds.y_train)
    ann = from_sklearn(mlp)
    net = quantize_mac(ann, choose_encoding(ds.X_train), ds.X_train)
    pred = mac_predict(net, ds.X_test)
    assert np.mean(pred == ann.predict(ds.X_test)) >= 0.98
    assert net.layers[0].in_lo == -32 and net.layers[1].in_lo == 0
    assert net.weight_memory_bits > 8 * ann.macs
