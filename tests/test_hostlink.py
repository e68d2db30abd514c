"""The gateware host link in Amaranth's simulator, driven by the host-side protocol encoder.

A dummy core (in the testbench) returns the sum of each input vector; every request goes in
as bytes on ``uart_rx`` with random gaps, every reply is decoded from ``uart_tx`` under random
back-pressure.
"""

import random

import pytest
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikelut.boards import protocol as p
from spikelut.hdl.crc import crc16
from spikelut.hdl.hostlink import wire as spec
from spikelut.hdl.hostlink.link import HostLink
from spikelut.hdl.hostlink.params import LinkParams

PARAMS = dict(
    in_width=5,
    n_inputs=6,
    lanes=3,
    result_width=12,
    table_word_bits=10,
    table_addr_bits=6,
    n_layers=2,
    clock_hz=12_000_000,
    model_hash=bytes(range(100, 116)),
    shape_hash=b"shape-01",
    table_words=8,
    max_payload=64,
    timeout_cycles=300,
)
OTHER_HASH = bytes(range(200, 216))


def _sum_result(vec):
    return sum(vec) % (1 << PARAMS["result_width"])


def _result(vec, seq):
    return p.Frame(spec.FrameType.RESULT, p.pack_values([_sum_result(vec)], 12, signed=False), seq)


class Step:
    """Bytes to send, then: wait for the reply with SEQ ``seq`` (and ``idle`` more cycles),
    or with ``seq`` None just ``idle`` cycles, collecting every frame the board sends."""

    def __init__(self, wire: bytes, seq: int | None = None, idle: int = 0):
        self.wire, self.seq, self.idle = bytes(wire), seq, idle


def run_session(steps, *, seed=0, latency=3, gaps=True, wait=6000, **params):
    """Run ``steps`` (:class:`Step`, or a frame's bytes: wait for its SEQ) against a
    HostLink of ``PARAMS`` (updated by ``params``); returns the frames received after each
    step, the table writes and the vectors the core saw, and the link's identity."""
    dut = HostLink(**{**PARAMS, **params})
    sim = Simulator(dut)
    sim.add_clock(1e-7)
    rng = random.Random(seed)
    tx_bytes, writes, replies, vectors_seen, done = [], [], [], [], []
    lanes = dut.lanes
    steps = [s if isinstance(s, Step) else Step(s, s[2]) for s in steps]

    async def host(ctx):
        decoder = p.FrameDecoder()
        for step in steps:
            before = len(tx_bytes)
            for byte in step.wire:
                ctx.set(dut.uart_rx.valid, 0)
                if gaps and rng.random() < 0.3:
                    await ctx.tick().repeat(rng.randrange(1, 4))
                ctx.set(dut.uart_rx.payload, byte)
                ctx.set(dut.uart_rx.valid, 1)
                await ctx.tick().until(dut.uart_rx.ready)
            ctx.set(dut.uart_rx.valid, 0)
            got = []
            for _ in range(wait if step.seq is not None else step.idle):
                got += decoder.feed(bytes(tx_bytes[before:]))
                before = len(tx_bytes)
                if step.seq is not None and any(f.seq == step.seq for f in got):
                    break
                await ctx.tick()
            if step.seq is not None and step.idle:
                await ctx.tick().repeat(step.idle)
                got += decoder.feed(bytes(tx_bytes[before:]))
            replies.append(got)
        done.append(True)

    async def tx_sink(ctx):
        while not done:
            ready = rng.random() < 0.7 if gaps else True
            ctx.set(dut.uart_tx.ready, ready)
            if ready and ctx.get(dut.uart_tx.valid):
                tx_bytes.append(ctx.get(dut.uart_tx.payload))
            await ctx.tick()

    async def table_sink(ctx):
        while not done:
            ready = rng.random() < 0.5
            ctx.set(dut.o_table.ready, ready)
            if ready and ctx.get(dut.o_table.valid):
                t = ctx.get(dut.o_table.payload)
                writes.append((t.layer, t.addr, t.data))
            await ctx.tick()

    async def core(ctx):
        beats = []
        while not done:
            ready = rng.random() < 0.6
            ctx.set(dut.o_vector.ready, ready)
            if ready and ctx.get(dut.o_vector.valid):
                beat = ctx.get(dut.o_vector.payload)
                beats += [beat[i] for i in range(lanes)]
            await ctx.tick()
            if len(beats) == PARAMS["n_inputs"]:
                ctx.set(dut.o_vector.ready, 0)
                signed = list(beats)  # the lanes are signed values
                vectors_seen.append(signed)
                beats = []
                await ctx.tick().repeat(latency)
                ctx.set(dut.i_result.payload, _sum_result(signed))
                ctx.set(dut.i_result.valid, 1)
                await ctx.tick().until(dut.i_result.ready)
                ctx.set(dut.i_result.valid, 0)

    sim.add_testbench(host)
    sim.add_testbench(tx_sink)
    sim.add_testbench(table_sink)
    sim.add_testbench(core)
    sim.run()
    return replies, writes, vectors_seen, dut.identity


