"""The frozen core in cocotb/Verilator through ``spikelut sim``'s path, and ``spikelut
compile --core frozen``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_models import tiny_model

from spikelut.boards.design import board_core, make_core, shape_hash
from spikelut.boards.platforms import board
from spikelut.boards.top import BoardTop
from spikelut.cli.main import main
from spikelut.compiler.backend.compile import CompileError, plan_core
from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.backend.targets import TARGETS
from spikelut.compiler.ir.golden import run_classifier
from spikelut.compiler.ir.modelfile import save_model
from spikelut.hdl.layer_params import frozen_latency
from spikelut.sim.network_sim import simulate


@pytest.mark.slow
def test_frozen_core_matches_golden_in_cocotb():
    model = tiny_model(3)
    rng = np.random.default_rng(5)
    x = rng.integers(-16, 16, (3000, model.encoding.dim))
    assert len(np.unique(run_classifier(model, x).logits, axis=0)) > 100
    rep = simulate(model, x, kind=CoreKind.FROZEN, seed=4)
    assert (rep.vectors, rep.mismatches) == (3000, 0), rep.first_mismatch
    assert rep.expected_cycles_per_inference == 1
    assert rep.cycles_per_inference == pytest.approx(1.0, abs=0.05)
    plan = plan_core(model, TARGETS["ice40-up5k"], kind="frozen")
    assert rep.latency_cycles == frozen_latency(plan.params)


def test_compile_core_frozen(tmp_path, capsys):
    src = tmp_path / "m.lutnet"
    save_model(tiny_model(2), src)
    out = tmp_path / "core"
    assert main(["compile", str(src), "-o", str(out), "--core", "frozen", "--json"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["indexer"] == "frozen" and man["reloadable"] is False
    assert man["cycles_per_inference"] == 1 and man["block_rams"] == man["sprams"] == 0
    assert {la["storage"] for la in man["layers"]} == {"logic"}
    assert set(man["ports"]) == {"i_stream", "o_stream"}
    plan = plan_core(tiny_model(2), TARGETS["ice40-up5k"], kind="frozen")
    assert man["latency_cycles"] == frozen_latency(plan.params)
    capsys.readouterr()
    # the goal decides the automatic choice and says why; without one, as before
    assert main(["compile", str(src), "-o", str(out), "--optimize", "throughput", "--json"]) == 0
    man = json.loads(capsys.readouterr().out)
    # the tiny model's tables fit block RAM read whole: parallel also takes 1 cycle, in
    # fewer logic cells, and wins the tie
    assert man["cycles_per_inference"] == 1 and "goal: throughput" in man["core_choice"]
    assert main(["compile", str(src), "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["indexer"] != "frozen"
    for bad, message in [
        (["--core", "frozen", "--storage", "bram"], "the frozen core keeps every table in logic"),
        (["--core", "serial", "--optimize", "area"], "--optimize picks the core kind"),
    ]:
        assert main(["compile", str(src), "-o", str(out), *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_a_frozen_core_too_large_says_how_to_shrink_it():
    """Tables in logic have no per-cycle knob: the fix names the quantiser's bits and pruning."""
    with pytest.raises(CompileError) as e:
        plan_core(tiny_model(2), TARGETS["ice40-up5k"], kind="frozen", logic_cells=10)
    assert "--prune-to" in str(e.value) and "--tables-per-cycle" not in str(e.value)


@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f"])
def test_board_top_with_a_frozen_core_elaborates_without_table_ports(name):
    """A board build's core and top for ``--core frozen``: no table space, the host link's
    table router without write ports, the design resolves on the board's platform."""
    spec = board(name)
    core_plan = board_core(tiny_model(), spec, kind="frozen")
    assert core_plan.kind is CoreKind.FROZEN and core_plan.block_rams == 0
    core = make_core(tiny_model(), core_plan, clock_hz=spec.clock_hz, divisor=8)
    assert not core.space.layers and core.shape_hash == shape_hash(
        CoreKind.FROZEN, core_plan.params
    )
    spec.platform().prepare(BoardTop(core), name="top")
