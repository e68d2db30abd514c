"""``spikelut report`` for an integer LUT transformer: the model's shape (attention heads,
FFNs, unembedder, the residual stream's widths), memory per head and layer with its compiled
and built placement, the full-window throughput of ``spikelut compile``, the hardware's loss
from a simulation, and the refusals of another kind of language model's files."""

from __future__ import annotations

import json
import math

import numpy as np
from test_report_lm import _html, _one_line_error, _report, _row
from test_transformer_hw import random_transformer

from spikelut.boards.lm_design import lm_board_fit
from spikelut.boards.platforms import board
from spikelut.cli.main import main
from spikelut.compiler.analysis.render import _fmt
from spikelut.compiler.analysis.render_lm import LM_SECTIONS
from spikelut.compiler.ir.modelfile import save_model
from spikelut.compiler.passes.widths import transformer_widths

EVALUATION = {"float_val_loss": 2.5, "int_val_loss": 2.53, "data": "text", "n_windows": 100}


def _model(tmp_path):
    model = random_transformer(
        np.random.default_rng(4), vocab=24, dim=6, layers=2, heads=2, n_t=3, n_c=2, n_p=1,
        context=5,
    )  # fmt: skip
    model.meta = {"quantization": {"evaluation": EVALUATION}, "training": {"step": 1000}}
    path = tmp_path / "tf.lutnet"
    save_model(model, path)
    return model, path


def _board_json(tmp_path, model) -> dict:
    """The placement fields of a ULX3S build's ``board.json`` (no Yosys here)."""
    fit = lm_board_fit(model, board("ulx3s-85f"))
    b = {
        "board": "ulx3s-85f", "model_kind": "language_model", "vocab": model.vocab,
        "transformer_plan": fit.plan.to_json(), "indexer": "transformer",
        "planned": {"block_rams": fit.block_rams, "sprams": 0, "estimate": None},
        "cycles_per_token": 40.0, "tokens_per_second": 25e6 / 40, "target_mhz": 25.0,
    }  # fmt: skip
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "board.json").write_text(json.dumps(b))
    return b


def test_a_transformer_report_covers_heads_memories_and_throughput(tmp_path, capsys):
    model, path = _model(tmp_path)
    assert (
        main(
            ["compile", str(path), "-o", str(tmp_path / "compile"), "--target", "ecp5-85", "--json"]
        )
        == 0
    )
    man = json.loads(capsys.readouterr().out)
    b = _board_json(tmp_path, model)
    sim = {"tokens": 300, "mismatches": 0, "logit_mismatches": 0, "temperature": 0.0,
           "cycles_per_token": man["cycles_per_token"]}  # fmt: skip
    (tmp_path / "build" / "sim.json").write_text(json.dumps(sim))
    r, page = _report(capsys, path, tmp_path / "compile", tmp_path / "build", tmp_path / "r.html")
    for sid, heading in LM_SECTIONS:
        assert f'<section id="{sid}"><h2>{heading}</h2>' in page
    assert r["missing_sections"] == ["resources"]  # no build-report.json
    assert "LUT transformer language model" in _html(page, "overview")

    shape = _html(page, "model")
    assert _row(shape, "layers") == ["2"] and _row(shape, "heads per layer") == ["2"]
    assert _row(shape, "residual stream (E)") == ["6"] and _row(shape, "training steps") == [
        "1,000"
    ]
    # two heads of N_T 3 tables with 2^(2 N_C + P) rows; a query and a key index each
    attn = _row(shape, "attention 1 (2 heads)")
    assert attn[:7] == ["6", "6", "6", "2", "32", str(2 * 2 * 3 * 2), "4"]
    assert _row(shape, "ffn 0")[:5] == ["6", "6", "3", "2", "4"]
    assert _row(shape, "unembedder")[:4] == ["6", "24", "3", "2"]
    w = transformer_widths(model)
    assert _row(shape, "stream width (bits)") == [str(w.stream_width)]
    assert shape.count(f"<td>{w.stream_acc_width}</td>") >= 5  # the facts and four LUTs

    mem = _html(page, "memory")
    rows = {name: _row(mem, name) for name in
            ("embedding", "attention 0.0", "attention 1.1", "ffn 1", "unembedder")}  # fmt: skip
    assert rows["attention 1.1"][:3] == ["3 x 32 x 6", "4", _fmt(3 * 32 * 6 * 4)]
    assert rows["unembedder"][:3] == ["3 x 4 x 24", "4", _fmt(3 * 4 * 24 * 4)]
    total = (24 * 6 + 2 * 2 * 3 * 32 * 6 + 2 * 3 * 4 * 6 + 3 * 4 * 24) * 4
    assert _row(mem, "total")[2] == _fmt(total)
    tp = b["transformer_plan"]
    assert rows["attention 0.0"][4] == (
        f"bram (P {_fmt(tp['attn_tables_per_cycle'])}, L {_fmt(tp['attn_lanes'])})"
    )
    assert rows["attention 0.0"][3].startswith(man["plan"]["attn_storage"])

    loss = _html(page, "loss")
    assert _row(loss, "hardware") == ["2.5300 (equal to the integer loss)"]
    assert _row(loss, "a uniform guess (ln V)") == [f"{math.log(24):.4f}"]

    tput = _html(page, "throughput")
    assert _row(tput, "table-bandwidth floor (compiled core)")[0] == _fmt(
        man["table_cycles_per_token"]
    )
    layer = man["layers"][1]["attention"]
    assert _row(tput, "attention 1 (2 heads, full context)")[3] == _fmt(
        layer["cycles_at_full_context"]
    )
    assert "V-index cache" in tput


def test_another_kind_of_language_model_s_files_are_refused(tmp_path, capsys):
    model, path = _model(tmp_path)
    _board_json(tmp_path, model)
    b = json.loads((tmp_path / "build" / "board.json").read_text())
    plan = b.pop("transformer_plan")
    (tmp_path / "build" / "board.json").write_text(json.dumps({**b, "rnn_plan": plan}))
    out = tmp_path / "r.html"
    assert main(["report", str(path), str(tmp_path / "build"), "-o", str(out)]) == 2
    assert "another kind of language model" in _one_line_error(capsys)
    (tmp_path / "build" / "board.json").unlink()
    (tmp_path / "build" / "manifest.json").write_text(
        json.dumps({"architecture": "rnn-int", "vocab": 24, "dim": 6})
    )
    assert main(["report", str(path), str(tmp_path / "build"), "-o", str(out)]) == 2
    assert "another kind of language model" in _one_line_error(capsys)
    assert not out.exists()