_seq = iter(range(1, 10_000))


def req(t, payload=b"", seq=None):
    """A request with the next SEQ (1..255, never the reserved 0) unless ``seq`` is given."""
    if seq is None:
        seq = next(_seq) % 255 + 1
    return p.encode_frame(t, payload, seq=seq)


def reply_to(frames, wire):
    """The one frame among ``frames`` with the SEQ of request ``wire``; every other must be
    a SEQ-0 ERROR."""
    seq = wire[2]
    mine = [f for f in frames if f.seq == seq]
    assert len(mine) == 1, frames
    for f in frames:
        assert f.seq == seq or (f.seq == spec.RESERVED_SEQ and f.type == spec.FrameType.ERROR)
    return mine[0]


def err(frame):
    assert frame.type == spec.FrameType.ERROR
    return p.parse_error(frame.payload)


def test_parameters_are_validated():
    # what HostLink checks its parameters with, before building anything
    with pytest.raises(ValueError, match="lanes"):
        LinkParams(**{**PARAMS, "lanes": 4})
    with pytest.raises(ValueError, match="max_payload"):
        LinkParams(**{**PARAMS, "max_payload": 7})
    with pytest.raises(ValueError, match="in_width"):
        LinkParams(**{**PARAMS, "in_width": 0})
    with pytest.raises(ValueError, match="model_hash"):
        LinkParams(**{**PARAMS, "model_hash": bytes(65)})
    with pytest.raises(ValueError, match="model_hash"):
        LinkParams(**{**PARAMS, "model_hash": b""})
    with pytest.raises(ValueError, match="shape_hash"):
        LinkParams(**{**PARAMS, "shape_hash": b"short"})
    with pytest.raises(ValueError, match="commit"):  # a COMMIT_TABLES needs 16 + 2 bytes
        LinkParams(**{**PARAMS, "max_payload": 17})
    assert LinkParams(**{**PARAMS, "lanes": None}).lanes == PARAMS["n_inputs"]
    ring = LinkParams(**PARAMS).ring_bytes
    assert ring == 128 and ring >= PARAMS["max_payload"] + spec.RING_SLACK


@pytest.mark.parametrize(
    ("n_inputs", "in_width", "want"),
    [(64, 6, 1016), (784, 8, 1016), (784, 9, 2040), (784, 32, 4088)],
)
def test_default_max_payload_holds_one_vector(n_inputs, in_width, want):
    """The payload is derived from the input vector: at least one INFER_BATCH of one vector,
    in a power-of-two frame buffer of at least 1 kB."""
    changes = {"n_inputs": n_inputs, "lanes": None, "in_width": in_width, "max_payload": None}
    params = LinkParams(**{**PARAMS, **changes})
    assert params.max_payload == want
    assert params.max_payload >= params.vector_bytes + 2
    assert params.ring_bytes == want + spec.RING_SLACK
    with pytest.raises(ValueError, match="does not fit the host link"):
        spec.default_max_payload(0xFFFF)


