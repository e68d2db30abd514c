"""A sweep's Pareto report: :func:`summarize` (the JSON) and :func:`render_html` (the page).

The summary counts the results by status (every failure with its reason), keeps the ones
that meet the constraints, and per board and core kind gives two Pareto fronts: accuracy
against logic cells (fewer is better) and against inferences/s at the achieved Fmax (more is
better). It carries the peers' quoted points and the energy estimate's method and constants.
The page (:func:`spikelut.compiler.analysis.render.page`, self-contained, every plot a
base64 PNG) draws the fronts and lists the Pareto points and the failures.
"""

from __future__ import annotations

import base64
import html
from collections import Counter

from spikelut.compiler.analysis.energy import ELASTICAI_UJ_PER_INFERENCE, METHOD, UP5K_ENERGY
from spikelut.compiler.analysis.render import page
from spikelut.compiler.backend.targets import HOST_LINK_CELLS
from spikelut.compiler.sweep import plots
from spikelut.compiler.sweep.pareto import feasible, group_key, pareto_front
from spikelut.compiler.sweep.peers import PEERS

__all__ = ["SECTIONS", "render_html", "summarize"]

SECTIONS = [
    ("overview", "At a glance"),
    ("logic", "Accuracy against logic cells"),
    ("rate", "Accuracy against inferences per second"),
    ("energy", "Energy per inference (estimate)"),
    ("pareto", "Pareto points"),
    ("failures", "Failed points"),
]

_ROW_KEYS = ("id", "status", "accuracy", "logic_cells", "fmax_mhz", "cycles_per_inference", "device",
             "inferences_per_second", "reason", "stage")  # fmt: skip


def _row(r: dict) -> dict:
    row = {k: r.get(k) for k in _ROW_KEYS}
    row.update(r["point"])
    row["energy_uj"] = (r.get("energy") or {}).get("uj")
    return row


def summarize(results: dict[str, dict], info: dict) -> dict:
    """The report's figures of ``results`` (point id -> result) of a sweep described by
    ``info`` (``sweep.json``: data set, epochs, run settings, constraints)."""
    results = {i: {**r, "id": i} for i, r in results.items()}
    constraints = info.get("constraints", {})
    ok = [r for r in results.values() if feasible(r, constraints)]
    groups: dict[tuple, list] = {}
    for r in ok:
        groups.setdefault(group_key(r), []).append(r)
    fronts = []
    for (board, kind), rs in sorted(groups.items()):
        rated = [r for r in rs if r.get("inferences_per_second")]
        fronts.append({
            "board": board,
            "kind": kind,
            "feasible": len(rs),
            "accuracy_vs_logic_cells": [r["id"] for r in
                                        pareto_front(rs, "accuracy", minimize="logic_cells")],
            "accuracy_vs_inferences_per_second": [r["id"] for r in pareto_front(
                rated, "accuracy", maximize_too="inferences_per_second")],
        })  # fmt: skip
    statuses = Counter(r["status"] for r in results.values())
    return {
        "sweep": info,
        "points": len(results),
        "by_status": dict(sorted(statuses.items())),
        "feasible": len(ok),
        "fronts": fronts,
        "peers": PEERS,
        "energy": {
            "method": METHOD,
            "constants": UP5K_ENERGY,
            "elasticai_creator_uj_per_inference": ELASTICAI_UJ_PER_INFERENCE,
        },
        "host_link_logic_cells": HOST_LINK_CELLS,
        "results": [_row(r) for r in sorted(results.values(), key=lambda r: r["id"])],
    }


# -- the page -------------------------------------------------------------------------------


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _by_board(s: dict, x_key: str) -> list[dict]:
    """Per board: per kind the feasible rows and the front's rows on ``x_key``, the peers
    of its device and the number of failed rows."""
    rows = {r["id"]: r for r in s["results"]}
    front_key = {"logic_cells": "accuracy_vs_logic_cells",
                 "inferences_per_second": "accuracy_vs_inferences_per_second"}[x_key]  # fmt: skip
    out = {}
    for r in s["results"]:
        out.setdefault(r["board"], {"board": r["board"], "kinds": {}, "peers": [], "failed": 0})
        if r["status"] != "ok":
            out[r["board"]]["failed"] += 1
    for f in s["fronts"]:
        b = out[f["board"]]
        pts = [rows[i] for i in rows if rows[i]["board"] == f["board"]
               and rows[i]["kind"] == f["kind"] and rows[i]["status"] == "ok"]  # fmt: skip
        b["kinds"][f["kind"]] = {"points": pts, "front": [rows[i] for i in f[front_key]]}
    devices = {r["board"]: r.get("device") for r in s["results"] if r.get("device")}
    for name, b in out.items():
        for peer in s["peers"]:
            if devices.get(name) == peer["device"]:
                rate = peer["clock_mhz"] * 1e6 / peer["cycles_per_inference"]
                b["peers"].append({**peer, "inferences_per_second": rate})
    return list(out.values())


