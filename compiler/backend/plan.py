"""A layer's placement: where its tables live and how many are read per cycle."""

from __future__ import annotations

from dataclasses import dataclass

from spikelut.hdl.storage import Storage

__all__ = ["LayerPlan", "plans_from_json", "plans_to_json"]


@dataclass(frozen=True)
class LayerPlan:
    """Where one layer's tables live (``storage``) and how fast they are read:
    ``tables_per_cycle`` (P) tables per cycle, ``lanes`` (L) outputs of a row per beat.

    None means "all" (N_T, Y); larger values are clamped to N_T and Y (:meth:`rate`).
    LOGIC storage always reads everything at once.
    """

    storage: Storage = Storage.BRAM
    tables_per_cycle: int | None = 1
    lanes: int | None = None

    def rate(self, n_tables: int, out_dim: int) -> tuple[int, int]:
        """``(P, L)`` for a layer of ``n_tables`` tables and ``out_dim`` outputs."""

        def clamp(value: int | None, top: int) -> int:
            return top if value is None else max(1, min(int(value), top))

        if self.storage == Storage.LOGIC:
            return n_tables, out_dim
        return clamp(self.tables_per_cycle, n_tables), clamp(self.lanes, out_dim)

    def to_json(self) -> dict:
        """The plan as a JSON-able dict (what ``board.json`` and manifests hold)."""
        return {
            "storage": self.storage.name.lower(),
            "tables_per_cycle": self.tables_per_cycle,
            "lanes": self.lanes,
        }

    @classmethod
    def from_json(cls, item: dict) -> LayerPlan:
        """Inverse of :meth:`to_json`; ``ValueError`` naming what is wrong."""
        if not isinstance(item, dict):
            raise ValueError(f"a layer plan must be an object, not {item!r}")
        try:
            storage = Storage[str(item["storage"]).upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in Storage)
            raise ValueError(
                f"a layer plan needs a storage ({names}), not {item.get('storage')!r}"
            ) from None
        p, lanes = item.get("tables_per_cycle"), item.get("lanes")
        for name, v in (("tables_per_cycle", p), ("lanes", lanes)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"a layer plan's {name} must be a positive integer, not {v!r}")
        return cls(storage, p, lanes)


def plans_to_json(plans: list[LayerPlan]) -> list[dict]:
    """JSON form of layer plans."""
    return [p.to_json() for p in plans]


def plans_from_json(items) -> list[LayerPlan]:
    """Inverse of :func:`plans_to_json`; ``ValueError`` naming what is wrong."""
    if not isinstance(items, list) or not items:
        raise ValueError(f"plans must be a non-empty list of layer plans, not {items!r}")
    return [LayerPlan.from_json(i) for i in items]
