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
    max_payload=40,
    timeout_cycles=500,
)


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
        with pytest.raises(spec.ProtocolError, match="not"):
            link.check_model_hash(b"\x00" * 16)
        one = link.infer(vectors[0])
        many = link.infer_batch(vectors)  # 13 vectors > max_batch (9): two frames
        frames = link.load_tables(2, words, offset=100)  # 70 words > 16 per frame
        # garbage on the line: the board answers ERROR (or nothing); the next request works
        link.transport.write(bytes([spec.SYNC, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00]))
        again = link.infer(vectors[1])
        with pytest.raises(spec.ProtocolError) as bad:
            link.request(0x42)
        counters = link.read_counters()
        return ident, one, many, frames, again, bad.value.code, counters

    (ident, one, many, frames, again, code, counters), writes = run_client_against_gateware(session)

    def expect(v):
        return sum(v) % 1024

    assert ident.n_inputs == 4 and ident.max_batch == 9 and ident.max_table_words == 16
    assert one == expect(vectors[0])
    assert many == [expect(v) for v in vectors]
    assert again == expect(vectors[1])
    assert frames == 5
    assert writes == [(2, 100 + i, w) for i, w in enumerate(words)]
    assert code == spec.ErrorCode.UNKNOWN_TYPE
    assert counters.inferences == 1 + 13 + 1
    assert counters.errors >= 2  # the garbage frame's CRC error and the unknown type


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
    ident = spec.Identity(8, 2, 8, 8, 4, 1, 1000, 64, b"h")

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