def test_session_with_good_and_bad_frames():
    rng = random.Random(7)
    lo, hi = -16, 15
    vec = [rng.randint(lo, hi) for _ in range(6)]
    batch = [[rng.randint(lo, hi) for _ in range(6)] for _ in range(3)]
    vec2 = [lo, hi, 0, -1, 1, hi]
    words = [rng.randrange(1 << 10) for _ in range(4)]
    load = req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(1, 5, words, 10))
    bad_crc = bytearray(req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(0, 0, [1, 2], 10)))
    bad_crc[-1] ^= 0x10
    garbage = bytes(b for b in rng.randbytes(40) if b != spec.SYNC)
    infer2 = req(spec.FrameType.INFER, p.infer_payload(vec2, 5))
    steps = [
        req(spec.FrameType.IDENTIFY),
        req(spec.FrameType.INFER, p.infer_payload(vec, 5)),
        req(spec.FrameType.INFER_BATCH, p.infer_batch_payload(batch, 5)),
        Step(garbage + infer2, infer2[2]),
        Step(bad_crc, None, 400),  # answered with a SEQ-0 ERROR: its SEQ is not trusted
        req(spec.FrameType.INFER, p.infer_payload(vec[:5], 5)),  # wrong length
        req(0x42, b"xy"),  # unknown type
        Step(bytes([spec.SYNC, spec.FrameType.INFER, 77, 200, 0]), None, 100),  # > max_payload
        Step(load[: len(load) // 2], None, 400),  # truncated, then silence: timeout
        req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(2, 0, [1], 10)),  # no layer 2
        req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(0, 62, [1, 2, 3], 10)),
        req(spec.FrameType.INFER_BATCH, b"\x02\x00" + p.infer_payload(vec, 5)),  # count lies
        load,
        req(spec.FrameType.READ_COUNTERS),
    ]
    replies, writes, seen, ident = run_session(steps)
    pairs = zip(replies, steps, strict=True)
    r = [reply_to(got, s) if isinstance(s, bytes) else got for got, s in pairs]
    r[3] = reply_to(replies[3], infer2)

    assert r[0].type == spec.FrameType.IDENTITY
    assert spec.Identity.decode(r[0].payload) == ident
    assert ident.tables_valid and ident.tables_hash == PARAMS["model_hash"]
    assert ident.shape_hash == PARAMS["shape_hash"] and ident.table_words == 8
    assert r[1] == _result(vec, steps[1][2])
    assert r[2].type == spec.FrameType.RESULT_BATCH
    assert p.unpack_values(r[2].payload, 12) == [_sum_result(v) for v in batch]
    assert r[3] == _result(vec2, infer2[2])
    # frames the parser could not parse: SEQ-0 ERRORs, with the TYPE read
    for got, code, ftype in (
        (r[4], spec.ErrorCode.CRC, spec.FrameType.LOAD_TABLES),
        (r[7], spec.ErrorCode.BAD_LENGTH, spec.FrameType.INFER),
        (r[8], spec.ErrorCode.TIMEOUT, spec.FrameType.LOAD_TABLES),
    ):
        assert got and all(f.seq == spec.RESERVED_SEQ for f in got), got
        assert err(got[0]) == (code, ftype)
    # intact frames refused: ERRORs with their SEQ
    assert err(r[5]) == (spec.ErrorCode.BAD_LENGTH, spec.FrameType.INFER)
    assert err(r[6]) == (spec.ErrorCode.UNKNOWN_TYPE, 0x42)
    assert err(r[9]) == (spec.ErrorCode.BAD_ARGUMENT, spec.FrameType.LOAD_TABLES)
    assert err(r[10]) == (spec.ErrorCode.BAD_ARGUMENT, spec.FrameType.LOAD_TABLES)
    assert err(r[11]) == (spec.ErrorCode.BAD_LENGTH, spec.FrameType.INFER_BATCH)
    assert (r[12].type, r[12].payload) == (spec.FrameType.OK, bytes([spec.FrameType.LOAD_TABLES]))

    # only the one good LOAD_TABLES wrote anything, in order
    assert writes == [(1, 5 + i, word) for i, word in enumerate(words)]
    assert seen == [vec, *batch, vec2]
    counters = spec.Counters.decode(r[13].payload)
    assert counters.inferences == 5
    assert counters.errors >= 8
    # good frames: identify, infer, batch, infer, wrong-length infer, unknown type,
    # the two out-of-range loads, the lying batch, the load, read counters
    assert counters.frames == 11
    assert counters.cycles > 0


