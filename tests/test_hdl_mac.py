"""The MAC baseline core in Amaranth's simulator, against the integer reference ``run_mac``."""

import itertools

import numpy as np
import pytest
from amaranth.sim import Simulator

from spikelut.compiler.backend.mac import mac_params
from spikelut.compiler.frontend.ann import DenseNet
from spikelut.compiler.ir.classifier import InputEncoding
from spikelut.compiler.ir.mac import run_mac
from spikelut.compiler.passes.quantize_mac import quantize_mac
from spikelut.hdl.mac import MACCore, MACParams, mac_geometry


def _random_mac(seed: int, dims, bits: int = 6):
    rng = np.random.default_rng(seed)
    layers = []
    for k, (i, o) in enumerate(itertools.pairwise(dims)):
        act = "identity" if k == len(dims) - 2 else "relu"
        layers.append((rng.normal(size=(i, o)), rng.normal(size=o), act))
    ann = DenseNet(layers)
    lim = 1 << (bits - 1)
    enc = InputEncoding(offset=np.zeros(dims[0]), gain=np.ones(dims[0]), bits=bits, frac_bits=0)
    calib = rng.integers(-lim, lim, size=(64, dims[0]))
    return quantize_mac(ann, enc, calib), rng


def _simulate(core: MACCore, xs: np.ndarray, rng, *, gaps: bool, stall: bool):
    """Stream ``xs`` through ``core``; returns (labels, logits, cycles between the first two
    results when there are no gaps or stalls)."""
    results: list[tuple[int, list[int]]] = []
    times: list[int] = []
    sim = Simulator(core)
    sim.add_clock(1e-6)

    async def source(ctx):
        for x in xs:
            while gaps and rng.random() < 0.4:
                await ctx.tick()
            ctx.set(core.i_stream.payload, [int(v) for v in x])
            ctx.set(core.i_stream.valid, 1)
            await ctx.tick().until(core.i_stream.ready)
            ctx.set(core.i_stream.valid, 0)

    async def sink(ctx):
        while len(results) < len(xs):
            ctx.set(core.o_stream.ready, not (stall and rng.random() < 0.5))
            await ctx.tick()

    async def monitor(ctx):
        cycle = 0
        # values sampled at the clock edge: a transfer is valid and ready both high
        async for _clk, _rst, valid, ready, payload in ctx.tick().sample(
            core.o_stream.valid, core.o_stream.ready, core.o_stream.payload
        ):
            cycle += 1
            if valid and ready:
                results.append((int(payload.index), [int(v) for v in payload.logits]))
                times.append(cycle)
            if len(results) == len(xs):
                return

    sim.add_testbench(source, background=True)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(sink)
    sim.run()
    labels = np.array([r[0] for r in results])
    logits = np.array([r[1] for r in results])
    return labels, logits, times


@pytest.mark.parametrize(("seed", "dims", "macs"), [(0, (5, 4, 3), 1), (1, (6, 7, 5, 4), 3)])
def test_random_nets_bit_exact_under_backpressure(seed, dims, macs):
    net, rng = _random_mac(seed, dims)
    core = MACCore(mac_params(net, macs=macs))
    xs = rng.integers(-32, 32, size=(12, dims[0]))
    xs[0] = 0  # all inputs equal: ties in the hidden layers
    labels, logits, _ = _simulate(core, xs, rng, gaps=True, stall=True)
    ref = run_mac(net, xs)
    np.testing.assert_array_equal(logits, ref.accumulators[-1])
    np.testing.assert_array_equal(labels, ref.predictions)


def test_argmax_ties_go_to_the_lowest_index():
    w = np.zeros((3, 4), np.int64)
    b = np.array([1, 5, 5, 2])
    core = MACCore(MACParams(weights=[w], biases=[b], shifts=[], in_width=4, macs=2))
    labels, logits, _ = _simulate(
        core, np.array([[1, 2, 3]]), np.random.default_rng(0), gaps=False, stall=False
    )
    assert labels.tolist() == [1]
    assert logits.tolist() == [[1, 5, 5, 2]]


@pytest.mark.slow
def test_digits_vectors_and_throughput(digits_mac):
    net, x_test = digits_mac
    core = MACCore(mac_params(net, macs=8))
    xs = x_test[:4]
    rng = np.random.default_rng(3)
    labels, logits, times = _simulate(core, xs, rng, gaps=False, stall=False)
    ref = run_mac(net, xs)
    np.testing.assert_array_equal(logits, ref.accumulators[-1])
    np.testing.assert_array_equal(labels, ref.predictions)
    # back to back, results are exactly one interval apart
    assert np.diff(times).tolist() == [core.cycles_per_inference] * 3
    geo = mac_geometry([(64, 32), (32, 10)], 8)
    assert core.cycles_per_inference == geo["cycles_per_inference"] == 1 + 256 + 4 + 64 + 4 + 9 + 1


@pytest.fixture(scope="module")
def digits_mac(digits):
    from sklearn.neural_network import MLPClassifier

    from spikelut.compiler.frontend.ann import from_sklearn
    from spikelut.compiler.frontend.encoding import choose_encoding

    data = digits
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32,), max_iter=60, random_state=0).fit(data.X_train, data.y_train)
    enc = choose_encoding(data.X_train)
    net = quantize_mac(from_sklearn(clf), enc, data.X_train)
    return net, enc.encode_int(data.X_test)


def test_bad_parameters_are_rejected():
    """A MAC core is built from checked :class:`MACParams`."""
    w = np.zeros((3, 4), np.int64)
    with pytest.raises(ValueError, match="macs"):
        MACParams(weights=[w], biases=[np.zeros(4, np.int64)], shifts=[], in_width=4, macs=5)
    with pytest.raises(ValueError, match="weight_bits"):
        MACParams(weights=[w + 200], biases=[np.zeros(4, np.int64)], shifts=[], in_width=4)
    with pytest.raises(ValueError, match="shift"):
        MACParams(weights=[w], biases=[np.zeros(4, np.int64)], shifts=[1], in_width=4)
