"""The host runtime against the real host-link gateware (Amaranth simulator) and its transports."""

import os
import socket
import threading

import pytest
from amaranth.sim import Simulator

from spikelut.boards import host
from spikelut.boards import protocol as p
from spikelut.hdl.hostlink import wire as spec
from spikelut.hdl.hostlink.link import HostLink as HostLinkGateware

PARAMS = dict(
    in_width=6,
    n_inputs=4,
    result_width=10,
    table_word_bits=12,
    table_addr_bits=8,
    n_layers=3,
    clock_hz=25_000_000,
    model_hash=b"\x12\x34" * 8,
    shape_hash=b"shape-02",
    table_words=70,
    max_payload=40,
    timeout_cycles=500,
)


NEW_HASH = b"\x56\x78" * 8


def run_client_against_gateware(client_fn):
    """Run ``client_fn(HostLink)`` in a thread while the gateware runs in Amaranth's simulator.

    The testbench bridges the QueueTransport to the link's byte streams; the core returns
    the sum of a vector's values (mod 2**result_width); table writes are collected.
    """
    dut = HostLinkGateware(**PARAMS)
    transport = host.QueueTransport()
    state = {"writes": [], "error": None, "result": None}
    finished = threading.Event()

    def client():
        try:
            with host.BoardClient(transport, timeout=20.0, retries=0) as link:
                state["result"] = client_fn(link)
        except BaseException as e:  # reported by the main thread
            state["error"] = e
        finally:
            finished.set()

    async def bridge(ctx):
        pending = b""
        out = bytearray()
        beats = []
        ctx.set(dut.uart_tx.ready, 1)
        ctx.set(dut.o_table.ready, 1)
        ctx.set(dut.o_vector.ready, 1)
        result_queue = []
        n = 0
        while not finished.is_set():
            n += 1
            if not pending and not transport.to_board.empty():
                pending = transport.to_board.get_nowait()
            ctx.set(dut.uart_rx.valid, bool(pending))
            if pending:
                ctx.set(dut.uart_rx.payload, pending[0])
            if pending and ctx.get(dut.uart_rx.ready):
                pending = pending[1:]
            if ctx.get(dut.uart_tx.valid):
                out.append(ctx.get(dut.uart_tx.payload))
            if ctx.get(dut.o_table.valid):
                t = ctx.get(dut.o_table.payload)
                state["writes"].append((t.layer, t.addr, t.data))
            if ctx.get(dut.o_vector.valid):
                beats += list(ctx.get(dut.o_vector.payload))
                if len(beats) == PARAMS["n_inputs"]:
                    total = sum(beats)  # the lanes are signed values
                    result_queue.append(total % (1 << PARAMS["result_width"]))
                    beats = []
            ctx.set(dut.i_result.valid, bool(result_queue))
            if result_queue:
                ctx.set(dut.i_result.payload, result_queue[0])
                if ctx.get(dut.i_result.ready):
                    result_queue.pop(0)
            if out and (n % 16 == 0 or not ctx.get(dut.uart_tx.valid)):
                transport.from_board.put(bytes(out))
                out.clear()
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-7)
    sim.add_testbench(bridge)
    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    sim.run()
    thread.join(5)
    if state["error"] is not None:
        raise state["error"]
    return state["result"], state["writes"]


