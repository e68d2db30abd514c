"""Flash images and the board's table space: layout, header, CRC, chunk encoding."""

import struct

import numpy as np
import pytest
from helpers_models import SPRAM_PLANS, tiny_model
from hypothesis import given, settings
from hypothesis import strategies as st

from spikelut.boards.flash_image import (
    CRC_BYTES,
    HEADER_SIZE,
    MAGIC,
    TABLE_OFFSET,
    FlashImageError,
    boot_layers,
    build_image,
    parse_table_area,
    payload_length,
    table_area,
    table_payload,
)
from spikelut.boards.tables import table_space
from spikelut.compiler.backend.network import network_params
from spikelut.compiler.backend.placement import LayerPlan
from spikelut.hdl.crc import crc16
from spikelut.hdl.storage import Storage, bank_image


def _space(plans=SPRAM_PLANS, seed=0):
    model = tiny_model(seed)
    params, _ = network_params(model, plans)
    return model, table_space(params)


HASH = bytes(range(16))
SHAPE = b"fingerpr"


def test_table_area_round_trip_and_header_fields():
    model, space = _space()
    tables = {k: layer.tables for k, layer in enumerate(model.layers)}
    payload = table_payload(space, tables)
    assert len(payload) == payload_length(space)
    area = table_area(payload, HASH, SHAPE)
    assert area[:4] == MAGIC and len(area) == HEADER_SIZE + len(payload) + CRC_BYTES
    assert struct.unpack_from("<I", area, 4)[0] == len(payload)
    assert area[8:16] == SHAPE and area[16:32] == HASH
    # the CRC covers length, fingerprint, hash and payload
    assert int.from_bytes(area[-2:], "big") == crc16(area[4:-2])
    got = parse_table_area(area)
    assert (got.payload, got.model_hash, got.shape_hash) == (payload, HASH, SHAPE)
    with pytest.raises(ValueError, match="16-byte model hash"):
        table_area(payload, HASH[:6], SHAPE)


def _flip(at):
    def damage(a):
        k = at % len(a)
        return a[:k] + bytes([a[k] ^ 1]) + a[k + 1 :]

    return damage


@pytest.mark.parametrize(
    "damage",
    [
        lambda a: b"\xff" * len(a),  # blank flash
        lambda a: a[:-1],  # truncated
        _flip(HEADER_SIZE),  # a payload bit
        _flip(len(MAGIC)),  # the length
        _flip(10),  # the fingerprint
        _flip(20),  # the model hash
        lambda a: a[:16] + bytes(16) + a[32:],  # the hash zeroed
        _flip(-1),  # the CRC
    ],
)
def test_parse_rejects_blank_truncated_and_corrupt_areas(damage):
    area = table_area(bytes(range(40)), HASH, SHAPE)
    with pytest.raises(FlashImageError):
        parse_table_area(damage(area))


def test_image_puts_bitstream_first_and_tables_at_the_offset():
    image = build_image(b"BITS", b"TABLES")
    assert image[:4] == b"BITS"
    assert set(image[4:TABLE_OFFSET]) == {0xFF}
    assert image[TABLE_OFFSET:] == b"TABLES"
    with pytest.raises(ValueError, match="overlaps"):
        build_image(b"x" * 11, b"t", offset=10)


def test_every_memory_layer_boots_from_flash_when_one_is_in_spram():
    """So that the tables all belong to the model the area names (block RAM holds the
    bitstream's model's until then)."""
    _, space = _space()
    assert boot_layers(space) == [0, 1]
    _, bram_only = _space([LayerPlan(Storage.BRAM, 2, 3), LayerPlan(Storage.BRAM, 1, 4)])
    assert boot_layers(bram_only) == [] and payload_length(bram_only) == 0


def _words_from_chunks(chunks, slots, chunk_bits):
    lanes, n = chunks.shape
    c = chunks.reshape(lanes, n // slots, slots).astype(object)
    words = np.zeros((lanes, n // slots), dtype=object)
    for s in range(slots):
        words = words | (c[:, :, s] << (s * chunk_bits))
    return words


@settings(max_examples=25, deadline=None)
@given(
    p=st.integers(1, 6),
    lanes=st.integers(1, 6),
    bits=st.integers(2, 8),
    seed=st.integers(0, 2**16),
)
def test_chunks_reassemble_into_the_bank_image(p, lanes, bits, seed):
    """Whatever the chunking, the chunks of a lane rebuild exactly the bank's memory words."""
    model = tiny_model(seed, table_bits=bits)
    plans = [LayerPlan(Storage.BRAM, p, lanes), LayerPlan(Storage.LUTRAM, 1, None)]
    params, _ = network_params(model, plans)
    space = table_space(params)
    for lt in space.layers:
        tables = model.layers[lt.layer].tables
        words = _words_from_chunks(space.chunks(lt.layer, tables), lt.slots, space.chunk_bits)
        image = bank_image(tables, tables_per_cycle=lt.tables_per_cycle, lanes=lt.entries)
        mask = (1 << lt.table_width) - 1
        for e in range(lt.entries):
            field = (words >> (e * lt.table_width)) & mask
            assert np.array_equal(field.astype(np.int64), image[:, :, e] & mask)
        assert space.chunk_bits <= 32
        assert lt.lane_bits + lt.addr_bits + lt.slot_bits <= space.addr_bits
