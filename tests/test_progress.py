"""Progress people can watch, and a quiet terminal (issue 19): the progress API
(:mod:`spikelut.compiler.progress`), its terminal view, and real ``spikelut`` runs under a
pseudo-terminal (a moving display), redirected to files (only spikelut's own lines) and
with ``--json`` (one JSON object)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers_output import foreign_lines

from spikelut.cli.progress_view import describe
from spikelut.compiler import progress


class Recorder:
    """A renderer that keeps every call, as (event, description, completed, total, phase)."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.lock = threading.Lock()

    def _note(self, event: str, t: progress.Task) -> None:
        with self.lock:
            self.calls.append((event, t.description, t.completed, t.total, t.phase))

    def started(self, t):
        self._note("start", t)

    def updated(self, t):
        self._note("update", t)

    def finished(self, t):
        self._note("finish", t)


def test_tasks_reach_the_installed_renderer_and_nothing_without_one():
    with progress.task("silent", 3) as t:  # no renderer: a plain object, no calls
        t.advance(2)
    assert t.completed == 2 and not progress.active()
    rec = Recorder()
    with progress.rendering(rec):
        assert progress.active()
        with progress.task("sim", 10, "vectors") as t:
            t.advance(4)
            t.update(phase="running", loss=0.5)
            assert t.rate is not None and t.rate > 0
            assert t.eta is not None and t.eta >= 0
        assert list(progress.track(["a", "b", "c"], "items")) == ["a", "b", "c"]
    assert not progress.active()  # the previous (none) is back
    assert rec.calls[:4] == [
        ("start", "sim", 0, 10, ""),
        ("update", "sim", 4, 10, ""),
        ("update", "sim", 4, 10, "running"),
        ("finish", "sim", 4, 10, "running"),
    ]
    assert [c[2] for c in rec.calls[4:]] == [0, 1, 2, 3, 3]
    assert rec.calls[-1][0] == "finish" and rec.calls[4][3] == 3  # total from len()


def test_the_terminal_text_of_a_task():
    t = progress.Task("sim", 200, "vectors")
    assert describe(t) == "0/200 vectors"
    t.started -= 10  # ten seconds ago
    t.update(completed=50, phase="running", loss=0.123456)
    text = describe(t)
    assert text.startswith("50/200 vectors  5.0 vectors/s  ETA 30 s  running  loss 0.1235")
    assert describe(progress.Task("build")) == ""  # no count, no unit: only what is known


def test_follow_logs_turns_new_lines_into_phases(tmp_path):
    log = tmp_path / "tool.log"  # created only after the follower starts
    seen: list[str] = []

    def rule(line: str, t: progress.Task) -> None:
        seen.append(line)
        if line.startswith("Info: Routing"):
            t.update(phase="routing")

    with progress.rendering(Recorder()), progress.task("build") as t:
        with progress.follow_logs(t, [(log, rule)], interval=0.02):
            log.write_text("Info: Packing..\nInfo: Rout")  # the second line is not complete
            time.sleep(0.2)
            with open(log, "a") as f:
                f.write("ing..\n")
            time.sleep(0.2)
        assert t.phase == "routing"
    assert seen == ["Info: Packing..", "Info: Routing.."]


def test_a_child_process_count_reaches_the_parent(tmp_path):
    """What a cocotb testbench reports (:func:`report_to_parent`) shows as a task in the
    process that started it (:func:`follow_child`)."""
    child = (
        "import time\nfrom spikelut.compiler.progress import report_to_parent\n"
        "for n in range(1, 31):\n    report_to_parent(n, 30, every=0.0)\n    time.sleep(0.01)\n"
    )
    rec = Recorder()
    with (
        progress.rendering(rec),
        progress.follow_child(tmp_path / "p.txt", "simulating", "vectors", 0.02) as env,
    ):
        assert set(env) == {progress.CHILD_ENV}
        subprocess.run([sys.executable, "-c", child], env={**os.environ, **env}, check=True)
        time.sleep(0.2)
    counts = [c[2] for c in rec.calls if c[1] == "simulating" and c[0] == "update"]
    assert counts[-1] == 30 and counts == sorted(counts)
    assert rec.calls[-1][0] == "finish"
    with progress.follow_child(tmp_path / "q.txt", "x") as env:  # nobody watches
        assert env == {}


# -- real runs of the command --------------------------------------------------------------


def _spikelut(*args: str) -> list[str]:
    return [sys.executable, "-m", "spikelut.cli.main", *args]


