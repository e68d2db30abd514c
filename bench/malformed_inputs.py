"""Issue #20's malformed-input campaign: crafted model files, CLI misuse, host-link frames.

Three groups of cases, every case generated deterministically from ``--seed``:

1. ``files``: small valid model files of every architecture (float and integer classifier,
   rnn, rnn-int, transformer), mutated (truncations, byte flips in every region of the zip,
   header.json variants, arrays replaced by self-consistent but invalid ones, zip-level
   tricks) and run through the commands that read a model (eval, quantize, compile, sim,
   build, run, report, sample, train lm --resume);
2. ``cli``: every command and option with bad values, outputs that cannot or must not be
   written, missing inputs and inputs of the wrong kind, flash with files that are not
   bitstreams and --dry-run;
3. ``frames``: malformed host-link frames against the gateware host link
   (:class:`~spikelut.hdl.hostlink.link.HostLink` in Amaranth's simulator, a dummy core whose
   result depends on the tables it holds), each followed by a valid IDENTIFY and INFER.

Every case gets a class:

- ``ok``: a command refused the input with exit status 2 and exactly one stderr line naming
  the problem (or, for a mutation that leaves the model as it was, behaved as on the
  original); a frame got the specified ERROR (or silence) and the next valid request its
  correct reply;
- ``traceback``: an exception escaped ``main``, or "Traceback" was printed;
- ``silent``: the input was accepted when it must be refused (exit 0, or the command reached
  the stage the campaign stubs out); a frame was acted on, or tables became valid, when they
  must not;
- ``data_loss``: an input file changed or vanished, or something was written beside the
  inputs by a command that failed (or by --dry-run); the tables a board runs changed
  without a commit;
- ``wrong``: none of these, but not the specified answer either (another exit status, more
  than one line, a line that does not name the problem, a missing or wrong reply).

Commands run in-process through :func:`spikelut.cli.main.main` with stdout and stderr
captured, each in a fresh temporary directory that is its working directory; a few run
through the installed ``spikelut`` in a subprocess. Stages the campaign does not run
(synthesis, Verilator, a board or its simulation, LM training and quantisation, a
programmer, the demo, the doctor's smoke checks) are replaced by a stub that stops the
command: a command that gets there accepted its inputs.

Usage: ``python bench/malformed_inputs.py [--quick] [--json] [--seed N]
[--groups files,cli,frames] [--only TEXT] [--list] [--timeout S]``. ``--quick`` runs about 60
cases (for the tests). Exit status 1 when any case is a traceback, silent or data_loss.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import hashlib
import importlib
import io
import json
import logging
import os
import pickle
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("ok", "traceback", "silent", "data_loss", "wrong")
FAILING = ("traceback", "silent", "data_loss")
GROUPS = ("files", "cli", "frames")
SIZES = {"files": 200, "cli": 200, "frames": 100}
QUICK_SIZES = {"files": 24, "cli": 24, "frames": 12}
MODEL = "m.lutnet"  # the name a mutated model file gets in its case's directory
UNWRITABLE = "/proc/spikelut-campaign/out"  # no one creates files in procfs, root included
HUGE = "1" + "0" * 30
ICE40_START = b"\xff\x00\x00\xff\x7e\xaa\x99\x7e"
ECP5_START = b"\xff\x00Part: LFE5U-25F-8MG285C\x00\xff\xff\xff\xbd\xb3"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- running a command ------------------------------------------------------------------------


class Reached(BaseException):
    """Raised by a stub: the command got to a stage the campaign does not run."""


class CaseTimeout(BaseException):
    """A case ran longer than its time limit."""


# module -> functions replaced by a stub that raises Reached
STUBS = {
    "spikelut.cli.sim": ("simulate",),
    "spikelut.cli.run": ("run_board_sim", "open_transport"),
    "spikelut.boards.build": ("run_build",),
    "spikelut.cli.demo": ("run_demo",),
    "spikelut.sim.smoke": ("check_amaranth_sim", "check_verilator", "check_bitstream"),
    "spikelut.cli.flash": ("run_program",),
    "spikelut.cli.train_lm": ("train_lm",),
    "spikelut.cli.quantize": ("quantize_rnn", "quantize_transformer"),
}


@contextlib.contextmanager
def stubbed(reached: list[str], real: tuple[str, ...] = ()) -> Iterator[None]:
    """Replace the :data:`STUBS` (but those named in ``real``) for the duration; each
    records its name when reached."""
    saved = []

    def stub_for(name: str) -> Callable:
        def stub(*args, **kwargs):
            reached.append(name)
            raise Reached(name)

        return stub

    try:
        for module_name, names in STUBS.items():
            module = importlib.import_module(module_name)
            for name in names:
                if name in real:
                    continue
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, stub_for(name))
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise CaseTimeout in the main thread after ``seconds`` (no limit elsewhere)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise CaseTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Run:
    """What one command did."""

    status: int | None = None
    out: str = ""
    err: str = ""
    exc: str | None = None  # the traceback of an exception that escaped main
    reached: str | None = None  # the stub the command got to
    timed_out: bool = False

    @property
    def failed(self) -> bool:
        return self.reached is None and self.status != 0

    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    cwd = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)


@contextlib.contextmanager
def _fresh_logging() -> Iterator[None]:
    """No root handlers, so that the CLI's ``logging.basicConfig`` writes to the captured
    stderr; the caller's handlers and level come back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def run_inprocess(
    argv: list[str], work: Path, *, timeout: float | None, entry=None, real: tuple = ()
) -> Run:
    """``entry(argv)`` (default :func:`spikelut.cli.main.main`) in ``work``, its output
    captured and the :data:`STUBS` in place."""
    if entry is None:
        from spikelut.cli.main import main as entry
    out_buf, err_buf = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_buf, "utf-8", "backslashreplace", write_through=True)
    err = io.TextIOWrapper(err_buf, "utf-8", "backslashreplace", write_through=True)
    run, reached = Run(), []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_working_dir(work))
        stack.enter_context(_fresh_logging())
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        stack.enter_context(stubbed(reached, real))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("default")  # each warning once, as in a fresh process
        try:
            with deadline(timeout):
                run.status = entry(list(argv))
                gc.collect()  # objects the command dropped go now, their warnings with them
        except Reached:
            pass
        except CaseTimeout:
            run.timed_out = True
        except SystemExit as e:
            run.status = e.code if isinstance(e.code, int) else 1
        except BaseException:
            run.exc = traceback.format_exc()
    run.reached = reached[0] if reached else None
    run.out = out_buf.getvalue().decode("utf-8", "backslashreplace")
    run.err = err_buf.getvalue().decode("utf-8", "backslashreplace")
    return run


def spikelut_command() -> list[str]:
    """The installed ``spikelut`` beside this Python (or ``python -m`` its main module)."""
    exe = Path(sys.executable).with_name("spikelut")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "spikelut.cli.main"]