def test_client_commands_against_gateware():
    vectors = [[(i * 7 + k * 5) % 64 - 32 for k in range(4)] for i in range(13)]
    words = [(i * 37) % 4096 for i in range(70)]

    def session(link):
        ident = link.identify()
        link.check_model_hash(PARAMS["model_hash"])
        with pytest.raises(spec.ProtocolError, match="not the tables"):
            link.check_model_hash(NEW_HASH)
        one = link.infer(vectors[0])
        many = link.infer_batch(vectors)  # 13 vectors > max_batch (9): two frames
        link.begin_tables()
        frames = link.load_tables(2, words, offset=100)  # 70 words > 16 per frame
        with pytest.raises(spec.ProtocolError) as no_tables:  # a load in progress
            link.infer(vectors[0])
        link.commit_tables(NEW_HASH)
        link.check_model_hash(NEW_HASH)  # IDENTIFY reports the committed hash
        link.commit_tables(NEW_HASH)  # a repeated commit gets the same verdict
        # garbage on the line: the board answers SEQ-0 ERRORs (or nothing); the next
        # request works
        link.transport.write(bytes([spec.SYNC, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00]))
        again = link.infer(vectors[1])
        with pytest.raises(spec.ProtocolError) as bad:
            link.request(0x42)
        counters = link.read_counters()
        codes = no_tables.value.code, bad.value.code
        return ident, one, many, frames, again, codes, counters

    (ident, one, many, frames, again, codes, counters), writes = run_client_against_gateware(
        session
    )

    def expect(v):
        return sum(v) % 1024

    assert ident.n_inputs == 4 and ident.max_batch == 9 and ident.max_table_words == 16
    assert ident.holds(PARAMS["model_hash"]) and ident.table_words == 70
    assert one == expect(vectors[0])
    assert many == [expect(v) for v in vectors]
    assert again == expect(vectors[1])
    assert frames == 5
    assert writes == [(2, 100 + i, w) for i, w in enumerate(words)]
    assert codes == (spec.ErrorCode.NO_TABLES, spec.ErrorCode.UNKNOWN_TYPE)
    assert counters.inferences == 1 + 13 + 1
    assert counters.errors >= 2  # the garbage frame's CRC error and the unknown type


def test_a_stray_sync_before_a_request_is_no_reply_to_it():
    """A stray SYNC ahead of a request with SEQ 3 (INFER's TYPE byte, which the false header
    reads as its SEQ): the board answers the false frame with a SEQ-0 ERROR, which the host
    counts and passes over, and the request with its result."""
    vector = [1, 2, 3, 4]

    def session(link):
        link.identify()
        link._seq = 2  # the next request is SEQ 3
        link.transport.write(bytes([spec.SYNC]))
        result = link.infer(vector)
        return result, link._seq, link.board_errors

    (result, seq, board_errors), _ = run_client_against_gateware(session)
    assert (result, seq) == (10, 3)
    assert board_errors == 1


def test_board_checks_the_load_not_the_client():
    """The board refuses a commit whose record differs from its own: words missing, a hash
    the CRC does not cover, a layer the client never sent."""

    def session(link):
        codes = []
        link.begin_tables()
        link.load_tables(0, list(range(35)))
        # the client refuses to commit half a load; sent anyway, the board refuses it
        with pytest.raises(ValueError, match="35 table words"):
            link.commit_tables(NEW_HASH)
        half = link._load.commit_payload(NEW_HASH)
        for payload in (half, NEW_HASH + b"\x00\x00"):
            with pytest.raises(spec.ProtocolError) as e:
                link.request(spec.FrameType.COMMIT_TABLES, payload)
            codes.append(e.value.code)
        link.begin_tables()
        link.load_tables(0, list(range(35)))
        # a frame the client's record does not know of (as a resent LOAD_TABLES would be)
        link.request(spec.FrameType.LOAD_TABLES, p.load_tables_payload(1, 0, [0] * 10, 12))
        link.load_tables(1, [0] * 25, offset=10)
        link._load.words += 10
        with pytest.raises(spec.ProtocolError) as e:
            link.commit_tables(NEW_HASH)
        codes.append(e.value.code)
        return codes, link.identify()

    (codes, ident), _ = run_client_against_gateware(session)
    assert codes == [spec.ErrorCode.TABLES_MISMATCH] * 3
    assert not ident.tables_valid and ident.tables_hash == bytes(16)