def _under_pty(argv: list[str], stdout) -> bytes:
    """Run ``argv`` with stderr on a pseudo-terminal; returns what it drew there."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140"}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks)


def test_training_on_a_terminal_shows_a_moving_display(tmp_path):
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        drawn = _under_pty(
            _spikelut("train", "classifier", "--data", "digits", "--epochs", "4",
                      "-o", str(tmp_path / "m.lutnet")),
            f,
        )  # fmt: skip
    frames = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", drawn).decode(errors="replace")
    counts = [float(c) for c in re.findall(r"training\s.*?([\d.]+)/4 epochs", frames)]
    # successive frames with an advancing count, a rate and the loss
    assert len(set(counts)) >= 3 and counts == sorted(counts), counts
    assert re.search(r"[\d.]+ epochs/s", frames) and "loss 0." in frames
    assert "epoch 4/4" in frames  # the log lines are printed too, above the display
    text = out.read_text()  # stdout went to a file: the summary, no display
    assert "test accuracy" in text and foreign_lines(text) == []


def test_redirected_output_holds_only_spikelut_lines(tmp_path):
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as fo, open(err, "w") as fe:
        cmd = _spikelut("train", "classifier", "--data", "iris", "--hidden", "0", "--tables",
                        "6", "--n-c", "3", "--epochs", "3", "-o", str(tmp_path / "m.lutnet"))  # fmt: skip
        subprocess.run(cmd, stdout=fo, stderr=fe, check=True, timeout=120)
    text = out.read_text() + err.read_text()
    assert "epoch 3/3" in text and "test accuracy" in text
    assert foreign_lines(text) == []


def test_json_output_is_one_object_even_on_a_terminal(tmp_path):
    out = tmp_path / "out.json"
    with open(out, "w") as f:
        drawn = _under_pty(
            _spikelut("train", "classifier", "--data", "iris", "--hidden", "0", "--tables",
                      "6", "--n-c", "3", "--epochs", "3", "--json", "-o",
                      str(tmp_path / "m.lutnet")),
            f,
        )  # fmt: skip
    text = out.read_text()
    assert text.count("\n") == 1 and isinstance(json.loads(text), dict)
    assert "━" not in drawn.decode(errors="replace")  # no progress display with --json


@pytest.mark.parametrize(
    ("line", "own"),
    [
        ("[3/8] compile: started", True),
        ("  build: synthesising and placing for icebreaker", True),
        ("mismatches          0", True),
        ("SPRAMs                                4 of 4", True),
        ("------------  -----", True),
        ("", True),
        ("INFO     cocotb.regression  running network_matches_golden", False),
        ("%Warning-WIDTHEXPAND: top.v:10: Operator ADD expects 7 bits", False),
        ("c++ -Os -I. -MMD -c -o Vtop.o Vtop.cpp", False),
        ("     0.00ns INFO     gpi   ..", False),
        ("Running command verilator -cc top.v in directory /tmp", False),
    ],
)
def test_the_own_line_check_itself(line, own):
    assert (foreign_lines(line) == []) is own


# -- a failing tool: one line naming its full log ------------------------------------------


def _one_line_of(error: Exception, capsys) -> str:
    """What ``spikelut`` prints for ``error`` raised by a command, without ``-v``."""
    import argparse

    from spikelut.cli.main import _dispatch

    def fails(args):
        raise error

    assert _dispatch(argparse.Namespace(func=fails, command="build", verbose=False)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_a_failing_tool_is_one_line_with_its_log(tmp_path, capsys):
    from spikelut.compiler.build.toolchain import ToolFailed, run_tool

    log = tmp_path / "yosys.log"
    with pytest.raises(ToolFailed) as e:
        run_tool("yosys", ["-p", "no_such_pass"], cwd=tmp_path, log=log)
    line = _one_line_of(e.value, capsys)
    assert line.startswith("spikelut build: yosys failed with exit status")
    assert str(log) in line and "no_such_pass" in log.read_text()


def test_a_failing_verilator_build_keeps_its_log(tmp_path, capsys):
    from spikelut.sim.cocotb_runner import CocotbFailure, run_cocotb

    broken = "module broken(input a, output b);\n  assign b = ;\nendmodule\n"
    with pytest.raises(CocotbFailure) as e:
        run_cocotb(broken, toplevel="broken", test_module="spikelut.sim.tb_counter",
                   build_dir=tmp_path)  # fmt: skip
    line = _one_line_of(e.value, capsys)
    kept = re.search(r"its full log is (\S+)\)? ", line + " ")
    assert kept and "syntax error" in Path(kept.group(1)).read_text(), line
