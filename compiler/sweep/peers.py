"""The peers' published digits figures on the iCE40 UP5K that a sweep's report marks.

Quoted, not measured here: TreeLUT (gradient-boosted trees compiled to logic) on the same
UP5K, digits split and YoWASP tools, as spikelut issue 16 quotes them.
"""

from __future__ import annotations

__all__ = ["PEERS"]

PEERS = [
    {
        "name": "TreeLUT",
        "device": "iCE40UP5K",
        "accuracy": 0.980,
        "logic_cells": 2764,
        "clock_mhz": 46.0,
        "cycles_per_inference": 1,
        "source": "quoted in spikelut issue 16 (TreeLUT on the UP5K, digits)",
    },
    {
        "name": "TreeLUT, smallest >= 95%",
        "device": "iCE40UP5K",
        "accuracy": 0.95,
        "logic_cells": 1106,
        "clock_mhz": 60.0,
        "cycles_per_inference": 1,
        "source": "quoted in spikelut issue 16 (accuracy given there as >= 95%)",
    },
]