def run_subprocess(argv: list[str], work: Path, *, timeout: float | None) -> Run:
    """``spikelut argv`` in a subprocess in ``work`` (nothing stubbed)."""
    try:
        proc = subprocess.run(
            [*spikelut_command(), *argv], cwd=work, capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return Run(timed_out=True)
    return Run(
        status=proc.returncode,
        out=proc.stdout.decode("utf-8", "backslashreplace"),
        err=proc.stderr.decode("utf-8", "backslashreplace"),
    )


# -- what a case did to its directory ----------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every entry below ``root``: files by SHA-256, links by target, directories."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                seen[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                seen[rel] = "dir"
            elif path.is_file():
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                seen[rel] = "special"
    return seen


def losses(before: dict[str, str], after: dict[str, str], *, wrote_ok: bool) -> list[str]:
    """Inputs changed or removed; and, unless ``wrote_ok``, entries that appeared."""
    notes = [f"removed {k}" for k in before if k not in after]
    notes += [f"changed {k}" for k in before if k in after and after[k] != before[k]]
    if not wrote_ok:
        notes += [f"wrote {k}" for k in after if k not in before]
    return notes


# -- command-line cases ----------------------------------------------------------------------


@dataclass
class CliCase:
    """One command line against files put in a fresh directory.

    ``files``: name -> bytes, the name of a base file (copied), or None (an empty
    directory). ``expect``: "refuse" (exit 2 and one line naming one of ``words``),
    "accept" (exit 0), or "same" (``files[MODEL]`` is a mutated copy of the base file
    ``original``: refused as above, or, when it loads as the original model, acting as the
    command does on the original). ``dry_run``: nothing may be written, even on success.
    """

    group: str
    name: str
    argv: list[str]
    files: dict[str, bytes | str | None] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    expect: str = "refuse"
    original: str | None = None
    dry_run: bool = False
    subprocess: bool = False
    real: tuple[str, ...] = ()  # stubs left out: these run for real

    @property
    def command(self) -> str:
        head = self.argv[:2] if self.argv[:1] == ["train"] else self.argv[:1]
        return " ".join(head) or "(none)"


@dataclass
class Verdict:
    """A case's class and what led to it."""

    group: str
    name: str
    cls: str
    detail: str = ""
    seconds: float = 0.0


def _names_problem(line: str, words: tuple[str, ...]) -> bool:
    words = tuple(w for w in words if w)
    return not words or any(w in line for w in words)


def refused_cleanly(run: Run, words: tuple[str, ...]) -> tuple[bool, str]:
    """Exit 2, one stderr line ``spikelut ...: error: ...`` naming one of ``words``."""
    lines = run.error_lines()
    if run.status != 2:
        return False, f"exit {run.status}; stderr {lines[:2]}"
    if len(lines) != 1:
        return False, f"{len(lines)} stderr lines: {lines[:3]}"
    if not (lines[0].startswith("spikelut") and ": error: " in lines[0]):
        return False, f"not an error line: {lines[0]!r}"
    if not _names_problem(lines[0], words):
        return False, f"does not name {' or '.join(words)}: {lines[0]!r}"
    return True, lines[0]


def _traceback_of(run: Run) -> str | None:
    if run.exc:
        return run.exc.strip().splitlines()[-1]
    for text in (run.err, run.out):
        if "Traceback" in text:
            return text.strip().splitlines()[-1]
    return None


def classify_cli(case: CliCase, run: Run, notes: list[str], baseline: Run | None) -> tuple:
    """(class, detail) of a command-line case; see the module docstring."""
    if notes:
        return "data_loss", "; ".join(notes[:3])
    crash = _traceback_of(run)
    if crash:
        return "traceback", crash
    if case.expect == "safe":
        return "ok", f"exit {run.status}, nothing written beside the inputs"
    if case.expect == "accept":
        if run.status == 0 or run.reached:
            return "ok", "accepted"
        return "wrong", f"exit {run.status}: {run.error_lines()[:2]}"
    clean, line = refused_cleanly(run, case.words)
    if clean:
        return "ok", line
    if baseline is not None:  # the file loads as the original model: act as on it
        if (run.status, run.reached) == (baseline.status, baseline.reached):
            return "ok", "loads as the original model and acts as on it"
        return "wrong", f"{line}; on the original: exit {baseline.status}"
    return _accepted(run) or ("wrong", line)


def _accepted(run: Run) -> tuple[str, str] | None:
    """("silent", why) when the command took the input it had to refuse."""
    if run.reached:
        return "silent", f"accepted (reached {run.reached})"
    if run.timed_out:
        return "silent", "accepted (still running at the time limit)"
    if run.status == 0:
        return "silent", "exit 0"
    return None


class CliRunner:
    """Runs :class:`CliCase`\\ s, each in a fresh directory below ``root``."""

    def __init__(self, bases: Path, root: Path, *, timeout: float | None = 120.0):
        self.bases, self.root, self.timeout = bases, root, timeout
        self._baselines: dict[tuple, Run] = {}
        self._originals: dict[str, Any] = {}
        self._n = 0

    def _place(self, work: Path, files: dict[str, bytes | str | None]) -> None:
        for name, content in files.items():
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if content is None:
                path.mkdir(exist_ok=True)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            elif (self.bases / content).is_dir():
                shutil.copytree(self.bases / content, path)
            else:
                shutil.copyfile(self.bases / content, path)

    def execute(self, case: CliCase, *, entry=None) -> tuple[Run, list[str], Path]:
        """Run ``case`` in a fresh directory; (run, data-loss notes, its work directory)."""
        self._n += 1
        top = self.root / f"case-{self._n:04d}"
        work = top / "work"
        work.mkdir(parents=True)
        self._place(work, case.files)
        before = snapshot(top)
        with warnings.catch_warnings():  # what earlier cases left behind goes unheard
            warnings.simplefilter("ignore")
            gc.collect()
        if case.subprocess:
            run = run_subprocess(case.argv, work, timeout=self.timeout)
        else:
            run = run_inprocess(case.argv, work, timeout=self.timeout, entry=entry, real=case.real)
        after = snapshot(top)
        wrote_ok = not (run.failed or run.timed_out or run.exc or case.dry_run)
        return run, losses(before, after, wrote_ok=wrote_ok), work

    def verdict(self, case: CliCase, *, entry=None, keep: bool = False) -> Verdict:
        start = time.perf_counter()
        run, notes, work = self.execute(case, entry=entry)
        baseline = None
        if case.expect == "same" and self._loads_as_original(case, work):
            baseline = self._baseline(case)
        cls, detail = classify_cli(case, run, notes, baseline)
        if not keep:
            shutil.rmtree(work.parent, ignore_errors=True)
        return Verdict(case.group, case.name, cls, detail, time.perf_counter() - start)

    def _loads_as_original(self, case: CliCase, work: Path) -> bool:
        from spikelut.compiler.ir.modelfile import load_model

        try:
            model = load_model(work / MODEL)
        except Exception:
            return False
        if case.original not in self._originals:
            self._originals[case.original] = load_model(self.bases / case.original)
        return same_model(model, self._originals[case.original])

    def _baseline(self, case: CliCase) -> Run:
        """The command on the original file (once per command line)."""
        key = (case.original, tuple(case.argv))
        if key not in self._baselines:
            files = {**case.files, MODEL: case.original}
            original = CliCase(case.group, case.name, case.argv, files, case.words, "accept")
            self._baselines[key] = self.execute(original)[0]
        return self._baselines[key]


def same_model(a: Any, b: Any) -> bool:
    """True when two models serialise to the same header and arrays."""
    if type(a) is not type(b):
        return False
    (ha, aa), (hb, ab) = a.to_arrays(), b.to_arrays()
    if json.dumps(ha, sort_keys=True) != json.dumps(hb, sort_keys=True) or aa.keys() != ab.keys():
        return False
    return all(
        aa[k].dtype.str == ab[k].dtype.str and np.array_equal(aa[k], ab[k], equal_nan=True)
        for k in aa
    )


# -- the base files --------------------------------------------------------------------------

# the valid model files mutated in the files group, by architecture
ARCH_FILES = {
    "classifier": "f.lutnet",
    "classifier-int": "q.lutnet",
    "rnn": "rnn.lutnet",
    "rnn-int": "rnnq.lutnet",
    "transformer": "tr.lutnet",
}


def _text(n: int = 200_000) -> bytes:
    rng = random.Random(11)
    words = ["the", "spiking", "table", "network", "of", "bits", "and", "neurons", "fires"]
    out = " ".join(rng.choice(words) for _ in range(n // 5))
    return (out[:n] + "\n").encode()


def make_bases(where: Path) -> None:
    """The valid files every case starts from: tiny models of each architecture (classifiers
    on iris), a text, inputs, a data set file, an ANN, bitstreams."""
    from sklearn.neural_network import MLPClassifier

    from spikelut.compiler.frontend.datasets import load_dataset
    from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding
    from spikelut.compiler.ir.lut import LUTLayer
    from spikelut.compiler.ir.modelfile import save_model
    from spikelut.compiler.passes.quantize_classifier import quantize_classifier
    from spikelut.compiler.passes.quantize_sequence import quantize_rnn
    from spikelut.compiler.train.lm import new_model

    iris = load_dataset("iris")
    rng = np.random.default_rng(0)
    layer = LUTLayer.random(in_dim=4, out_dim=3, n_tables=4, n_c=2, rng=rng)
    layer = layer.with_tables(rng.normal(size=layer.tables.shape).astype(np.float32))
    float_model = ClassifierMLP(
        InputEncoding.identity(4, bits=6), [layer], 3, meta={"dataset": "iris"}
    )
    save_model(float_model, where / "f.lutnet")
    save_model(quantize_classifier(float_model, calib_raw=iris.X_train), where / "q.lutnet")
    rnn = new_model("rnn", 1, context=8, dim=8, n_tables=4, n_c=3)
    save_model(rnn, where / "rnn.lutnet")
    save_model(quantize_rnn(rnn, table_bits=6), where / "rnnq.lutnet")
    tiny = dict(context=8, dim=8, n_layers=1, n_heads=1, n_tables=2, n_c=3, n_pe=2)
    save_model(new_model("transformer", 1, **tiny), where / "tr.lutnet")
    (where / "text.txt").write_bytes(_text())
    np.save(where / "x.npy", iris.X_test[:3])
    rows = [[*x, y] for x, y in zip(iris.X_train, iris.y_train, strict=True)]
    (where / "iris.csv").write_text("\n".join(",".join(f"{v:g}" for v in r) for r in rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ann = MLPClassifier((4,), max_iter=50, random_state=0).fit(iris.X_train, iris.y_train)
    (where / "ann.pkl").write_bytes(pickle.dumps(ann))
    (where / "top.bin").write_bytes(ICE40_START + bytes(256))
    (where / "top.bit").write_bytes(ECP5_START + bytes(256))


# -- files: mutations of valid model files -------------------------------------------------


@dataclass
class Mutation:
    """A mutated model file: its family, what was done, the bytes, what is expected
    ("refuse", or "same": refused or loading as the original)."""

    arch: str
    family: str
    what: str
    data: bytes
    expect: str = "refuse"


def _members(data: bytes) -> tuple[dict, dict[str, bytes]]:
    """(header, other members by name) of a model file."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        top = json.loads(zf.read("header.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "header.json"}
    return top, members


def _zip(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip of ``entries`` in order (duplicate names allowed)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name"
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, blob in entries:
                zf.writestr(name, blob)
    return buf.getvalue()


def _rezip(top: Any, members: dict[str, bytes], *, header: bytes | None = None) -> bytes:
    text = header if header is not None else json.dumps(top).encode()
    return _zip([*members.items(), ("header.json", text)])


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _with_array(data: bytes, name: str, arr: np.ndarray) -> bytes:
    """The file with array ``name`` replaced by ``arr``, its header entry made to match."""
    top, members = _members(data)
    blob = _npy(arr)
    members[f"arrays/{name}.npy"] = blob
    top["arrays"][name] = {
        "dtype": arr.dtype.str,
        "shape": list(arr.shape),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    return _rezip(top, members)


def truncations(arch: str, data: bytes, rng: random.Random) -> list[Mutation]:
    cuts = {1, 30, len(data) // 2, len(data) - 22, len(data) - 1, rng.randrange(31, len(data) - 23)}
    return [Mutation(arch, "truncated", f"at {n} of {len(data)}", data[:n]) for n in sorted(cuts)]


def zip_regions(data: bytes) -> list[tuple[str, int, int]]:
    """(name, start, end) of each part of a zip: per member its local header, name, extra
    field and data (an .npy member's header and data apart), the central directory, the
    end record."""
    regions = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        for info in infos:
            at = info.header_offset
            n_name, n_extra = struct.unpack_from("<HH", data, at + 26)
            start = at + 30 + n_name + n_extra
            regions += [
                (f"{info.filename} local header", at, at + 30),
                (f"{info.filename} local name", at + 30, at + 30 + n_name),
            ]
            if n_extra:
                regions.append((f"{info.filename} local extra", at + 30 + n_name, start))
            end = start + info.compress_size
            if info.filename.endswith(".npy") and end - start > 10:
                head = 10 + struct.unpack_from("<H", data, start + 8)[0]
                regions += [
                    (f"{info.filename} npy header", start, start + head),
                    (f"{info.filename} npy data", start + head, end),
                ]
            else:
                regions.append((f"{info.filename} data", start, end))
    eocd = data.rfind(b"PK\x05\x06")
    central = struct.unpack_from("<I", data, eocd + 16)[0]
    if central == 0xFFFFFFFF:  # zip64
        central = data.rfind(b"PK\x01\x02", 0, eocd)
    regions += [("central directory", central, eocd), ("end record", eocd, len(data))]
    return [r for r in regions if r[2] > r[1]]


def byte_flips(arch: str, data: bytes, rng: random.Random) -> list[Mutation]:
    """One byte changed in each region of the header's member, of one array's member, the
    central directory and the end record."""
    regions = zip_regions(data)
    arrays = sorted({name.split(" ")[0] for name, *_ in regions if name.startswith("arrays/")})
    keep = ("header.json", rng.choice(arrays), "central directory", "end record")
    out = []
    for name, start, end in regions:
        if not name.startswith(keep):
            continue
        pos = rng.randrange(start, end)
        blob = bytearray(data)
        blob[pos] ^= rng.randrange(1, 256)
        out.append(Mutation(arch, "byte flip", f"{name} at {pos}", bytes(blob), "same"))
    return out


# wrong values for a JSON field, by the kind of its valid value; "same" marks those that a
# loader may take for the valid value (a float with an integer's value, a bool for 0/1)
_WRONG = {
    int: [("a string", "7"), ("null", None), ("a list", [1]), ("an object", {"v": 1}),
          ("negative", -1), ("huge", 10**30), ("a fraction", 2.5), ("true", True)],
    bool: [("a string", "no"), ("null", None), ("a list", []), ("a number", 2)],
    str: [("a number", 5), ("null", None), ("a list", ["x"]), ("an object", {})],
    list: [("a string", "x"), ("null", None), ("an object", {}), ("a number", 3)],
    dict: [("a string", "x"), ("null", None), ("a list", []), ("a number", 3)],
}  # fmt: skip


def _leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every field of a header (meta's contents left out), as (path, value)."""
    if path and path[-1] == "meta":
        yield path, value
        return
    if isinstance(value, dict):
        if path:
            yield path, value
        for k in sorted(value):
            yield from _leaves(value[k], (*path, k))
    elif isinstance(value, list):
        yield path, value
        for i, v in enumerate(value[:2]):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _set(top: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        top = top[key]
    top[path[-1]] = value


def _header_edit(
    arch: str, data: bytes, what: str, edit, expect: str = "refuse", family: str = "header"
) -> Mutation:
    top, members = _members(data)
    text = edit(top)
    header = text.encode() if isinstance(text, str) else text
    return Mutation(arch, family, what, _rezip(top, members, header=header), expect)


def wrong_types(arch: str, data: bytes) -> list[Mutation]:
    """Every field of header.json (top level, model header, an array entry) set to values
    of other JSON types, negative, huge."""
    top, _ = _members(data)
    out = []
    first = sorted(top["arrays"])[0]
    paths = [(k,) for k in sorted(top) if k != "arrays"] + [("arrays",)]
    paths += [("arrays", first, k) for k in ("dtype", "shape", "sha256")]
    paths += [("model", *p) for p, _ in _leaves(top["model"])]
    for path in paths:
        value = top
        for key in path:
            value = value[key]
        kind = next((t for t in (bool, int, str, list, dict) if isinstance(value, t)), None)
        for label, wrong in _WRONG.get(kind, []):
            if wrong == value and type(wrong) is type(value):
                continue
            lenient = path == ("spikelut_version",) or (
                kind is int and isinstance(wrong, bool) and wrong == value
            )
            out.append(
                _header_edit(
                    arch,
                    data,
                    f"{'.'.join(map(str, path))} {label}",
                    lambda t, p=path, w=wrong: _set(t, p, w),
                    "same" if lenient else "refuse",
                    "header type",
                )
            )
    return out


def header_variants(arch: str, data: bytes) -> list[Mutation]:
    """Missing and extra members of header.json, bad format/schema/arch/dtype/shape/SHA,
    meta of the wrong type, deep nesting, text that is not JSON."""
    top, _ = _members(data)
    name = sorted(top["arrays"])[-1]
    spec = top["arrays"][name]
    edits: list[tuple[str, Callable, str]] = [
        (f"no {k}", lambda t, k=k: _drop(t, k), "refuse") for k in ("format", "schema", "arch", "model", "arrays")
    ]  # fmt: skip
    other_arch = "rnn" if arch.startswith("classifier") else "classifier"
    edits += [
        ("format of another tool", lambda t: t.update(format="spikelut-lutnet-2"), "refuse"),
        ("schema 2", lambda t: t.update(schema=2), "refuse"),
        ("schema 0", lambda t: t.update(schema=0), "refuse"),
        ("schema 1.0", lambda t: t.update(schema=1.0), "same"),
        ("another architecture", lambda t: t.update(arch=other_arch), "refuse"),
        ("an unknown architecture", lambda t: t.update(arch="cnn"), "refuse"),
        (f"array {name} missing", lambda t: _drop(t["arrays"], name), "refuse"),
        ("dtype <U4", lambda t: t["arrays"][name].update(dtype="<U4"), "refuse"),
        ("dtype |O", lambda t: t["arrays"][name].update(dtype="|O"), "refuse"),
        ("dtype float32 (a name, not a descr)", lambda t: t["arrays"][name].update(dtype="float32"), "refuse"),
        ("dtype of another width", lambda t: t["arrays"][name].update(dtype=_other_dtype(spec["dtype"])), "refuse"),
        ("dtype byte-swapped", lambda t: t["arrays"][name].update(dtype=_swapped(spec["dtype"])), "refuse"),
        ("shape one longer", lambda t: t["arrays"][name].update(shape=[spec["shape"][0] + 1, *spec["shape"][1:]]), "refuse"),
        ("shape empty (a scalar)", lambda t: t["arrays"][name].update(shape=[]), "refuse"),
        ("shape 10**13", lambda t: t["arrays"][name].update(shape=[10**13]), "refuse"),
        ("shape 2**64 * 2**64", lambda t: t["arrays"][name].update(shape=[2**64, 2**64]), "refuse"),
        ("shape negative", lambda t: t["arrays"][name].update(shape=[-1, *spec["shape"][1:]]), "refuse"),
        ("sha256 all zeros", lambda t: t["arrays"][name].update(sha256="0" * 64), "refuse"),
        ("sha256 upper case", lambda t: t["arrays"][name].update(sha256=spec["sha256"].upper()), "same"),
        ("sha256 truncated", lambda t: t["arrays"][name].update(sha256=spec["sha256"][:32]), "refuse"),
        ("no sha256", lambda t: _drop(t["arrays"][name], "sha256"), "refuse"),
        ("an extra top-level key", lambda t: t.update(comment="hello"), "same"),
        ("an extra model key", lambda t: t["model"].update(comment="hello"), "same"),
        ("meta a string", lambda t: t["model"].update(meta="iris"), "refuse"),
        ("meta a list", lambda t: t["model"].update(meta=["iris"]), "refuse"),
        ("meta.dataset a list", lambda t: t["model"].update(meta={"dataset": ["iris"]}), "refuse"),
        ("meta.training a string", lambda t: t["model"].update(meta={"training": "yes"}), "refuse"),
        ("meta.quantization a list", lambda t: t["model"].update(meta={"quantization": [1]}), "refuse"),
        ("meta nested 100000 deep", lambda t: json.dumps(t).replace('"meta": {', '"meta": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1), "refuse"),
        ("a JSON list", lambda t: "[1, 2, 3]", "refuse"),
        ("a JSON string", lambda t: '"spikelut-lutnet"', "refuse"),
        ("not JSON", lambda t: "{format: spikelut-lutnet", "refuse"),
        ("empty", lambda t: "", "refuse"),
        ("a UTF-8 BOM", lambda t: "\ufeff" + json.dumps(t), "refuse"),
        ("invalid UTF-8", lambda t: json.dumps(t).encode()[:-1] + b"\xff}", "refuse"),
        ("NaN and Infinity", lambda t: json.dumps(t).replace('"schema": 1', '"schema": NaN', 1), "refuse"),
        ("a number 1e999", lambda t: json.dumps(t).replace('"schema": 1', '"schema": 1e999', 1), "refuse"),
        ("UTF-16", lambda t: json.dumps(t).encode("utf-16"), "same"),
    ]  # fmt: skip
    return [_header_edit(arch, data, what, edit, expect) for what, edit, expect in edits]


def _drop(d: dict, key: str) -> None:
    del d[key]


def _other_dtype(descr: str) -> str:
    return {"<f4": "<f8", "<f8": "<f4", "<i8": "<i4", "<i4": "<i8"}.get(descr, "<i2")


def _swapped(descr: str) -> str:
    return descr.replace("<", ">") if "<" in descr else descr.replace("|", ">")


def _array_edits(
    arch: str, top: dict, arrays: dict[str, np.ndarray]
) -> list[tuple[str, str, np.ndarray, str]]:
    """(what, array, replacement, expect): arrays that agree with their header entry and
    break the model's own rules."""
    edits = []
    anchors = [
        n for n in sorted(arrays) if n.endswith(("a", "_a")) and arrays[n].dtype.kind in "iu"
    ]
    tables = [n for n in sorted(arrays) if n.endswith("tables")]
    name = anchors[0]
    a = arrays[name]
    edits += [
        ("an anchor index past the input", name, np.where(np.arange(a.size).reshape(a.shape) == 0, 10**6, a).astype(a.dtype), "refuse"),
        ("a negative anchor index", name, np.where(np.arange(a.size).reshape(a.shape) == 0, -3, a).astype(a.dtype), "refuse"),
        ("anchors as floats", name, a.astype(np.float64) + 0.5, "refuse"),
        ("anchors of another shape", name, a.reshape(-1)[: max(1, a.size - 1)], "refuse"),
        ("anchors in Fortran order", name, np.asfortranarray(a), "same"),
        ("anchors big-endian", name, a.astype(a.dtype.newbyteorder(">")), "same"),
    ]  # fmt: skip
    t = arrays[tables[0]]
    if t.dtype.kind == "f":
        edits += [
            ("a NaN table entry", tables[0], np.where(np.arange(t.size).reshape(t.shape) == 1, np.nan, t).astype(t.dtype), "refuse"),
            ("an infinite table entry", tables[0], np.where(np.arange(t.size).reshape(t.shape) == 1, np.inf, t).astype(t.dtype), "refuse"),
        ]  # fmt: skip
    else:
        edits += [
            ("a table entry out of its bits", tables[0], np.where(np.arange(t.size).reshape(t.shape) == 1, 1 << 40, t).astype(np.int64), "refuse"),
            ("float tables in an integer model", tables[0], t.astype(np.float32), "refuse"),
        ]  # fmt: skip
    edits += [
        ("tables of one table fewer", tables[0], t[:-1], "refuse"),
        ("tables as booleans", tables[0], t != 0, "refuse"),
        ("tables complex", tables[0], t.astype(np.complex64), "refuse"),
    ]
    if "encoding/offset" in arrays:
        o = arrays["encoding/offset"]
        edits += [
            ("an encoding of another length", "encoding/offset", np.append(o, 0.0), "refuse"),
            (
                "a NaN offset",
                "encoding/offset",
                np.where(np.arange(o.size) == 0, np.nan, o),
                "refuse",
            ),
        ]
    if "embedding" in arrays:
        e = arrays["embedding"]
        edits += [("an embedding of another shape", "embedding", e[:-1], "refuse")]
    return edits


def array_variants(arch: str, data: bytes) -> list[Mutation]:
    from spikelut.compiler.ir.modelfile import load_model

    with tempfile.NamedTemporaryFile(suffix=".lutnet") as f:
        f.write(data)
        f.flush()
        _, arrays = load_model(f.name).to_arrays()
    top, _ = _members(data)
    return [
        Mutation(arch, "array", what, _with_array(data, name, arr), expect)
        for what, name, arr, expect in _array_edits(arch, top, arrays)
    ]


@dataclass
class _Bombs:
    """Zip bombs, made once: a member of 64 MiB of zeros (deflated to about 64 kB)."""

    size: int = 64 << 20
    _cache: dict = field(default_factory=dict)

    def member(self, data: bytes, *, lie: bool) -> bytes:
        """The file with its largest array member replaced by the bomb, its header's SHA-256
        matching; with ``lie`` the zip directory declares the original size."""
        key = (hashlib.sha256(data).hexdigest(), lie)
        if key not in self._cache:
            self._cache[key] = self._make(data, lie)
        return self._cache[key]

    def _make(self, data: bytes, lie: bool) -> bytes:
        top, members = _members(data)
        name = max(top["arrays"], key=lambda n: len(members[f"arrays/{n}.npy"]))
        member = f"arrays/{name}.npy"
        real = len(members.pop(member))
        zeros = bytes(self.size)
        top["arrays"][name]["sha256"] = hashlib.sha256(zeros).hexdigest()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for n, blob in members.items():
                zf.writestr(n, blob)
            zf.writestr(member, zeros)
            zf.writestr("header.json", json.dumps(top))
        blob = buf.getvalue()
        if lie:  # the central directory declares the original member's size
            blob = _patch_central(
                blob, member, lambda b, at: struct.pack_into("<I", b, at + 24, real)
            )
        return blob


BOMBS = _Bombs()


def zip_tricks(arch: str, data: bytes, rng: random.Random) -> list[Mutation]:
    """Container-level tricks: not a zip, empty, traversal names, duplicates, bombs,
    unsupported compression and encryption flags, junk before the zip."""
    top, members = _members(data)
    header = json.dumps(top).encode()
    entries = [*members.items(), ("header.json", header)]
    other = dict(top, model=dict(top["model"], meta={"dataset": "wine"}))
    first = sorted(members)[0]
    out = [
        Mutation(arch, "zip", "random bytes", rng.randbytes(len(data))),
        Mutation(arch, "zip", "a PNG signature", b"\x89PNG\r\n\x1a\n" + bytes(64)),
        Mutation(arch, "zip", "a text file", b"format: spikelut-lutnet\n"),
        Mutation(arch, "zip", "an npz file", _zip([("X.npy", _npy(np.zeros((3, 2))))])),
        Mutation(arch, "zip", "an empty zip", _zip([])),
        Mutation(arch, "zip", "a member ../../evil.txt", _zip([("../../evil.txt", b"x"), *entries]), "same"),
        Mutation(arch, "zip", "a member /tmp/evil.txt", _zip([("/tmp/evil.txt", b"x"), *entries]), "same"),
        Mutation(arch, "zip", "two header.json members", _zip([*entries, ("header.json", json.dumps(other).encode())])),
        Mutation(arch, "zip", f"two {first} members", _zip([(first, members[first][:-1] + b"\x00"), *entries])),
        Mutation(arch, "zip", "header.json a directory entry", _zip([*members.items(), ("header.json/", b"")])),
        Mutation(arch, "zip", "deflated", _zip(entries, zipfile.ZIP_DEFLATED), "same"),
        Mutation(arch, "zip", "lzma", _zip(entries, zipfile.ZIP_LZMA), "same"),
        Mutation(arch, "zip", "junk before the zip", b"#!/bin/sh\nexit 0\n" + data, "same"),
        Mutation(arch, "zip", "a bomb member declared honestly", BOMBS.member(data, lie=False)),
        Mutation(arch, "zip", "a bomb member whose directory lies", BOMBS.member(data, lie=True)),
        Mutation(arch, "zip", "header.json of 70 MB", _zip([*members.items(), ("header.json", header[:-1] + b" " * (70 << 20) + b"}")], zipfile.ZIP_DEFLATED)),
    ]  # fmt: skip
    for what, patch in (
        ("encrypted flag", lambda b, at: b.__setitem__(at + 8, b[at + 8] | 1)),
        ("compression method 99", lambda b, at: struct.pack_into("<H", b, at + 10, 99)),
        ("compression method deflate on stored data", lambda b, at: struct.pack_into("<H", b, at + 10, 8)),
        ("version needed 9.9", lambda b, at: struct.pack_into("<H", b, at + 6, 99)),
    ):  # fmt: skip
        out.append(
            Mutation(arch, "zip", f"header.json {what}", _patch_central(data, "header.json", patch))
        )
    return out


def _patch_central(data: bytes, member: str, patch: Callable) -> bytes:
    """The file with ``patch(blob, offset)`` applied to ``member``'s central directory entry."""
    blob = bytearray(data)
    at = blob.find(b"PK\x01\x02")
    while at >= 0:
        n_name = struct.unpack_from("<H", blob, at + 28)[0]
        if blob[at + 46 : at + 46 + n_name] == member.encode():
            patch(blob, at)
        at = blob.find(b"PK\x01\x02", at + 4)
    return bytes(blob)


# the commands that read a model, per architecture: (label, argv with MODEL)
READERS = {
    "classifier": [
        ["eval", MODEL],
        ["quantize", MODEL, "-o", "out.lutnet"],
        ["report", MODEL, "-o", "r.html"],
    ],
    "classifier-int": [
        ["eval", MODEL],
        ["compile", MODEL, "-o", "out"],
        ["sim", MODEL, "--dataset", "random", "--vectors", "2"],
        ["run", MODEL, "--port", "tcp:127.0.0.1:1", "--input", "x.npy"],
        ["build", MODEL, "--board", "icebreaker", "-o", "bout"],
        ["report", MODEL, "-o", "r.html"],
        ["run", MODEL, "--port", "sim", "--input", "x.npy"],
    ],
    "rnn": [
        ["sample", MODEL, "--bytes", "2", "--seed", "1"],
        ["quantize", MODEL, "--data", "text.txt", "-o", "out.lutnet"],
        ["train", "lm", "--text", "text.txt", "--arch", "rnn", "--resume", MODEL, "-o", "lm.lutnet"],
    ],
    "rnn-int": [
        ["sample", MODEL, "--bytes", "2", "--seed", "1"],
        ["quantize", MODEL, "--data", "text.txt", "-o", "out.lutnet"],
        ["eval", MODEL],
    ],
    "transformer": [
        ["sample", MODEL, "--bytes", "2", "--seed", "1"],
        ["quantize", MODEL, "--data", "text.txt", "-o", "out.lutnet"],
        ["train", "lm", "--text", "text.txt", "--resume", MODEL, "-o", "lm.lutnet"],
    ],
}  # fmt: skip
SUPPORT = ("text.txt", "x.npy")


def _spread(items: list, n: int, rng: random.Random, key: Callable) -> list:
    """``n`` of ``items`` (all when fewer), spread evenly over ``key``'s groups, in a
    seeded order."""
    groups: dict[Any, list] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    for members in groups.values():
        rng.shuffle(members)
    picked, names = [], sorted(groups, key=str)
    while len(picked) < min(n, len(items)):
        for name in names:
            if groups[name] and len(picked) < n:
                picked.append(groups[name].pop())
    return picked


def file_cases(bases: Path, n: int, seed: int) -> list[CliCase]:
    """``n`` mutated model files, each run through one of its architecture's readers."""
    rng = random.Random(seed)
    mutations = []
    for arch, base in ARCH_FILES.items():
        data = (bases / base).read_bytes()
        mutations += truncations(arch, data, rng)
        mutations += byte_flips(arch, data, rng)
        mutations += wrong_types(arch, data)
        mutations += header_variants(arch, data)
        mutations += array_variants(arch, data)
    tricks = [m for arch in ARCH_FILES for m in _special_files(arch)]
    for arch, base in ARCH_FILES.items():
        tricks += zip_tricks(arch, (bases / base).read_bytes(), rng)
    # the integer classifier has the most readers: twice the share
    mutations += [dataclasses.replace(m, arch="classifier-int*") for m in mutations if m.arch == "classifier-int"]  # fmt: skip
    families = _spread(mutations, n - max(2, 3 * n // 20), rng, key=lambda m: (m.family, m.arch))
    chosen = families + _spread(tricks, n - len(families), rng, key=lambda m: m.arch)
    cases, turn = [], Counter()
    for m in chosen:
        m.arch = m.arch.rstrip("*")
        readers = READERS[m.arch]
        argv = readers[turn[m.arch] % len(readers)]
        turn[m.arch] += 1
        files = {name: name for name in SUPPORT if name in argv}
        files[MODEL] = m.data
        if m.family == "special":
            files[MODEL] = m.data or None
        cases.append(
            CliCase(
                "files",
                f"{m.arch}: {m.family}: {m.what} | {' '.join(argv[:2])}",
                argv,
                files,
                words=(MODEL,),
                expect=m.expect,
                original=ARCH_FILES[m.arch],
            )
        )
    return cases


def _special_files(arch: str) -> list[Mutation]:
    """An empty file and a directory in the model's place."""
    return [
        Mutation(arch, "special", "an empty file", b""),
        Mutation(arch, "special", "a directory", b""),
    ][: 1 if arch != "classifier-int" else 2]


# -- cli: misuse of every command and option --------------------------------------------------

# each command's argv that is valid with the base files (stubs stop the heavy ones)
BASE_ARGV = {
    "doctor": ["doctor"],
    "demo": ["demo", "-o", "demo-out"],
    "train classifier": ["train", "classifier", "--data", "iris", "-o", "t.lutnet", "--epochs", "1", "--tables", "8"],
    "train lm": ["train", "lm", "--text", "text.txt", "--arch", "rnn", "-o", "lm.lutnet", "--steps", "1", "--dim", "8", "--n-tables", "4", "--n-c", "3", "--context", "8"],
    "train lm transformer": ["train", "lm", "--text", "text.txt", "-o", "lm.lutnet", "--steps", "1", "--dim", "8", "--layers", "1", "--heads", "1", "--n-tables", "2", "--n-c", "3", "--n-pe", "2", "--context", "8"],
    "eval": ["eval", "f.lutnet"],
    "convert": ["convert", "ann.pkl", "--trust-pickle", "--data", "iris", "-o", "c.lutnet", "--recipe", "fixed", "--epochs", "0", "--augment", "0"],
    "quantize": ["quantize", "f.lutnet", "-o", "q2.lutnet"],
    "quantize lm": ["quantize", "rnn.lutnet", "--data", "text.txt", "-o", "q3.lutnet"],
    "compile": ["compile", "q.lutnet", "-o", "out"],
    "sim": ["sim", "q.lutnet", "--dataset", "random", "--vectors", "2"],
    "build": ["build", "q.lutnet", "--board", "icebreaker", "-o", "bout"],
    "run": ["run", "q.lutnet", "--port", "tcp:127.0.0.1:1", "--input", "x.npy"],
    "flash": ["flash", "top.bin", "--board", "icebreaker", "--dry-run"],
    "report": ["report", "q.lutnet", "-o", "r.html"],
    "sample": ["sample", "rnn.lutnet", "--bytes", "2", "--seed", "1"],
}  # fmt: skip
BASE_FILES = ("f.lutnet", "q.lutnet", "rnn.lutnet", "rnnq.lutnet", "tr.lutnet", "text.txt", "x.npy", "iris.csv", "ann.pkl", "top.bin", "top.bit")  # fmt: skip


@dataclass(frozen=True)
class Numeric:
    """A numeric option: ``kind`` int/float/ints (comma list), the valid range (``hi`` None:
    unbounded), ``open_lo`` (``lo`` itself invalid), ``huge_bad`` (a value of 10**30 must be
    refused although the type has no bound: it asks for impossible memory or hardware)."""

    base: str
    flags: tuple[str, ...]
    kind: str = "int"
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    huge_bad: bool = False
    names: tuple[str, ...] = ()  # what an error may call it instead of its flag
    empty_ok: bool = False  # an empty list is valid (--hidden: no hidden layer)

    def valid(self, text: str) -> bool:
        if self.kind == "ints":
            parts = [p for p in text.split(",") if p.strip()]
            if not parts:
                return self.empty_ok and not text.strip(", ")
            return all(self._one(p, int) for p in parts)
        return self._one(text, int if self.kind == "int" else float)

    def _one(self, text: str, kind: type) -> bool:
        try:
            v = kind(text)
        except ValueError:
            return False
        if kind is float and not np.isfinite(v):
            return False
        if self.lo is not None and (v < self.lo or (self.open_lo and v == self.lo)):
            return False
        if self.huge_bad and text == HUGE:
            return False
        return self.hi is None or v <= self.hi


SEED = dict(kind="int", lo=0, hi=2**32 - 1)
NUMERIC = [
    Numeric("demo", ("--run-examples",), lo=1),
    Numeric("train classifier", ("--seed",), **SEED),
    Numeric("train classifier", ("--epochs",), lo=1),
    Numeric("train classifier", ("--lr",), "float", 0, open_lo=True),
    Numeric("train classifier", ("--batch-size",), lo=1),
    Numeric(
        "train classifier",
        ("--hidden",),
        "ints",
        0,
        huge_bad=True,
        names=("memory",),
        empty_ok=True,
    ),
    Numeric("train classifier", ("--tables",), "ints", 1, huge_bad=True, names=("memory",)),
    Numeric("train classifier", ("--n-c",), "ints", 1, 16),
    Numeric("train lm", ("--steps",), lo=1),
    Numeric("train lm", ("--seed",), **SEED),
    Numeric("train lm", ("--checkpoint-every",), lo=0),
    Numeric("train lm", ("--val-every",), lo=1),
    Numeric("train lm", ("--val-windows",), lo=1),
    Numeric("train lm", ("--log-every",), lo=1),
    Numeric("train lm", ("--sample-bytes",), lo=0),
    Numeric("train lm", ("--context",), lo=1, huge_bad=True),
    Numeric("train lm", ("--dim",), lo=2, huge_bad=True),
    Numeric("train lm", ("--n-tables",), lo=1, huge_bad=True),
    Numeric("train lm", ("--n-c",), lo=1, hi=16),
    Numeric("train lm", ("--unembed-tables",), lo=1, huge_bad=True),
    Numeric("train lm", ("--unembed-n-c",), lo=1, hi=16),
    Numeric("train lm transformer", ("--layers",), lo=1, huge_bad=True),
    Numeric("train lm transformer", ("--heads",), lo=1, huge_bad=True),
    Numeric("train lm transformer", ("--n-pe",), lo=1, huge_bad=True),
    Numeric("convert", ("--seed",), **SEED),
    Numeric("convert", ("--n-tables",), "ints", 1, huge_bad=True, names=("N_T",)),
    Numeric("convert", ("--n-c",), "ints", 1, 16, names=("N_C",)),
    Numeric("convert", ("--epochs",), lo=0),
    Numeric("convert", ("--augment",), lo=0),
    Numeric("convert", ("--input-gain",), "float", 0, open_lo=True),
    Numeric("convert", ("--bits",), lo=2, hi=16, names=("bits",)),
    Numeric("quantize", ("--bits",), lo=2, hi=16, names=("bits",)),
    Numeric("quantize", ("--shift-tolerance",), "float", 0),
    Numeric("quantize", ("--max-width",), lo=1),
    Numeric("quantize lm", ("--val-windows",), lo=1),
    Numeric("compile", ("-P", "--tables-per-cycle"), lo=1),  # more: clamped to the model's
    Numeric("compile", ("-L", "--lanes"), lo=1),
    Numeric("compile", ("--throughput",), "float", 0, open_lo=True, huge_bad=True),
    Numeric("compile", ("--clock-mhz",), "float", 0, open_lo=True),
    Numeric("sim", ("--vectors",), lo=1, huge_bad=True),
    Numeric("sim", ("--seed",), **SEED),
    Numeric("build", ("--freq",), "float", 0, open_lo=True, huge_bad=True),
    Numeric("build", ("--seed",), **SEED),
    Numeric("build", ("--baud",), lo=1, huge_bad=True),
    Numeric("build", ("--max-brams",), lo=0),
    Numeric("run", ("--limit",), lo=1),
    Numeric("run", ("--baud",), lo=1),
    Numeric("run", ("--timeout",), "float", 0, open_lo=True),
    Numeric("sample", ("--bytes",), lo=0),
    Numeric("sample", ("--temperature",), "float"),
    Numeric("sample", ("--seed",), **SEED),
    Numeric("sample", ("--baud",), lo=1),
    Numeric("sample", ("--chunk",), lo=1),
    Numeric("sample", ("--timeout",), "float", 0, open_lo=True),
    Numeric("run", ("--chunk",), lo=1),
    Numeric("run", ("--bytes",), lo=1),
    Numeric("run", ("--temperature",), "float", 0),
    Numeric("run", ("--seed",), **SEED),
]
BAD_NUMBERS = ["nan", "inf", "-inf", "-1", "0", "2.5", HUGE, "abc", "", "0x10", "1,2"]

# options with a fixed set of values: (base, flag)
CHOICES = [
    ("train lm", "--arch"), ("train lm", "--mode"), ("convert", "--anchors"),
    ("convert", "--recipe"), ("compile", "--target"), ("compile", "--storage"),
    ("compile", "--indexer"), ("compile", "--baseline"), ("sim", "--dataset"),
    ("sim", "--simulator"), ("sim", "--target"), ("sim", "--indexer"), ("sim", "--netlist"),
    ("build", "--indexer"), ("build", "--baseline"), ("run", "--dataset"), ("run", "--tables"),
    ("demo", "--board"), ("build", "--board"), ("sim", "--board"), ("flash", "--board"),
    ("run", "--board"), ("sample", "--board"), ("sample", "--tables"),
]  # fmt: skip


def numeric_cases() -> list[CliCase]:
    out = []
    for opt in NUMERIC:
        for value in BAD_NUMBERS:
            if opt.valid(value):
                continue
            argv = [*BASE_ARGV[opt.base], opt.flags[0], value]
            what = "10**30" if value == HUGE else repr(value)
            shown = (HUGE, "1e+30") if value == HUGE else (value,) if len(value) > 1 else ()
            words = (*opt.flags, *opt.names, *shown)
            out.append(_cli_case(f"{opt.base} {opt.flags[0]} {what}", argv, words=words))
    return out


def choice_cases() -> list[CliCase]:
    out = []
    for base, flag in CHOICES:
        for value in ("bogus", ""):
            argv = [*BASE_ARGV[base], flag, value]
            out.append(_cli_case(f"{base} {flag} {value!r}", argv, words=(flag, "board")))
    return out


def _cli_case(name: str, argv: list[str], *, words=(), files=None, **kw) -> CliCase:
    if files is None:
        files = {f: f for f in BASE_FILES if f in argv}
    return CliCase("cli", name, argv, files, tuple(words), **kw)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _wrong_kind_files() -> dict[str, bytes | str | None]:
    """Files of the wrong kind, by name (bytes), and base files under other names."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 4))
    y = np.arange(40) % 2
    return {
        "adir": None,
        "empty.csv": b"",
        "empty.npy": _npy_bytes(np.zeros((0, 4))),
        "one-column.csv": b"1\n2\n3\n",
        "ragged.csv": b"1,2,0\n3,1\n4,5,6\n",
        "text-features.csv": b"a,b,0\nc,d,1\ne,f,0\ng,h,1\n",
        "nan.csv": b"1,nan,0\n2,3,1\n4,5,0\n6,7,1\n",
        "no-X.npz": _npz(features=X, y=y),
        "3d.npz": _npz(X=X.reshape(40, 2, 2), y=y),
        "strings.npz": _npz(X=X.astype(str), y=y),
        "complex.npz": _npz(X=X + 1j, y=y),
        "one-class.npz": _npz(X=X, y=np.zeros(40, int)),
        "labels-2d.npz": _npz(X=X, y=y.reshape(20, 2)),
        "objects.npz": b"PK" + bytes(20),
        "3d.npy": _npy_bytes(X.reshape(10, 4, 4)[:, :, :4]),
        "strings.npy": _npy_bytes(X.astype(str)),
        "complex.npy": _npy_bytes(X[:3] + 1j),
        "objects.npy": _npy_bytes(np.array([{"x": 1}, None], dtype=object)),
        "nan.npy": _npy_bytes(np.full((2, 4), np.nan)),
        "five-features.npy": _npy_bytes(np.ones((2, 5))),
        "not-onnx.onnx": b"\x08\x07this is not a protobuf",
        "garbage.pkl": b"\x80\x04not a pickle",
        "list.pkl": pickle.dumps([1, 2, 3]),
        "zip.lutnet": _npz(X=X),
        "notes.bin": b"hello, not a bitstream\n",
        "empty.bin": b"",
        "build-nojson": None,
        "build-badjson/board.json": b"{not json",
        "build-list/board.json": b"[1, 2]",
        "build-other/board.json": json.dumps({"board": "nosuchboard", "plans": []}).encode(),
    }


WRONG_FILES = _wrong_kind_files()

# (base, option or None for the positional, the files given there that must be refused)
WRONG_INPUTS = [
    ("eval", None, ["nope.lutnet", "", "adir", "iris.csv", "x.npy", "rnn.lutnet", "rnnq.lutnet", "zip.lutnet", "/proc/version"]),
    ("eval", "--data", ["nosuchset", "missing.csv", "empty.csv", "one-column.csv", "ragged.csv", "text-features.csv", "nan.csv", "no-X.npz", "3d.npz", "strings.npz", "complex.npz", "one-class.npz", "labels-2d.npz", "objects.npz", "f.lutnet", "wine", "adir"]),
    ("quantize", None, ["q.lutnet", "rnnq.lutnet", "nope.lutnet", "iris.csv", "adir"]),
    ("quantize", "--data", ["wine", "missing.npz", "3d.npz", "strings.npz"]),
    ("quantize lm", "--data", ["missing.txt", "adir", "f.lutnet"]),
    ("compile", None, ["f.lutnet", "rnn.lutnet", "nope.lutnet", "x.npy"]),
    ("sim", None, ["f.lutnet", "tr.lutnet"]),
    ("sim", "--build", ["nope-dir", "q.lutnet", "build-nojson", "build-badjson", "build-list", "build-other"]),
    ("build", None, ["f.lutnet", "rnn.lutnet", "nope.lutnet"]),
    ("run", None, ["f.lutnet", "rnn.lutnet"]),
    ("run", "--input", ["nope.npy", "3d.npy", "strings.npy", "complex.npy", "objects.npy", "nan.npy", "five-features.npy", "empty.npy", "empty.csv", "text-features.csv", "q.lutnet", "adir"]),
    ("run", "--load-tables", ["nope-dir", "build-nojson", "build-badjson", "build-list", "build-other"]),
    ("run", "--port", ["", "tcp:", "tcp:127.0.0.1", "tcp:127.0.0.1:notaport", "tcp:127.0.0.1:99999", "/dev/nonexistent-tty", "adir"]),
    ("report", None, ["nope.lutnet", "rnn.lutnet", "empty-dir", "x.npy"]),
    ("sample", None, ["f.lutnet", "q.lutnet", "rnnq.lutnet", "nope.lutnet", "text.txt"]),
    ("train classifier", "--data", ["nosuchset", "3d.npz", "strings.npz", "complex.npz", "one-class.npz", "ragged.csv", "q.lutnet", "adir"]),
    ("train lm", "--text", ["nope.txt", "adir", "empty.csv"]),
    ("train lm", "--resume", ["nope.lutnet", "f.lutnet", "rnn.lutnet", "tr.lutnet", "text.txt"]),
    ("convert", None, ["nope.onnx", "not-onnx.onnx", "f.lutnet", "garbage.pkl", "list.pkl", "adir"]),
    ("convert", "--calib", ["nope.npy", "3d.npy", "strings.npy", "complex.npy", "objects.npy", "nan.npy", "iris.csv"]),
    ("flash", None, ["notes.bin", "empty.bin", "top.bit", "adir", "nope.bin", "/proc/version", "q.lutnet"]),
]  # fmt: skip

# what an error may name instead of the file: the problem with its contents
EXTRA_WORDS = {("run", "--input"): ("features", "inputs"), ("quantize lm", "--data"): ("text",)}

# (base, option, is a directory) of every output
OUTPUTS = [
    ("demo", "-o", True), ("train classifier", "-o", False), ("train lm", "-o", False),
    ("train lm", "--csv", False), ("train lm", "--checkpoint", False), ("convert", "-o", False),
    ("convert", "--int-output", False), ("quantize", "-o", False), ("compile", "-o", True),
    ("sim", "--waves", False), ("build", "-o", True), ("report", "-o", False),
    ("doctor", "--keep", True),
]  # fmt: skip


def _replace_positional(argv: list[str], value: str) -> list[str]:
    """``argv`` with its first positional (the model, ANN or bitstream) set to ``value``."""
    at = 2 if argv[0] == "train" else 1
    return [*argv[:at], value, *argv[at + 1 :]]


def _with_option(argv: list[str], flag: str, value: str) -> list[str]:
    if flag in argv:
        i = argv.index(flag)
        return [*argv[:i], flag, value, *argv[i + 2 :]]
    return [*argv, flag, value]


def wrong_input_cases() -> list[CliCase]:
    out = []
    for base, flag, values in WRONG_INPUTS:
        for value in values:
            argv = BASE_ARGV[base]
            argv = (
                _replace_positional(argv, value)
                if flag is None
                else _with_option(argv, flag, value)
            )
            files = {f: f for f in BASE_FILES if f in argv}
            for name, content in WRONG_FILES.items():
                if name.split("/")[0] == value:
                    files[name] = content
            if value == "empty-dir":
                files[value] = None
            words = (value, flag) if value else (flag or "", "''", "empty")
            words += EXTRA_WORDS.get((base, flag), ())
            where = flag or "positional"
            real = ("open_transport",) if flag == "--port" else ()  # its checks, a real refusal
            name = f"{base} {where} {value!r}"
            out.append(_cli_case(name, argv, words=words, files=files, real=real))
    return out


def output_cases() -> list[CliCase]:
    out = []
    for base, flag, is_dir in OUTPUTS:
        argv = BASE_ARGV[base]
        model = next((a for a in argv[1:] if a in BASE_FILES), None)
        bad = [UNWRITABLE, "q.lutnet/out" if model != "q.lutnet" else "f.lutnet/out", ""]
        bad += ["f.lutnet"] if is_dir else ["adir"]
        if model:
            bad += ["." if is_dir else model]
        for value in bad:
            args = _with_option(argv, flag, value)
            if flag == "--checkpoint":  # the checkpoint is written beside -o otherwise
                args = _with_option(args, "-o", "lm.lutnet")
            files = {f: f for f in BASE_FILES if f in args or f in value}
            if value == "adir":
                files["adir"] = None
            words = (flag, value) if value else (flag, "''", "empty")
            out.append(_cli_case(f"{base} {flag} {value!r}", args, words=words, files=files))
    return out


def usage_cases() -> list[CliCase]:
    """Command lines argparse or the command must refuse whatever the files."""
    q, x = "q.lutnet", "x.npy"
    lines = [
        ([], ("COMMAND", "required")),
        (["bogus"], ("bogus",)),
        (["eval"], ("model", "required")),
        (["eval", "f.lutnet", "--bogus"], ("--bogus",)),
        (["eval", "f.lutnet", "extra"], ("extra",)),
        (["eval", "f.lutnet", "--json=yes"], ("--json",)),
        (["train"], ("WHAT", "required")),
        (["train", "bogus"], ("bogus",)),
        (["quantize", "f.lutnet"], ("-o",)),
        (["run", q], ("--port",)),
        (["flash", "top.bin"], ("--board",)),
        (["build", q], ("--board",)),
        (["run", q, "--port", "tcp:127.0.0.1:1", "--input", x, "--dataset", "test"], ("--dataset", "--input")),
        (["sim", q, "--board", "icebreaker", "--target", "ice40-up5k"], ("--target", "--board")),
        (["sim", q, "--build", "adir", "--indexer", "serial"], ("--indexer",)),
        (["sim", q, "--board", "icebreaker", "--netlist", "ecp5"], ("--netlist",)),
        (["sim", q, "--waves", "trace.txt"], ("--waves",)),
        (["compile", q, "-o", "out", "--macs", "4"], ("--macs",)),
        (["build", q, "--board", "icebreaker", "-o", "bout", "--macs", "2"], ("--macs",)),
        (["build", "ann.pkl", "--board", "icebreaker", "--baseline", "mac", "--trust-pickle", "--max-brams", "3"], ("--max-brams",)),
        (["compile", "ann.pkl", "--baseline", "mac", "-o", "out"], ("--trust-pickle",)),
        (["convert", "ann.pkl", "--data", "iris", "-o", "c.lutnet"], ("--trust-pickle",)),
        (["convert", "ann.pkl", "--trust-pickle", "-o", "c.lutnet"], ("--data", "--calib")),
        (["convert", "ann.pkl", "--trust-pickle", "--data", "wine", "-o", "c.lutnet", "--recipe", "fixed"], ("features", "outputs", "classes")),
        (["convert", "ann.pkl", "--trust-pickle", "--data", "iris", "-o", "c.lutnet", "--int-output", "c.lutnet"], ("--int-output",)),
        (["quantize", "f.lutnet", "-o", "q2.lutnet", "--shift", "x"], ("--shift",)),
        (["quantize", "f.lutnet", "-o", "q2.lutnet", "--shift", "0=1", "--shift", "0=2"], ("--shift",)),
        (["quantize", "f.lutnet", "-o", "q2.lutnet", "--shift", "5=1"], ("--shift", "layer")),
        (["quantize", "f.lutnet", "-o", "q2.lutnet", "--shift", "0=-1"], ("--shift", "shift")),
        (["quantize", "f.lutnet", "-o", "q2.lutnet", "--shift", "0=999"], ("--shift", "shift")),
        (["quantize", "rnn.lutnet", "-o", "q3.lutnet"], ("--data",)),
        (["quantize", "rnn.lutnet", "--data", "text.txt", "-o", "q3.lutnet", "--search-shift"], ("--search-shift",)),
        (["train", "classifier", "--data", "iris", "-o", "t.lutnet", "--hidden", "1"], ("--hidden",)),
        (["train", "classifier", "--data", "iris", "-o", "t.lutnet", "--tables", "4,4"], ("--tables",)),
        (["train", "lm", "--text", "text.txt", "--arch", "rnn", "--resume", "tr.lutnet"], ("--arch", "tr.lutnet")),
        (["train", "lm", "--text", "text.txt", "--arch", "rnn", "--dim", "8", "--context", "100000"], ("--context", "text")),
        (["sample", "rnn.lutnet", "--prompt", "\udcff"], ("--prompt", "UTF-8")),
        (["flash", "top.bin", "--board", "orangecrab-25f", "--dry-run"], ("ecp5", "bitstream")),
        (["flash", "top.bin", "--board", "nosuchboard"], ("nosuchboard",)),
        (["-v"], ("COMMAND", "required")),
    ]  # fmt: skip
    return [_cli_case(f"usage {' '.join(a)!r}", a, words=w) for a, w in lines]


def dry_run_cases() -> list[CliCase]:
    """Valid flashes and dry runs: accepted, and a dry run writes nothing."""
    return [
        _cli_case("flash icebreaker --dry-run", ["flash", "top.bin", "--board", "icebreaker", "--dry-run"], expect="accept", dry_run=True),
        _cli_case("flash orangecrab --dry-run (no DFU copy)", ["flash", "top.bit", "--board", "orangecrab-25f", "--dry-run"], expect="accept", dry_run=True),
        _cli_case("flash ulx3s --sram --dry-run", ["flash", "top.bit", "--board", "ulx3s-85f", "--sram", "--dry-run"], expect="accept", dry_run=True),
        _cli_case("flash orangecrab (DFU copy not beside the input)", ["flash", "top.bit", "--board", "orangecrab-25f"], expect="safe", dry_run=True),
    ]  # fmt: skip


def cli_cases(n: int, seed: int) -> list[CliCase]:
    """``n`` cases: the usage errors and dry runs (a quarter of a small run), then numeric,
    choice, input and output misuse spread over the commands."""
    rng = random.Random(seed + 1)
    fixed = usage_cases() + dry_run_cases()
    fixed = _spread(fixed, len(fixed) if n >= 100 else n // 4, rng, key=lambda c: c.command)
    pool = numeric_cases() + choice_cases() + wrong_input_cases() + output_cases()
    return fixed + _spread(pool, n - len(fixed), rng, key=lambda c: c.command)


def subprocess_cases(files: list[CliCase], cli: list[CliCase], n: int, seed: int) -> list[CliCase]:
    """``n`` refusals re-run through the installed ``spikelut`` in a subprocess (cheap
    commands only: nothing is stubbed there)."""
    rng = random.Random(seed + 2)
    cheap = ("eval", "sample", "flash", "report")
    pool = [c for c in files + cli if c.expect == "refuse" and c.command in cheap]
    out = []
    for case in _spread(pool, n, rng, key=lambda c: (c.group, c.command)):
        out.append(
            CliCase(case.group, f"{case.name} [subprocess]", case.argv, case.files, case.words,
                    case.expect, case.original, case.dry_run, subprocess=True)
        )  # fmt: skip
    return out


# -- frames: the gateware host link ------------------------------------------------------------

LINK = dict(
    in_width=5,
    n_inputs=6,
    lanes=3,
    result_width=12,
    table_word_bits=10,
    table_addr_bits=4,
    n_layers=2,
    clock_hz=12_000_000,
    model_hash=bytes(range(100, 116)),
    shape_hash=b"mi-shape",
    table_words=8,
    max_payload=64,
    timeout_cycles=200,
)
NEW_HASH = bytes(range(200, 216))
WORDS = 1 << LINK["table_addr_bits"]


def initial_tables() -> dict[tuple[int, int], int]:
    """The tables the bitstream holds at reset."""
    n = LINK["n_layers"]
    return {(k, a): (37 * k + 11 * a + 5) % 1024 for k in range(n) for a in range(WORDS)}


def core_result(vector: list[int], tables: dict[tuple[int, int], int]) -> int:
    """What the dummy core answers: the vector's sum plus a checksum of its tables."""
    check = sum(v * (1 + a + WORDS * k) for (k, a), v in tables.items())
    return (sum(vector) + check) % (1 << LINK["result_width"])


@dataclass
class Expect:
    """What the board must send for one step.

    ``replies``: SEQ -> (TYPE, payload or None for any) of the frames that answer the step,
    each exactly once; ``unparsed``: SEQ-0 ERRORs allowed besides (codes in ``codes``),
    ``need_unparsed``: at least one, ``first_unparsed``: the payload of the first;
    ``refused``: the step is malformed, so a reply other than ERROR to it is a silent
    acceptance; ``anything``: any frames (only the requests after it are checked)."""

    replies: dict[int, tuple[int, bytes | None]] = field(default_factory=dict)
    unparsed: bool = True
    codes: tuple[int, ...] = (1, 3, 4)
    need_unparsed: bool = False
    first_unparsed: tuple[int, int] | None = None
    refused: bool = False
    anything: bool = False

    @property
    def last_seq(self) -> int | None:
        return list(self.replies)[-1] if self.replies else None


@dataclass
class Effect:
    """What a step does to the board's tables: words written, and the state after it
    ("invalid", a hash: valid with it, or None: unchanged)."""

    writes: list[tuple[int, int, int]] = field(default_factory=list)
    state: bytes | str | None = None


@dataclass
class Step:
    """Bytes to send (with a pause of ``gap`` cycles before byte ``gap_at``), what must
    come back, what the step does to the tables, and cycles to wait after it."""

    wire: bytes
    expect: Expect
    effect: Effect = field(default_factory=Effect)
    idle: int = 0
    gap_at: int | None = None
    gap: int = 0


@dataclass
class FrameCase:
    name: str
    steps: list[Step]
    params: dict = field(default_factory=dict)
    group: str = "frames"


class LinkStuck(Exception):
    """The link stopped taking bytes."""


async def _send(ctx, dut, step: Step, rng: random.Random) -> None:
    """The step's bytes into ``uart_rx``, with short gaps (shorter than the timeout)."""
    for i, byte in enumerate(step.wire):
        ctx.set(dut.uart_rx.valid, 0)
        if i == step.gap_at:
            await ctx.tick().repeat(step.gap)
        elif rng.random() < 0.2:
            await ctx.tick().repeat(rng.randrange(1, 20))
        ctx.set(dut.uart_rx.payload, byte)
        ctx.set(dut.uart_rx.valid, 1)
        for _ in range(20_000):
            _, _, ready = await ctx.tick().sample(dut.uart_rx.ready)
            if ready:
                break
        else:
            raise LinkStuck(f"uart_rx not ready for 20000 cycles at byte {i}")
    ctx.set(dut.uart_rx.valid, 0)


class _LinkBench:
    """A HostLink of :data:`LINK` (updated by ``params``) in Amaranth's simulator: the host
    sends each step's bytes and collects the frames that come back; a dummy core answers
    from the tables the link wrote; the UART transmitter and the table port stall at
    random."""

    def __init__(self, steps: list[Step], params: dict, seed: int):
        from spikelut.hdl.hostlink.link import HostLink

        self.link = {**LINK, **params}
        self.dut = HostLink(**self.link)
        self.steps, self.rng = steps, random.Random(seed)
        self.tx, self.writes, self.replies, self.done = [], [], [], False
        self.tables = initial_tables()

    def run(self) -> tuple[list[list], list]:
        """(frames received during each step, table writes)."""
        from amaranth.sim import Simulator

        sim = Simulator(self.dut)
        sim.add_clock(1e-7)
        for bench in (self.host, self.uart_tx, self.table_port, self.core):
            sim.add_testbench(bench)
        sim.run()
        return self.replies, self.writes

    async def host(self, ctx):
        from spikelut.boards.protocol import FrameDecoder

        decoder = FrameDecoder()
        for step in self.steps:
            before = len(self.tx)
            await _send(ctx, self.dut, step, self.rng)
            got, seq = [], step.expect.last_seq
            for _ in range(8 * self.link["timeout_cycles"] if seq is not None else 0):
                got += decoder.feed(bytes(self.tx[before:]))
                before = len(self.tx)
                if any(f.seq == seq for f in got):
                    break
                await ctx.tick()
            await ctx.tick().repeat(step.idle + 1)
            got += decoder.feed(bytes(self.tx[before:]))
            self.replies.append(got)
        self.done = True

    async def uart_tx(self, ctx):
        port = self.dut.uart_tx
        while not self.done:
            ready = self.rng.random() < 0.8
            ctx.set(port.ready, ready)
            if ready and ctx.get(port.valid):
                self.tx.append(ctx.get(port.payload))
            await ctx.tick()

    async def table_port(self, ctx):
        port = self.dut.o_table
        while not self.done:
            ready = self.rng.random() < 0.6
            ctx.set(port.ready, ready)
            if ready and ctx.get(port.valid):
                t = ctx.get(port.payload)
                self.writes.append((t.layer, t.addr, t.data))
                self.tables[(t.layer, t.addr)] = t.data
            await ctx.tick()

    async def core(self, ctx):
        dut, beats = self.dut, []
        while not self.done:
            ready = self.rng.random() < 0.7
            ctx.set(dut.o_vector.ready, ready)
            if ready and ctx.get(dut.o_vector.valid):
                beats += list(ctx.get(dut.o_vector.payload))
            await ctx.tick()
            if len(beats) == self.link["n_inputs"]:
                ctx.set(dut.o_vector.ready, 0)
                ctx.set(dut.i_result.payload, core_result(beats, self.tables))
                ctx.set(dut.i_result.valid, 1)
                await ctx.tick().until(dut.i_result.ready)
                ctx.set(dut.i_result.valid, 0)
                beats = []


@dataclass
class _Board:
    """The reference: what the board must hold after the steps so far."""

    valid: bool
    hash: bytes
    tables: dict
    writes: list = field(default_factory=list)

    def apply(self, effect: Effect) -> None:
        for k, a, v in effect.writes:
            self.tables[(k, a)] = v
        self.writes += effect.writes
        if effect.state == "invalid":
            self.valid, self.hash = False, bytes(16)
        elif isinstance(effect.state, bytes):
            self.valid, self.hash = True, effect.state

    def holds(self, tables_hash: bytes) -> bool:
        return self.valid and self.hash == tables_hash


def _reset_board(params: dict) -> _Board:
    valid = params.get("tables_at_reset", True)
    return _Board(valid, LINK["model_hash"] if valid else bytes(16), initial_tables())


def check_step(step: Step, got: list) -> tuple[str, str] | None:
    """(class, detail) when ``got`` is not what ``step`` expects, else None."""
    e = step.expect
    if e.anything:
        return None
    noise = [f for f in got if f.seq not in e.replies]
    return _check_noise(e, noise) or _check_replies(e, [f for f in got if f.seq in e.replies])


def _check_noise(e: Expect, noise: list) -> tuple[str, str] | None:
    """The frames that answer no request of the step: SEQ-0 ERRORs, when allowed."""
    from spikelut.hdl.hostlink.wire import RESERVED_SEQ, FrameType

    for f in noise:
        if f.seq != RESERVED_SEQ or f.type != FrameType.ERROR:
            bad = "silent" if e.refused and f.type != FrameType.ERROR else "wrong"
            return bad, f"unexpected frame {f.type:#x} seq {f.seq}"
        if not e.unparsed or len(f.payload) != 2 or f.payload[0] not in e.codes:
            return "wrong", f"unexpected SEQ-0 ERROR {tuple(f.payload)}"
    if e.need_unparsed and not noise:
        return "wrong", "no SEQ-0 ERROR for a frame the board could not parse"
    if e.first_unparsed and noise and tuple(noise[0].payload) != e.first_unparsed:
        return "wrong", f"SEQ-0 ERROR {tuple(noise[0].payload)}, expected {e.first_unparsed}"
    return None


def _check_replies(e: Expect, mine: list) -> tuple[str, str] | None:
    """Each request of the step answered once, with the expected TYPE and payload."""
    from spikelut.hdl.hostlink.wire import FrameType

    for seq, (rtype, payload) in e.replies.items():
        found = [f for f in mine if f.seq == seq]
        if len(found) != 1:
            return "wrong", f"{len(found)} replies with SEQ {seq}"
        reply = found[0]
        if e.refused and reply.type != FrameType.ERROR:
            return "silent", f"answered {reply.type:#x} to a frame that must be refused"
        if reply.type != rtype:
            return "wrong", f"reply {reply.type:#x} {reply.payload.hex()}, expected {rtype:#x}"
        if payload is not None and reply.payload != payload:
            return "wrong", f"reply {reply.payload.hex()}, expected {payload.hex()}"
    return None


def _identity_payload(board: _Board, params: dict) -> bytes:
    from spikelut.hdl.hostlink.wire import Identity

    link = {**LINK, **params}
    names = ("in_width", "n_inputs", "result_width", "table_word_bits", "table_addr_bits",
             "n_layers", "clock_hz", "max_payload", "model_hash", "shape_hash", "table_words")  # fmt: skip
    ident = Identity(
        **{k: link[k] for k in names},
        tables_valid=board.valid,
        tables_hash=board.hash if board.valid else b"",
    )
    return ident.encode()


def probe_verdict(board: _Board, probe: list[Step], got: list[list]) -> tuple[str, str] | None:
    """The probe (IDENTIFY, INFER) after the case: tables reported valid or used that must
    not be are silent; answers computed on other tables are data loss."""
    from spikelut.boards.protocol import unpack_values
    from spikelut.hdl.hostlink.wire import FrameType, Identity, ProtocolError

    ident_seq, infer_seq = probe[0].expect.last_seq, probe[1].expect.last_seq
    ident = [f for f in got[0] if f.seq == ident_seq and f.type == FrameType.IDENTITY]
    if len(ident) == 1:
        try:
            reported = Identity.decode(ident[0].payload)
        except ProtocolError as e:
            return "wrong", f"IDENTITY: {e}"
        if reported.tables_valid and not board.holds(reported.tables_hash):
            return "silent", f"the board reports tables {reported.tables_hash.hex()} valid"
    result = [f for f in got[1] if f.seq == infer_seq and f.type == FrameType.RESULT]
    if len(result) == 1:
        if not board.valid:
            return "silent", "INFER answered on tables that are not valid"
        value = unpack_values(result[0].payload, LINK["result_width"])
        want = unpack_values(probe[1].expect.replies[infer_seq][1], LINK["result_width"])
        if value != want:
            return "data_loss", f"INFER answered {value} on the tables held, expected {want}"
    return None


def classify_frames(case: FrameCase, probe: list[Step], replies: list, writes: list, board: _Board) -> tuple[str, str]:  # fmt: skip
    """(class, detail) of a frame case; the worst problem found wins."""
    problems = []
    if writes != board.writes:
        extra = [w for w in writes if w not in board.writes]
        problems.append(("silent" if extra else "wrong", f"table writes {writes}, expected {board.writes}"))  # fmt: skip
    found = probe_verdict(board, probe, replies[-2:])
    if found:
        problems.append(found)
    for step, got in zip([*case.steps, *probe], replies, strict=True):
        found = check_step(step, got)
        if found:
            problems.append(found)
    for cls in ("data_loss", "traceback", "silent", "wrong"):
        for found_cls, detail in problems:
            if found_cls == cls:
                return cls, detail
    return "ok", ""


def run_frame_case(case: FrameCase, seed: int) -> Verdict:
    """The case's steps, then IDENTIFY and INFER; classified (see the module docstring)."""
    start = time.perf_counter()
    board = _reset_board(case.params)
    for step in case.steps:
        board.apply(step.effect)
    used = {seq for step in case.steps for seq in step.expect.replies}
    seqs = [s for s in random.Random(f"{seed}:{case.name}").sample(range(1, 256), 255) if s not in used]  # fmt: skip
    probe = _Builder(random.Random(seed), case.params, board=board, seqs=seqs)
    probe.identify(payload=_identity_payload(board, case.params))
    probe.infer()
    try:
        replies, writes = _LinkBench([*case.steps, *probe.steps], case.params, seed).run()
    except LinkStuck as e:
        return Verdict("frames", case.name, "wrong", str(e), time.perf_counter() - start)
    except Exception:
        detail = traceback.format_exc().strip().splitlines()[-1]
        return Verdict("frames", case.name, "traceback", detail, time.perf_counter() - start)
    cls, detail = classify_frames(case, probe.steps, replies, writes, board)
    return Verdict("frames", case.name, cls, detail, time.perf_counter() - start)


class _Builder:
    """Builds a frame case step by step, keeping the reference board (what the tables and
    the load in progress are after each step) to know every valid request's answer."""

    def __init__(self, rng: random.Random, params: dict | None = None, *, board=None, seqs=None):
        from spikelut.boards.protocol import LoadRecord

        self.rng, self.params = rng, dict(params or {})
        self.board = board if board is not None else _reset_board(self.params)
        self._seqs = list(seqs) if seqs is not None else rng.sample(range(1, 256), 255)
        self.record, self.fresh = LoadRecord(), True
        self.steps: list[Step] = []

    def seq(self) -> int:
        return self._seqs.pop()

    def vector(self) -> list[int]:
        return [self.rng.randint(-16, 15) for _ in range(LINK["n_inputs"])]

    def add(self, wire: bytes, expect: Expect, effect: Effect | None = None, **kw) -> None:
        effect = effect or Effect()
        self.steps.append(Step(wire, expect, effect, **kw))
        self.board.apply(effect)

    def _ok(self, seq: int, rtype: int, payload: bytes | None) -> Expect:
        return Expect({seq: (rtype, payload)}, unparsed=False)

    def identify(self, payload: bytes | None = None) -> None:
        from spikelut.boards.protocol import encode_frame
        from spikelut.hdl.hostlink.wire import FrameType

        s = self.seq()
        self.add(encode_frame(FrameType.IDENTIFY, b"", s), self._ok(s, FrameType.IDENTITY, payload))

    def infer_frame(self, vectors: list[list[int]] | None = None) -> tuple[bytes, int, tuple]:
        """A valid INFER (one vector) or INFER_BATCH, its SEQ and its expected reply."""
        from spikelut.boards import protocol as p
        from spikelut.hdl.hostlink.wire import ErrorCode, FrameType

        s, width = self.seq(), LINK["in_width"]
        if vectors is None:
            vec = self.vector()
            wire, rtype, vecs = p.encode_frame(FrameType.INFER, p.infer_payload(vec, width), s), FrameType.RESULT, [vec]  # fmt: skip
        else:
            wire, rtype, vecs = p.encode_frame(FrameType.INFER_BATCH, p.infer_batch_payload(vectors, width), s), FrameType.RESULT_BATCH, vectors  # fmt: skip
        if not self.board.valid:
            return wire, s, (FrameType.ERROR, bytes([ErrorCode.NO_TABLES, wire[1]]))
        results = [core_result(v, self.board.tables) for v in vecs]
        return wire, s, (rtype, p.pack_values(results, LINK["result_width"], signed=False))

    def infer(self, batch: int = 0) -> None:
        vectors = [self.vector() for _ in range(batch)] if batch else None
        wire, s, reply = self.infer_frame(vectors)
        self.add(wire, Expect({s: reply}, unparsed=False))

    def load(self, layer: int, offset: int, words: list[int], *, replay: bool = False) -> bytes:
        """A valid LOAD_TABLES: answered OK, writes its words, invalidates the tables."""
        from spikelut.boards import protocol as p
        from spikelut.hdl.hostlink.wire import FrameType

        payload = p.load_tables_payload(layer, offset, words, LINK["table_word_bits"])
        if self.fresh and words:
            self.record, self.fresh = p.LoadRecord(), False
        if not words:  # a begin
            self.record, self.fresh = p.LoadRecord(), False
        self.record.add(payload)
        s = self.seq()
        writes = [(layer, offset + i, w) for i, w in enumerate(words)]
        ok = self._ok(s, FrameType.OK, bytes([FrameType.LOAD_TABLES]))
        self.add(p.encode_frame(FrameType.LOAD_TABLES, payload, s), ok, Effect(writes, "invalid"))
        return payload

    def full_load(self, layer: int = 1) -> None:
        """A load of exactly ``table_words`` words, in two frames."""
        n = LINK["table_words"]
        words = [self.rng.randrange(1024) for _ in range(n)]
        base = self.rng.randrange(0, WORDS - n + 1)
        self.load(layer, base, words[: n // 2])
        self.load(layer, base + n // 2, words[n // 2 :])

    def commit(self, model_hash: bytes = NEW_HASH, *, forge: Callable | None = None) -> None:
        """COMMIT_TABLES of the load so far as ``model_hash`` (``forge`` alters its payload):
        OK and valid when it checks out, else TABLES_MISMATCH and invalid."""
        from spikelut.boards import protocol as p
        from spikelut.hdl.crc import crc16
        from spikelut.hdl.hostlink.wire import ErrorCode, FrameType

        payload = self.record.commit_payload(model_hash)
        if forge is not None:
            payload = forge(payload)
        ok = crc16(payload, self.record.crc) == 0 and self.record.words == LINK["table_words"]
        ok = ok and self.params.get("table_words", 1) != 0
        self.fresh = True
        s = self.seq()
        if ok:
            expect = self._ok(s, FrameType.OK, bytes([FrameType.COMMIT_TABLES]))
            effect = Effect(state=payload[:16])
        else:
            code = ErrorCode.TABLES_MISMATCH if self.params.get("table_words", 1) else ErrorCode.BAD_ARGUMENT  # fmt: skip
            expect = self._ok(s, FrameType.ERROR, bytes([code, FrameType.COMMIT_TABLES]))
            expect.refused = True
            effect = Effect(state="invalid" if code == ErrorCode.TABLES_MISMATCH else None)
        self.add(p.encode_frame(FrameType.COMMIT_TABLES, payload, s), expect, effect)

    def refused(self, wire: bytes, seq: int, code: int, ftype: int) -> None:
        """An intact frame the board must refuse with ERROR ``code`` and its SEQ."""
        from spikelut.hdl.hostlink.wire import FrameType

        expect = self._ok(seq, FrameType.ERROR, bytes([code, ftype & 0xFF]))
        expect.refused = True
        self.add(wire, expect)

    def unparsed(self, wire: bytes, first: tuple[int, int] | None = None, **kw) -> None:
        """Bytes that hold no frame: SEQ-0 ERRORs only (``first``: the first one's)."""
        from spikelut.hdl.hostlink.wire import SYNC

        idle = (2 + 2 * wire.count(SYNC)) * LINK["timeout_cycles"] + kw.get("gap", 0)
        expect = Expect(need_unparsed=SYNC in wire, first_unparsed=first, refused=True)
        self.add(wire, expect, idle=idle, **kw)

    def case(self, name: str) -> FrameCase:
        return FrameCase(name, self.steps, self.params)


# -- frames: the families of malformed input ---------------------------------------------------


def _request(b: _Builder, kind: str) -> tuple[bytes, int]:
    """A valid request of ``kind`` (not sent) and its SEQ."""
    from spikelut.boards import protocol as p
    from spikelut.hdl.hostlink.wire import FrameType as T

    s, width = b.seq(), LINK["in_width"]
    payload = {
        "IDENTIFY": b"",
        "READ_COUNTERS": b"",
        "INFER": p.infer_payload(b.vector(), width),
        "INFER_BATCH": p.infer_batch_payload([b.vector() for _ in range(3)], width),
        "LOAD_TABLES": p.load_tables_payload(b.rng.randrange(2), 2, [b.rng.randrange(1024) for _ in range(4)], 10),
        "COMMIT_TABLES": b.record.commit_payload(NEW_HASH),
    }[kind]  # fmt: skip
    return p.encode_frame(T[kind], payload, s), s


KINDS = ("IDENTIFY", "READ_COUNTERS", "INFER", "INFER_BATCH", "LOAD_TABLES", "COMMIT_TABLES")


def fam_bad_crc(b: _Builder) -> str:
    kind = b.rng.choice(KINDS)
    wire, _ = _request(b, kind)
    pos = b.rng.choice([1, 2, len(wire) - 2, len(wire) - 1, *range(5, len(wire) - 2)])
    bad = bytearray(wire)
    bad[pos] ^= b.rng.randrange(1, 256)
    b.unparsed(bytes(bad), first=(1, bad[1]))
    return f"bad CRC: {kind} byte {pos} changed"


def fam_length_field(b: _Builder) -> str:
    """LENGTH changed, the CRC not recomputed: above max_payload (BAD_LENGTH), shorter (the
    CRC fails), longer (the bytes stop: TIMEOUT)."""
    kind = b.rng.choice(("INFER", "INFER_BATCH", "LOAD_TABLES", "COMMIT_TABLES"))
    wire, _ = _request(b, kind)
    length = len(wire) - 7
    how, new, code = b.rng.choice([
        ("above max_payload", LINK["max_payload"] + 1 + b.rng.randrange(100), 3),
        ("0xFFFF", 0xFFFF, 3),
        ("shorter", b.rng.randrange(0, length), 1),
        ("longer", b.rng.randrange(length + 1, LINK["max_payload"] + 1), 4),
    ])  # fmt: skip
    bad = bytearray(wire)
    struct.pack_into("<H", bad, 3, new)
    b.unparsed(bytes(bad), first=(code, bad[1]))
    return f"LENGTH {how} ({new}) in {kind}"


def fam_truncated(b: _Builder) -> str:
    kind = b.rng.choice(KINDS)
    wire, _ = _request(b, kind)
    cut = b.rng.randrange(1, len(wire))
    b.unparsed(wire[:cut], first=(4, wire[1] if cut >= 2 else 0))
    return f"truncated {kind} after {cut} of {len(wire)} bytes"


def fam_slow(b: _Builder) -> str:
    """A pause longer than the timeout in the middle of a frame."""
    kind = b.rng.choice(KINDS)
    wire, _ = _request(b, kind)
    at = b.rng.randrange(2, len(wire))
    b.unparsed(wire, first=(4, wire[1]), gap_at=at, gap=3 * LINK["timeout_cycles"])
    return f"{kind} paused longer than the timeout before byte {at}"


def fam_unknown_type(b: _Builder) -> str:
    from spikelut.boards.protocol import encode_frame
    from spikelut.hdl.hostlink.wire import ErrorCode

    ftype = b.rng.choice(
        [0x00, 0x07, 0x08, 0x42, 0x7F, 0x80, 0x81, 0x83, 0x84, 0x85, 0xA5, 0xFE, 0xFF]
    )
    payload = b.rng.randbytes(b.rng.randrange(0, 5))
    s = b.seq()
    b.refused(encode_frame(ftype, payload, s), s, ErrorCode.UNKNOWN_TYPE, ftype)
    return f"unknown TYPE {ftype:#04x} with {len(payload)} payload bytes"


def fam_oversize(b: _Builder) -> str:
    """A frame with a good CRC and more payload than max_payload."""
    from spikelut.boards.protocol import encode_frame
    from spikelut.hdl.hostlink.wire import FrameType

    kind = b.rng.choice(("INFER_BATCH", "LOAD_TABLES", "INFER"))
    size = LINK["max_payload"] + 1 + b.rng.randrange(40)
    wire = encode_frame(FrameType[kind], b.rng.randbytes(size), b.seq())
    b.unparsed(wire, first=(3, wire[1]))
    return f"{kind} with a {size}-byte payload (max {LINK['max_payload']})"


def fam_wrong_length(b: _Builder) -> str:
    """Intact frames whose LENGTH is wrong for their TYPE: ERROR BAD_LENGTH, their SEQ."""
    from spikelut.boards import protocol as p
    from spikelut.hdl.hostlink.wire import ErrorCode
    from spikelut.hdl.hostlink.wire import FrameType as T

    vec = p.infer_payload(b.vector(), LINK["in_width"])
    how, ftype, payload = b.rng.choice([
        ("IDENTIFY with a payload", T.IDENTIFY, b"\x00"),
        ("READ_COUNTERS with a payload", T.READ_COUNTERS, b"\x01\x02"),
        ("INFER one byte short", T.INFER, vec[:-1]),
        ("INFER one byte long", T.INFER, vec + b"\x00"),
        ("INFER empty", T.INFER, b""),
        ("INFER_BATCH of one byte", T.INFER_BATCH, b"\x01"),
        ("INFER_BATCH whose count says 2 for one vector", T.INFER_BATCH, b"\x02\x00" + vec),
        ("INFER_BATCH whose count says 1 for two vectors", T.INFER_BATCH, b"\x01\x00" + vec + vec),
        ("LOAD_TABLES shorter than its head", T.LOAD_TABLES, b"\x00\x00\x00"),
        ("LOAD_TABLES whose count says 3 for 2 words", T.LOAD_TABLES, p.load_tables_payload(0, 0, [1, 2], 10)[:5] + b"\x03\x00" + p.load_tables_payload(0, 0, [1, 2], 10)[7:]),
        ("COMMIT_TABLES of 10 bytes", T.COMMIT_TABLES, bytes(10)),
        ("COMMIT_TABLES one byte long", T.COMMIT_TABLES, bytes(19)),
    ])  # fmt: skip
    s = b.seq()
    b.refused(p.encode_frame(ftype, payload, s), s, ErrorCode.BAD_LENGTH, ftype)
    return how


def fam_bad_argument(b: _Builder) -> str:
    """Intact frames with arguments out of range: ERROR BAD_ARGUMENT, nothing written."""
    from spikelut.boards import protocol as p
    from spikelut.hdl.hostlink.wire import ErrorCode
    from spikelut.hdl.hostlink.wire import FrameType as T

    layer, offset, count = b.rng.choice([
        (LINK["n_layers"], 0, 2), (255, 0, 1), (0, WORDS - 1, 2), (1, WORDS, 1),
        (0, 0xFFFFFFFF, 1), (1, 0xFFFFFFFF - 1, 3), (0, 1 << 31, 1), (0, WORDS + 1, 0),
    ])  # fmt: skip
    s = b.seq()
    if b.rng.random() < 0.2:
        wire = p.encode_frame(T.INFER_BATCH, b"\x00\x00", s)
        b.refused(wire, s, ErrorCode.BAD_ARGUMENT, T.INFER_BATCH)
        return "INFER_BATCH of 0 vectors"
    words = [b.rng.randrange(1024) for _ in range(count)]
    wire = p.encode_frame(T.LOAD_TABLES, p.load_tables_payload(layer, offset, words, 10), s)
    b.refused(wire, s, ErrorCode.BAD_ARGUMENT, T.LOAD_TABLES)
    return f"LOAD_TABLES layer {layer} offset {offset:#x} count {count}"


def fam_stray_sync(b: _Builder) -> str:
    """Garbage, stray SYNC bytes or a corrupted frame right before a valid request: the
    request is answered (SEQ-0 ERRORs besides)."""
    from spikelut.boards.protocol import decode_frames

    for _ in range(50):
        prefix = b.rng.choice([
            b"\xa5", b"\xa5\xa5", b"\xa5\x01", b"\xa5\x03\x05", b"\xa5\x01\x00\x00",
            bytes(b.rng.choice([0xA5, 0x00, 0x01, 0x03, 0x06, b.rng.randrange(256)]) for _ in range(b.rng.randrange(1, 12))),
            bytes([0xA5, 0x03, b.rng.randrange(1, 256), 6, 0]) + bytes(3),
        ])  # fmt: skip
        batch = b.rng.randrange(0, 3)
        wire, s, reply = b.infer_frame([b.vector() for _ in range(batch)] if batch else None)
        if decode_frames(prefix + wire) == decode_frames(wire):  # the garbage forms no frame
            break
    b.add(prefix + wire, Expect({s: reply}))
    return f"{prefix.hex()} before a valid {'INFER_BATCH' if batch else 'INFER'}"


def fam_corrupted_then_good(b: _Builder) -> str:
    kind = b.rng.choice(KINDS)
    bad, _ = _request(b, kind)
    bad = bytearray(bad)
    bad[b.rng.randrange(5, len(bad))] ^= 0x40
    wire, s, reply = b.infer_frame()
    b.add(bytes(bad) + wire, Expect({s: reply}))
    return f"a corrupted {kind} and a valid INFER in one burst"


def fam_garbage(b: _Builder) -> str:
    from spikelut.boards.protocol import decode_frames

    alphabet = [0xA5, 0x01, 0x02, 0x03, 0x04, 0x06, 0x00, 0x08]
    while True:
        n = b.rng.randrange(8, 60)
        junk = bytes(b.rng.choice(alphabet) if b.rng.random() < 0.5 else b.rng.randrange(256) for _ in range(n))  # fmt: skip
        if not decode_frames(junk):
            break
    b.unparsed(junk)
    return f"{n} bytes of garbage"


def fam_load_without_commit(b: _Builder) -> str:
    n = b.rng.randrange(1, 4)
    for _ in range(n):
        words = [b.rng.randrange(1024) for _ in range(b.rng.randrange(1, 5))]
        b.load(b.rng.randrange(2), b.rng.randrange(0, WORDS - len(words) + 1), words)
    b.infer()
    return f"{n} LOAD_TABLES without COMMIT_TABLES, then INFER"


def _flip(at: int) -> Callable[[bytes], bytes]:
    def forge(payload: bytes) -> bytes:
        out = bytearray(payload)
        out[at] ^= 0x01
        return bytes(out)

    return forge


def fam_commit(b: _Builder) -> str:
    """Table loads and commits: wrong hash, wrong CRC, too few or too many words, no load,
    a good commit (then a repeated one, a corrupted load after it)."""
    variant = b.rng.randrange(8)
    if variant == 0:
        b.full_load()
        b.commit(forge=lambda pl: bytes(16) + pl[16:])
        return "a full load, COMMIT_TABLES with another hash than its CRC covers"
    if variant == 1:
        b.full_load()
        b.commit(forge=_flip(16 + b.rng.randrange(2)))
        return "a full load, COMMIT_TABLES with a wrong CRC"
    if variant == 2:
        b.load(0, 0, [1, 2, 3])
        b.commit()
        return "3 of 8 words loaded, COMMIT_TABLES"
    if variant == 3:
        b.commit()
        b.infer()
        return "COMMIT_TABLES without a load"
    if variant == 4:
        b.full_load()
        b.load(0, 3, [7, 7])
        b.commit()
        return "a load of 10 words, COMMIT_TABLES"
    if variant == 5:
        b.load(0, 0, [5, 6, 7, 8])
        b.load(0, 0, [5, 6, 7, 8])  # resent: carried out twice, in the CRC twice
        b.commit()
        return "a LOAD_TABLES sent twice, COMMIT_TABLES"
    b.full_load()
    b.commit()
    b.infer()
    if variant == 6:
        b.commit()
        b.infer()
        return "a good load and commit, INFER, the commit repeated, INFER"
    bad, _ = _request(b, "LOAD_TABLES")
    bad = bytearray(bad)
    bad[-1] ^= 0x01
    b.unparsed(bytes(bad), first=(1, bad[1]))
    b.infer(batch=2)
    return "a good load and commit, then a LOAD_TABLES with a bad CRC, INFER_BATCH"


def fam_no_tables(b: _Builder) -> str:
    """A board that boots with no tables: INFER and INFER_BATCH refused with NO_TABLES,
    until a load commits."""
    b.infer()
    b.infer(batch=2)
    if b.rng.random() < 0.5:
        b.full_load(layer=0)
        b.commit()
        b.infer()
        return "no tables at reset: INFER, INFER_BATCH, then load, commit, INFER"
    return "no tables at reset: INFER and INFER_BATCH"


def fam_fixed_tables(b: _Builder) -> str:
    from spikelut.boards import protocol as p
    from spikelut.hdl.hostlink.wire import ErrorCode
    from spikelut.hdl.hostlink.wire import FrameType as T

    s = b.seq()
    wire = p.encode_frame(T.LOAD_TABLES, p.load_tables_payload(0, 0, [1, 2], 10), s)
    b.refused(wire, s, ErrorCode.BAD_ARGUMENT, T.LOAD_TABLES)
    b.commit()
    return "tables fixed by the bitstream: LOAD_TABLES and COMMIT_TABLES"


def fam_reserved_seq(b: _Builder) -> str:
    from spikelut.boards.protocol import encode_frame
    from spikelut.hdl.hostlink.wire import FrameType

    kind = b.rng.choice(("IDENTIFY", "READ_COUNTERS"))
    b.add(encode_frame(FrameType[kind], b"", 0), Expect(anything=True), idle=600)
    return f"{kind} with the reserved SEQ 0"


def fam_pipelined(b: _Builder) -> str:
    """Requests sent back to back, without waiting for the replies."""
    n = b.rng.randrange(2, 4)
    wires, replies = [], {}
    for _ in range(n):
        wire, s, reply = b.infer_frame()
        wires.append(wire)
        replies[s] = reply
    b.add(b"".join(wires), Expect(replies, unparsed=False))
    return f"{n} INFERs back to back"


# (family, its share of the cases, board parameters)
FAMILIES = [
    (fam_bad_crc, 14, {}),
    (fam_length_field, 10, {}),
    (fam_truncated, 10, {}),
    (fam_slow, 4, {}),
    (fam_unknown_type, 8, {}),
    (fam_oversize, 5, {}),
    (fam_wrong_length, 10, {}),
    (fam_bad_argument, 8, {}),
    (fam_stray_sync, 8, {}),
    (fam_corrupted_then_good, 4, {}),
    (fam_garbage, 5, {}),
    (fam_load_without_commit, 3, {}),
    (fam_commit, 8, {}),
    (fam_no_tables, 2, {"tables_at_reset": False}),
    (fam_fixed_tables, 1, {"table_words": 0}),
    (fam_reserved_seq, 1, {}),
    (fam_pipelined, 2, {}),
]


def frame_cases(n: int, seed: int) -> list[FrameCase]:
    """``n`` cases over :data:`FAMILIES` in proportion to their shares (one each at least
    while ``n`` allows), each from its own seeded generator."""
    total = sum(share for _, share, _ in FAMILIES)
    counts = [max(1, round(share * n / total)) for _, share, _ in FAMILIES]
    order = sorted(range(len(FAMILIES)), key=lambda i: -FAMILIES[i][1])
    while sum(counts) > n and any(counts):
        i = next(i for i in reversed(order) if counts[i] > 0)
        counts[i] -= 1
    cases = []
    for (family, _, params), count in zip(FAMILIES, counts, strict=True):
        for k in range(count):
            b = _Builder(random.Random(f"{seed}:{family.__name__}:{k}"), params)
            what = family(b)
            cases.append(b.case(f"{family.__name__[4:]} {k}: {what}"))
    return cases


# -- the campaign ------------------------------------------------------------------------------


@dataclass
class Campaign:
    """The cases of the groups asked for, and their verdicts as they run."""

    seed: int = 0
    quick: bool = False
    groups: tuple[str, ...] = GROUPS
    timeout: float = 120.0
    only: str | None = None
    verbose: bool = False
    everything: bool = False
    verdicts: list[Verdict] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        if self.everything:  # every file and command-line case generated
            return {**SIZES, "files": 10**6, "cli": 10**6}
        return QUICK_SIZES if self.quick else SIZES

    def cases(self, bases: Path) -> dict[str, list]:
        sizes, n_sub = self.sizes(), (1 if self.quick else 4)
        out: dict[str, list] = {}
        files = (
            file_cases(bases, sizes["files"] - n_sub, self.seed) if "files" in self.groups else []
        )
        cli = cli_cases(sizes["cli"] - n_sub, self.seed) if "cli" in self.groups else []
        if files:
            out["files"] = files + subprocess_cases(files, [], n_sub, self.seed)
        if cli:
            out["cli"] = cli + subprocess_cases([], cli, n_sub, self.seed)
        if "frames" in self.groups:
            out["frames"] = frame_cases(sizes["frames"], self.seed)
        if self.only:
            out = {g: [c for c in cs if self.only in c.name] for g, cs in out.items()}
        return out

    def run(self, progress: Callable[[str], None] = log) -> list[Verdict]:
        with tempfile.TemporaryDirectory(prefix="spikelut-campaign-") as tmp:
            bases = Path(tmp) / "bases"
            bases.mkdir()
            make_bases(bases)
            runner = CliRunner(bases, Path(tmp) / "cases", timeout=self.timeout)
            for group, cases in self.cases(bases).items():
                self._run_group(group, cases, runner, progress)
        return self.verdicts

    def _run_group(self, group: str, cases: list, runner: CliRunner, progress) -> None:
        start = time.perf_counter()
        progress(f"{group}: {len(cases)} cases")
        counts: Counter = Counter()
        for i, case in enumerate(cases, 1):
            if isinstance(case, FrameCase):
                v = run_frame_case(case, self.seed)
            else:
                v = runner.verdict(case)
            self.verdicts.append(v)
            counts[v.cls] += 1
            if v.cls != "ok" or self.verbose:
                progress(f"  {v.cls:9s} {v.name}: {v.detail}")
            if i % 25 == 0 or i == len(cases):
                tally = ", ".join(f"{counts[c]} {c}" for c in CLASSES if counts[c])
                progress(
                    f"  {group} {i}/{len(cases)} ({tally}; {time.perf_counter() - start:.0f} s)"
                )

    def counts(self) -> dict[str, dict[str, int]]:
        out = {g: dict.fromkeys(CLASSES, 0) for g in self.groups}
        for v in self.verdicts:
            out.setdefault(v.group, dict.fromkeys(CLASSES, 0))[v.cls] += 1
        return out

    def failed(self) -> bool:
        return any(v.cls in FAILING for v in self.verdicts)


def summary_table(counts: dict[str, dict[str, int]]) -> str:
    rows = [(g, *(c[k] for k in CLASSES), sum(c.values())) for g, c in counts.items()]
    totals = [sum(r[i] for r in rows) for i in range(1, len(CLASSES) + 2)]
    rows.append(("total", *totals))
    headers = ("group", *CLASSES, "cases")
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(str(x).rjust(w) for x, w in zip(r, widths, strict=True)) for r in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about 60 cases (for the tests)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--seed", type=int, default=0, help="seed of every case (default 0)")
    ap.add_argument("--groups", default=",".join(GROUPS), help="files,cli,frames (default all)")
    ap.add_argument("--only", metavar="TEXT", help="only the cases whose name contains TEXT")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds a command may take")
    ap.add_argument("--list", action="store_true", help="list the cases, run nothing")
    ap.add_argument("-v", "--verbose", action="store_true", help="a line for every case")
    ap.add_argument(
        "--all", action="store_true", help="every file and command-line case generated, not 400"
    )
    args = ap.parse_args(argv)
    groups = tuple(g for g in args.groups.split(",") if g)
    if not set(groups) <= set(GROUPS):
        ap.error(f"--groups: choose from {', '.join(GROUPS)}")
    campaign = Campaign(
        args.seed, args.quick, groups, args.timeout, args.only, args.verbose, args.all
    )
    if args.list:
        with tempfile.TemporaryDirectory() as tmp:
            make_bases(Path(tmp))
            for group, cases in campaign.cases(Path(tmp)).items():
                for case in cases:
                    print(f"{group}\t{case.name}")
        return 0
    start = time.perf_counter()
    campaign.run()
    counts = campaign.counts()
    if args.json:
        failures = [vars(v) for v in campaign.verdicts if v.cls != "ok"]
        result = {
            "seed": args.seed,
            "quick": args.quick,
            "cases": len(campaign.verdicts),
            "seconds": round(time.perf_counter() - start, 1),
            "counts": counts,
            "failures": failures,
        }
        print(json.dumps(result, sort_keys=True))
    else:
        print(summary_table(counts))
    return 1 if campaign.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
