# amaranth: UnusedElaboratable=no
"""The serial network core: bit-identical with the golden model, one comparison per clock."""

import numpy as np
import pytest
from test_board_top import tiny_model
from test_hdl_support import ints, recv, run, send

from spikelut.boards.design import choose_indexer
from spikelut.boards.platforms import board
from spikelut.compiler.backend import LayerPlan, network_params
from spikelut.compiler.ir import ClassifierMLP, InputEncoding, LayerQuant, LUTLayer
from spikelut.hdl.bank import Storage
from spikelut.hdl.serial_core import SerialNetwork
from spikelut.sim.golden import run_classifier


def _shifted(model):
    quant = [LayerQuant(table_bits=4, in_shift=1), LayerQuant(table_bits=4, in_shift=2)]
    return ClassifierMLP(model.encoding, model.layers, model.n_classes, quant=quant)


@pytest.mark.parametrize("shift", [False, True])
def test_serial_network_matches_the_golden_model(shift):
    rng = np.random.default_rng(7)
    model = _shifted(tiny_model(3)) if shift else tiny_model(3)
    plans = [LayerPlan(Storage.BRAM, 2, 3), LayerPlan(Storage.LUTRAM, 1, 2)]
    params, _ = network_params(model, plans)
    net = SerialNetwork(layers=params)
    x = rng.integers(-16, 16, (10, 8))
    got = []

    async def tb_in(ctx):
        await send(ctx, net.i_stream, x.tolist(), rng, 0.3)

    async def tb_out(ctx):
        got.extend(await recv(ctx, net.o_stream, len(x), rng, 0.5))

    run(net, tb_in, tb_out)
    trace = run_classifier(model, x)
    np.testing.assert_array_equal([ints(p.logits) for _, p in got], trace.logits)
    assert [int(p.index) for _, p in got] == trace.predictions.tolist()
    # one comparison per clock: 6 tables x 3 pairs, then 3 groups x 2 beats in layer 0
    assert net.cycles_per_inference == 6 * 3 + 3 * 2 + 4
    cycles = [c for c, _ in got]
    assert cycles[-1] - cycles[0] >= (len(x) - 1) * 6 * 3


def test_residual_layers_are_refused():
    params, _ = network_params(tiny_model(), None)
    params[0]["residual"] = True
    with pytest.raises(ValueError, match="residual"):
        SerialNetwork(layers=params)


def test_the_indexer_choice_follows_the_uart_bound():
    rng = np.random.default_rng(0)
    layer = LUTLayer.random(in_dim=64, out_dim=10, n_tables=256, n_c=4, rng=rng)
    digits = ClassifierMLP(InputEncoding.identity(64, bits=6), [layer], 10)
    # 1024 comparisons per vector at 12 MHz: ~5800/s, far above 115200 baud's ~180/s
    assert choose_indexer(digits, board("icebreaker")) == "serial"
    assert choose_indexer(digits, board("ulx3s-85f")) == "serial"
    # at 3 Mbaud the UART would outrun the serial core: all comparators at once
    assert choose_indexer(digits, board("icebreaker"), baud=3_000_000) == "parallel"
    residual = LUTLayer.random(in_dim=64, out_dim=64, n_tables=8, n_c=2, rng=rng, residual=True)
    with_residual = ClassifierMLP(digits.encoding, [residual, layer], 10)
    assert choose_indexer(with_residual, board("icebreaker")) == "parallel"
