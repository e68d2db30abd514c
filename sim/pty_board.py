"""The simulated board behind a pseudo-terminal: a serial device path, as a USB UART gives.

:func:`pty_board` runs the complete design a board build of a classifier puts in the
bitstream (board top, UART host link, boot loader, core) on Verilator, at the board's own
clock with the UART divisor the build uses for ``baud``
(:func:`~spikelut.hdl.uart.uart_divisor`), and opens a pseudo-terminal pair whose slave
(``/dev/pts/N``) is the board's serial port: the host opens it with pyserial
(:class:`~spikelut.boards.host.SerialTransport`, as ``spikelut run --port /dev/pts/N``
does), and every byte it writes reaches the design's RX pin with the UART's bit timing, and
every byte the design's TX pin sends comes back. Inside, the simulation's UART bridge
(:mod:`spikelut.sim.uart_bridge`) serves one TCP connection, which :func:`relay` joins to
the pty's master side for as long as the board serves.

Hosts may come and go: a host session is one opening of the slave (the master reads EIO
while no host holds it open). The board serves until ``sessions`` sessions have ended, no
host has talked for ``idle_timeout`` seconds, or ``stop`` is set.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from spikelut.boards.design import board_core, make_core, model_hash, model_tables
from spikelut.boards.platforms import BoardSpec
from spikelut.compiler.errors import UserError
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.hdl.uart import uart_divisor
from spikelut.sim.board_sim import board_flash_area, simulated_board
from spikelut.sim.uart_bridge import IDLE_WAIT_ENV, SESSION_ENV

__all__ = ["PtyBoard", "open_pty", "pty_board", "relay"]

# wall seconds the simulation waits for the host when both sides are quiet
IDLE_WAIT_S = 0.01


@dataclass
class PtyBoard:
    """A serving simulated board: ``path`` (the device to open), the design's clock, UART
    ``divisor`` and the ``baud`` it makes, the simulated clock period, and the sessions
    served so far (:func:`relay` counts them)."""

    path: str
    board: str
    clock_hz: int
    divisor: int
    baud: float
    clock_ns: int
    tables: str
    sessions: int = 0


def open_pty() -> tuple[int, str]:
    """A pseudo-terminal pair: ``(master fd, slave path)``. The slave is put in raw mode
    (no echo, no line editing, 8-bit clean) and closed: a host opens it by its path."""
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        path = os.ttyname(slave)
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return master, path


def _read_master(master: int) -> bytes | None:
    """Bytes a host wrote (maybe none), or None while no host holds the slave open."""
    try:
        return os.read(master, 4096)
    except BlockingIOError:
        return b""
    except OSError as e:
        if e.errno == errno.EIO:
            return None
        raise


def _write_master(master: int, data: bytes) -> None:
    """Send ``data`` to the host; dropped, as on a wire, when no host holds the port."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(master, view) :]
        except BlockingIOError:
            select.select([], [master], [], 0.05)
        except OSError as e:
            if e.errno == errno.EIO:
                return
            raise


def relay(
    master: int,
    sock: socket.socket,
    board: PtyBoard,
    *,
    sessions: int | None = None,
    idle_timeout: float | None = None,
    stop: threading.Event | None = None,
) -> str:
    """Move bytes between the pty's master side and the simulation's socket until
    ``sessions`` host sessions have ended, ``idle_timeout`` seconds pass with no byte
    from a host, or ``stop`` is set; returns which (``"sessions"``, ``"idle"``,
    ``"stopped"``). Counts sessions in ``board.sessions``. ConnectionError when the
    simulation closes the socket."""
    sock.setblocking(True)  # reads only after select says there is something
    connected = False
    last = time.monotonic()
    while True:
        if stop is not None and stop.is_set():
            return "stopped"
        if idle_timeout is not None and time.monotonic() - last > idle_timeout:
            return "idle"
        data = _read_master(master)
        if data is None:
            if connected:
                connected = False
                board.sessions += 1
                if sessions is not None and board.sessions >= sessions:
                    return "sessions"
            # no host: nothing can arrive from it; the design only answers
            time.sleep(0.02)
        else:
            connected = True
            if data:
                last = time.monotonic()
                sock.sendall(data)
        _pass_replies(master, sock, connected)


def _pass_replies(master: int, sock: socket.socket, connected: bool) -> None:
    """Wait briefly for either side; send what the simulation sent to the host (dropped,
    as on a wire, when no host is there)."""
    readable, _, _ = select.select([sock, master] if connected else [sock], [], [], 0.02)
    if sock not in readable:
        return
    reply = sock.recv(65536)
    if not reply:
        raise ConnectionError("the board simulation ended")
    if connected:
        _write_master(master, reply)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (the simulation process inherits them), then restore."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def pty_board(
    model: ClassifierMLP,
    spec: BoardSpec,
    *,
    baud: int = 115200,
    tables: str = "flash",
    kind: str = "auto",
    max_seconds: float = 24 * 3600.0,
    progress: Callable[[str], None] = print,
) -> Iterator[tuple[PtyBoard, Callable[..., str]]]:
    """Start the simulated board of ``model`` for ``spec`` with core ``kind`` (as ``spikelut
    build --core``; see the module docstring);
    yields ``(board, serve)``: ``serve(sessions=, idle_timeout=, stop=)`` relays host
    sessions (:func:`relay`) and returns why it stopped. ``tables``: ``"flash"`` (SPRAM
    tables boot from the simulated flash; memories the bitstream initialises hold the
    model's tables anyway) or ``"link"`` (blank flash: a board with SPRAM holds no valid
    tables until a host loads them with ``spikelut run --load-tables``).
    ``max_seconds``: the longest the simulation serves, in wall time. UserError when the
    model does not fit the board or ``baud`` is out of the UART's reach."""
    spec.require_host_link()
    clock_hz = round(spec.clock_hz)
    try:
        divisor = uart_divisor(clock_hz, baud)
        core_plan = board_core(model, spec, kind=kind)
        core = make_core(model, core_plan, clock_hz=clock_hz, divisor=divisor)
    except ValueError as e:
        raise UserError(str(e)) from None
    area = board_flash_area(core, model_tables(model), model_hash(model))
    # the simulator's clock is a whole number of nanoseconds; the UART models run from it
    clock_ns = max(1, round(1e9 / clock_hz))
    progress(f"sim-board: simulating the {spec.name} board design in Verilator")
    env = {SESSION_ENV: str(max_seconds), IDLE_WAIT_ENV: str(IDLE_WAIT_S)}
    with (
        _environment(env),
        simulated_board(
            core, flash_area=area if tables == "flash" else None, clock_ns=clock_ns
        ) as sim,
    ):
        host, _, port = sim.port.removeprefix("tcp:").rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        master, path = open_pty()
        board = PtyBoard(
            path=path,
            board=spec.name,
            clock_hz=clock_hz,
            divisor=divisor,
            baud=clock_hz / divisor,
            clock_ns=clock_ns,
            tables="flash"
            if area is not None and tables == "flash"
            else "none"
            if core.boot_load
            else "bitstream",
        )
        try:
            yield board, lambda **kw: relay(master, sock, board, **kw)
        finally:
            os.close(master)
            sock.close()
