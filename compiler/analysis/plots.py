"""The figures of ``spikelut report``: each function draws one plot and returns PNG bytes.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no display,
no global state), so they work headless and in parallel with other matplotlib users.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# One palette for every figure: LUT network, dense ANN, floors/limits, neutral.
LUT_COLOUR = "#2a9d8f"
ANN_COLOUR = "#e76f51"
LIMIT_COLOUR = "#264653"
MUTED_COLOUR = "#b8c4c2"
DPI = 110


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _tidy(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def layer_structure(layers: Sequence[dict]) -> bytes:
    """Tables, comparisons and table memory per layer (``layers``: dicts with ``n_tables``,
    ``comparisons`` and ``table_memory_bits``)."""
    names = [f"layer {d['layer']}" for d in layers]
    fig = _figure(7.5, 2.6)
    axes = fig.subplots(1, 3)
    for ax, key, title, colour in (
        (axes[0], "n_tables", "tables (N_T)", LUT_COLOUR),
        (axes[1], "comparisons", "comparisons (N_T x N_C)", LUT_COLOUR),
        (axes[2], "table_memory_bits", "table memory (kbit)", LIMIT_COLOUR),
    ):
        values = [d[key] / (1024 if key == "table_memory_bits" else 1) for d in layers]
        ax.bar(names, values, color=colour, width=0.6)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
        _tidy(ax)
    return _png(fig)


def used_vs_available(items: Sequence[tuple[str, float, float]], title: str) -> bytes:
    """Horizontal bars of the fraction used of each resource: ``(name, used, available)``."""
    fig = _figure(7.5, 0.55 * len(items) + 1.0)
    ax = fig.subplots()
    names = [n for n, _, _ in items]
    frac = [100.0 * u / a if a else 0.0 for _, u, a in items]
    y = np.arange(len(items))
    ax.barh(y, [100.0] * len(items), color="#eef2f1", height=0.6)
    colours = [ANN_COLOUR if f > 100 else LUT_COLOUR for f in frac]
    ax.barh(y, [min(f, 100.0) for f in frac], color=colours, height=0.6)
    for k, (_, u, a) in enumerate(items):
        ax.text(101, k, f"{u:,.0f} / {a:,.0f}  ({frac[k]:.0f}%)", va="center", fontsize=8)
    ax.set_yticks(y, names, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 135)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("% of the device", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def operations_vs_ann(lut: dict, ann: dict) -> bytes:
    """Grouped bars (log scale) of per-inference counts of the LUT network against the dense
    ANN: ``lut``/``ann`` map a category name to a count (missing = 0)."""
    cats = list(dict.fromkeys([*lut, *ann]))
    fig = _figure(7.5, 3.0)
    ax = fig.subplots()
    x = np.arange(len(cats))
    w = 0.38
    lv = [lut.get(c, 0) for c in cats]
    av = [ann.get(c, 0) for c in cats]
    ax.bar(x - w / 2, [max(v, 0.8) for v in lv], w, color=LUT_COLOUR, label="LUT network")
    ax.bar(x + w / 2, [max(v, 0.8) for v in av], w, color=ANN_COLOUR, label="dense ANN")
    for xs, vals in ((x - w / 2, lv), (x + w / 2, av)):
        for xi, v in zip(xs, vals, strict=True):
            ax.text(xi, max(v, 0.8) * 1.15, f"{v:,}", ha="center", fontsize=7, rotation=90)
    ax.set_yscale("log")
    ax.set_xticks(x, cats, fontsize=8)
    ax.set_ylabel("per inference", fontsize=9)
    top = max([*lv, *av, 1])
    ax.set_ylim(0.7, top * 30)
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncols=2)
    _tidy(ax)
    return _png(fig)


def throughput(layers: Sequence[dict]) -> bytes:
    """Achieved cycles per inference of each layer beside its memory-bandwidth floor."""
    names = [f"layer {d['layer']}" for d in layers]
    fig = _figure(7.5, 2.6)
    ax = fig.subplots()
    x = np.arange(len(layers))
    w = 0.38
    ach = [d["cycles_per_inference"] for d in layers]
    flo = [d["bandwidth_floor_cycles"] for d in layers]
    ax.bar(x - w / 2, ach, w, color=LUT_COLOUR, label="achieved")
    ax.bar(x + w / 2, flo, w, color=MUTED_COLOUR, label="bandwidth floor")
    for xi, a, f in zip(x, ach, flo, strict=True):
        ax.text(xi - w / 2, a, f"{a:,}", ha="center", va="bottom", fontsize=8)
        ax.text(xi + w / 2, f, f"{f:,}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names, fontsize=9)
    ax.set_ylabel("cycles per inference", fontsize=9)
    ax.set_ylim(0, max([*ach, *flo, 1]) * 1.2)
    ax.legend(fontsize=8, frameon=False)
    _tidy(ax)
    return _png(fig)


def losses(values: Sequence[tuple[str, float]], uniform: float) -> bytes:
    """Horizontal bars of a language model's validation losses (``(name, nats)``: float,
    integer, hardware) beside the uniform guess ``ln V`` (a dashed line)."""
    fig = _figure(7.5, 0.5 * len(values) + 1.1)
    ax = fig.subplots()
    y = np.arange(len(values))
    nats = [v for _, v in values]
    ax.barh(y, nats, color=LUT_COLOUR, height=0.6)
    for k, v in enumerate(nats):
        ax.text(v, k, f" {v:.4f}", va="center", fontsize=8)
    ax.axvline(uniform, color=LIMIT_COLOUR, linestyle="--", linewidth=1)
    ax.text(uniform, -0.6, f" uniform guess ln V = {uniform:.2f}", fontsize=8, va="bottom")
    ax.set_yticks(y, [n for n, _ in values], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, max([*nats, uniform]) * 1.25)
    ax.set_xlabel("validation loss (nats per byte)", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def token_cycles(items: Sequence[tuple[str, float]]) -> bytes:
    """Bars of cycles per generated token (``(name, cycles)``: the table-bandwidth floor,
    the measured cores)."""
    fig = _figure(7.5, 2.6)
    ax = fig.subplots()
    x = np.arange(len(items))
    vals = [v for _, v in items]
    colours = [MUTED_COLOUR if k == 0 else LUT_COLOUR for k in range(len(items))]
    ax.bar(x, vals, 0.6, color=colours)
    for xi, v in zip(x, vals, strict=True):
        ax.text(xi, v, f"{v:,.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [n for n, _ in items], fontsize=8)
    ax.set_ylabel("cycles per token", fontsize=9)
    ax.set_ylim(0, max([*vals, 1]) * 1.2)
    _tidy(ax)
    return _png(fig)


def confusion(matrix: np.ndarray, class_names: Sequence[str], title: str) -> bytes:
    """A confusion-matrix heat map (rows: true class, columns: predicted), counts printed."""
    m = np.asarray(matrix)
    k = len(m)
    size = min(7.0, 2.2 + 0.42 * k)
    fig = _figure(size, size * 0.9)
    ax = fig.subplots()
    ax.imshow(m, cmap="BuGn", vmin=0)
    hi = m.max() if m.size else 1
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    colour = "white" if m[i, j] > 0.6 * hi else "#222222"
                    ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7, color=colour)
    labels = [str(c) for c in class_names]
    ax.set_xticks(range(k), labels, fontsize=8, rotation=90 if k > 12 else 0)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.set_xlabel("predicted", fontsize=9)
    ax.set_ylabel("true", fontsize=9)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def spike_raster(examples: Sequence[dict], n_features: int) -> bytes:
    """One raster per example: each input feature is a spike at its latency (``times``, one
    per feature); ``title`` labels the panel. With a square number of features an inset
    shows the input as an image coloured by latency."""
    n = len(examples)
    side = math.isqrt(n_features)
    square = side * side == n_features and side >= 4
    fig = _figure(7.5, 2.4 * n if not square else 2.3 * n)
    grid = fig.subplots(
        n, 2 if square else 1, squeeze=False, width_ratios=[3, 1] if square else [1]
    )
    for row, ex in enumerate(examples):
        t = np.asarray(ex["times"])
        ax = grid[row][0]
        ax.scatter(t, np.arange(n_features), marker="|", s=40, color=LUT_COLOUR, linewidths=1.2)
        ax.set_xlim(-0.5, max(int(t.max()), 1) + 0.5)
        ax.set_ylim(-1, n_features)
        ax.invert_yaxis()
        ax.set_ylabel("input feature", fontsize=8)
        ax.set_title(ex["title"], fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        if row == n - 1:
            ax.set_xlabel("spike time (rank of the value; larger values fire first)", fontsize=8)
        if square:
            im = grid[row][1]
            im.imshow(t.reshape(side, side), cmap="viridis_r")
            im.set_xticks([])
            im.set_yticks([])
            im.set_title("latency map", fontsize=8)
    return _png(fig)
