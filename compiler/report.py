"""``spikelut report``: one self-contained HTML page describing a model and its hardware.

:func:`find_inputs` gathers what a model file or a directory offers (the model files, a
compile ``manifest.json``, ``build-report.json`` and ``board.json`` of a board build, a demo's
``summary.json``); :func:`collect` turns that into the report's figures, section by section
(a JSON-able dict); :func:`render_html` draws the page, with every plot embedded as a base64
PNG and no external resource; :func:`write_report` does all three and writes the page
atomically. A section whose data is missing stays in the page and says what would fill it.

Operation accounting (the Manifesto's): a LUT layer reads ``N_T`` rows of ``Y`` entries, makes
``N_T * N_C`` comparisons and ``N_T * Y`` additions, and no multiplication; the dense ANN of the
same ``D -> Y`` shape makes ``D * Y`` multiply-accumulates and reads ``D * Y`` weights of
:data:`ANN_WEIGHT_BITS` bits (the multiply-accumulate baseline's weight width).
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import report_plots as plots
from .fileio import write_text_atomic
from .ir import ClassifierMLP, IRError
from .modelfile import ModelFileError, load_model

ANN_WEIGHT_BITS = 8
RASTER_EXAMPLES = 3

# (id, heading) of every section, in page order; tests check each one renders.
SECTIONS = [
    ("overview", "At a glance"),
    ("layers", "Layer structure"),
    ("memory", "Table memory and placement"),
    ("resources", "Resource use on the device"),
    ("operations", "Operations and memory per inference against the dense ANN"),
    ("throughput", "Throughput against the memory-bandwidth floor"),
    ("confusion", "Confusion matrix"),
    ("raster", "Spike order of the input"),
    ("files", "Sources"),
]


class ReportError(ValueError):
    """The report's input cannot be used; the message names the problem and the fix."""


@dataclass
class ReportInputs:
    """What was found for a report: the main model (integer preferred), its float original
    when present, and the optional compile, build and demo figures with their paths."""

    model: ClassifierMLP
    model_path: Path
    float_model: ClassifierMLP | None = None
    float_path: Path | None = None
    manifest: dict | None = None
    manifest_path: Path | None = None
    build: dict | None = None
    build_path: Path | None = None
    board: dict | None = None
    board_path: Path | None = None
    summary: dict | None = None
    summary_path: Path | None = None
    files: list[Path] = field(default_factory=list)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ReportError(f"cannot read {path}: {e}; rebuild it or remove it") from None


def _first(root: Path, name: str) -> Path | None:
    hits = sorted(root.rglob(name), key=_depth)
    return hits[0] if hits else None


def _load(path: Path) -> Any:
    try:
        return load_model(path)
    except (ModelFileError, IRError, OSError, KeyError) as e:
        raise ReportError(f"cannot read {path}: {e}") from None


def find_inputs(*sources: str | os.PathLike) -> ReportInputs:
    """Gather a report's inputs from ``.lutnet`` files and directories searched recursively
    (a demo, compile or build directory; e.g. a model file and its build directory). The
    integer model found first is the report's model (a float one when there is none), the
    first float model its float original; the first ``manifest.json``, ``build-report.json``,
    ``board.json`` and ``summary.json`` (shallowest first) fill their sections. Raises
    :class:`ReportError` when no classifier model is found or a file cannot be read."""
    if not sources:
        raise ReportError("give a .lutnet model or a directory holding one")
    models: list[tuple[Path, ClassifierMLP]] = []
    found: dict[str, Path] = {}
    for source in sources:
        src = Path(source)
        if not src.exists():
            raise ReportError(f"{src} does not exist; give a .lutnet model or a build directory")
        paths = [src] if src.is_file() else sorted(src.rglob("*.lutnet"), key=_depth)
        for path in paths:
            m = _load(path)
            if isinstance(m, ClassifierMLP):
                models.append((path, m))
            elif src.is_file():
                raise ReportError(f"{src} is not a classifier; reports cover classifiers only")
        if src.is_dir():
            for name in _JSON_INPUTS.values():
                path = _first(src, name)
                if path is not None and name not in found:
                    found[name] = path
    if not models:
        where = ", ".join(str(s) for s in sources)
        raise ReportError(
            f"no classifier .lutnet model in {where}; give the model file too, e.g. "
            "spikelut report MODEL BUILD_DIR"
        )
    ints = [(p, m) for p, m in models if m.is_integer]
    floats = [(p, m) for p, m in models if not m.is_integer]
    main_path, main = (ints or floats)[0]
    inputs = ReportInputs(model=main, model_path=main_path, files=[main_path])
    if ints and floats:
        inputs.float_path, inputs.float_model = floats[0]
        inputs.files.append(floats[0][0])
    for attr, name in _JSON_INPUTS.items():
        path = found.get(name)
        if path is not None:
            setattr(inputs, attr, _read_json(path))
            setattr(inputs, f"{attr}_path", path)
            inputs.files.append(path)
    return inputs


