"""Switching activity from Verilator's toggle coverage (:mod:`spikelut.sim.activity`): the
file's counts, memory contents left out, and a real run whose toggles follow its inputs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_models import tiny_model

from spikelut.sim.activity import read_toggles
from spikelut.sim.network_sim import simulate


def _point(name: str, count: int, kind: str = "toggle") -> str:
    fields = {"f": "core.v", "l": "10", "t": kind, "page": f"v_{kind}/core", "o": name}
    return "C '" + "".join(f"\x01{k}\x02{v}" for k, v in fields.items()) + f"' {count}\n"


def test_counts_toggles_of_logic_bits_and_leaves_memory_out(tmp_path):
    lines = ["# SystemC::Coverage-3\n"]
    lines += [_point("sum[0]:0->1", 5), _point("sum[0]:1->0", 4)]
    lines += [_point("sum[1]:0->1", 1), _point("sum[1]:1->0", 1)]
    lines += [_point("mem[3][0]:0->1", 7), _point("mem[3][0]:1->0", 7)]
    lines += [_point("x", 100, kind="line")]  # not a toggle point
    (tmp_path / "coverage.dat").write_text("".join(lines), encoding="latin-1")
    counts = read_toggles(tmp_path)
    assert (counts.toggles, counts.bits, counts.memory_bits) == (11, 2, 1)
    assert counts.per_bit(11) == pytest.approx(0.5)
    with pytest.raises(FileNotFoundError):
        read_toggles(tmp_path / "missing")


@pytest.mark.slow
def test_a_core_switches_more_on_changing_inputs_than_on_a_constant_one(tmp_path):
    model = tiny_model()
    lim = 1 << (model.encoding.bits - 1)
    varied = np.random.default_rng(1).integers(-lim, lim, (300, model.encoding.dim))
    constant = np.repeat(varied[:1], 300, axis=0)
    reps = [
        simulate(model, x, activity=True, seed=2, build_dir=tmp_path / "build")
        for x in (varied, constant)
    ]
    assert all(r.mismatches == 0 for r in reps)
    busy, idle = (r.toggles for r in reps)
    assert busy["bits"] == idle["bits"] > 100  # the same design
    assert busy["per_bit_per_inference"] > 3 * idle["per_bit_per_inference"] > 0
