"""Which sweep results meet the constraints, and the Pareto fronts among them.

A result (one point's JSON, see :mod:`spikelut.flows.sweep`) has ``status`` ``"ok"`` when
every stage ran, the build fits and meets timing; ``accuracy`` (integer test accuracy),
``logic_cells`` (placed, or estimated without synthesis) and ``inferences_per_second``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["feasible", "group_key", "pareto_front"]


def feasible(result: dict, constraints: dict) -> bool:
    """True when ``result`` ran and meets ``constraints`` (``fits``: the build fits and
    meets timing, ``min_accuracy``: integer test accuracy at least that)."""
    if result.get("accuracy") is None or result.get("logic_cells") is None:
        return False
    if constraints.get("fits", True) and result.get("status") != "ok":
        return False
    low = constraints.get("min_accuracy")
    return low is None or result["accuracy"] >= low


def group_key(result: dict) -> tuple[str, str]:
    """``(board, core kind)``: one front per pair."""
    return result["point"]["board"], result["point"]["kind"]


def pareto_front(results: Sequence[dict], maximize: str, *, minimize: str | None = None,
                 maximize_too: str | None = None) -> list[dict]:  # fmt: skip
    """The results no other result dominates on (``maximize``, and ``minimize`` or
    ``maximize_too``), sorted by the second objective; ties keep the first met."""
    if (minimize is None) == (maximize_too is None):
        raise ValueError("give one of minimize, maximize_too")

    def objectives(r: dict) -> tuple[float, float]:
        second = -r[minimize] if minimize is not None else r[maximize_too]
        return r[maximize], second

    scored = [(objectives(r), r) for r in results]
    front = []
    for i, (a, r) in enumerate(scored):
        dominated = any(
            (b[0] >= a[0] and b[1] >= a[1] and (b[0] > a[0] or b[1] > a[1])) or (b == a and j < i)
            for j, (b, _) in enumerate(scored)
            if j != i
        )
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: objectives(r)[1])
