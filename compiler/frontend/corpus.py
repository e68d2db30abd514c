"""A text corpus every Python user has: the running interpreter's standard-library sources.

:func:`stdlib_corpus` reads the ``*.py`` files under ``sysconfig.get_paths()["stdlib"]``
(or another ``root``), found recursively, in a fixed order, and concatenates their bytes:

- order: sorted by the path relative to the root, as a POSIX string (``"a/b.py"``), so
  every machine with the same Python release reads the same bytes in the same order;
- skipped: any file under a folder named ``site-packages`` or ``dist-packages`` (installed
  third-party packages, different on every machine), ``__pycache__``, ``test`` or ``tests``
  (the regression suites: ``test/``, ``ctypes/test``, ``unittest/test``, ``lib2to3/tests``
  ...) or ``idle_test`` (``idlelib/idle_test``): generated data, long literal tables and
  deliberately odd code, not the library's own style;
- concatenated as raw bytes (no separators: a source file ends with a newline), then cut at
  ``max_bytes`` (:data:`STDLIB_CORPUS_BYTES`, 8 MiB, about two thirds of CPython 3.11's
  library after the skips), so training on it is the same work on every machine.

The validation text is not cut off here: a language model's held-out windows are drawn from
the whole corpus by its training run's split (:func:`~spikelut.compiler.frontend.text.make_split`
and :func:`~spikelut.compiler.frontend.text.training_split`), as for any other text.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikelut.compiler.errors import UserError

__all__ = ["SKIPPED_FOLDERS", "STDLIB_CORPUS_BYTES", "Corpus", "stdlib_corpus", "stdlib_files"]

STDLIB_CORPUS_BYTES = 8 * 2**20
# folder names whose files are not part of the corpus (see the module docstring)
SKIPPED_FOLDERS = frozenset(
    {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}
)
# less than this after the skips means the sources are not installed (a .pyc-only Python)
_MIN_BYTES = 1 << 20


@dataclass(frozen=True)
class Corpus:
    """A corpus's bytes (``data``, uint8) and where they come from: the ``root`` folder,
    the ``files`` read (relative POSIX paths, in order; the last one may be cut), their
    total size before the cut (``source_bytes``) and the Python release."""

    data: np.ndarray
    root: str
    files: tuple[str, ...]
    source_bytes: int
    python: str

    def describe(self) -> dict:
        """JSON-able figures: root, Python, file count (``n_files``), first and last file,
        bytes used and available, SHA-256."""
        return {
            "source": "python-stdlib",
            "root": self.root,
            "python": self.python,
            "n_files": len(self.files),
            "first_file": self.files[0] if self.files else None,
            "last_file": self.files[-1] if self.files else None,
            "bytes": len(self.data),
            "source_bytes": self.source_bytes,
            "sha256": hashlib.sha256(self.data.tobytes()).hexdigest(),
        }


def stdlib_files(root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """``(relative POSIX path, path)`` of the corpus's files under ``root`` (default: the
    running interpreter's standard library), in the corpus's order."""
    base = Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    found = []
    for folder, dirs, names in os.walk(base):
        dirs[:] = [d for d in dirs if d not in SKIPPED_FOLDERS]  # not descended into
        for name in names:
            path = Path(folder, name)
            if name.endswith(".py") and path.is_file():
                found.append((path.relative_to(base).as_posix(), path))
    return sorted(found)


def stdlib_corpus(
    max_bytes: int = STDLIB_CORPUS_BYTES, *, root: str | os.PathLike | None = None
) -> Corpus:
    """The standard-library corpus (see the module docstring): at most ``max_bytes`` bytes
    of the sources under ``root`` (default: the running interpreter's standard library).
    Reads only the files it needs. UserError (one line) when the folder holds fewer bytes
    of sources than the smaller of ``max_bytes`` and 1 MiB (a Python installed without
    them), or ``max_bytes`` is below 1. More than 1 MiB but less than ``max_bytes`` gives
    all of it."""
    if max_bytes < 1:
        raise UserError(f"the corpus size must be at least 1 byte, not {max_bytes}")
    base = Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    files = stdlib_files(base)
    total = sum(p.stat().st_size for _, p in files)
    if total < min(_MIN_BYTES, max_bytes):
        raise UserError(
            f"{base} holds {total:,} bytes of Python sources; this Python was installed "
            "without its standard library's sources"
        )
    chunks, used, names = [], 0, []
    for rel, path in files:
        if used >= max_bytes:
            break
        raw = path.read_bytes()[: max_bytes - used]
        chunks.append(raw)
        names.append(rel)
        used += len(raw)
    data = np.frombuffer(bytearray(b"".join(chunks)), np.uint8)
    return Corpus(
        data=data,
        root=str(base),
        files=tuple(names),
        source_bytes=total,
        python=sys.version.split()[0],
    )
