"""``spikelut sweep`` on real Ray with real tools: a local instance with synthesis, place and
route of a tiny network (and a point that fails, as a result), its report in headless
Chromium; and a cluster started apart (``ray start --head``) that a sweep joins with
``--address``, is killed on halfway, and resumes on."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from spikelut.cli.main import main
from spikelut.compiler.backend.targets import HOST_LINK_CELLS
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.passes.evaluate import int_predict
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.sweep.report import SECTIONS
from spikelut.compiler.train.classifier import train_on_dataset

RAY = str(Path(sys.executable).with_name("ray"))

TINY = """
[data]
set = "digits"
epochs = 2
[grid]
n_tables = [4]
n_c = [2]
table_bits = [4, 1]        # 1 bit: quantisation refuses it, a failed point
board = ["icebreaker"]
[run]
synthesis = "pnr"
timeout_s = 600
memory_mb = 300
"""


def _chromium_dom(page: Path) -> str:
    chromium = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else "chromium"
    if shutil.which(chromium) is None:
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install -y chromium)")
    probe = page.with_name("probed.html")
    probe.write_text(
        page.read_text().replace(
            "</body>",
            "<script>window.addEventListener('load',()=>{for(const i of document.images)"
            "{i.setAttribute('data-w',i.naturalWidth)}"
            "document.body.setAttribute('data-probed','yes')});</script></body>",
        )
    )
    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
             probe.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    return res.stdout


@pytest.mark.slow
def test_local_ray_sweep_builds_records_failures_and_reports(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "-o", str(out), "--cpus", "2", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["points"] == 2 and figures["by_status"] == {"error": 1, "ok": 1}
    results = [json.loads(p.read_text()) for p in sorted((out / "points").glob("*.json"))]
    ok = next(r for r in results if r["status"] == "ok")
    bad = next(r for r in results if r["status"] != "ok")
    # the failed point is a result with its stage and reason
    assert bad["stage"] == "quantize" and "table bits" in bad["reason"]
    # the built point: placed and routed (the host link's cells and the core's), timing met
    b = ok["build"]
    assert b["ok"] and b["fits"] and b["timing_met"] and ok["fmax_mhz"] >= b["target_mhz"]
    assert ok["logic_cells"] > HOST_LINK_CELLS["ice40"]
    assert ok["inferences_per_second"] == pytest.approx(
        ok["fmax_mhz"] * 1e6 / ok["cycles_per_inference"]
    )
    assert (out / "work" / ok["id"] / "build" / "spikelut.bin").stat().st_size > 0
    # its accuracy is the golden model's on the same network, trained again here
    data = load_dataset("digits")
    model = train_on_dataset(data, n_tables=4, n_c=2, epochs=2, seed=0)
    int_model = quantize_classifier(model, table_bits=4, calib_raw=data.X_train)
    assert ok["accuracy"] == float(np.mean(int_predict(int_model, data.X_test) == data.y_test))
    e = ok["energy"]
    assert 0 < e["uj_low"] < e["uj"] < e["uj_high"] and "estimate" in e["method"]
    # the report renders in a real browser, every section, every plot decoded
    dom = _chromium_dom(out / "report.html")
    assert 'data-probed="yes"' in dom
    for sid, heading in SECTIONS:
        assert re.search(rf'<section id="{sid}"><h2>{re.escape(heading)}</h2>', dom), sid
    widths = [int(w) for w in re.findall(r'<img[^>]*data-w="(\d+)"', dom)]
    assert len(widths) == 3 and min(widths) > 300
    assert "the quantisation refused" in dom or "quantisation refused" in dom


# ports a Ray head takes by default beside the one it is given (dashboard agent, dashboard,
# client server, GCS) and its worker range: a free port for --port must be none of them
RAY_DEFAULT_PORTS = {52365, 8265, 10001, 6379, *range(10002, 20000)}


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RAY_DEFAULT_PORTS:
            return port


CLUSTER = """
[data]
set = "digits"
epochs = 1
[grid]
n_tables = [4, 6, 8]
n_c = [2]
table_bits = [4]
[run]
synthesis = "none"      # the stages up to the compiled core: the cluster path, cheaply
cpus = 2                # one point at a time on the 2-CPU cluster: a kill leaves some undone
memory_mb = 300
timeout_s = 300
"""


def _wait_for_port(port: int, head: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert head.poll() is None, head.communicate()[1][-2000:]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    pytest.fail(f"the Ray head did not listen on port {port} within {seconds:g} s")


def _stop_group(proc: subprocess.Popen | None) -> None:
    """Kill ``proc`` and its process group (it was started in its own session; a ``ray
    start --block`` head keeps its daemons and workers there, and does not stop on SIGTERM).
    Only what the test started: never ``ray stop``, which stops every Ray on the machine."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_cluster_started_apart_runs_the_spec_and_resumes_after_a_kill(tmp_path):
    port = _free_port()
    spec = tmp_path / "spec.toml"
    spec.write_text(CLUSTER)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "spikelut.cli.main", "sweep", str(spec), "-o", str(out),
           "--address", f"127.0.0.1:{port}"]  # fmt: skip
    # the head's token and the driver's must agree; a test cluster of its own on 127.0.0.1
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    head = sweep = None
    try:
        # --block: the head's daemons live in this process's group, ended by _stop_group
        head = subprocess.Popen(
            [RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env,
        )  # fmt: skip
        _wait_for_port(port, head)
        sweep = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        deadline = time.monotonic() + 120
        while not list((out / "points").glob("*.json")) and time.monotonic() < deadline:
            assert sweep.poll() is None, sweep.communicate()[1][-2000:]
            time.sleep(0.2)
        os.killpg(sweep.pid, signal.SIGKILL)  # the driver and whatever it started
        sweep.wait()
        first = {p.name: p.read_text() for p in (out / "points").glob("*.json")}
        assert 1 <= len(first) < 3
        res = subprocess.run([*cmd, "--resume", "--json"], capture_output=True, text=True,
                             timeout=300, env=env)  # fmt: skip
        assert res.returncode == 0, res.stderr[-2000:]
        assert f"{len(first)} done already, {3 - len(first)} to run" in res.stderr
        figures = json.loads(res.stdout)
        assert figures["points"] == 3 and figures["by_status"] == {"ok": 3}
        after = {p.name: p.read_text() for p in (out / "points").glob("*.json")}
        assert len(after) == 3
        assert all(after[name] == text for name, text in first.items())  # not run again
        for text in after.values():
            r = json.loads(text)
            assert r["accuracy"] > 0.1 and r["cycles_per_inference"] >= 1
            assert r["logic_cells_source"].startswith("estimate")
    finally:
        _stop_group(sweep)
        _stop_group(head)
