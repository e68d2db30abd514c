"""Every component converts to Verilog; the UP5K platform gets real SB_SPRAM256KA."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog

from spikelut.compiler.ir.lut import LUTLayer
from spikelut.hdl.bank import LUTBank
from spikelut.hdl.hostlink.link import HostLink
from spikelut.hdl.indexer import ParallelIndexer, TemporalIndexer
from spikelut.hdl.layer import Layer, Network
from spikelut.hdl.layer_params import LayerParams
from spikelut.hdl.layouts import vector_layout
from spikelut.hdl.mac import MACCore, MACParams
from spikelut.hdl.recurrent import Embedding, RecurrentCell
from spikelut.hdl.serial_core import SerialNetwork
from spikelut.hdl.spiflash import SPIFlashReader
from spikelut.hdl.spram import SPRAMLane, is_up5k
from spikelut.hdl.storage import Storage
from spikelut.hdl.streams import Broadcast
from spikelut.hdl.vector import Argmax, ResidualAdd


class FakeUP5K:
    """Just enough of an iCE40 UltraPlus platform for elaboration."""

    device = "iCE40UP5K"


def _layer_params(rng, storage, **changes):
    layer = LUTLayer.random(in_dim=6, out_dim=6, n_tables=3, n_c=3, rng=rng, residual=True)
    tables = rng.integers(-8, 8, layer.tables.shape)
    params = dict(
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
    return LayerParams(**{**params, **changes})


def _bank(storage):
    rng = np.random.default_rng(0)
    tables = rng.integers(-8, 8, (2, 4, 3))
    a, b = np.array([[0, 1], [2, 0]]), np.array([[1, 2], [0, 1]])
    params = LayerParams(
        anchors_a=a,
        anchors_b=b,
        tables=tables,
        in_dim=3,
        in_width=4,
        table_width=4,
        out_width=6,
        storage=storage,
    )
    return LUTBank(params)


def _network():
    rng = np.random.default_rng(1)
    layers = [
        _layer_params(rng, Storage.LUTRAM),
        _layer_params(rng, Storage.LOGIC, in_width=7, out_width=9),
    ]
    return Network(layers=layers)


def _serial_network():
    rng = np.random.default_rng(2)
    layers = [
        _layer_params(rng, Storage.BRAM, residual=False, tables_per_cycle=2, lanes=3),
        _layer_params(rng, Storage.SPRAM, residual=False, in_width=7, tables_per_cycle=1),
    ]
    return SerialNetwork(layers=layers)


def _recurrent_cell():
    rng = np.random.default_rng(3)
    lut = _layer_params(
        rng, Storage.BRAM, residual=False, in_width=7, in_shift=0, tables_per_cycle=2
    )
    return RecurrentCell(lut, in_width=4)


def _mac_core():
    rng = np.random.default_rng(4)
    weights = [rng.integers(-8, 8, (5, 4)), rng.integers(-8, 8, (4, 3))]
    biases = [rng.integers(-8, 8, 4), rng.integers(-8, 8, 3)]
    return MACCore(MACParams(weights=weights, biases=biases, shifts=[2], in_width=4, macs=2))


def _host_link():
    return HostLink(
        in_width=5,
        n_inputs=6,
        lanes=3,
        result_width=4,
        table_word_bits=10,
        table_addr_bits=6,
        n_layers=2,
        clock_hz=12_000_000,
        model_hash=b"\x01\x02",
        max_payload=64,
        timeout_cycles=300,
    )


a, b = np.array([[0, 1], [2, 0]]), np.array([[1, 2], [0, 1]])
# built in the test that converts them, so that a deselected test leaves nothing unused
COMPONENTS = {
    "parallel_indexer": lambda: ParallelIndexer(anchors_a=a, anchors_b=b, in_dim=3, in_width=4),
    "temporal_indexer": lambda: TemporalIndexer(
        anchors_a=a, anchors_b=b, in_dim=3, in_width=4, in_shift=2
    ),
    **{f"bank_{s.name.lower()}": (lambda s=s: _bank(s)) for s in Storage},
    "residual_add": lambda: ResidualAdd(dim=3, in_width=5, res_width=4, out_width=6),
    "argmax": lambda: Argmax(dim=10, width=7),
    "broadcast": lambda: Broadcast(shape=vector_layout(4, 3)),
    "spram_lane": lambda: SPRAMLane(shape=vector_layout(6, 3), depth=100),
    "layer": lambda: Layer(_layer_params(np.random.default_rng(5), Storage.BRAM)),
    "embedding": lambda: Embedding(table=np.random.default_rng(6).integers(-8, 8, (5, 3)), width=4),
    "recurrent_cell": _recurrent_cell,
    "network": _network,
    "serial_network": _serial_network,
    "mac_core": _mac_core,
    "spi_flash_reader": lambda: SPIFlashReader(half_period=2),
    "host_link": _host_link,
}


@pytest.mark.parametrize("name", list(COMPONENTS))
def test_component_converts_to_verilog(name):
    dut = COMPONENTS[name]()
    text = verilog.convert(dut, name=name)
    assert f"module {name}" in text
    for port in ("i_stream__valid", "i_stream__ready", "o_stream__payload"):
        if port.split("__")[0] in dut.signature.members:
            assert port in text


def test_spi_flash_pins_are_one_signature():
    text = verilog.convert(SPIFlashReader(), name="reader")
    for pin in ("flash__sck", "flash__cs_n", "flash__copi", "flash__cipo"):
        assert f"input {pin}" in text or f"output {pin}" in text, pin


def test_spram_bank_on_up5k_uses_sb_spram():
    rng = np.random.default_rng(1)
    tables = rng.integers(-128, 128, (4, 16, 3))
    # 2 lanes of 3 entries of 8 bits = 24 bits: two SPRAMs per lane
    params = LayerParams(
        anchors_a=np.zeros((4, 4), np.int64),
        anchors_b=np.ones((4, 4), np.int64),
        tables=tables,
        in_dim=2,
        in_width=2,
        table_width=8,
        out_width=11,
        storage=Storage.SPRAM,
        tables_per_cycle=2,
        lanes=3,
    )
    assert is_up5k(FakeUP5K()) and not is_up5k(None)
    text = verilog.convert(LUTBank(params), name="bank", platform=FakeUP5K())
    assert text.count("SB_SPRAM256KA") == 4
    assert ".POWEROFF(1'h1)" in text
