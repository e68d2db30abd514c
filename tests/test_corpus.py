"""The standard-library corpus: which files, in which order, cut where; and the real one."""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path

import pytest

from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.corpus import (
    STDLIB_CORPUS_BYTES,
    stdlib_corpus,
    stdlib_files,
)

FILES = {
    "zeta.py": b"z = 1\n",
    "alpha.py": b"a = 1\n",
    "pkg/__init__.py": b"# pkg\n",
    "pkg/mod.py": b"def f():\n    return 2\n",
    "pkg.py": b"p = 0\n",  # sorts before pkg/... ('.' < '/')
    "notes.txt": b"not python\n",
    "test/test_alpha.py": b"skipped\n",
    "pkg/tests/test_mod.py": b"skipped\n",
    "idlelib/idle_test/t.py": b"skipped\n",
    "idlelib/editor.py": b"e = 3\n",
    "site-packages/numpy/__init__.py": b"skipped\n",
    "__pycache__/alpha.py": b"skipped\n",
    "lib2to3/tests/data/x.py": b"skipped\n",
}
ORDER = ["alpha.py", "idlelib/editor.py", "pkg.py", "pkg/__init__.py", "pkg/mod.py", "zeta.py"]


@pytest.fixture
def root(tmp_path):
    for rel, data in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return tmp_path


def test_files_are_sorted_by_relative_path_and_test_folders_skipped(root):
    assert [rel for rel, _ in stdlib_files(root)] == ORDER


def test_the_corpus_concatenates_them_and_cuts_at_the_size(root):
    whole = b"".join(FILES[f] for f in ORDER)
    c = stdlib_corpus(len(whole), root=root)
    assert c.data.tobytes() == whole and c.files == tuple(ORDER)
    assert c.source_bytes == len(whole)
    with pytest.raises(UserError, match="without its standard library's sources"):
        stdlib_corpus(len(whole) + 1, root=root)  # fewer bytes than asked, under 1 MiB
    cut = stdlib_corpus(15, root=root)  # alpha.py (6) + editor.py (6) + 3 bytes of pkg.py
    assert cut.data.tobytes() == whole[:15]
    assert cut.files == ("alpha.py", "idlelib/editor.py", "pkg.py")
    d = cut.describe()
    assert d["n_files"] == 3 and d["bytes"] == 15 and d["last_file"] == "pkg.py"
    assert d["sha256"] == hashlib.sha256(whole[:15]).hexdigest()


def test_no_sources_is_one_line_error(tmp_path):
    (tmp_path / "only.txt").write_text("x")
    with pytest.raises(UserError, match="without its standard library's sources"):
        stdlib_corpus(root=tmp_path)
    with pytest.raises(UserError, match="at least 1 byte"):
        stdlib_corpus(0, root=tmp_path)


def test_the_running_pythons_library_gives_the_capped_corpus():
    """The default: this interpreter's library, at least 8 MiB of sources after the skips
    on CPython 3.11+, so the corpus is exactly :data:`STDLIB_CORPUS_BYTES` long; reading it
    twice gives the same bytes."""
    c = stdlib_corpus()
    assert c.root == sysconfig.get_paths()["stdlib"]
    assert len(c.data) == STDLIB_CORPUS_BYTES < c.source_bytes
    assert c.files[0] == "__future__.py"
    assert not any(p in {"test", "tests", "site-packages"} for f in c.files for p in f.split("/"))
    first = Path(sysconfig.get_paths()["stdlib"], "__future__.py").read_bytes()
    assert c.data[: len(first)].tobytes() == first
    assert stdlib_corpus(1 << 16).data.tobytes() == c.data[: 1 << 16].tobytes()