_JSON_INPUTS = {
    "manifest": "manifest.json",
    "build": "build-report.json",
    "board": "board.json",
    "summary": "summary.json",
}


def _depth(p: Path) -> tuple:
    return (len(p.parts), str(p))


# -- figures ------------------------------------------------------------------------------


def layer_figures(model: ClassifierMLP) -> list[dict]:
    """Per layer: shape, comparisons and (integer models) the inferred widths."""
    widths = None
    if model.is_integer:
        from .widths import infer_widths

        widths = infer_widths(model)
    out = []
    for k, layer in enumerate(model.layers):
        bits = model.quant[k].table_bits if model.is_integer else None
        d = {
            "layer": k,
            "in_dim": layer.in_dim,
            "out_dim": layer.out_dim,
            "n_tables": layer.n_tables,
            "n_c": layer.n_c,
            "rows_per_table": 1 << layer.n_c,
            "comparisons": layer.n_tables * layer.n_c,
            "residual": layer.residual,
            "table_bits": bits,
            "table_memory_bits": layer.tables.size * (bits or ANN_WEIGHT_BITS),
        }
        if widths is not None:
            w = widths[k]
            d.update(
                in_shift=w.in_shift,
                in_width=w.in_width,
                compare_width=w.compare_width,
                acc_width=w.acc_width,
                out_width=w.out_width,
            )
        out.append(d)
    return out


def operation_figures(model: ClassifierMLP) -> dict:
    """Per-inference operations and memory bits of the LUT network and of the dense ANN of
    the same layer shapes (see the module docstring for the accounting)."""
    rows = []
    for k, layer in enumerate(model.layers):
        bits = model.quant[k].table_bits if model.is_integer else ANN_WEIGHT_BITS
        d, y, nt = layer.in_dim, layer.out_dim, layer.n_tables
        rows.append(
            {
                "layer": k,
                "lut_rows_read": nt,
                "lut_entries_read": nt * y,
                "lut_bits_read": nt * y * bits,
                "lut_comparisons": nt * layer.n_c,
                "lut_additions": nt * y,
                "lut_multiplications": 0,
                "lut_memory_bits": layer.tables.size * bits,
                "ann_rows_read": d,
                "ann_macs": d * y,
                "ann_weights_read": d * y,
                "ann_bits_read": d * y * ANN_WEIGHT_BITS,
                "ann_memory_bits": d * y * ANN_WEIGHT_BITS,
            }
        )
    total = {key: sum(r[key] for r in rows) for key in rows[0] if key != "layer"}
    return {"layers": rows, "total": total, "ann_weight_bits": ANN_WEIGHT_BITS}


def resolve_dataset(model: ClassifierMLP, data: str | None):
    """The :class:`~spikelut.compiler.datasets.Dataset` to evaluate on (``data`` or the one
    the model records), or ``(None, reason)`` when there is none usable."""
    from .datasets import SKLEARN_DATASETS, load_dataset

    name = data or model.meta.get("dataset")
    if not name:
        return None, "the model records no data set; pass --data NAME"
    if data is None and name not in SKLEARN_DATASETS and not Path(name).exists():
        return None, f"the model's data set {name!r} is not here; pass --data FILE"
    try:
        ds = load_dataset(name)
    except (ValueError, OSError) as e:
        return None, f"cannot load data set {name!r}: {e}"
    if ds.n_features != model.encoding.dim:
        return (
            None,
            f"data set {ds.name} has {ds.n_features} features, the model reads {model.encoding.dim}",
        )
    return ds, ""


def spike_times(x: np.ndarray) -> np.ndarray:
    """Spike latency of every feature of ``x`` (..., D): the rank of its value among the
    distinct values, largest first (time 0); equal values fire together."""
    x = np.asarray(x)
    out = np.empty(x.shape, np.int64)
    for idx in np.ndindex(x.shape[:-1]):
        row = x[idx]
        distinct = np.unique(row)[::-1]
        out[idx] = np.searchsorted(-distinct, -row)
    return out


