"""Bridge a simulated design's UART pins to a TCP socket, so host code can talk to it.

Runs inside a cocotb test: :func:`serve_tcp` listens on a local port, writes the port number
to ``port_file`` (so the host side, in another process, knows where to connect), accepts one
connection, and then moves bytes both ways with real UART bit timing through
:class:`~spikelut.sim.uart_model.UartSource` / :class:`~spikelut.sim.uart_model.UartSink`,
until the host closes the connection. The host connects with
``spikelut.boards.host.open_transport("tcp:127.0.0.1:PORT")``.
"""

from __future__ import annotations

import os
import socket
import time

from cocotb.triggers import Timer

from spikelut.compiler.fileio import write_text_atomic
from spikelut.sim.uart_model import UartSink, UartSource


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
    session_timeout_s: float = 600.0,
) -> dict:
    """Serve one host connection; returns byte counts ``{"to_design", "from_design"}``.

    While the host is quiet the simulation advances ``poll_bits`` bit times per check of the
    socket. Raises TimeoutError when nobody connects in ``accept_timeout_s`` or the session
    lasts longer than ``session_timeout_s`` of wall time.
    """
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
                else:
                    await Timer(source.bit_ns * poll_bits, unit="ns", round_mode="round")
        finally:
            conn.close()
    finally:
        server.close()
