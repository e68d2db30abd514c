"""Host-link frame encoding, payloads, and the resynchronising decoder."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikelut.boards import protocol as p
from spikelut.hdl.crc import crc16
from spikelut.hdl.hostlink import wire as spec

frames = st.builds(
    p.Frame, type=st.integers(0, 255), payload=st.binary(max_size=40), seq=st.integers(0, 255)
)
no_sync = st.binary(max_size=60).map(lambda b: bytes(x for x in b if x != spec.SYNC))


def test_crc_check_value_and_zero_residue():
    assert crc16(b"123456789") == 0x29B1
    wire = p.encode_frame(spec.FrameType.INFER, b"\x01\x02\x03", seq=9)
    assert wire[0] == spec.SYNC and wire[1] == 0x03 and wire[2] == 9 and wire[3:5] == b"\x03\x00"
    assert crc16(wire[1:]) == 0


@given(st.lists(frames, max_size=5), st.integers(1, 7))
def test_round_trip_in_any_chunking(fs, chunk):
    wire = b"".join(f.encode() for f in fs)
    dec = p.FrameDecoder()
    got = []
    for i in range(0, len(wire), chunk):
        got += dec.feed(wire[i : i + chunk])
    assert got == fs
    assert dec.pending == 0


@given(no_sync)
def test_garbage_without_sync_never_yields_a_frame(garbage):
    assert p.decode_frames(garbage) == []


@given(st.binary(max_size=80))
def test_garbage_never_yields_a_frame_with_a_bad_crc(garbage):
    for f in p.decode_frames(garbage):
        assert crc16(f.encode()[1:]) == 0
        assert f.encode() in garbage


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.binary(max_size=30), frames), min_size=1, max_size=4),
    st.binary(max_size=30),
)
def test_resync_after_arbitrary_garbage(pairs, tail):
    """Garbage (possibly with SYNC bytes and fake lengths) between frames loses no frame.

    The one exception is inherent: garbage that, with the bytes after it, happens to form a
    frame with a valid CRC ("phantom") is decoded as that frame and may swallow a real one.
    """
    wire = b"".join(g + f.encode() for g, f in pairs) + tail
    got = p.decode_frames(wire)
    want = [f for _, f in pairs]
    for f in got:
        assert f.encode() in wire
    phantoms = [f for f in got if f not in want]
    if not phantoms:
        assert got == want


@given(frames, frames, st.integers(1, 20))
def test_truncated_frame_then_good_frame(first, second, cut):
    wire = first.encode()
    truncated = wire[: max(1, len(wire) - cut)]
    wire = truncated + second.encode()
    got = p.decode_frames(wire)
    if got[-1] != second:
        # only possible when the truncated frame plus the start of the next one happens to
        # form a whole frame with a valid CRC (e.g. a lost CRC byte equal to SYNC)
        assert len(got) == 1 and wire.startswith(got[0].encode())


def test_wrong_length_and_oversize_length_resync():
    good = p.encode_frame(spec.FrameType.IDENTIFY)
    bad = bytearray(p.encode_frame(spec.FrameType.INFER, b"abcd"))
    bad[3] = 2  # length says 2, payload is 4: the CRC fails
    huge = bytes([spec.SYNC, 1, 0, 0xFF, 0xFF])
    dec = p.FrameDecoder(max_payload=64)
    assert dec.feed(bytes(bad) + huge + good) == [p.Frame(spec.FrameType.IDENTIFY)]
    assert dec.discarded >= len(bad) + len(huge)


def test_partial_candidate_is_given_up_on_flush():
    good = p.encode_frame(spec.FrameType.READ_COUNTERS)
    dec = p.FrameDecoder()
    # a fake header claiming 300 bytes swallows the good frame until the host times out
    assert dec.feed(bytes([spec.SYNC, 1, 0, 44, 1]) + good) == []
    assert dec.flush() == [p.Frame(spec.FrameType.READ_COUNTERS)]


@given(
    st.integers(1, 16).flatmap(
        lambda w: st.tuples(
            st.just(w), st.lists(st.integers(-(1 << (w - 1)), (1 << (w - 1)) - 1), max_size=20)
        )
    )
)
def test_values_round_trip(wv):
    width, values = wv
    data = p.pack_values(values, width)
    assert len(data) == len(values) * spec.value_bytes(width)
    assert p.unpack_values(data, width, signed=True) == values


def test_pack_values_rejects_overflow():
    with pytest.raises(ValueError, match="does not fit 4 bits"):
        p.pack_values([8], 4)
    with pytest.raises(ValueError, match="does not fit"):
        p.pack_values([-1], 8, signed=False)


def test_identity_counters_tables_round_trip():
    ident = spec.Identity(
        in_width=5,
        n_inputs=64,
        result_width=4,
        table_word_bits=12,
        table_addr_bits=10,
        n_layers=2,
        clock_hz=12_000_000,
        max_payload=512,
        model_hash=bytes(range(32)),
        shape_hash=b"fingerpr",
        table_words=3000,
        tables_valid=True,
        tables_hash=bytes(range(1, 33)),
    )
    back = spec.Identity.decode(ident.encode())
    assert back == ident and back.vector_bytes == 64 and back.max_batch == 7
    assert back.holds(bytes(range(1, 33))) and not back.holds(bytes(range(32)))
    # the live end (status, tables hash) follows what the bitstream fixes
    assert len(ident.encode()) == ident.static_bytes + 1 + 32
    invalid = spec.Identity(8, 2, 8, 8, 4, 1, 1000, 64, b"hh")
    assert invalid.tables_hash == b"\0\0" and not invalid.holds(b"\0\0")
    with pytest.raises(spec.ProtocolError, match="protocol 1"):
        spec.Identity.decode(b"\x01" + ident.encode()[1:])
    # 7 vectors of 64 bytes and 7 one-byte results: two frames of 7 bytes' overhead,
    # the count, 448 bytes of vectors and 7 of results
    rate = ident.uart_inferences_per_second(115200)
    assert rate == pytest.approx(7 * 11520 / (7 + 2 + 448 + 7 + 7))
    with pytest.raises(spec.ProtocolError):
        spec.Identity.decode(ident.encode()[:-1])
    c = spec.Counters(inferences=5, errors=2, frames=9, cycles=(1 << 40) + 3)
    assert spec.Counters.decode(c.encode()) == c
    payload = p.load_tables_payload(1, 300, [-1, 5, 2047], 12)
    assert p.parse_load_tables(payload, 12) == (1, 300, [4095, 5, 2047])
    batch = p.infer_batch_payload([[1, -2], [3, -4]], 8)
    assert batch == b"\x02\x00\x01\xfe\x03\xfc"
