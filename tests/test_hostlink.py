"""The gateware host link in Amaranth's simulator, driven by the host-side protocol encoder.

A dummy core (in the testbench) returns the sum of each input vector; every request goes in
as bytes on ``uart_rx`` with random gaps, every reply is decoded from ``uart_tx`` under random
back-pressure.
"""

import random

import pytest
from amaranth.sim import Simulator

from spikelut.boards import protocol as p
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
    max_payload=64,
    timeout_cycles=300,
)


def _sum_result(vec):
    return sum(vec) % (1 << PARAMS["result_width"])


def run_session(steps, *, seed=0, latency=3):
    """Run ``steps`` (list of (wire bytes, idle cycles after)) and return replies and writes.

    Replies are the frames decoded from the board's output after each step.
    """
    dut = HostLink(**PARAMS)
    sim = Simulator(dut)
    sim.add_clock(1e-7)
    rng = random.Random(seed)
    tx_bytes = []
    writes = []
    replies = []
    vectors_seen = []
    done = []
    lanes = dut.lanes

    async def host(ctx):
        decoder = p.FrameDecoder()
        for wire, idle in steps:
            before = len(tx_bytes)
            for byte in wire:
                ctx.set(dut.uart_rx.valid, 0)
                if rng.random() < 0.3:
                    await ctx.tick().repeat(rng.randrange(1, 4))
                ctx.set(dut.uart_rx.payload, byte)
                ctx.set(dut.uart_rx.valid, 1)
                await ctx.tick().until(dut.uart_rx.ready)
            ctx.set(dut.uart_rx.valid, 0)
            if idle:
                await ctx.tick().repeat(idle)
            got = []
            for _ in range(4000):
                got = decoder.feed(bytes(tx_bytes[before:]))
                before = len(tx_bytes)
                if got:
                    break
                await ctx.tick()
            replies.append(got)
        done.append(True)

    async def tx_sink(ctx):
        while not done:
            ready = rng.random() < 0.7
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


