"""The serial network core: bit-identical with the golden model, its table reads never wait."""

import numpy as np
import pytest
from helpers_models import tiny_model
from helpers_sim import checked, golden, ints, layer_params, load_writes, recv, run, send
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikelut.boards.design import board_core
from spikelut.boards.platforms import board
from spikelut.compiler.backend.compile import plan_core
from spikelut.compiler.backend.cores import CoreKind, eligible_kinds
from spikelut.compiler.backend.network import build_network, network_params
from spikelut.compiler.backend.placement import LayerPlan, fit_plans
from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.layer_params import LayerParams, check_serial, serial_geometry
from spikelut.hdl.serial_core import SerialNetwork, serial_operand_memory
from spikelut.hdl.storage import Storage


def _serial(p: LayerParams):
    """``(comparators C, index cycles K, operand_memory)`` of a serial-core layer."""
    _, _, comparators, slots = serial_geometry(
        p.n_tables, p.n_c, p.out_dim, p.tables_per_cycle, p.lanes
    )
    return comparators, slots, serial_operand_memory(p)


def _shifted(model):
    quant = [LayerQuant(table_bits=4, in_shift=1), LayerQuant(table_bits=4, in_shift=2)]
    return ClassifierMLP(model.encoding, model.layers, model.n_classes, quant=quant)


def _simulate(net, x, rng, *, gap_p, ready_p, load=None):
    """``[(cycle, payload)]`` of every result of ``net`` for inputs ``x`` (tables loaded first)."""
    got = []

    async def tb_in(ctx):
        for name, writes in load or []:
            await send(ctx, getattr(net, name), writes)
        await send(ctx, net.i_stream, x.tolist(), rng, gap_p)

    async def tb_out(ctx):
        got.extend(await recv(ctx, net.o_stream, len(x), rng, ready_p))

    run(net, tb_in, tb_out)
    return got


@pytest.mark.parametrize("shift", [False, True])
def test_serial_network_matches_the_golden_model(shift):
    rng = np.random.default_rng(7)
    model = _shifted(tiny_model(3)) if shift else tiny_model(3)
    plans = [LayerPlan(Storage.BRAM, 2, 3), LayerPlan(Storage.LUTRAM, 1, 2)]
    params, _ = network_params(model, plans)
    net = SerialNetwork(layers=params)
    x = rng.integers(-16, 16, (10, 8))
    got = _simulate(net, x, rng, gap_p=0.3, ready_p=0.5)
    trace = run_classifier(model, x)
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], trace.logits)
    assert [int(p.index) for _, p in got] == trace.predictions.tolist()
    # layer 0: 3 groups x 2 beats, 6 pairs a group on 3 comparators; layer 1: 5 groups x 2
    assert [_serial(la)[0] for la in net.layers] == [3, 1]
    assert net.cycles_per_inference == 5 * 2


def test_full_rate_results_come_one_table_pass_apart():
    """At full rate the table memories are never idle: one result every G * B cycles."""
    rng = np.random.default_rng(3)
    model = tiny_model(4)
    plans = [LayerPlan(Storage.BRAM, 3, 2), LayerPlan(Storage.BRAM, 1, 1)]
    params, _ = network_params(model, plans)
    net = SerialNetwork(layers=params)
    x = rng.integers(-16, 16, (6, 8))
    got = _simulate(net, x, None, gap_p=0.0, ready_p=1.0)
    assert net.cycles_per_inference == 5 * 4  # layer 1 is the slower: 5 groups x 4 beats
    assert np.diff([c for c, _ in got]).tolist() == [net.cycles_per_inference] * (len(x) - 1)
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], run_classifier(model, x).logits)


