"""The figures of a sweep's report: each function draws one plot and returns PNG bytes.

Drawn like :mod:`spikelut.compiler.analysis.plots` (matplotlib's object API on the Agg
canvas: headless, no global state), with its palette. One panel per board; in each panel
every core kind's points in its colour, its Pareto front as a line, and the peers' quoted
points (:mod:`spikelut.compiler.sweep.peers`) as black stars on the boards of their device.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from spikelut.compiler.analysis.plots import DPI, LIMIT_COLOUR, MUTED_COLOUR

__all__ = ["accuracy_against", "energy_against_accuracy"]

KIND_COLOURS = ["#2a9d8f", "#e76f51", "#264653", "#e9c46a", "#8d5fd3", "#3a86ff"]


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _panels(n: int, height: float = 3.4):
    fig = Figure(figsize=(min(4.6 * n, 9.6), height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    return fig, axes


def accuracy_against(
    boards: Sequence[dict], x_key: str, x_label: str, *, log_x: bool = False
) -> bytes:
    """Accuracy (%) against ``x_key`` of the results, one panel per board. ``boards``: dicts
    with ``board``, ``kinds`` (kind -> {"points": [results], "front": [results]}) and
    ``peers`` (dicts with ``name``, ``accuracy`` and ``x_key``); ``failed`` (count) in the
    title."""
    fig, axes = _panels(max(1, len(boards)))
    for ax, b in zip(axes, boards, strict=False):
        for n, (kind, g) in enumerate(sorted(b["kinds"].items())):
            colour = KIND_COLOURS[n % len(KIND_COLOURS)]
            pts = [r for r in g["points"] if r.get(x_key)]
            ax.scatter([r[x_key] for r in pts], [100 * r["accuracy"] for r in pts],
                       s=14, color=colour, alpha=0.45, label=f"{kind}")  # fmt: skip
            front = [r for r in g["front"] if r.get(x_key)]
            if front:
                ax.plot([r[x_key] for r in front], [100 * r["accuracy"] for r in front],
                        color=colour, linewidth=1.6, marker="o", markersize=4)  # fmt: skip
        for peer in b["peers"]:
            ax.scatter([peer[x_key]], [100 * peer["accuracy"]], marker="*", s=120,
                       color="black", zorder=5)  # fmt: skip
            ax.annotate(f"{peer['name']} (quoted)", (peer[x_key], 100 * peer["accuracy"]),
                        fontsize=7, xytext=(4, -10), textcoords="offset points")  # fmt: skip
        if log_x:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{b['board']} ({b['failed']} failed points not shown)", fontsize=9)
        ax.set_xlabel(x_label, fontsize=9)
        ax.set_ylabel("test accuracy (%)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(color="#e6e6e6", linewidth=0.8)
        ax.spines[["top", "right"]].set_visible(False)
        if b["kinds"]:
            ax.legend(fontsize=7, title="core kind (line: Pareto front)", title_fontsize=7)
    return _png(fig)


def energy_against_accuracy(points: Sequence[dict], reference_uj: float, reference: str) -> bytes:
    """Estimated energy per inference (uJ, with the estimate's bounds as error bars) against
    accuracy of ``points`` (results with ``energy``), and a horizontal line at
    ``reference_uj`` labelled ``reference``."""
    fig, axes = _panels(1, 3.2)
    ax = axes[0]
    pts = [r for r in points if r.get("energy")]
    if pts:
        mid = [r["energy"]["uj"] for r in pts]
        lo = [r["energy"]["uj"] - r["energy"]["uj_low"] for r in pts]
        hi = [r["energy"]["uj_high"] - r["energy"]["uj"] for r in pts]
        ax.errorbar([100 * r["accuracy"] for r in pts], mid, yerr=[lo, hi], fmt="o",
                    markersize=4, color=KIND_COLOURS[0], ecolor=MUTED_COLOUR,
                    label="spikelut points (estimate, bounds)")  # fmt: skip
    ax.axhline(reference_uj, color=LIMIT_COLOUR, linestyle="--", linewidth=1.2, label=reference)
    ax.set_yscale("log")
    ax.set_xlabel("test accuracy (%)", fontsize=9)
    ax.set_ylabel("energy per inference (uJ)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(color="#e6e6e6", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7)
    return _png(fig)