def test_host_seq_skips_the_reserved_value_and_passes_over_its_errors():
    transport = host.QueueTransport()
    link = host.BoardClient(transport, timeout=2.0, retries=0)
    seqs = [link._next_seq() for _ in range(600)]
    assert spec.RESERVED_SEQ not in seqs and set(seqs) == set(range(1, 256))

    def board():
        """Answer each request: first a SEQ-0 ERROR (for some frame it could not parse),
        then COUNTERS or, to INFER, ERROR NO_TABLES with the request's SEQ."""
        dec = p.FrameDecoder()
        for _ in range(2):
            frames = []
            while not frames:
                frames = dec.feed(transport.to_board.get(timeout=5))
            req = frames[0]
            out = p.encode_frame(spec.FrameType.ERROR, b"\x03\xa5", seq=spec.RESERVED_SEQ)
            if req.type == spec.FrameType.INFER:
                out += p.encode_frame(spec.FrameType.ERROR, b"\x06\x03", seq=req.seq)
            else:
                counters = spec.Counters(1, 2, 3, 4).encode()
                out += p.encode_frame(spec.FrameType.COUNTERS, counters, seq=req.seq)
            transport.from_board.put(out)

    th = threading.Thread(target=board, daemon=True)
    th.start()
    link._seq = 2
    assert link.read_counters() == spec.Counters(1, 2, 3, 4)
    assert link.board_errors == 1 and link.stale_replies == 0
    # an ERROR with the request's SEQ is its answer
    with pytest.raises(spec.ProtocolError, match="NO_TABLES") as e:
        link.request(spec.FrameType.INFER, b"\x00" * 4)
    assert e.value.code == spec.ErrorCode.NO_TABLES and link.board_errors == 2
    th.join(5)


def test_client_rejects_bad_arguments_before_sending():
    def session(link):
        with pytest.raises(ValueError, match="takes 4"):
            link.infer([1, 2, 3])
        with pytest.raises(ValueError, match="exceed"):
            link.load_tables(0, [0] * 10, offset=250)
        with pytest.raises(ValueError, match="does not fit"):
            link.infer([100, 0, 0, 0])
        return link.read_counters()

    counters, writes = run_client_against_gateware(session)
    assert counters.inferences == 0 and writes == []


def test_timeout_raises_link_timeout():
    transport = host.QueueTransport()
    link = host.BoardClient(transport, timeout=0.05, retries=1)
    with pytest.raises(host.LinkTimeout, match="2 attempts"):
        link.read_counters()
    assert transport.to_board.qsize() == 2  # the request was sent twice


def test_serial_transport_over_a_pseudo_terminal():
    master, slave = os.openpty()
    try:
        t = host.SerialTransport(os.ttyname(slave), 115200)

        def board():
            dec = p.FrameDecoder()
            while not (frames := dec.feed(os.read(master, 64))):
                pass
            stale = p.encode_frame(
                spec.FrameType.COUNTERS, spec.Counters(9, 9, 9, 9).encode(), seq=0
            )
            reply = spec.Counters(1, 2, 3, 4).encode()
            os.write(master, stale + p.encode_frame(spec.FrameType.COUNTERS, reply, frames[0].seq))

        th = threading.Thread(target=board, daemon=True)
        th.start()
        with host.BoardClient(t, timeout=2.0, retries=0) as link:
            assert link.read_counters() == spec.Counters(1, 2, 3, 4)
            assert link.stale_replies == 1
        th.join(2)
    finally:
        os.close(master)
        os.close(slave)


def test_socket_transport_and_open_transport():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    ident = spec.Identity(8, 2, 8, 8, 4, 1, 1000, 64, b"h", tables_valid=True, tables_hash=b"h")

    def board():
        conn, _ = server.accept()
        dec = p.FrameDecoder()
        while not (frames := dec.feed(conn.recv(64))):
            pass
        assert frames[0].type == spec.FrameType.IDENTIFY
        reply = p.encode_frame(spec.FrameType.IDENTITY, ident.encode(), seq=frames[0].seq)
        conn.sendall(b"\x00junk" + reply)
        conn.close()

    th = threading.Thread(target=board, daemon=True)
    th.start()
    with host.BoardClient(host.open_transport(f"tcp:127.0.0.1:{port}"), timeout=2.0) as link:
        assert link.identify() == ident
    th.join(2)
    server.close()
    with pytest.raises(ConnectionError, match="no such port"):
        host.open_transport("/dev/does-not-exist")
    with pytest.raises(ValueError, match="tcp:HOST:PORT"):
        host.open_transport("tcp:localhost:x")