def test_digits_size_core_copies_its_inputs_and_reads_at_the_floor():
    """64 -> 10, 256 tables of N_C 4 read 4 at a time, 2 outputs a beat (the UP5K's
    placement): 4 comparators on input copies, a result every 320 cycles."""
    rng = np.random.default_rng(11)
    layer = LUTLayer.random(in_dim=64, out_dim=10, n_tables=256, n_c=4, rng=rng)
    layer = layer.with_tables(rng.integers(-128, 128, layer.tables.shape))
    model = ClassifierMLP(
        InputEncoding.identity(64, bits=6), [layer], 10, quant=[LayerQuant(table_bits=8)]
    )
    params, _ = network_params(model, LayerPlan(Storage.BRAM, 4, 2))
    net = SerialNetwork(layers=params)
    (hw,) = net.layers
    assert _serial(hw) == (4, 4, True)
    assert net.cycles_per_inference == 320
    x = rng.integers(0, 17, (6, 64))
    got = _simulate(net, x, None, gap_p=0.0, ready_p=1.0)
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], run_classifier(model, x).logits)
    assert np.diff([c for c, _ in got]).tolist() == [320] * (len(x) - 1)


@pytest.mark.slow
def test_digits_classifier_matches_golden_on_its_whole_test_set(digits_int):
    """The trained, quantised digits classifier, all 450 test vectors output by output, at a
    placement of 16 cycles per inference (16 tables a group, 64 multiplexed comparators)."""
    model, x, trace = digits_int.model, digits_int.x, digits_int.trace
    net = build_network(model, LayerPlan(Storage.BRAM, 16, 10), kind=CoreKind.SERIAL)
    assert isinstance(net, SerialNetwork)
    assert _serial(net.layers[0])[::2] == (64, False)
    got = _simulate(net, x, None, gap_p=0.0, ready_p=1.0)
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], trace.logits)
    assert [int(p.index) for _, p in got] == trace.predictions.tolist()
    assert np.diff([c for c, _ in got]).tolist() == [16] * (len(x) - 1)


@pytest.mark.slow
def test_digits_classifier_up5k_core_loads_spram_and_matches_golden(digits_int):
    """The core ``spikelut compile`` builds for the UP5K (SPRAM, 4 tables a group, 2 outputs
    a beat, operand copies): tables loaded through ``w0_stream``, then 24 test vectors with
    random gaps and back-pressure; the bandwidth floor is reached."""
    model, x, trace = digits_int.model, digits_int.x, digits_int.trace
    plans = fit_plans(model, family="ice40", block_rams=30, sprams=4, kind=CoreKind.SERIAL)
    net = build_network(model, plans, kind=CoreKind.SERIAL)
    assert isinstance(net, SerialNetwork)
    (hw,) = net.layers
    assert (hw.storage, hw.tables_per_cycle, hw.lanes) == (Storage.SPRAM, 4, 2)
    assert (*_serial(hw)[::2], net.cycles_per_inference) == (4, True, 320)
    rng = np.random.default_rng(5)
    sl = slice(0, 450, 19)
    got = _simulate(net, x[sl], rng, gap_p=0.2, ready_p=0.7, load=load_writes(net, model.layers))
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], trace.logits[sl])
    assert [int(p.index) for _, p in got] == trace.predictions[sl].tolist()


def test_serial_geometry_reads_never_wait_for_the_comparators():
    # the digits classifier on the UP5K: 4 tables a group, 2 outputs a beat
    assert serial_geometry(256, 4, 10, 4, 2) == (64, 5, 4, 4)
    for p in range(1, 9):
        for lanes in range(1, 11):
            _, b, c, k = serial_geometry(256, 6, 10, p, lanes)
            assert k <= b and c * k >= p * 6 and (c - 1) * b < p * 6


def test_operand_memory_is_refused_when_copying_outlasts_indexing():
    rng = np.random.default_rng(0)
    layer = LUTLayer.random(in_dim=20, out_dim=3, n_tables=12, n_c=2, rng=rng)
    kw = dict(
        anchors_a=layer.a,
        anchors_b=layer.b,
        tables=np.zeros((12, 4, 3), np.int64),
        in_dim=20,
        in_width=4,
        table_width=4,
        out_width=4,
    )
    assert serial_operand_memory(LayerParams(**kw, tables_per_cycle=1, lanes=1))  # 21 <= 12 * 2
    refused = LayerParams(**kw, tables_per_cycle=12, lanes=3, operand_memory=True)
    with pytest.raises(ValueError, match="D \\+ 1 <= G \\* K"):
        check_serial(refused)  # what SerialNetwork checks every layer with
    assert not serial_operand_memory(LayerParams(**kw, tables_per_cycle=12, lanes=3))