@pytest.mark.parametrize("prefix", [b"\xa5", b"\xa5\x00", b"\xa5\x01\xa5", b"\xa5\x01\x00\x00"])
@pytest.mark.parametrize("seq", [3, 200])
def test_a_stray_sync_before_a_frame_costs_nothing(prefix, seq):
    """The frame behind a false SYNC is found by scanning again from the byte after it, and
    answered with its SEQ; the false one gets a SEQ-0 ERROR, never taken for the answer
    (with SEQ 3, the INFER's TYPE byte is what the false header reads as its SEQ)."""
    vec = [1, -2, 3, -4, 5, 15]
    good = req(spec.FrameType.INFER, p.infer_payload(vec, 5), seq=seq)
    replies, *_ = run_session([Step(prefix + good, seq)], gaps=False)
    assert reply_to(replies[0], good) == _result(vec, seq)


# garbage rich in SYNC, request TYPEs and small bytes, so that fake headers with plausible
# lengths are common
_garbage = st.lists(
    st.one_of(st.sampled_from([spec.SYNC, 0, 1, 2, 3, 4, 6, 8]), st.integers(0, 255)),
    max_size=14,
).map(bytes)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_garbage, st.integers(1, 255), st.booleans()), min_size=1, max_size=8))
def test_any_garbage_before_a_frame_yields_its_reply(cases):
    """Whatever garbage comes first, the board answers the valid frame behind it (the host's
    decoder, which scans the same way, is the oracle for garbage that itself forms a valid
    frame with what follows: such cases are left out)."""
    vec = [3, -1, 4, -1, 5, -9]
    steps, frames = [], []
    for garbage, seq, batch in cases:
        if batch:
            good = req(spec.FrameType.INFER_BATCH, p.infer_batch_payload([vec, vec], 5), seq=seq)
        else:
            good = req(spec.FrameType.INFER, p.infer_payload(vec, 5), seq=seq)
        if p.decode_frames(garbage + good) != p.decode_frames(good):
            continue  # the garbage forms a valid frame: it is one
        steps.append(Step(garbage + good, seq, 20))
        frames.append(good)
    if not steps:
        return
    replies, writes, *_ = run_session(steps, gaps=False, wait=30_000)
    assert writes == []
    for got, good in zip(replies, frames, strict=True):
        frame = reply_to(got, good)
        assert frame.type == (
            spec.FrameType.RESULT_BATCH
            if good[1] == spec.FrameType.INFER_BATCH
            else spec.FrameType.RESULT
        )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_garbage_never_writes_tables_and_link_recovers(seed):
    rng = random.Random(seed)
    # garbage rich in SYNC and request TYPE bytes, so fake headers and lengths are common
    alphabet = [spec.SYNC, spec.FrameType.LOAD_TABLES, spec.FrameType.INFER, 0, 3, 7]
    garbage = bytes(
        rng.choice(alphabet) if rng.random() < 0.5 else rng.randrange(256) for _ in range(60)
    )
    vec = [rng.randint(-16, 15) for _ in range(6)]
    infer = req(spec.FrameType.INFER, p.infer_payload(vec, 5))
    replies, writes, _seen, _ident = run_session(
        [Step(garbage, None, 4000), infer], seed=seed, wait=20_000
    )
    assert writes == []
    assert reply_to(replies[1], infer) == _result(vec, infer[2])
    for frame in replies[0]:
        assert (frame.type, frame.seq) == (spec.FrameType.ERROR, spec.RESERVED_SEQ)


def test_corrupted_table_loads_never_write():
    """A LOAD_TABLES with any one byte changed gets no reply but SEQ-0 ERRORs and writes
    nothing; the good frames around it write exactly once."""
    rng = random.Random(99)
    steps, good_words, goods = [], [], []
    for i in range(6):
        words = [rng.randrange(1 << 10) for _ in range(3)]
        bad = bytearray(req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(0, 8 * i, words, 10)))
        pos = rng.randrange(len(bad))
        bad[pos] ^= rng.randrange(1, 256)
        good = req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(1, 4 * i, words, 10))
        steps += [Step(bad, None, 50), Step(good, good[2])]
        goods.append(good)
        good_words += [(1, 4 * i + k, w) for k, w in enumerate(words)]
    replies, writes, _seen, _ident = run_session(steps, seed=5, wait=20_000)
    assert writes == good_words
    frames = [f for got in replies for f in got]
    for good in goods:
        assert [f.type for f in frames if f.seq == good[2]] == [spec.FrameType.OK]
    assert {f.seq for f in frames} <= {spec.RESERVED_SEQ, *(g[2] for g in goods)}