def classification_figures(inputs: ReportInputs, data: str | None) -> dict:
    """Accuracies, the confusion matrix (integer model via the golden model, else float)
    and the spike-time rows of the first test examples, or ``{"missing": reason}``."""
    from .quantize import float_predict, int_predict

    model = inputs.model
    ds, reason = resolve_dataset(model, data)
    if ds is None:
        return {"missing": reason}
    X, y = ds.X_test, ds.y_test
    pred = int_predict(model, X) if model.is_integer else float_predict(model, X)
    k = model.n_classes
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)
    out = {
        "data": ds.name,
        "n": len(y),
        "which": "integer (golden model)" if model.is_integer else "float",
        "accuracy": float(np.mean(pred == y)),
        "confusion": cm.tolist(),
        "class_names": list(model.class_names or [str(c) for c in range(k)]),
    }
    if model.is_integer:
        out["int_accuracy"] = out["accuracy"]
        if inputs.float_model is not None:
            out["float_accuracy"] = float(np.mean(float_predict(inputs.float_model, X) == y))
    else:
        out["float_accuracy"] = out["accuracy"]
    feats = model.encoding.encode_int(X) if model.is_integer else model.encoding.encode_float(X)
    names = out["class_names"]
    out["raster"] = [
        {
            "index": i,
            "label": names[int(y[i])],
            "predicted": names[int(pred[i])],
            "times": spike_times(feats[i]).tolist(),
        }
        for i in range(min(RASTER_EXAMPLES, len(y)))
    ]
    return out


def _device_memories(manifest: dict) -> tuple[int, int, int | None] | None:
    """``(block RAMs, SPRAMs, logic cells or None)`` of the manifest's target device."""
    from .cmd_compile import TARGETS

    name = manifest.get("target", "")
    target = TARGETS.get(name)
    if target is None:
        return None
    try:
        from .estimate import LOGIC_CELLS
    except ImportError:  # the logic estimate is optional
        LOGIC_CELLS = {}
    return target[2], target[3], LOGIC_CELLS.get(name)


def collect(inputs: ReportInputs, *, data: str | None = None) -> dict:
    """Every figure of the report as a JSON-able dict (``None`` where data is missing)."""
    model = inputs.model
    r: dict[str, Any] = {
        "model": str(inputs.model_path),
        "integer": model.is_integer,
        "n_classes": model.n_classes,
        "n_features": model.encoding.dim,
        "input_bits": model.encoding.bits if model.is_integer else None,
        "layers": layer_figures(model),
        "operations": operation_figures(model),
        "classification": classification_figures(inputs, data),
        "manifest": inputs.manifest,
        "build": inputs.build,
        "board": inputs.board,
        "summary": inputs.summary,
        "files": [str(p) for p in inputs.files],
    }
    if inputs.manifest is not None:
        r["device_memories"] = _device_memories(inputs.manifest)
    return r


# -- HTML ---------------------------------------------------------------------------------

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
    if not build or not build.get("fmax_mhz"):
        return None
    return min(build["fmax_mhz"].values())


def _overview(r: dict) -> str:
    c = r["classification"]
    s = r["summary"] or {}
    tiles = []
    if "float_accuracy" in c:
        tiles.append(_tile(_pct(c["float_accuracy"]), "float accuracy"))
    if "int_accuracy" in c:
        tiles.append(_tile(_pct(c["int_accuracy"]), "integer accuracy (golden model)"))
    if s.get("hardware_accuracy") is not None:
        tiles.append(_tile(_pct(s["hardware_accuracy"]), "hardware accuracy (cocotb)"))
    if s.get("mismatches") is not None:
        tiles.append(_tile(str(s["mismatches"]), "mismatches against the golden model"))
    total = r["operations"]["total"]
    tiles.append(_tile(f"{total['lut_memory_bits'] / 8192:,.1f} kB", "table memory"))
    tiles.append(_tile("0", "multiplications per inference"))
    m = r["manifest"]
    if m:
        board_cycles = (r["board"] or {}).get("cycles_per_inference")
        cycles = board_cycles or m["cycles_per_inference"]
        where = " (bitstream)" if board_cycles else ""
        tiles.append(_tile(f"{cycles:,}", f"cycles per inference{where}"))
    b = r["build"]
    if b:
        cells = b.get("resources", {}).get("logic_cells")
        if cells:
            fits = "" if b.get("fits", True) else " (does not fit)"
            tiles.append(
                _tile(f"{cells['used']:,}", f"logic cells of {cells['available']:,}{fits}")
            )
        fmax = _fmax(b)
        if fmax:
            tiles.append(_tile(f"{fmax:.1f} MHz", "Fmax"))
        clock = b.get("target_mhz")
        if m and clock and b.get("bitstream"):
            tiles.append(_tile(f"{clock * 1e6 / cycles:,.0f}", "inferences/s at the clock"))
    shape = " -> ".join([str(r["n_features"])] + [str(d["out_dim"]) for d in r["layers"]])
    kind = "An integer (quantised)" if r["integer"] else "A float (not yet quantised)"
    return (
        f'<div class="tiles">{"".join(tiles)}</div>'
        f'<p class="note">{kind} LUT classifier, {shape}, {len(r["layers"])} layer(s), '
        f"{r['n_classes']} classes.</p>"
    )


