"""Chunked layers: sums from accumulators in memory, streamed ``L`` at a time, bit-exact with
the golden model for both indexers, every storage, any ``P`` and ``L`` (``L`` not dividing
``Y``, one group, one beat), under input gaps and output back-pressure."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers_sim import ints, layer_width, recv, run, send

from spikelut.compiler.ir.golden import lut_layer
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.layer import Layer, check_chain, check_classifier_chain
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.serial_core import SerialLayer
from spikelut.hdl.storage import Storage, bank_image


def chunked_params(rng, *, n_t, n_c, y, p, lanes, storage, d=12, in_width=6):
    layer = LUTLayer.random(in_dim=d, out_dim=y, n_tables=n_t, n_c=n_c, rng=rng)
    layer = layer.with_tables(rng.integers(-8, 8, layer.tables.shape))
    params = LayerParams(
        anchors_a=layer.a,
        anchors_b=layer.b,
        tables=layer.tables,
        in_dim=d,
        in_width=in_width,
        table_width=4,
        out_width=layer_width(layer.tables, in_width, False),
        storage=storage,
        tables_per_cycle=p,
        lanes=lanes,
        chunked=True,
    )
    return layer, params


def loads(params):
    img = bank_image(params.tables, tables_per_cycle=params.tables_per_cycle, lanes=params.lanes)
    return [
        {"lane": q, "addr": a, "data": img[q, a].tolist()}
        for q in range(img.shape[0])
        for a in range(img.shape[1])
    ]


@pytest.mark.parametrize("serial", [False, True])
@pytest.mark.parametrize(
    ("n_t", "n_c", "y", "p", "lanes", "storage"),
    [
        (6, 3, 10, 2, 3, Storage.BRAM),  # L does not divide Y: a padded last chunk
        (4, 2, 7, 4, 2, Storage.LUTRAM),  # one group
        (5, 3, 4, 2, 4, Storage.SPRAM),  # one beat
        (3, 2, 9, 1, 1, Storage.BRAM),  # one value a chunk
    ],
)
def test_chunked_layer_matches_golden(serial, n_t, n_c, y, p, lanes, storage):
    rng = np.random.default_rng(n_t * 100 + y + serial)
    layer, params = chunked_params(rng, n_t=n_t, n_c=n_c, y=y, p=p, lanes=lanes, storage=storage)
    dut = SerialLayer(params) if serial else Layer(params)
    x = rng.integers(-32, 32, (25, params.in_dim))
    want = lut_layer(layer, x)
    beats = -(-y // lanes)
    pace = random.Random(7)
    got = []

    async def tb_in(ctx):
        await send(ctx, dut.w_stream, loads(params))
        await send(ctx, dut.i_stream, [v.tolist() for v in x], rng=pace, gap_p=0.3)

    async def tb_out(ctx):
        got.extend(await recv(ctx, dut.o_stream, len(x) * beats, rng=pace, ready_p=0.6))

    run(dut, tb_in, tb_out)
    for n, row in enumerate(want):
        chunks = [payload for _, payload in got[n * beats : (n + 1) * beats]]
        assert [int(c.last) for c in chunks] == [0] * (beats - 1) + [1]
        values = [v for c in chunks for v in ints(c.values)][:y]
        assert values == row.tolist(), f"vector {n}"


def test_chunked_layers_end_a_chain_and_no_classifier_takes_them():
    rng = np.random.default_rng(3)
    _, params = chunked_params(rng, n_t=4, n_c=2, y=6, p=2, lanes=2, storage=Storage.BRAM)
    with pytest.raises(ValueError, match="memory tables and is not residual"):
        LayerParams(**{**_fields(params), "storage": Storage.LOGIC, "tables_per_cycle": None,
                       "lanes": None})  # fmt: skip
    first = LayerParams(**{**_fields(params), "chunked": False, "tables": params.tables[:, :, :]})
    with pytest.raises(ValueError, match="only the last layer may stream chunks"):
        check_chain([params, first])
    with pytest.raises(ValueError, match="no chunked layer"):
        check_classifier_chain([params])  # what Network and SerialNetwork check


def _fields(params: LayerParams) -> dict:
    names = [
        *("anchors_a", "anchors_b", "tables", "in_dim", "in_width", "table_width"),
        *("out_width", "storage", "tables_per_cycle", "lanes", "chunked"),
    ]
    return {n: getattr(params, n) for n in names}
