"""The simulated board behind a pseudo-terminal: ``spikelut sim-board`` and
``spikelut run --port /dev/pts/N`` through pyserial's :class:`SerialTransport`, as with a USB
UART, at 115200 baud (the board's clock and the build's UART divisor)."""

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from helpers_models import tiny_model

from spikelut.boards import protocol as p
from spikelut.boards.host import BoardClient, LinkTimeout, SerialTransport, open_transport
from spikelut.cli.main import main
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.modelfile import save_model
from spikelut.hdl.hostlink.wire import FrameType
from spikelut.sim.pty_board import PtyBoard, open_pty, relay


def test_a_silent_port_times_out_after_its_retries():
    """A pty with no board behind it: every request is resent, then LinkTimeout."""
    master, path = open_pty()
    try:
        client = BoardClient(SerialTransport(path, 115200), timeout=0.1, retries=2)
        t0 = time.monotonic()
        with client:
            with pytest.raises(LinkTimeout, match="after 3 attempts"):
                client.identify()
            assert time.monotonic() - t0 >= 0.3
            # the three IDENTIFY frames reached the other end of the pty, byte for byte
            sent = b""
            while chunk := os.read(master, 4096) if _ready(master) else b"":
                sent += chunk
        frames = p.FrameDecoder().feed(sent)
        assert [f.type for f in frames] == [FrameType.IDENTIFY] * 3
        assert [f.seq for f in frames] == [1, 2, 3]
    finally:
        os.close(master)


def _ready(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0.05)[0])


def test_the_relay_moves_bytes_both_ways_and_counts_host_sessions():
    """:func:`relay` between a pty and a socket whose far end echoes every byte doubled (in
    place of the simulation): two host sessions through pyserial, then the relay stops."""
    master, path = open_pty()
    near, far = socket.socketpair()
    board = PtyBoard(path, "test", 12_000_000, 104, 115_384.6, 83, "bitstream")

    def echo():
        while data := far.recv(4096):
            far.sendall(bytes(b for b in data for _ in range(2)))

    threading.Thread(target=echo, daemon=True).start()
    result = {}
    relay_thread = threading.Thread(
        target=lambda: result.update(why=relay(master, near, board, sessions=2, idle_timeout=30))
    )
    relay_thread.start()
    try:
        for payload in (b"\x00\xa5\x11\x13\n\r", bytes(range(256))):
            port = SerialTransport(path, 115200)
            port.write(payload)
            got = b""
            deadline = time.monotonic() + 10
            while len(got) < 2 * len(payload) and time.monotonic() < deadline:
                got += port.read(4096, 0.1)
            port.close()
            assert got == bytes(b for b in payload for _ in range(2))
            time.sleep(0.3)  # the relay notices the closed device
        relay_thread.join(10)
        assert result == {"why": "sessions"} and board.sessions == 2
    finally:
        os.close(master)
        near.close()
        far.close()


def test_sim_board_refuses_bad_input(tmp_path, capsys):
    save_model(tiny_model(), tmp_path / "tiny.lutnet")
    model = str(tmp_path / "tiny.lutnet")
    assert main(["sim-board", model, "--board", "no-such-board"]) == 2
    assert "no-such-board" in capsys.readouterr().err
    assert main(["sim-board", model, "--port-file", model]) == 2
    assert "never overwrites its inputs" in capsys.readouterr().err
    assert main(["sim-board", str(tmp_path / "missing.lutnet")]) == 2
    assert "missing.lutnet" in capsys.readouterr().err


@pytest.mark.slow
def test_run_through_a_pty_matches_the_golden_model(tmp_path, capsys):
    """``spikelut sim-board`` serves the icebreaker design on /dev/pts/N; ``spikelut run``
    checks every answer; a second session sends noise and a corrupted frame first, and the
    board (and the client) resynchronise; the board stops after the two sessions."""
    model = tiny_model()
    save_model(model, tmp_path / "tiny.lutnet")
    port_file = tmp_path / "port"
    command = ["sim-board", str(tmp_path / "tiny.lutnet"), "--sessions", "2"]
    command += ["--idle-timeout", "300", "--port-file", str(port_file)]
    board = subprocess.Popen(
        [sys.executable, "-m", "spikelut.cli.main", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 600
        while not port_file.exists():
            assert board.poll() is None, board.communicate()
            assert time.monotonic() < deadline, "sim-board did not start"
            time.sleep(0.1)
        path = port_file.read_text().strip()
        assert path.startswith("/dev/pts/")

        raw = np.random.default_rng(5).integers(-16, 16, (12, 8))
        np.save(tmp_path / "x.npy", raw)
        argv = ["run", str(tmp_path / "tiny.lutnet"), "--port", path, "--baud", "115200"]
        assert main([*argv, "--input", str(tmp_path / "x.npy"), "--timeout", "30", "--json"]) == 0
        r = json.loads(capsys.readouterr().out)
        golden = run_classifier(model, raw).predictions.tolist()
        assert r["port"] == path and r["n"] == r["agree"] == 12 and r["mismatches"] == []
        assert r["predictions"] == golden

        time.sleep(0.5)  # a session ends when the device is closed: let the board see it
        transport = open_transport(path, baud=115200)
        assert isinstance(transport, SerialTransport)
        with BoardClient(transport, timeout=30, retries=1) as client:
            before = client.read_counters()
            good = p.encode_frame(FrameType.IDENTIFY, b"", 7)
            corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])
            transport.write(b"\x00\xa5\x13\xff" + corrupt)
            answers = [client.infer(v) for v in raw[:3].tolist()]
            after = client.read_counters()
        assert answers == golden[:3]
        assert after.errors > before.errors  # the board answered the bad frame with ERROR
        out, err = board.communicate(timeout=120)
        assert board.returncode == 0, err
        assert out.splitlines()[0] == path
        assert "served 2 host session(s); stopped: sessions" in err
        assert "divisor 104 (115,385 baud)" in err
    finally:
        if board.poll() is None:
            board.terminate()
            board.wait(60)