def _layers(r: dict) -> str:
    layers = r["layers"]
    headers = [
        "layer",
        "D",
        "Y",
        "N_T",
        "N_C",
        "rows/table",
        "comparisons",
        "residual",
        "table bits",
        "table memory (bits)",
    ]
    rows = [
        [
            d["layer"],
            d["in_dim"],
            d["out_dim"],
            d["n_tables"],
            d["n_c"],
            d["rows_per_table"],
            d["comparisons"],
            d["residual"],
            d["table_bits"],
            d["table_memory_bits"],
        ]
        for d in layers
    ]
    out = _table(headers, rows)
    if r["integer"]:
        wrows = [
            [
                d["layer"],
                r["input_bits"] if d["layer"] == 0 else "",
                d["in_width"],
                d["in_shift"],
                d["compare_width"],
                d["acc_width"],
                d["out_width"],
            ]
            for d in layers
        ]
        out += "<p class=note>Widths inferred from exact bounds of the table contents "
        out += "(overflow impossible by construction):</p>"
        out += _table(
            [
                "layer",
                "input bits",
                "in width",
                "in shift",
                "compare width",
                "accumulator",
                "out width",
            ],
            wrows,
        )
    else:
        out += _missing("Widths: a float model has none; run spikelut quantize to see them.")
    return out + _img(plots.layer_structure(layers), "tables, comparisons and memory per layer")


def _memory(r: dict) -> str:
    m = r["manifest"]
    if not m:
        return _missing(
            "No compile manifest here: run spikelut compile MODEL -o DIR and report on DIR "
            "to see where each table lives."
        )
    headers = [
        "layer",
        "storage",
        "P (tables/cycle)",
        "L (outputs/beat)",
        "words per lane",
        "word bits",
        "memory bits",
        "loaded at boot",
    ]
    rows = [
        [
            la["layer"],
            la["storage"],
            la["tables_per_cycle"],
            la["lanes"],
            la["memory_words_per_lane"],
            la["memory_word_bits"],
            la["memory_bits"],
            la["load_at_boot"],
        ]
        for la in m["layers"]
    ]
    out = _table(headers, rows)
    out += (
        f"<p class=note>Target <code>{html.escape(str(m.get('target', '?')))}</code>: "
        f"{m.get('block_rams', 0)} block RAM(s) and {m.get('sprams', 0)} SPRAM(s) hold the "
        "tables. SPRAM is not initialised by the bitstream: those tables are loaded at boot "
        "from the configuration flash or over the host link.</p>"
    )
    dev = r.get("device_memories")
    est = m.get("estimate") or {}
    if est.get("logic_cells") is not None:
        out += (
            f"<p class=note>The compiler estimates the core at about {est['logic_cells']:,} "
            f"logic cells ({est.get('luts', '?')} LUTs, {est.get('flip_flops', '?')} "
            "flip-flops) before synthesis.</p>"
        )
    if dev:
        items = [("block RAMs", m.get("block_rams", 0), dev[0])]
        if dev[1]:
            items.append(("SPRAMs", m.get("sprams", 0), dev[1]))
        if est.get("logic_cells") is not None and dev[2]:
            items.append(("logic cells (core, estimated)", est["logic_cells"], dev[2]))
        out += _img(
            plots.used_vs_available(items, "table memories against the device"),
            "table memories used against the device",
        )
    else:
        out += _missing("Unknown target in the manifest: no device memory comparison.")
    return out


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
    fmax = _fmax(b)
    verdict = "timing met" if b.get("timing_met") else "timing NOT met"
    out = (
        f"<p>Board <code>{html.escape(str(b.get('board', '?')))}</code>: "
        f"Fmax {'-' if fmax is None else f'{fmax:.1f} MHz'} against "
        f"{b.get('target_mhz', 0):.1f} MHz requested ({verdict}); "
        f"{'the bitstream is ' + html.escape(str(b['bitstream'])) if b.get('bitstream') else 'no bitstream'}.</p>"
    )
    if b.get("suggestion"):
        out += f'<p class="warn">{html.escape(str(b["suggestion"]))}</p>'
    out += _table(["resource", "used", "available"], [list(i) for i in items])
    if items:
        out += _img(plots.used_vs_available(items, "resource use"), "resource use on the device")
    return out