def _commit(model_hash, payloads):
    record = p.LoadRecord()
    for payload in payloads:
        record.add(payload)
    return req(spec.FrameType.COMMIT_TABLES, record.commit_payload(model_hash))


def _forged_commit(forged_hash, payloads):
    """A commit of ``payloads`` as OTHER_HASH, its hash then replaced by ``forged_hash``."""
    record = p.LoadRecord()
    for payload in payloads:
        record.add(payload)
    commit = record.commit_payload(OTHER_HASH)
    return req(spec.FrameType.COMMIT_TABLES, forged_hash + commit[len(forged_hash) :])


def test_tables_become_valid_only_by_a_matching_commit():
    """LOAD_TABLES invalidates the tables (INFER: NO_TABLES); COMMIT_TABLES makes them valid
    as the committed model only when its CRC covers exactly the load and the hash, and the
    load wrote the whole table space; IDENTIFY reports the tables hash throughout."""
    vec = [1, 2, 3, 4, 5, 6]
    loads = [
        p.load_tables_payload(0, 0, [1, 2, 3, 4], 10),
        p.load_tables_payload(1, 0, [5] * 4, 10),
    ]
    begin = p.load_tables_payload(0, 0, [], 10)
    ident = spec.FrameType.IDENTIFY
    infer = spec.FrameType.INFER
    steps = [
        req(spec.FrameType.LOAD_TABLES, loads[0]),
        req(ident),  # 1: invalid
        req(infer, p.infer_payload(vec, 5)),  # 2: NO_TABLES
        req(spec.FrameType.LOAD_TABLES, loads[1]),
        _commit(OTHER_HASH, loads),  # 4: OK
        req(ident),  # 5: valid, OTHER_HASH
        req(infer, p.infer_payload(vec, 5)),  # 6: a result
        _commit(OTHER_HASH, loads),  # 7: a repeated commit: the same verdict
        req(spec.FrameType.LOAD_TABLES, begin),  # 8: a new load
        req(spec.FrameType.LOAD_TABLES, loads[0]),
        _commit(OTHER_HASH, loads[:1]),  # 10: half the words: TABLES_MISMATCH
        req(ident),  # 11: invalid
        req(spec.FrameType.LOAD_TABLES, loads[0]),  # a new load (after a commit)
        req(spec.FrameType.LOAD_TABLES, loads[1]),
        _forged_commit(bytes(16), loads),  # 14: a hash the CRC does not cover
        req(spec.FrameType.LOAD_TABLES, begin),
        req(spec.FrameType.LOAD_TABLES, loads[0]),
        req(spec.FrameType.LOAD_TABLES, loads[0]),  # a resent frame enters the CRC twice
        req(spec.FrameType.LOAD_TABLES, loads[1]),
        _commit(OTHER_HASH, [loads[0], loads[1]]),  # 19: TABLES_MISMATCH
        req(infer, p.infer_payload(vec, 5)),  # 20: NO_TABLES
        req(spec.FrameType.COMMIT_TABLES, bytes(10)),  # 21: wrong length
    ]
    replies, _writes, _seen, _ident = run_session(steps)
    r = [reply_to(got, s) for got, s in zip(replies, steps, strict=True)]
    ok = (spec.FrameType.OK, bytes([spec.FrameType.COMMIT_TABLES]))

    def identity(frame):
        return spec.Identity.decode(frame.payload)

    assert not identity(r[1]).tables_valid and identity(r[1]).tables_hash == bytes(16)
    assert identity(r[1]).model_hash == PARAMS["model_hash"]  # the bitstream's stays
    assert err(r[2]) == (spec.ErrorCode.NO_TABLES, infer)
    assert (r[4].type, r[4].payload) == ok
    assert identity(r[5]).holds(OTHER_HASH)
    assert r[6] == _result(vec, steps[6][2])
    assert (r[7].type, r[7].payload) == ok
    assert err(r[10]) == (spec.ErrorCode.TABLES_MISMATCH, spec.FrameType.COMMIT_TABLES)
    assert not identity(r[11]).tables_valid
    assert err(r[14])[0] == spec.ErrorCode.TABLES_MISMATCH
    assert err(r[19])[0] == spec.ErrorCode.TABLES_MISMATCH
    assert err(r[20]) == (spec.ErrorCode.NO_TABLES, infer)
    assert err(r[21]) == (spec.ErrorCode.BAD_LENGTH, spec.FrameType.COMMIT_TABLES)


