"""The cocotb testbench library: payload packing, scoreboard, divergence, and the gateware
components (temporal and parallel indexers, banks of every storage kind, residual add,
argmax, layers) checked stream by stream in a debug simulation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_models import MIXED_PLANS, mixed_model
from hypothesis import given
from hypothesis import strategies as st

from spikelut.compiler.backend.manifest import describe_shape
from spikelut.compiler.ir.classifier import ClassifierMLP, LayerQuant
from spikelut.compiler.ir.golden import run_classifier
from spikelut.hdl.indexer import spike_events as hdl_spike_events
from spikelut.hdl.layouts import event_layout, label_layout
from spikelut.sim.cocotb_lib import (
    Scoreboard,
    locate_divergence,
    pack_fields,
    pack_value,
    pack_vector,
    spike_events,
    unpack_fields,
    unpack_vector,
)
from spikelut.sim.network_sim import simulate


@given(st.integers(2, 12), st.lists(st.integers(-(1 << 20), 1 << 20), min_size=1, max_size=9))
def test_vector_round_trip(width, raw):
    lim = 1 << (width - 1)
    values = [v % (2 * lim) - lim for v in raw]
    assert unpack_vector(pack_vector(values, width), width, len(values)) == values


def test_packing_matches_amaranth_layouts():
    layout = label_layout(10, 7)
    desc = describe_shape(layout)
    logits = [-64, 63, 0, 5, -1, 2, 3, 4, 5, 6]
    want = layout.const({"index": 9, "logits": logits}).as_value().value
    assert pack_value(desc, {"index": 9, "logits": logits}) == want
    got = unpack_fields(want, desc)
    assert got == {"index": 9, "logits": logits}
    ev = event_layout(40, 5)
    ev_desc = describe_shape(ev)
    want = ev.const({"neuron": 37, "time": 30, "last": 1}).as_value().value
    assert pack_fields(ev_desc, neuron=37, time=30, last=1) == want
    with pytest.raises(ValueError, match="no field"):
        pack_fields(ev_desc, neuron=1, spike=2)


@given(st.lists(st.integers(-32, 31), min_size=2, max_size=20))
def test_spike_events_match_the_gateware_order(x):
    assert spike_events(x, 6) == hdl_spike_events(np.array(x), 6)


def test_scoreboard_counts_and_describes_mismatches():
    board = Scoreboard([1, 2, 3], [[0], [1], [2]], decode=lambda p: f"<{p}>")
    assert board.check(0, 1) and not board.check(1, 5) and not board.check(2, 7)
    assert (board.checked, board.n_mismatches) == (3, 2)
    assert "vector 1" in board.report() and "<2>" in board.report() and "<5>" in board.report()
    assert Scoreboard([1], [[0]]).report() == ""


def test_locate_divergence_names_layer_and_table():
    golden = [
        {"indices": [[1, 2, 3]], "sums": [[4, 5]]},
        {"indices": [[0, 1]], "sums": [[7]]},
    ]
    same = [{k: [list(r) for r in v] for k, v in g.items()} for g in golden]
    assert "agree" in locate_divergence(0, golden, same)
    bad = [dict(g) for g in same]
    bad[1] = {"indices": [[0, 3]], "sums": [[7]]}
    assert locate_divergence(0, golden, bad).startswith("layer 1 table 1: index 3 (golden 1)")
    bad[0] = {"indices": [[1, 2, 3]], "sums": [[4, 6]]}
    assert locate_divergence(0, golden, bad).startswith("layer 0 output 1: sum 6 (golden 5)")
    assert "no indices" in locate_divergence(0, golden, [{"indices": [], "sums": []}] * 2)


@pytest.mark.slow
def test_components_match_golden_stream_by_stream(tmp_path):
    """Temporal indexer, BRAM/LUTRAM/SPRAM/LOGIC banks, residual add and argmax: in a debug
    run every layer's indices and bank sums equal the golden model's, vector by vector; a
    model that differs from the hardware in one table column is caught and located."""
    model = mixed_model()
    x = np.random.default_rng(6).integers(-32, 32, (200, 16))
    rep = simulate(
        model, x, plans=MIXED_PLANS, kind="temporal", debug=True, work_dir=tmp_path / "ok"
    )
    assert (rep.vectors, rep.mismatches) == (200, 0)
    assert rep.layer_checks == 200 * 2 * 4 and rep.layer_mismatches == 0
    assert rep.cycles_per_inference is not None and rep.cycles_per_inference >= 16

    # Check against the golden model of a network whose residual layer 1 adds 40 more to
    # output 0 from table 0: the run (a fast build showing Python only the ports) reports
    # the mismatches, and its automatic debug re-run (every signal visible, probes on)
    # names layer 1, output 0 as where the design's values first leave the golden model's.
    tables = model.layers[1].tables.copy()
    tables[0, :, 0] += 40
    other = ClassifierMLP(
        model.encoding,
        [model.layers[0], model.layers[1].with_tables(tables), *model.layers[2:]],
        6,
        quant=[model.quant[0], LayerQuant(table_bits=8), *model.quant[2:]],
    )
    assert (run_classifier(other, x[:50]).logits != run_classifier(model, x[:50]).logits).any()
    bad = simulate(
        model,
        x[:50],
        plans=MIXED_PLANS,
        kind="temporal",
        golden=other,
        work_dir=tmp_path / "bad",
    )
    assert bad.mismatches >= 1 and "vector" in bad.first_mismatch
    assert bad.divergence.startswith("layer 1 output 0: sum"), bad.divergence
    first = int(bad.first_mismatch.split("first: vector ")[1].split(",")[0])
    debug_run = json.loads((tmp_path / "bad" / "debug" / "results.json").read_text())
    assert debug_run["checked"] == first + 1 and debug_run["layer_mismatches"] > 0