def _overview(s: dict) -> str:
    info = s["sweep"]
    tiles = [(str(s["points"]), "points"), (str(s["feasible"]), "meet the constraints")]
    tiles += [(str(n), status.replace("_", " ")) for status, n in s["by_status"].items()]
    parts = "".join(
        f'<div class="tile"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>'
        for v, k in tiles
    )
    c = info.get("constraints", {})
    text = (
        f"Data set {info.get('dataset')}, {info.get('epochs')} training epochs per point; "
        f"synthesis: {info.get('run', {}).get('synthesis')}. Constraints: "
        f"{'fits the board and meets timing' if c.get('fits', True) else 'none on the build'}"
        + (f", accuracy >= {c['min_accuracy']}" if c.get("min_accuracy") is not None else "")
        + ". Logic cells are the placed board design's, the host link's (about "
        f"{s['host_link_logic_cells']['ice40']:,} on iCE40) included; the peers' are their "
        "own designs as quoted."
    )
    return f'<div class="tiles">{parts}</div><p class="note">{html.escape(text)}</p>'


def _plot(s: dict, x_key: str, label: str, log_x: bool) -> str:
    boards = _by_board(s, x_key)
    if not any(b["kinds"] for b in boards):
        return '<p class="missing">No point meets the constraints: nothing to plot.</p>'
    png = plots.accuracy_against(boards, x_key, label, log_x=log_x)
    return _img(png, f"accuracy against {label}")


def _energy(s: dict) -> str:
    e = s["energy"]
    pts = [r for r in s["results"] if r.get("energy_uj") is not None and r["status"] == "ok"]
    body = f'<p class="note">Method: {html.escape(e["method"])}</p>'
    body += (
        f'<p class="note">Constants: {html.escape(e["constants"]["source"])}; memory reads: '
        f"{html.escape(e['constants']['memory_source'])}. Reference: ElasticAI.Creator, "
        f"{e['elasticai_creator_uj_per_inference']} uJ per inference (measured, small MLP "
        "on the UP5K).</p>"
    )
    if not pts:
        return body + '<p class="missing">No UP5K point was built: no energy estimate.</p>'
    full = [{"accuracy": r["accuracy"], "energy": _energy_of(s, r["id"])} for r in pts]
    png = plots.energy_against_accuracy(
        full, e["elasticai_creator_uj_per_inference"], "ElasticAI.Creator (measured)"
    )
    best = min(pts, key=lambda r: r["energy_uj"])
    body += (
        f'<p class="note">Lowest estimate: {best["energy_uj"]:.3g} uJ per inference at '
        f"{100 * best['accuracy']:.1f}% (point {best['id']}).</p>"
    )
    return body + _img(png, "energy per inference against accuracy")


def _energy_of(s: dict, pid: str) -> dict:
    return s["_energy"][pid]


def _pareto(s: dict) -> str:
    rows = {r["id"]: r for r in s["results"]}
    ids = list(dict.fromkeys(i for f in s["fronts"] for key in
                             ("accuracy_vs_logic_cells", "accuracy_vs_inferences_per_second")
                             for i in f[key]))  # fmt: skip
    if not ids:
        return '<p class="missing">No point meets the constraints.</p>'
    headers = ["point", "board", "kind", "N_T", "N_C", "bits", "P", "L", "accuracy",
               "logic cells", "Fmax MHz", "cycles", "inferences/s", "uJ/inference"]  # fmt: skip
    table = [
        [i, r["board"], r["kind"], r["n_tables"], r["n_c"], r["table_bits"],
         r["tables_per_cycle"], r["lanes"], r["accuracy"], r["logic_cells"], r["fmax_mhz"],
         r["cycles_per_inference"], r["inferences_per_second"], r["energy_uj"]]
        for i in ids for r in [rows[i]]
    ]  # fmt: skip
    peers = [[p["name"], p["device"], p["accuracy"], p["logic_cells"], p["clock_mhz"],
              p["source"]] for p in s["peers"]]  # fmt: skip
    return _table(headers, table) + (
        '<p class="note">Peers (quoted figures, not measured here):</p>'
        + _table(["peer", "device", "accuracy", "logic cells", "MHz", "source"], peers)
    )


def _failures(s: dict) -> str:
    failed = [r for r in s["results"] if r["status"] != "ok"]
    if not failed:
        return '<p class="note">Every point ran, fits and meets timing.</p>'
    rows = [[r["id"], r["board"], r["kind"], r["n_tables"], r["n_c"], r["status"], r["stage"],
             (r["reason"] or "")[:160]] for r in failed]  # fmt: skip
    return _table(["point", "board", "kind", "N_T", "N_C", "status", "stage", "reason"], rows)


def render_html(summary: dict, results: dict[str, dict]) -> str:
    """The self-contained page of ``summary`` (:func:`summarize` of ``results``)."""
    s = {**summary, "_energy": {i: r.get("energy") for i, r in results.items()}}
    render = {
        "overview": _overview,
        "logic": lambda s: _plot(s, "logic_cells", "logic cells (placed)", False),
        "rate": lambda s: _plot(s, "inferences_per_second", "inferences/s at Fmax", True),
        "energy": _energy,
        "pareto": _pareto,
        "failures": _failures,
    }
    return page({**s, "model": "design-space sweep"}, SECTIONS, render)
