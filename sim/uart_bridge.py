"""Bridge a simulated design's UART pins to a TCP socket, so host code can talk to it.

Runs inside a cocotb test: :func:`serve_tcp` listens on a local port, writes the port number
to ``port_file`` (so the host side, in another process, knows where to connect), accepts one
connection, and then moves bytes both ways with real UART bit timing through
:class:`~spikelut.sim.uart_model.UartSource` / :class:`~spikelut.sim.uart_model.UartSink`,
until the host closes the connection. The host connects with
``spikelut.boards.host.open_transport("tcp:127.0.0.1:PORT")``.

Two limits can be set by the process that starts the simulation, through its environment
(the simulation inherits it): ``SPIKELUT_BRIDGE_SESSION_S``, the longest session in wall
seconds (default 600), and ``SPIKELUT_BRIDGE_IDLE_WAIT_S``: when both the host and the
design have been quiet for :data:`IDLE_POLLS` checks, wait up to that many wall seconds for
the host before advancing the simulation again (default 0: never wait), so a board that
serves a long session does not spin while nobody talks to it.
"""

from __future__ import annotations

import os
import select
import socket
import time

from cocotb.triggers import First, Timer

from spikelut.compiler.fileio import write_text_atomic
from spikelut.sim.uart_model import UartSink, UartSource

SESSION_ENV = "SPIKELUT_BRIDGE_SESSION_S"
IDLE_WAIT_ENV = "SPIKELUT_BRIDGE_IDLE_WAIT_S"
IDLE_POLLS = 256
MAX_BACKOFF = 64  # a quiet bridge checks the host at most every MAX_BACKOFF * poll_bits bits


def _accept(server: socket.socket, timeout_s: float) -> socket.socket:
    server.settimeout(timeout_s)
    try:
        conn, _ = server.accept()
    except TimeoutError:
        raise TimeoutError(f"no host connected within {timeout_s:g} s") from None
    conn.setblocking(False)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _recv_nowait(conn: socket.socket) -> bytes | None:
    """Bytes waiting on ``conn`` (maybe none); None once the host has closed it."""
    try:
        data = conn.recv(4096)
    except (BlockingIOError, InterruptedError):
        return b""
    except ConnectionResetError:
        return None
    return data or None


async def serve_tcp(
    source: UartSource,
    sink: UartSink,
    *,
    port_file: str | os.PathLike,
    poll_bits: float = 8,
    accept_timeout_s: float = 120.0,
    session_timeout_s: float | None = None,
    idle_wait_s: float | None = None,
) -> dict:
    """Serve one host connection; returns byte counts ``{"to_design", "from_design"}``.

    While the host is quiet the simulation advances ``poll_bits`` bit times per check of the
    socket, doubling (up to :data:`MAX_BACKOFF` times) while neither side has anything to
    say; bytes from the design wake the bridge at once (``sink.arrived``, a cocotb
    ``Event`` the sink sets when bytes come in), so replies reach the host without delay.
    Raises TimeoutError when nobody connects in ``accept_timeout_s`` or the session
    lasts longer than ``session_timeout_s`` of wall time. ``session_timeout_s`` and
    ``idle_wait_s`` default to the environment's (see the module docstring).
    """
    if session_timeout_s is None:
        session_timeout_s = float(os.environ.get(SESSION_ENV, "600"))
    if idle_wait_s is None:
        idle_wait_s = float(os.environ.get(IDLE_WAIT_ENV, "0"))
    sink.start()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    write_text_atomic(port_file, f"{server.getsockname()[1]}\n")
    stats = {"to_design": 0, "from_design": 0}
    try:
        conn = _accept(server, accept_timeout_s)
        deadline = time.monotonic() + session_timeout_s
        idle = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"host session exceeded {session_timeout_s:g} s")
                out = sink.read_nowait()
                if out:
                    conn.setblocking(True)
                    conn.sendall(out)
                    conn.setblocking(False)
                    stats["from_design"] += len(out)
                data = _recv_nowait(conn)
                if data is None:
                    return stats
                if data:
                    stats["to_design"] += len(data)
                    await source.send(data)
                    idle = 0
                    continue
                idle = 0 if out else idle + 1
                if idle_wait_s and idle >= IDLE_POLLS:
                    # wall time passes, simulated time does not, while nobody sends
                    select.select([conn], [], [], idle_wait_s)
                wait_bits = poll_bits * min(1 << min(idle, 30), MAX_BACKOFF)
                sink.arrived.clear()
                if not sink.pending():
                    await First(
                        sink.arrived.wait(),
                        Timer(source.bit_ns * wait_bits, unit="ns", round_mode="round"),
                    )
        finally:
            conn.close()
    finally:
        server.close()
