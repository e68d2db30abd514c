"""The terminal's view of :mod:`spikelut.compiler.progress`: rich progress bars on stderr.

:func:`terminal_progress` is what :func:`spikelut.cli.main.main` wraps a command in when
stderr is a terminal and ``--json`` is not given: every open task is a line with a bar, its
count, rate, ETA, phase and figures, drawn below the log lines, which go through the same
console so the two never tangle. The display vanishes when the command ends; only the log
lines stay.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from spikelut.compiler import progress

__all__ = ["RichRenderer", "describe", "terminal_progress"]


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def describe(task: progress.Task) -> str:
    """The text after a task's bar: count of total, rate, ETA, phase and figures."""
    parts = []
    unit = f" {task.unit}" if task.unit else ""
    if task.total is not None:
        parts.append(f"{_count(task.completed)}/{_count(task.total)}{unit}")
    elif task.completed and task.unit:
        parts.append(f"{_count(task.completed)}{unit}")
    rate = task.rate
    if rate is not None and task.unit:
        parts.append(f"{rate:,.1f} {task.unit}/s" if rate < 100 else f"{rate:,.0f} {task.unit}/s")
    eta = task.eta
    if eta is not None:
        parts.append(f"ETA {_duration(eta)}")
    if task.phase:
        parts.append(task.phase)
    for name, value in task.fields.items():
        if value is not None:
            parts.append(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}")
    return "  ".join(parts)


class RichRenderer:
    """A :class:`~spikelut.compiler.progress.Renderer` drawing tasks with ``rich``."""

    def __init__(self, console: Console):
        self.console = console
        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            # print()s to a terminal stdout go above the bars; a redirected stdout (and
            # --json) stays untouched
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=True,
        )
        self._ids: dict[int, int] = {}
        self._lock = threading.Lock()

    def started(self, task: progress.Task) -> None:
        """Add a line for ``task`` (starting the display with the first)."""
        with self._lock:
            if not self._ids:
                self.bars.start()
            self._ids[id(task)] = self.bars.add_task(
                task.description, total=task.total, detail=describe(task)
            )

    def updated(self, task: progress.Task) -> None:
        """Redraw ``task``'s line."""
        with self._lock:
            key = self._ids.get(id(task))
            if key is not None:
                self.bars.update(
                    key, completed=task.completed, total=task.total, detail=describe(task)
                )

    def finished(self, task: progress.Task) -> None:
        """Remove ``task``'s line (stopping the display with the last)."""
        with self._lock:
            key = self._ids.pop(id(task), None)
            if key is not None:
                self.bars.remove_task(key)
            if not self._ids:
                self.bars.stop()


class _ConsoleHandler(logging.Handler):
    """Log lines printed through the console, above any progress display."""

    def __init__(self, console: Console):
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(
                self.format(record), markup=False, highlight=False, emoji=False, soft_wrap=True
            )
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def terminal_progress(handler: logging.Handler) -> Iterator[None]:
    """Show progress on stderr for the block, and print what ``handler`` (the command
    line's stderr log handler) would through the same console."""
    console = Console(file=sys.stderr)
    renderer = RichRenderer(console)
    view = _ConsoleHandler(console)
    view.setFormatter(handler.formatter)
    for f in handler.filters:
        view.addFilter(f)
    view.setLevel(handler.level)
    root = logging.getLogger()
    root.removeHandler(handler)
    root.addHandler(view)
    try:
        with progress.rendering(renderer):
            yield
    finally:
        root.removeHandler(view)
        root.addHandler(handler)
        with renderer._lock:
            if renderer._ids:
                renderer.bars.stop()