@st.composite
def serial_networks(draw):
    """A random non-residual integer network, a serial-core configuration and inputs."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_layers = draw(st.integers(1, 2))
    dims = [draw(st.integers(2, 20)) for _ in range(n_layers)] + [draw(st.integers(1, 12))]
    in_width = draw(st.integers(2, 8))
    table_width = draw(st.integers(2, 8))
    layers, shifts, configs = [], [], []
    w = None
    for k in range(n_layers):
        n_t = draw(st.integers(1, 12))
        n_c = draw(st.integers(1, 12))
        storage = draw(st.sampled_from([Storage.BRAM, Storage.LUTRAM, Storage.SPRAM]))
        if storage == Storage.SPRAM:
            n_c = min(n_c, 5)  # SPRAM is slow to load
        if n_c > 8:
            n_t = min(n_t, 3)  # memories of 4096-row tables are slow to initialise
        layer = LUTLayer.random(in_dim=dims[k], out_dim=dims[k + 1], n_tables=n_t, n_c=n_c, rng=rng)
        lim = 1 << (table_width - 1)
        layer = layer.with_tables(rng.integers(-lim, lim, layer.tables.shape))
        if n_c > 8:  # keep simulated memories small: one read of every table at once
            p, lanes = n_t, dims[k + 1]
        else:
            p = draw(st.integers(1, n_t))
            lanes = draw(st.integers(1, dims[k + 1]))
        g, _, _, slots = serial_geometry(n_t, n_c, dims[k + 1], p, lanes)
        copy = draw(st.sampled_from([None, False, True])) if dims[k] + 1 <= g * slots else False
        configs.append(
            {
                "storage": storage,
                "tables_per_cycle": p,
                "lanes": lanes,
                "operand_memory": copy,
            }
        )
        layers.append(layer)
        w = in_width if k == 0 else w
        shifts.append(draw(st.integers(0, w - 1)))
        w = int(np.abs(layer.tables).sum(axis=0).max()).bit_length() + 1  # bound only
    lim = 1 << (in_width - 1)
    x = rng.integers(-lim, lim, (draw(st.integers(1, 5)), dims[0]))
    gap_p = draw(st.sampled_from([0.0, 0.0, 0.3, 0.7]))
    ready_p = draw(st.sampled_from([1.0, 1.0, 0.5, 0.2]))
    return layers, shifts, in_width, table_width, configs, x, gap_p, ready_p, seed


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(serial_networks())
def test_random_serial_networks_match_golden_and_run_at_the_floor(case):
    layers, shifts, in_width, table_width, configs, x, gap_p, ready_p, seed = case
    params = layer_params(layers, shifts, in_width, table_width, configs)
    for p in params:
        p["in_shift"] = min(p["in_shift"], p["in_width"] - 1)
    shifts = [p["in_shift"] for p in params]
    net = SerialNetwork(layers=checked(params))
    spram = any(c["storage"] == Storage.SPRAM for c in configs)
    rng = np.random.default_rng(seed)
    load = load_writes(net, layers) if spram else None
    got = _simulate(net, x, rng, gap_p=gap_p, ready_p=ready_p, load=load)
    outs, predictions = golden(layers, shifts, x)
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], outs[-1])
    np.testing.assert_array_equal([int(p.index) for _, p in got], predictions)
    floors = [
        -(-la.n_tables // la.tables_per_cycle) * -(-la.out_dim // la.lanes) for la in net.layers
    ]
    assert net.cycles_per_inference == max(floors)
    if gap_p == 0.0 and ready_p == 1.0 and len(x) > 1:
        # full rate: every result one table pass of the slowest layer after the previous
        assert np.diff([c for c, _ in got]).tolist() == [net.cycles_per_inference] * (len(x) - 1)


@pytest.mark.parametrize("copies", [False, True])
def test_serial_network_reloads_tables_between_vectors(copies):
    """Vectors, a reload of retrained tables of the same shape (accepted once no vector is
    in flight), more vectors: each batch matches the golden model of its own tables."""
    rng = np.random.default_rng(21)
    old = tiny_model(5, d=16).layers
    new = []
    for layer in old:
        new.append(layer.with_tables(rng.integers(-8, 8, layer.tables.shape)))
    configs = [
        {"storage": Storage.BRAM, "tables_per_cycle": 1, "lanes": 2, "operand_memory": copies},
        {"storage": Storage.LUTRAM, "tables_per_cycle": 2, "lanes": 1},
    ]
    params = layer_params(old, [0, 0], 5, 4, configs)
    for k, q in enumerate(layer_params(new, [0, 0], 5, 4, configs)):
        params[k]["out_width"] = max(params[k]["out_width"], q["out_width"])
        if k:
            params[k]["in_width"] = params[k - 1]["out_width"]
    net = SerialNetwork(layers=checked(params))
    assert serial_operand_memory(net.layers[0]) == copies
    x1, x2 = rng.integers(-16, 16, (4, 16)), rng.integers(-16, 16, (4, 16))
    got = []

    async def tb_in(ctx):
        await send(ctx, net.i_stream, x1.tolist(), rng, 0.3)
        for name, writes in load_writes(net, new):
            await send(ctx, getattr(net, name), writes)
        await send(ctx, net.i_stream, x2.tolist(), rng, 0.3)

    async def tb_out(ctx):
        got.extend(await recv(ctx, net.o_stream, len(x1) + len(x2), rng, 0.5))

    run(net, tb_in, tb_out)
    logits = [ints(p.logits) for _, p in got]
    np.testing.assert_array_equal(logits[: len(x1)], golden(old, [0, 0], x1)[0][-1])
    np.testing.assert_array_equal(logits[len(x1) :], golden(new, [0, 0], x2)[0][-1])


def test_residual_layers_are_refused():
    rng = np.random.default_rng(1)
    layer = LUTLayer.random(in_dim=6, out_dim=6, n_tables=3, n_c=2, rng=rng, residual=True)
    params, _ = network_params(tiny_model(), None)
    residual = LayerParams(
        anchors_a=layer.a,
        anchors_b=layer.b,
        tables=rng.integers(-4, 4, layer.tables.shape),
        in_dim=6,
        in_width=5,
        table_width=4,
        out_width=7,
        residual=True,
    )
    check_serial(params[1], 1)
    with pytest.raises(ValueError, match="layer 1 is residual; the serial core has no residual"):
        check_serial(residual, 1)  # what SerialNetwork checks every layer with
    with pytest.raises(ValueError, match="layer 0: the serial core reads tables from memory"):
        check_serial(params[0].replace(storage=Storage.LOGIC, tables_per_cycle=None, lanes=None))


def test_boards_get_the_serial_core_unless_residual_or_larger():
    rng = np.random.default_rng(0)
    layer = LUTLayer.random(in_dim=64, out_dim=10, n_tables=256, n_c=4, rng=rng)
    layer = layer.with_tables(rng.integers(-128, 128, layer.tables.shape))
    model = ClassifierMLP(
        InputEncoding.identity(64, bits=6), [layer], 10, quant=[LayerQuant(table_bits=8)]
    )
    # the same table rate as the parallel core at a fraction of its logic
    assert board_core(model, board("icebreaker")).kind == CoreKind.SERIAL
    # the ULX3S reads 26 tables a cycle: 35 comparators' multiplexers outgrow the parallel core
    assert board_core(model, board("ulx3s-85f")).kind == CoreKind.PARALLEL
    residual = LUTLayer.random(in_dim=64, out_dim=64, n_tables=8, n_c=2, rng=rng, residual=True)
    residual = residual.with_tables(rng.integers(-4, 4, residual.tables.shape))
    with_residual = ClassifierMLP(
        model.encoding,
        [residual, layer],
        10,
        quant=[LayerQuant(table_bits=4), LayerQuant(table_bits=8)],
    )
    # the serial core has no residual add: the parallel core is the only choice
    assert eligible_kinds(with_residual) == [CoreKind.PARALLEL]
    assert board_core(with_residual, board("ulx3s-85f")).kind == CoreKind.PARALLEL
    # a few tables read at once: their few comparators are cheaper than the multiplexers
    small = tiny_model()
    plans = [LayerPlan(Storage.BRAM, 6, 6), LayerPlan(Storage.BRAM, 5, 4)]
    target = board("icebreaker").target
    assert plan_core(small, target, plans=plans).kind == CoreKind.PARALLEL
