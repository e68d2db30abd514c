"""Simulation helpers shared by the gateware tests (stream drivers, monitors, widths).

The drivers follow the ``lib.stream`` rules from the testbench side: a payload is offered
with ``valid`` and held until a clock edge at which ``ready`` was high. The monitor checks
the other side: once ``valid`` is high it stays high, with the same payload, until taken.
"""

from __future__ import annotations

import numpy as np
from helpers_sim import layer_width

from spikelut.hdl.params import signed_width


def test_layer_width_is_exact():
    t = np.array([[[3, -4]], [[1, 2]]]).reshape(2, 1, 2)
    t = np.concatenate([t, t], axis=1)  # (2, 2, 2)
    assert layer_width(t, 4, False) == signed_width(-2, 5) == 4
    assert layer_width(t, 4, True) == signed_width(-2 - 8, 5 + 7) == 5
