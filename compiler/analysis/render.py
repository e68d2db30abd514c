"""The HTML page of ``spikelut report``: :func:`render_html` draws the figures of
:func:`~spikelut.compiler.analysis.figures.collect` as one self-contained page, section by
section (:data:`SECTIONS`), with every plot embedded as a base64 PNG and no external resource.
A section whose data is missing stays in the page and says what would fill it (a paragraph of
class ``missing``).
"""

from __future__ import annotations

import base64
import datetime
import html
from pathlib import Path
from typing import Any

import numpy as np

from spikelut.compiler.analysis import plots

__all__ = ["SECTIONS", "render_html"]

# (id, heading) of every section, in page order; tests check each one renders.
SECTIONS = [
    ("overview", "At a glance"),
    ("layers", "Layer structure"),
    ("memory", "Table memory and placement"),
    ("resources", "Resource use on the device"),
    ("operations", "Operations and memory per inference against the dense ANN"),
    ("throughput", "Throughput against the memory-bandwidth floor"),
    ("energy", "Energy per inference (estimate)"),
    ("confusion", "Confusion matrix"),
    ("raster", "Spike order of the input"),
    ("files", "Sources"),
]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f6f5;
color:#1d2b2a}
header{background:#264653;color:#fff;padding:22px 40px}
header h1{margin:0;font-size:26px}header p{margin:4px 0 0;opacity:.8}
main{max-width:980px;margin:0 auto;padding:12px 24px 40px}
section{background:#fff;border-radius:10px;padding:14px 22px;margin:16px 0;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:19px;margin:4px 0 10px;color:#264653}
.tiles{display:flex;flex-wrap:wrap;gap:12px}
.tile{flex:1 1 150px;background:#eef6f4;border-radius:8px;padding:10px 14px}
.tile b{display:block;font-size:22px;color:#2a9d8f}.tile span{font-size:12px;color:#556}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{padding:4px 10px;text-align:right;border-bottom:1px solid #e3e8e7}
th{background:#f0f4f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;display:block;margin:8px auto}
.missing{color:#8a5a00;background:#fff6e0;padding:8px 12px;border-radius:6px}
.warn{color:#8b1e1e;background:#fdecea;padding:8px 12px;border-radius:6px}
.note{font-size:13px;color:#555}code{background:#f0f4f3;padding:1px 4px;border-radius:3px}
"""


def render_html(r: dict) -> str:
    """The self-contained HTML page for the figures of
    :func:`~spikelut.compiler.analysis.figures.collect`."""
    return page(r, SECTIONS, _RENDER)


def page(r: dict, sections: list[tuple[str, str]], render: dict) -> str:
    """The page of ``sections`` ((id, heading) in order), each drawn by ``render[id](r)``
    (the classifier's sections, or a language model's)."""
    parts = []
    for sid, heading in sections:
        parts.append(
            f'<section id="{sid}"><h2>{html.escape(heading)}</h2>{render[sid](r)}</section>'
        )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"spikelut report: {Path(r['model']).name}"
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>A look-up-table spiking network, from "
        f"model to hardware. Generated {stamp}.</p></header><main>{''.join(parts)}</main>"
        "</body></html>\n"
    )


# -- building blocks ------------------------------------------------------------------------


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _missing(text: str) -> str:
    return f'<p class="missing">{html.escape(text)}</p>'


def _tile(value: str, label: str) -> str:
    return f'<div class="tile"><b>{html.escape(value)}</b><span>{html.escape(label)}</span></div>'


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _fmax(build: dict | None) -> float | None:
    """The slowest clock domain's Fmax of a build report, or None without one."""
    if not build or not build.get("fmax_mhz"):
        return None
    return min(build["fmax_mhz"].values())


# -- overview -------------------------------------------------------------------------------


def _overview(r: dict) -> str:
    tiles = _accuracy_tiles(r["classification"], r["summary"] or {})
    total = r["operations"]["total"]
    tiles.append(_tile(f"{total['lut_memory_bits'] / 8192:,.1f} kB", "table memory"))
    tiles.append(_tile("0", "multiplications per inference"))
    cycles = None
    m = r["manifest"]
    if m:
        board_cycles = (r["board"] or {}).get("cycles_per_inference")
        cycles = board_cycles or m["cycles_per_inference"]
        where = " (bitstream)" if board_cycles else ""
        tiles.append(_tile(f"{cycles:,}", f"cycles per inference{where}"))
    if r["build"]:
        tiles += _build_tiles(r["build"], cycles)
    shape = " -> ".join([str(r["n_features"])] + [str(d["out_dim"]) for d in r["layers"]])
    kind = "An integer (quantised)" if r["integer"] else "A float (not yet quantised)"
    return (
        f'<div class="tiles">{"".join(tiles)}</div>'
        f'<p class="note">{kind} LUT classifier, {shape}, {len(r["layers"])} layer(s), '
        f"{r['n_classes']} classes.</p>"
    )


def _accuracy_tiles(c: dict, s: dict) -> list[str]:
    """Tiles of the float, integer and hardware accuracies and mismatches that are known."""
    tiles = []
    if "float_accuracy" in c:
        tiles.append(_tile(_pct(c["float_accuracy"]), "float accuracy"))
    if "int_accuracy" in c:
        tiles.append(_tile(_pct(c["int_accuracy"]), "integer accuracy (golden model)"))
    if s.get("hardware_accuracy") is not None:
        tiles.append(_tile(_pct(s["hardware_accuracy"]), "hardware accuracy (cocotb)"))
    if s.get("mismatches") is not None:
        tiles.append(_tile(str(s["mismatches"]), "mismatches against the golden model"))
    return tiles


def _build_tiles(b: dict, cycles: int | None) -> list[str]:
    """Tiles of a board build: logic cells, Fmax and, with the compiled core's ``cycles``
    per inference and a bitstream, inferences per second at the requested clock."""
    tiles = []
    cells = b.get("resources", {}).get("logic_cells")
    if cells:
        fits = "" if b.get("fits", True) else " (does not fit)"
        tiles.append(_tile(f"{cells['used']:,}", f"logic cells of {cells['available']:,}{fits}"))
    fmax = _fmax(b)
    if fmax:
        tiles.append(_tile(f"{fmax:.1f} MHz", "Fmax"))
    clock = b.get("target_mhz")
    if cycles and clock and b.get("bitstream"):
        tiles.append(_tile(f"{clock * 1e6 / cycles:,.0f}", "inferences/s at the clock"))
    return tiles


# -- layers ---------------------------------------------------------------------------------

_LAYER_COLUMNS = [
    ("layer", "layer"),
    ("D", "in_dim"),
    ("Y", "out_dim"),
    ("N_T", "n_tables"),
    ("N_C", "n_c"),
    ("rows/table", "rows_per_table"),
    ("comparisons", "comparisons"),
    ("residual", "residual"),
    ("table bits", "table_bits"),
    ("table memory (bits)", "table_memory_bits"),
]

_WIDTH_COLUMNS = [
    ("in width", "in_width"),
    ("in shift", "in_shift"),
    ("compare width", "compare_width"),
    ("accumulator", "acc_width"),
    ("out width", "out_width"),
]


def _layers(r: dict) -> str:
    layers = r["layers"]
    rows = [[d[key] for _, key in _LAYER_COLUMNS] for d in layers]
    out = _table([head for head, _ in _LAYER_COLUMNS], rows)
    if r["integer"]:
        wrows = [
            [d["layer"], r["input_bits"] if d["layer"] == 0 else ""]
            + [d[key] for _, key in _WIDTH_COLUMNS]
            for d in layers
        ]
        out += "<p class=note>Widths inferred from exact bounds of the table contents "
        out += "(overflow impossible by construction):</p>"
        out += _table(["layer", "input bits"] + [head for head, _ in _WIDTH_COLUMNS], wrows)
    else:
        out += _missing("Widths: a float model has none; run spikelut quantize to see them.")
    return out + _img(plots.layer_structure(layers), "tables, comparisons and memory per layer")


# -- table memory ---------------------------------------------------------------------------

_PLACEMENT_COLUMNS = [
    ("layer", "layer"),
    ("storage", "storage"),
    ("P (tables/cycle)", "tables_per_cycle"),
    ("L (outputs/beat)", "lanes"),
    ("words per lane", "memory_words_per_lane"),
    ("word bits", "memory_word_bits"),
    ("memory bits", "memory_bits"),
    ("loaded at boot", "load_at_boot"),
]


def _memory(r: dict) -> str:
    m = r["manifest"]
    if not m:
        return _missing(
            "No compile manifest here: run spikelut compile MODEL -o DIR and report on DIR "
            "to see where each table lives."
        )
    rows = [[la[key] for _, key in _PLACEMENT_COLUMNS] for la in m["layers"]]
    out = _table([head for head, _ in _PLACEMENT_COLUMNS], rows)
    out += (
        f"<p class=note>Target <code>{html.escape(str(m.get('target', '?')))}</code>: "
        f"{m.get('block_rams', 0)} block RAM(s) and {m.get('sprams', 0)} SPRAM(s) hold the "
        "tables. SPRAM is not initialised by the bitstream: those tables are loaded at boot "
        "from the configuration flash or over the host link.</p>"
    )
    est = m.get("estimate") or {}
    if est.get("logic_cells") is not None:
        out += (
            f"<p class=note>The compiler estimates the core at about {est['logic_cells']:,} "
            f"logic cells ({est.get('luts', '?')} LUTs, {est.get('flip_flops', '?')} "
            "flip-flops) before synthesis.</p>"
        )
    return out + _device_comparison(m, est, r.get("device_memories"))


def _device_comparison(m: dict, est: dict, dev: tuple | None) -> str:
    """The plot of the table memories (and the estimated logic cells) against the device's
    ``dev`` = (block RAMs, SPRAMs, logic cells), or a note that the target is unknown."""
    if not dev:
        return _missing("Unknown target in the manifest: no device memory comparison.")
    items = [("block RAMs", m.get("block_rams", 0), dev[0])]
    if dev[1]:
        items.append(("SPRAMs", m.get("sprams", 0), dev[1]))
    if est.get("logic_cells") is not None and dev[2]:
        items.append(("logic cells (core, estimated)", est["logic_cells"], dev[2]))
    return _img(
        plots.used_vs_available(items, "table memories against the device"),
        "table memories used against the device",
    )


# -- resources ------------------------------------------------------------------------------

_RESOURCE_NAMES = [
    ("logic_cells", "logic cells"),
    ("flip_flops", "flip-flops"),
    ("block_rams", "block RAMs"),
    ("sprams", "SPRAMs"),
    ("dsps", "DSPs"),
    ("plls", "PLLs"),
    ("io", "I/O"),
]


def _resources(r: dict) -> str:
    b = r["build"]
    if not b:
        return _missing(
            "No build-report.json here: run spikelut build MODEL --board BOARD -o DIR and "
            "report on DIR to see the resource use."
        )
    res = b.get("resources", {})
    items = [
        (label, res[key]["used"], res[key]["available"])
        for key, label in _RESOURCE_NAMES
        if key in res and res[key].get("available")
    ]
    out = _build_summary(b)
    if b.get("suggestion"):
        out += f'<p class="warn">{html.escape(str(b["suggestion"]))}</p>'
    out += _table(["resource", "used", "available"], [list(i) for i in items])
    if items:
        out += _img(plots.used_vs_available(items, "resource use"), "resource use on the device")
    return out


def _build_summary(b: dict) -> str:
    """One paragraph on a board build: board, Fmax against the clock, the bitstream."""
    fmax = _fmax(b)
    verdict = "timing met" if b.get("timing_met") else "timing NOT met"
    bitstream = (
        "the bitstream is " + html.escape(str(b["bitstream"]))
        if b.get("bitstream")
        else "no bitstream"
    )
    return (
        f"<p>Board <code>{html.escape(str(b.get('board', '?')))}</code>: "
        f"Fmax {'-' if fmax is None else f'{fmax:.1f} MHz'} against "
        f"{b.get('target_mhz', 0):.1f} MHz requested ({verdict}); {bitstream}.</p>"
    )


# -- operations -----------------------------------------------------------------------------


def _operations(r: dict) -> str:
    ops = r["operations"]
    t = ops["total"]
    rows = [
        ["table rows / weight rows read", t["lut_rows_read"], t["ann_rows_read"]],
        ["entries / weights and biases read", t["lut_entries_read"], t["ann_parameters_read"]],
        ["memory bits read", t["lut_bits_read"], t["ann_bits_read"]],
        ["comparisons", t["lut_comparisons"], t["ann_comparisons"]],
        ["additions", t["lut_additions"], t["ann_macs"]],
        ["multiplications", t["lut_multiplications"], t["ann_macs"]],
        ["memory bits stored", t["lut_memory_bits"], t["ann_memory_bits"]],
    ]
    out = _table(["per inference", "LUT network", "dense ANN"], rows)
    out += (
        "<p class=note>The Manifesto's accounting: a LUT layer reads N_T rows of Y entries and "
        "does N_T x N_C comparisons and (N_T - 1) x Y additions, no multiplications; the dense "
        f"ANN of the same D -> Y shape does D x Y multiply-accumulates and reads D x Y weights "
        f"({ops['ann_weight_bits']}-bit) and Y biases. Comparisons include the argmax (and the "
        f"ANN's ReLUs). {_ratio_sentence(t)}</p>"
    )
    s = r["summary"] or {}
    if s.get("mac_baseline"):
        out += "<p>Multiply-accumulate baseline core (an MLP on the same split):</p>" + _table(
            ["figure", "MAC core"],
            [[name.replace("_", " "), value] for name, value in s["mac_baseline"].items()],
        )
    lut, ann = _operation_bars(t)
    return out + _img(plots.operations_vs_ann(lut, ann), "operations per inference")


def _operation_bars(t: dict) -> tuple[dict, dict]:
    """The bars of the operations plot: the LUT network's figures and the dense ANN's."""
    lut = {
        "bits read": t["lut_bits_read"],
        "comparisons": t["lut_comparisons"],
        "additions": t["lut_additions"],
        "multiplications": t["lut_multiplications"],
        "bits stored": t["lut_memory_bits"],
    }
    ann = {
        "bits read": t["ann_bits_read"],
        "comparisons": t["ann_comparisons"],
        "additions": t["ann_macs"],
        "multiplications": t["ann_macs"],
        "bits stored": t["ann_memory_bits"],
    }
    return lut, ann


def _ratio_sentence(t: dict) -> str:
    """An honest one-line comparison of bits read and stored (either side may win)."""

    def cmp(lut: int, ann: int, what: str) -> str:
        if lut <= ann:
            return f"{what} {ann / max(lut, 1):.2g}x fewer bits"
        return f"{what} {lut / max(ann, 1):.2g}x more bits"

    return (
        f"Per inference the LUT network {cmp(t['lut_bits_read'], t['ann_bits_read'], 'reads')} "
        f"than the ANN and {cmp(t['lut_memory_bits'], t['ann_memory_bits'], 'stores')}, with "
        f"{t['ann_macs']:,} fewer multiplications."
    )


# -- throughput -----------------------------------------------------------------------------


def _throughput(r: dict) -> str:
    m = r["manifest"]
    if not m:
        return _missing(
            "No compile manifest here: run spikelut compile MODEL -o DIR and report on DIR "
            "to see cycles per inference against the memory-bandwidth floor."
        )
    out = (
        f"<p>{m['cycles_per_inference']:,} cycles per inference; the memory-bandwidth floor "
        f"(N_T x Y entries through P x L per cycle) is {m['bandwidth_floor_cycles']:,}: "
        f"<b>{100 * m['bandwidth_fraction']:.0f}%</b> of the floor's rate is achieved.</p>"
    )
    cycles = m["cycles_per_inference"]
    board = r["board"] or {}
    if board.get("cycles_per_inference") and board["cycles_per_inference"] != cycles:
        cycles = board["cycles_per_inference"]
        out += (
            f"<p class=note>The bitstream's core differs from the compiled one: the board build "
            f"chose the {html.escape(str(board.get('indexer', '?')))} indexer, "
            f"{cycles:,} cycles per inference; the rates below are the bitstream's.</p>"
        )
    out += _rates(r["build"], cycles)
    return out + _img(plots.throughput(m["layers"]), "cycles per inference against the floor")


def _rates(b: dict | None, cycles: int) -> str:
    """Inferences per second at the build's requested clock and achieved Fmax, or a note
    that they need a build."""
    clock = b.get("target_mhz") if b else None
    fmax = _fmax(b)
    rows = []
    if clock:
        rows.append(["at the requested clock", f"{clock:.1f} MHz", clock * 1e6 / cycles])
    if fmax:
        rows.append(["at the achieved Fmax", f"{fmax:.1f} MHz", fmax * 1e6 / cycles])
    if not rows:
        return _missing("No build here: inferences per second need a clock (spikelut build).")
    return _table(["", "clock", "inferences per second"], rows)


# -- energy ---------------------------------------------------------------------------------

_ENERGY_HOW = (
    "python bench/energy_per_inference.py --lut MODEL=BUILD_DIR --mac MAC_BUILD_DIR "
    "--json DIR/energy.json"
)


def _uj(e: dict | None) -> str:
    """An estimate with its bounds, or '-'."""
    if not e:
        return "-"
    return f"{e['uj']:.3g} ({e['uj_low']:.2g}..{e['uj_high']:.2g})"


def _energy(r: dict) -> str:
    en = r["energy"]
    if en is None:
        return _missing(
            "No board build here: run spikelut build MODEL --board icebreaker -o DIR and report "
            "on DIR for the estimate from its logic cells; for the LUT core against the MAC "
            f"core from simulated switching, also {_ENERGY_HOW}."
        )
    out = ""
    b = en["build"]
    if b is not None:
        if b["energy"] is None:
            why = "it does not fit" if not b["built"] else f"{b['device']} has no calibration"
            out += f"<p class=note>No estimate for this build: {html.escape(why)} (only the " \
                   "iCE40 UP5K is calibrated).</p>"  # fmt: skip
        else:
            e = b["energy"]
            out += (
                f"<p>This build ({html.escape(b['core'])}, {b['logic_cells']:,} logic cells, "
                f"{b['cycles_per_inference']:,} cycles per inference at {b['clock_mhz']:g} MHz):"
                f" <b>{e['uj']:.3g} uJ per inference</b> (bounds {e['uj_low']:.2g} to "
                f"{e['uj_high']:.2g}), {e['uj'] / en['elasticai_uj']:.2g}x ElasticAI.Creator's "
                f"measured {en['elasticai_uj']:g} uJ (a small MLP on the UP5K).</p>"
            )
    rows = []
    for c in en["compared"] or []:
        ref = c.get("energy_from_activity") or c.get("energy")
        rows.append([
            c.get("core"), c.get("board"), c.get("logic_cells"), c.get("dsps"),
            c.get("cycles_per_inference"), _uj(c.get("energy")),
            _uj(c.get("energy_from_activity")),
            None if not ref else f"{ref['uj'] / en['elasticai_uj']:.2g}x",
        ])  # fmt: skip
    if rows:
        out += "<p>Cores side by side (<code>energy.json</code>), uJ per inference:</p>"
        out += _table(
            ["core", "board", "logic cells", "DSPs", "cycles", "from cells", "from activity",
             "vs ElasticAI.Creator"],
            rows,
        )  # fmt: skip
        out += f"<p class=note>From activity: {html.escape(en['method_activity'])}</p>"
    else:
        out += (
            "<p class=note>For the LUT core against the multiply-accumulate core from simulated "
            f"switching: <code>{html.escape(_ENERGY_HOW)}</code>.</p>"
        )
    return out + f"<p class=note>From cells: {html.escape(en['method'])}</p>"


# -- classification -------------------------------------------------------------------------


def _confusion(r: dict) -> str:
    c = r["classification"]
    if "missing" in c:
        return _missing(f"No evaluation data: {c['missing']}.")
    title = f"{c['which']} model on the {c['data']} test split: {_pct(c['accuracy'])}"
    return f"<p>{html.escape(title)} ({c['n']} examples).</p>" + _img(
        plots.confusion(np.array(c["confusion"]), c["class_names"], title), "confusion matrix"
    )


def _raster(r: dict) -> str:
    c = r["classification"]
    if "missing" in c:
        return _missing(f"No examples to draw: {c['missing']}.")
    examples = [
        {
            "times": e["times"],
            "title": f"test example {e['index']}: true {e['label']}, predicted {e['predicted']}",
        }
        for e in c["raster"]
    ]
    note = (
        "<p class=note>Each input feature is one spike; its time is the rank of its value "
        "(larger values fire earlier, equal values together). Only this order reaches the "
        "network: every comparison asks which of two spikes came first.</p>"
    )
    return note + _img(plots.spike_raster(examples, r["n_features"]), "spike rasters")


def _files(r: dict) -> str:
    items = "".join(f"<li><code>{html.escape(f)}</code></li>" for f in r["files"])
    return f"<ul>{items}</ul>"


_RENDER = {
    "overview": _overview,
    "layers": _layers,
    "memory": _memory,
    "resources": _resources,
    "operations": _operations,
    "throughput": _throughput,
    "energy": _energy,
    "confusion": _confusion,
    "raster": _raster,
    "files": _files,
}