def test_boot_sets_the_tables_and_requests_wait_while_held():
    """A board that boots its tables starts with none valid; ``set_tables`` makes them
    valid with the boot's hash; while ``hold`` is high no request is answered."""
    dut = HostLink(**{**PARAMS, "tables_at_reset": False})
    sim = Simulator(dut)
    sim.add_clock(1e-7)
    seen = {}

    async def send_and_read(ctx, wire, cycles=3000):
        out = bytearray()
        for byte in wire:
            ctx.set(dut.uart_rx.payload, byte)
            ctx.set(dut.uart_rx.valid, 1)
            await ctx.tick().until(dut.uart_rx.ready)
        ctx.set(dut.uart_rx.valid, 0)
        for _ in range(cycles):
            if ctx.get(dut.uart_tx.valid):
                out.append(ctx.get(dut.uart_tx.payload))
            await ctx.tick()
        return p.decode_frames(bytes(out))

    async def bench(ctx):
        ctx.set(dut.uart_tx.ready, 1)
        ctx.set(dut.hold, 1)
        seen["held"] = await send_and_read(ctx, req(spec.FrameType.IDENTIFY, seq=9))
        ctx.set(dut.hold, 0)
        await ctx.tick().repeat(2)
        seen["released"] = await send_and_read(ctx, b"")
        seen["infer"] = await send_and_read(ctx, req(spec.FrameType.INFER, bytes(6), seq=10))
        ctx.set(dut.set_hash, int.from_bytes(OTHER_HASH, "little"))
        ctx.set(dut.set_tables, 1)
        await ctx.tick()
        ctx.set(dut.set_tables, 0)
        seen["valid"] = ctx.get(dut.tables_valid)
        seen["ident"] = await send_and_read(ctx, req(spec.FrameType.IDENTIFY, seq=11))

    sim.add_testbench(bench)
    sim.run()
    assert seen["held"] == []
    first = spec.Identity.decode(seen["released"][0].payload)
    assert seen["released"][0].seq == 9 and not first.tables_valid
    assert err(seen["infer"][0]) == (spec.ErrorCode.NO_TABLES, spec.FrameType.INFER)
    assert seen["valid"]
    assert spec.Identity.decode(seen["ident"][0].payload).holds(OTHER_HASH)


def test_fixed_tables_refuse_loads():
    """A design whose tables the bitstream fixes (``table_words`` 0) refuses LOAD_TABLES and
    COMMIT_TABLES and keeps its tables valid."""
    load = req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(0, 0, [1], 10))
    commit = _commit(OTHER_HASH, [])
    ident = req(spec.FrameType.IDENTIFY)
    replies, writes, *_ = run_session([load, commit, ident], table_words=0)
    assert err(reply_to(replies[0], load))[0] == spec.ErrorCode.BAD_ARGUMENT
    assert err(reply_to(replies[1], commit))[0] == spec.ErrorCode.BAD_ARGUMENT
    assert spec.Identity.decode(reply_to(replies[2], ident).payload).holds(PARAMS["model_hash"])
    assert writes == []


def test_commit_crc_is_over_the_load_then_the_hash():
    """The commit's CRC as the wire specifies it, computed independently of LoadRecord."""
    a, b = p.load_tables_payload(0, 0, [1, 2], 10), p.load_tables_payload(1, 3, [7], 10)
    record = p.LoadRecord()
    record.add(p.load_tables_payload(0, 0, [], 10))  # a begin frame enters nothing
    record.add(a)
    record.add(b)
    payload = record.commit_payload(OTHER_HASH)
    assert payload[:16] == OTHER_HASH
    assert int.from_bytes(payload[16:], "big") == crc16(a + b + OTHER_HASH)
    assert crc16(a + b + payload) == 0 and record.words == 3
