"""Progress of long stages, for whoever watches: a small API with no terminal knowledge.

Code with a stage that can take more than a few seconds opens a :func:`task` and updates it
(steps done, the total when known, the phase it is in, figures such as the loss); nothing
happens unless a :class:`Renderer` is installed (:func:`rendering`), which only the command
line does, on a terminal. Two helpers follow work done elsewhere: :func:`follow_logs` reads
a tool's log files as they grow and turns their lines into phases and counts, and
:func:`report_to_parent` / :func:`follow_child` carry a count out of a child process (a
cocotb testbench) through a file named by :data:`CHILD_ENV`.

Updates may come from any thread; a renderer must accept that.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

__all__ = [
    "CHILD_ENV",
    "Renderer",
    "Task",
    "active",
    "follow_child",
    "follow_logs",
    "rendering",
    "report_to_parent",
    "task",
    "track",
]

T = TypeVar("T")

# the variable naming the file a child process appends its progress lines to
CHILD_ENV = "SPIKELUT_PROGRESS_FILE"


class Task:
    """One stage in progress: ``completed`` of ``total`` (None: unknown) ``unit``, the
    ``phase`` it is in, and named ``fields`` (figures such as ``loss``)."""

    def __init__(self, description: str, total: float | None = None, unit: str = ""):
        self.description = description
        self.total = total
        self.unit = unit
        self.completed: float = 0
        self.phase = ""
        self.fields: dict[str, Any] = {}
        self.started = time.monotonic()
        self._renderer = _renderer

    @property
    def elapsed(self) -> float:
        """Seconds since the task started."""
        return time.monotonic() - self.started

    @property
    def rate(self) -> float | None:
        """Units completed per second so far (None before the first one)."""
        seconds = self.elapsed
        return self.completed / seconds if self.completed and seconds > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (None when the total or the rate is unknown)."""
        rate = self.rate
        if self.total is None or not rate:
            return None
        return max(0.0, (self.total - self.completed) / rate)

    def update(
        self,
        *,
        completed: float | None = None,
        total: float | None = None,
        phase: str | None = None,
        **fields: Any,
    ) -> None:
        """Set what changed: the count, the total, the phase, or named figures."""
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if phase is not None:
            self.phase = phase
        self.fields.update(fields)
        if self._renderer is not None:
            self._renderer.updated(self)

    def advance(self, n: float = 1, **fields: Any) -> None:
        """Count ``n`` more units done (and set any named figures)."""
        self.update(completed=self.completed + n, **fields)


class Renderer(Protocol):
    """Shows tasks: told when each starts, changes and finishes (from any thread)."""

    def started(self, task: Task) -> None:
        """``task`` opened: show it."""

    def updated(self, task: Task) -> None:
        """Something of ``task`` changed: show its new state."""

    def finished(self, task: Task) -> None:
        """``task`` ended (done or not): stop showing it."""


_renderer: Renderer | None = None


def active() -> bool:
    """True when a renderer is installed (someone watches)."""
    return _renderer is not None


@contextlib.contextmanager
def rendering(renderer: Renderer | None) -> Iterator[None]:
    """Install ``renderer`` for the tasks opened inside the block (None: show nothing)."""
    global _renderer
    previous, _renderer = _renderer, renderer
    try:
        yield
    finally:
        _renderer = previous


@contextlib.contextmanager
def task(description: str, total: float | None = None, unit: str = "") -> Iterator[Task]:
    """A :class:`Task` shown while the block runs (by the installed renderer, if any)."""
    t = Task(description, total, unit)
    if t._renderer is not None:
        t._renderer.started(t)
    try:
        yield t
    finally:
        if t._renderer is not None:
            t._renderer.finished(t)


def track(
    items: Iterable[T], description: str, total: float | None = None, unit: str = ""
) -> Iterator[T]:
    """Yield ``items``, counting each one done in a task (``total`` defaults to ``len``)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with task(description, total, unit) as t:
        for item in items:
            yield item
            t.advance()


# -- following a tool's log files ----------------------------------------------------------

LineRule = Callable[[str, Task], None]


@contextlib.contextmanager
def follow_logs(
    t: Task, logs: Sequence[tuple[str | os.PathLike, LineRule]], interval: float = 0.2
) -> Iterator[None]:
    """While the block runs, read each log file as it grows (it may not exist yet) and
    pass every complete new line to its rule, which updates task ``t``. Does nothing
    without a renderer."""
    if t._renderer is None:
        yield
        return
    readers = [_LineReader(Path(path), rule) for path, rule in logs]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(interval):
            for r in readers:
                r.read(t)

    thread = threading.Thread(target=poll, name="spikelut-progress-logs", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class _LineReader:
    """The complete lines appended to one file since the last read."""

    def __init__(self, path: Path, rule: LineRule):
        self.path, self.rule = path, rule
        self.offset = 0
        self.partial = b""

    def read(self, t: Task) -> None:
        try:
            with open(self.path, "rb") as f:
                if f.seek(0, os.SEEK_END) < self.offset:  # truncated: written anew
                    self.offset, self.partial = 0, b""
                f.seek(self.offset)
                data = f.read()
        except OSError:  # not created yet
            return
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            self.rule(line.decode(errors="replace"), t)


# -- a count from a child process ----------------------------------------------------------

_child_state: dict[str, Any] = {}


def report_to_parent(completed: int, total: int | None = None, every: float = 0.25) -> None:
    """In a child process started with :data:`CHILD_ENV` set: record ``completed`` (of
    ``total``) for the parent's :func:`follow_child`, at most every ``every`` seconds
    (always the last one). Does nothing when the variable is not set."""
    path = os.environ.get(CHILD_ENV)
    if not path:
        return
    now = time.monotonic()
    if completed != total and now - _child_state.get(path, -every) < every:
        return
    _child_state[path] = now
    with open(path, "a") as f:
        f.write(f"{completed} {'' if total is None else total}\n")


@contextlib.contextmanager
def follow_child(
    path: str | os.PathLike, description: str, unit: str = "", interval: float = 0.2
) -> Iterator[dict[str, str]]:
    """While the block runs a child process, show the count it reports through the file
    ``path`` (emptied first) as a task, opened at its first report. Yields the environment
    entries to give the child (none without a renderer)."""
    if _renderer is None:
        yield {}
        return
    path = Path(path)
    path.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        holder: list[Task] = []

        def rule(line: str, _t: Task) -> None:
            fields = line.split()
            if not fields:
                return
            if not holder:
                holder.append(stack.enter_context(task(description, unit=unit)))
            total = float(fields[1]) if len(fields) > 1 else None
            holder[0].update(completed=float(fields[0]), total=total)

        with follow_logs(Task(description), [(path, rule)], interval):
            yield {CHILD_ENV: str(path)}