def _operations(r: dict) -> str:
    ops = r["operations"]
    t = ops["total"]
    rows = [
        ["table rows / weight rows read", t["lut_rows_read"], t["ann_rows_read"]],
        ["entries / weights read", t["lut_entries_read"], t["ann_weights_read"]],
        ["memory bits read", t["lut_bits_read"], t["ann_bits_read"]],
        ["comparisons", t["lut_comparisons"], 0],
        ["additions", t["lut_additions"], t["ann_macs"]],
        ["multiplications", 0, t["ann_macs"]],
        ["memory bits stored", t["lut_memory_bits"], t["ann_memory_bits"]],
    ]
    out = _table(["per inference", "LUT network", "dense ANN"], rows)
    out += (
        "<p class=note>The Manifesto's accounting: a LUT layer reads N_T rows of Y entries and "
        "does N_T x N_C comparisons and N_T x Y additions, no multiplications; the dense ANN "
        f"of the same D -> Y shape does D x Y multiply-accumulates and reads D x Y weights "
        f"({ops['ann_weight_bits']}-bit). {_ratio_sentence(t)}</p>"
    )
    lut = {
        "bits read": t["lut_bits_read"],
        "comparisons": t["lut_comparisons"],
        "additions": t["lut_additions"],
        "multiplications": 0,
        "bits stored": t["lut_memory_bits"],
    }
    ann = {
        "bits read": t["ann_bits_read"],
        "comparisons": 0,
        "additions": t["ann_macs"],
        "multiplications": t["ann_macs"],
        "bits stored": t["ann_memory_bits"],
    }
    s = r["summary"] or {}
    if s.get("mac_baseline"):
        mac = s["mac_baseline"]
        out += "<p>Multiply-accumulate baseline core (an MLP on the same split):</p>" + _table(
            ["figure", "MAC core"],
            [[name.replace("_", " "), value] for name, value in mac.items()],
        )
    return out + _img(plots.operations_vs_ann(lut, ann), "operations per inference")


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
    b = r["build"]
    clock = b.get("target_mhz") if b else None
    fmax = _fmax(b)
    cycles = m["cycles_per_inference"]
    board = r["board"] or {}
    if board.get("cycles_per_inference") and board["cycles_per_inference"] != cycles:
        cycles = board["cycles_per_inference"]
        out += (
            f"<p class=note>The bitstream's core differs from the compiled one: the board build "
            f"chose the {html.escape(str(board.get('indexer', '?')))} indexer, "
            f"{cycles:,} cycles per inference; the rates below are the bitstream's.</p>"
        )
    rows = []
    if clock:
        rows.append(["at the requested clock", f"{clock:.1f} MHz", clock * 1e6 / cycles])
    if fmax:
        rows.append(["at the achieved Fmax", f"{fmax:.1f} MHz", fmax * 1e6 / cycles])
    if rows:
        out += _table(["", "clock", "inferences per second"], rows)
    else:
        out += _missing("No build here: inferences per second need a clock (spikelut build).")
    return out + _img(plots.throughput(m["layers"]), "cycles per inference against the floor")


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
    "confusion": _confusion,
    "raster": _raster,
    "files": _files,
}


def render_html(r: dict) -> str:
    """The self-contained HTML page for the figures of :func:`collect`."""
    parts = []
    for sid, heading in SECTIONS:
        parts.append(
            f'<section id="{sid}"><h2>{html.escape(heading)}</h2>{_RENDER[sid](r)}</section>'
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


def write_report(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    data: str | None = None,
) -> dict:
    """Write the HTML report of ``source`` (a model file or directory, or a list of them;
    see :func:`find_inputs`) to ``output`` atomically; returns the figures of
    :func:`collect` plus ``"output"`` and the list of ``"missing"`` section ids (those shown
    without their data)."""
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    inputs = find_inputs(*sources)
    r = collect(inputs, data=data)
    page = render_html(r)
    write_text_atomic(output, page)
    missing = []
    for sid, _ in SECTIONS:
        start = page.index(f'<section id="{sid}">')
        end = page.index("</section>", start)
        if 'class="missing"' in page[start:end]:
            missing.append(sid)
    r["output"] = str(output)
    r["missing"] = missing
    return r
