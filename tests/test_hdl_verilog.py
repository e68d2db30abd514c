# amaranth: UnusedElaboratable=no
"""Every component converts to Verilog; the UP5K platform gets real SB_SPRAM256KA."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog

from spikelut.compiler.ir import LUTLayer
from spikelut.hdl.bank import LUTBank, Storage
from spikelut.hdl.indexer import ParallelIndexer, TemporalIndexer
from spikelut.hdl.layer import Layer, Network
from spikelut.hdl.layouts import vector_layout
from spikelut.hdl.recurrent import Embedding, RecurrentCell
from spikelut.hdl.spram import SPRAMLane, is_up5k
from spikelut.hdl.streams import Broadcast
from spikelut.hdl.vector import Argmax, ResidualAdd


class FakeUP5K:
    """Just enough of an iCE40 UltraPlus platform for elaboration."""

    device = "iCE40UP5K"


def _layer_params(rng, storage):
    layer = LUTLayer.random(in_dim=6, out_dim=6, n_tables=3, n_c=3, rng=rng, residual=True)
    tables = rng.integers(-8, 8, layer.tables.shape)
    return dict(
        anchors_a=layer.a,
        anchors_b=layer.b,
        tables=tables,
        in_dim=6,
        in_width=5,
        table_width=4,
        out_width=7,
        in_shift=1,
        residual=True,
        storage=storage,
    )


def components():
    rng = np.random.default_rng(0)
    a, b = np.array([[0, 1], [2, 0]]), np.array([[1, 2], [0, 1]])
    tables = rng.integers(-8, 8, (2, 4, 3))
    yield "parallel_indexer", ParallelIndexer(anchors_a=a, anchors_b=b, in_dim=3, in_width=4)
    yield (
        "temporal_indexer",
        TemporalIndexer(anchors_a=a, anchors_b=b, in_dim=3, in_width=4, in_shift=2),
    )
    for storage in Storage:
        yield (
            f"bank_{storage.name.lower()}",
            LUTBank(tables=tables, table_width=4, acc_width=6, storage=storage),
        )
    yield "residual_add", ResidualAdd(dim=3, in_width=5, res_width=4, out_width=6)
    yield "argmax", Argmax(dim=10, width=7)
    yield "broadcast", Broadcast(shape=vector_layout(4, 3))
    yield "spram_lane", SPRAMLane(shape=vector_layout(6, 3), depth=100)
    yield "layer", Layer(**_layer_params(rng, Storage.BRAM))
    yield "embedding", Embedding(table=rng.integers(-8, 8, (5, 3)), width=4)
    cell = _layer_params(rng, Storage.BRAM)
    yield (
        "recurrent_cell",
        RecurrentCell(
            anchors_a=cell["anchors_a"],
            anchors_b=cell["anchors_b"],
            tables=cell["tables"],
            table_width=4,
            in_width=4,
            state_width=7,
            tables_per_cycle=2,
        ),
    )
    layers = [_layer_params(rng, Storage.LUTRAM), _layer_params(rng, Storage.LOGIC)]
    layers[1]["in_width"] = 7
    layers[1]["out_width"] = 9
    yield "network", Network(layers=layers)


@pytest.mark.parametrize(
    ("name", "dut"), list(components()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_component_converts_to_verilog(name, dut):
    text = verilog.convert(dut, name=name)
    assert f"module {name}" in text
    for port in ("i_stream__valid", "i_stream__ready", "o_stream__payload"):
        if port.split("__")[0] in dut.signature.members:
            assert port in text


def test_spram_bank_on_up5k_uses_sb_spram():
    rng = np.random.default_rng(1)
    tables = rng.integers(-128, 128, (4, 16, 3))
    # 2 lanes of 3 entries of 8 bits = 24 bits: two SPRAMs per lane
    bank = LUTBank(
        tables=tables,
        table_width=8,
        acc_width=11,
        storage=Storage.SPRAM,
        tables_per_cycle=2,
        lanes=3,
    )
    assert is_up5k(FakeUP5K()) and not is_up5k(None)
    text = verilog.convert(bank, name="bank", platform=FakeUP5K())
    assert text.count("SB_SPRAM256KA") == 4
    assert ".POWEROFF(1'h1)" in text