def req(t, payload=b""):
    """A request with the next SEQ (1, 2, ... in order of creation)."""
    return p.encode_frame(t, payload, seq=next(_seq) % 256)


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
    assert LinkParams(**{**PARAMS, "lanes": None}).lanes == PARAMS["n_inputs"]


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
    steps = [
        (req(spec.FrameType.IDENTIFY), 0),
        (req(spec.FrameType.INFER, p.infer_payload(vec, 5)), 0),
        (req(spec.FrameType.INFER_BATCH, p.infer_batch_payload(batch, 5)), 0),
        (load, 0),
        (garbage + req(spec.FrameType.INFER, p.infer_payload(vec2, 5)), 0),
        (bytes(bad_crc), 0),
        (req(spec.FrameType.INFER, p.infer_payload(vec[:5], 5)), 0),  # wrong length
        (req(0x42, b"xy"), 0),  # unknown type
        (bytes([spec.SYNC, spec.FrameType.INFER, 77, 200, 0]), 0),  # longer than max_payload
        (load[: len(load) // 2], 400),  # truncated, then silence: timeout
        (req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(2, 0, [1], 10)), 0),  # no layer 2
        (req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(0, 62, [1, 2, 3], 10)), 0),
        (req(spec.FrameType.INFER_BATCH, b"\x02\x00" + p.infer_payload(vec, 5)), 0),  # count lies
        (req(spec.FrameType.READ_COUNTERS), 0),
    ]
    replies, writes, seen, ident = run_session(steps)
    assert all(len(r) == 1 for r in replies), replies
    r = [f[0] for f in replies]
    # every reply echoes its request's SEQ (the truncated LOAD_TABLES reuses load's)
    sent_seq = [wire[wire.index(spec.SYNC) + 2] for wire, _ in steps]
    assert [f.seq for f in r] == sent_seq

    assert r[0].type == spec.FrameType.IDENTITY
    assert spec.Identity.decode(r[0].payload) == ident
    assert r[1].type == spec.FrameType.RESULT
    assert r[1].payload == p.pack_values([_sum_result(vec)], 12, signed=False)
    assert r[2].type == spec.FrameType.RESULT_BATCH
    assert p.unpack_values(r[2].payload, 12) == [_sum_result(v) for v in batch]
    assert (r[3].type, r[3].payload) == (spec.FrameType.OK, bytes([spec.FrameType.LOAD_TABLES]))
    assert p.unpack_values(r[4].payload, 12) == [_sum_result(vec2)]

    def err(frame):
        assert frame.type == spec.FrameType.ERROR
        return p.parse_error(frame.payload)

    assert err(r[5]) == (spec.ErrorCode.CRC, spec.FrameType.LOAD_TABLES)
    assert err(r[6]) == (spec.ErrorCode.BAD_LENGTH, spec.FrameType.INFER)
    assert err(r[7]) == (spec.ErrorCode.UNKNOWN_TYPE, 0x42)
    assert err(r[8]) == (spec.ErrorCode.BAD_LENGTH, spec.FrameType.INFER)
    assert err(r[9]) == (spec.ErrorCode.TIMEOUT, spec.FrameType.LOAD_TABLES)
    assert err(r[10]) == (spec.ErrorCode.BAD_ARGUMENT, spec.FrameType.LOAD_TABLES)
    assert err(r[11]) == (spec.ErrorCode.BAD_ARGUMENT, spec.FrameType.LOAD_TABLES)
    assert err(r[12]) == (spec.ErrorCode.BAD_LENGTH, spec.FrameType.INFER_BATCH)

    # only the one good LOAD_TABLES wrote anything, in order
    assert writes == [(1, 5 + i, word) for i, word in enumerate(words)]
    assert seen == [vec, *batch, vec2]
    counters = spec.Counters.decode(r[13].payload)
    assert counters.inferences == 5
    assert counters.errors == 8
    # good frames: identify, infer, batch, load, infer, wrong-length infer, unknown type,
    # the two out-of-range loads, the lying batch, read counters
    assert counters.frames == 11
    assert counters.cycles > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_garbage_never_writes_tables_and_link_recovers(seed):
    rng = random.Random(seed)
    # garbage rich in SYNC and request TYPE bytes, so fake headers and lengths are common
    alphabet = [spec.SYNC, spec.FrameType.LOAD_TABLES, spec.FrameType.INFER, 0, 3, 7]
    garbage = bytes(
        rng.choice(alphabet) if rng.random() < 0.5 else rng.randrange(256) for _ in range(60)
    )
    vec = [rng.randint(-16, 15) for _ in range(6)]
    steps = [
        (garbage, 400),  # whatever the parser made of it, it times out and resynchronises
        (req(spec.FrameType.INFER, p.infer_payload(vec, 5)), 0),
    ]
    replies, writes, _seen, _ident = run_session(steps, seed=seed)
    assert writes == []
    infer = steps[1][0]
    assert replies[-1][-1] == p.Frame(
        spec.FrameType.RESULT, p.pack_values([_sum_result(vec)], 12, signed=False), seq=infer[2]
    )
    for frame in replies[0]:
        assert frame.type == spec.FrameType.ERROR


def test_corrupted_table_loads_never_write():
    """A LOAD_TABLES with any one byte changed is answered with ERROR (or nothing, when the
    SYNC byte was hit) and writes nothing; the good frames around it write exactly once."""
    rng = random.Random(99)
    steps, good_words = [], []
    for i in range(6):
        words = [rng.randrange(1 << 10) for _ in range(3)]
        bad = bytearray(req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(0, 8 * i, words, 10)))
        pos = rng.randrange(len(bad))
        bad[pos] ^= rng.randrange(1, 256)
        steps.append((bytes(bad), 400))  # 400 idle cycles: any half-parsed frame times out
        steps.append(
            (req(spec.FrameType.LOAD_TABLES, p.load_tables_payload(1, 4 * i, words, 10)), 0)
        )
        good_words += [(1, 4 * i + k, w) for k, w in enumerate(words)]
    replies, writes, _seen, _ident = run_session(steps, seed=5)
    assert writes == good_words
    for bad_replies, good_replies in zip(replies[::2], replies[1::2], strict=True):
        assert all(f.type == spec.FrameType.ERROR for f in bad_replies)
        assert [f.type for f in good_replies] == [spec.FrameType.OK]
