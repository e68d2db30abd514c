"""``spikelut sweep``'s pure parts: the spec, the Pareto fronts, the energy estimate, the
message without Ray, and the report page (the Ray runs are in test_sweep_ray.py)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spikelut.cli.main import main
from spikelut.compiler.analysis.energy import (
    METHOD_ACTIVITY,
    UP5K_ENERGY,
    energy_per_inference,
    fj_per_toggle,
)
from spikelut.compiler.errors import UserError
from spikelut.compiler.sweep.pareto import feasible, pareto_front
from spikelut.compiler.sweep.report import SECTIONS, render_html, summarize
from spikelut.compiler.sweep.spec import DEFAULTS, parse_spec, point_id
from spikelut.flows.sweep import CLUSTER_HINT, RERUN_ON_RESUME, points_to_run
from spikelut.flows.sweep_point import run_point_isolated


def test_grid_is_the_cross_product_and_random_points_are_reproducible():
    doc = {
        "data": {"set": "digits", "epochs": 3},
        "grid": {"n_tables": [4, 8, 16], "kind": ["parallel", "serial"], "board": "icebreaker"},
        "random": {"samples": 5, "seed": 7, "n_c": {"min": 2, "max": 6}, "table_bits": [4, 8]},
    }
    spec = parse_spec(doc)
    grid = spec.points[:6]
    assert {(p["n_tables"], p["kind"]) for p in grid} == {
        (t, k) for t in (4, 8, 16) for k in ("parallel", "serial")
    }
    assert all(set(p) == set(DEFAULTS) for p in spec.points)
    drawn = spec.points[6:]
    assert 1 <= len(drawn) <= 5 and all(2 <= p["n_c"] <= 6 for p in drawn)
    assert all(p["table_bits"] in (4, 8) for p in drawn)
    again = parse_spec(doc)
    assert [point_id("digits", 3, p) for p in again.points] == [
        point_id("digits", 3, p) for p in spec.points
    ]
    assert len({point_id("digits", 3, p) for p in spec.points}) == len(spec.points)


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"grid": {"n_tabels": [4]}}, "unknown knob 'n_tabels'"),
        ({"grid": {"kind": ["fast"]}}, "unknown core kind"),
        ({"grid": {"n_tables": [0]}}, "n_tables = 0"),
        ({"grid": {"lanes": ["some"]}}, "lanes = 'some'"),
        ({"data": {"set": "mnist"}}, "set 'mnist'"),
        ({"run": {"synthesis": "fast"}}, "synthesis must be"),
        ({"run": {"timeout_s": 0}}, "timeout_s must be a positive number"),
        ({"constraints": {"min_accuracy": 1.5}}, "min_accuracy must be in 0..1"),
        ({"random": {"samples": 2, "n_c": {"min": 6, "max": 2}}}, "min 6 is above max 2"),
        ({"sweep": {}}, "unknown table [sweep]"),
    ],
)
def test_bad_specs_name_the_problem(doc, words):
    with pytest.raises(UserError, match=re.escape(words)):
        parse_spec(doc)


def test_bad_spec_file_is_one_line_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text("[grid\nn_tables = 4\n")
    assert main(["sweep", str(spec), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikelut sweep: error:") and "not valid TOML" in err
    assert len(err.splitlines()) == 1


def test_without_ray_the_message_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "s.toml"
    spec.write_text('[grid]\nn_tables = [4]\n[run]\nsynthesis = "none"\n')
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    assert main(["sweep", str(spec), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"spikelut sweep: error: {CLUSTER_HINT}"
    assert "pip install 'spikelut[cluster]'" in err
    assert not (tmp_path / "out" / "points").exists()


def _result(pid, acc, lc, rate, status="ok", board="icebreaker", kind="parallel"):
    point = {**DEFAULTS, "board": board, "kind": kind}
    return {"id": pid, "point": point, "status": status, "accuracy": acc, "logic_cells": lc,
            "inferences_per_second": rate, "reason": "", "stage": None}  # fmt: skip


def test_resume_reruns_missing_points_and_machine_failures_only():
    ids = {f"p{i}": {"n": i} for i in range(6)}
    statuses = ["ok", "does_not_fit", "timeout", "worker_lost", "tool_crash"]
    done = {f"p{i}": {"status": s} for i, s in enumerate(statuses)}
    todo = points_to_run(ids, done)
    assert [i for i, _ in todo] == ["p2", "p3", "p5"]
    assert {statuses[2], statuses[3]} == RERUN_ON_RESUME
    assert points_to_run(ids, {}) == list(ids.items())


def test_pareto_front_keeps_only_the_undominated():
    rs = [_result("a", 0.9, 100, 5), _result("b", 0.95, 200, 4), _result("c", 0.85, 150, 9),
          _result("d", 0.95, 250, 1), _result("e", 0.90, 100, 5)]  # fmt: skip
    assert [r["id"] for r in pareto_front(rs, "accuracy", minimize="logic_cells")] == ["b", "a"]
    front = pareto_front(rs, "accuracy", maximize_too="inferences_per_second")
    assert [r["id"] for r in front] == ["b", "a", "c"]
    assert feasible(rs[0], {"fits": True, "min_accuracy": 0.9})
    assert not feasible(rs[2], {"fits": True, "min_accuracy": 0.9})
    assert not feasible(_result("f", 0.99, 10, 1, status="timing_not_met"), {"fits": True})
    assert feasible(_result("f", 0.99, 10, 1, status="timing_not_met"), {"fits": False})


def test_energy_estimate_follows_the_calibration():
    e = energy_per_inference(
        "ice40", "iCE40UP5K", logic_cells=1000, memories=2, cycles=10, clock_mhz=12.0
    )
    static = 85.6e-6 * 1.2 * 10 / 12e6 * 1e6
    assert math.isclose(e["uj_low"], 1000 * 14 * 10 * 1e-9 + static + 2 * 10 * 5e-6)
    assert math.isclose(e["uj_high"], 1000 * 198 * 10 * 1e-9 + static + 2 * 10 * 80e-6)
    assert e["uj_low"] < e["uj"] < e["uj_high"]
    assert UP5K_ENERGY["source"] in e["method"] or "ice40_power" in e["method"]
    assert energy_per_inference("ecp5", "LFE5U-85F", logic_cells=1, memories=0, cycles=1,
                                clock_mhz=25.0) is None  # fmt: skip


def test_report_page_has_every_section_and_the_failures(tmp_path):
    results = {
        "a": {**_result("a", 0.9, 3000, 1e6), "fmax_mhz": 20.0, "cycles_per_inference": 20,
              "device": "iCE40UP5K", "energy": energy_per_inference(
                  "ice40", "iCE40UP5K", logic_cells=3000, memories=4, cycles=20, clock_mhz=12)},
        "b": {**_result("b", None, None, None, status="timeout"),
              "reason": "stopped after the timeout of 5 s"},
    }  # fmt: skip
    summary = summarize(results, {"dataset": "digits", "constraints": {"fits": True}})
    assert summary["by_status"] == {"ok": 1, "timeout": 1}
    assert summary["fronts"][0]["accuracy_vs_logic_cells"] == ["a"]
    page = render_html(summary, results)
    for sid, heading in SECTIONS:
        assert f'<section id="{sid}"><h2>{heading}</h2>' in page
    assert "stopped after the timeout of 5 s" in page
    assert "TreeLUT" in page and "quoted" in page and "0.172" in page
    assert page.count("data:image/png;base64,") == 3


def test_shuffled_order_is_the_same_points_in_a_fixed_order():
    doc = {"grid": {"n_tables": [4, 8, 16, 32], "n_c": [2, 3, 4]}}
    grid = parse_spec(doc).points
    shuffled = parse_spec({**doc, "run": {"order": "shuffled"}}).points
    assert shuffled != grid and sorted(map(str, shuffled)) == sorted(map(str, grid))
    assert parse_spec({**doc, "run": {"order": "shuffled"}}).points == shuffled
    with pytest.raises(UserError, match="order must be one of grid, shuffled"):
        parse_spec({**doc, "run": {"order": "random"}})


def test_a_point_past_its_timeout_is_killed_and_is_a_timeout_result(tmp_path):
    request = {"dataset": "digits", "epochs": 1, "point": dict(DEFAULTS), "synthesis": "none"}
    r = run_point_isolated(request, tmp_path / "p", 0.3)  # not even past the imports
    assert r["status"] == "timeout" and "timeout of 0.3 s" in r["reason"]
    assert r["point"] == DEFAULTS and r["accuracy"] is None
    assert not (tmp_path / "p" / "result.json").exists()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_point_whose_starter_dies_ends_its_own_process_group(tmp_path):
    """A killed Ray worker must not leave its point (and its tools) running: the point's
    process, in a session of its own, ends itself when its parent is gone."""
    req = tmp_path / "request.json"
    point = {**DEFAULTS, "n_tables": 64}
    req.write_text(json.dumps({"dataset": "digits", "epochs": 500, "point": point,
                               "synthesis": "none"}))  # fmt: skip
    starter = (
        "import subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'spikelut.flows.sweep_point', {str(req)!r},"
        f" {str(tmp_path / 'result.json')!r}], start_new_session=True)\n"
        "print(p.pid, flush=True)\np.wait()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(3)  # the point is training (500 epochs: minutes)
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 15
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child)
    assert not (tmp_path / "result.json").exists()


def test_energy_with_measured_activity_charges_the_core_by_its_toggles():
    base = dict(logic_cells=3000, memories=2, cycles=10, clock_mhz=12.0)
    e = energy_per_inference("ice40", "iCE40UP5K", **base, toggles_per_bit=4.0, core_cells=1000)
    low, mid, high = fj_per_toggle()
    assert (low, high) == pytest.approx((14 / (2 / 28), 198 / 0.25))
    link = 2000 * 14 * 10 * 1e-9  # the host link's cells at the low calibration, uJ
    assert e["dynamic_uj"] == pytest.approx(1000 * 4.0 * mid * 1e-9 + link)
    assert e["uj_low"] < e["uj"] < e["uj_high"] and e["method"] == METHOD_ACTIVITY
    # twice the toggles, twice the core's dynamic energy
    e2 = energy_per_inference("ice40", "iCE40UP5K", **base, toggles_per_bit=8.0, core_cells=1000)
    assert e2["dynamic_uj"] - link == pytest.approx(2 * (e["dynamic_uj"] - link))
    with pytest.raises(ValueError, match="core_cells"):
        energy_per_inference("ice40", "iCE40UP5K", **base, toggles_per_bit=1.0)
