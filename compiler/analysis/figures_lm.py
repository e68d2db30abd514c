"""The figures of ``spikelut report`` for a language model (an integer spiking RNN or LUT
transformer): what :func:`collect_lm` computes from the
:class:`~spikelut.compiler.analysis.inputs.ReportInputs`, as one JSON-able dict (``None``
where data is missing).

- the model: vocabulary, neurons, context, every LUT's tables (an RNN's cell and
  unembedder; a transformer's attention heads, FFNs and unembedder), table bits and the
  widths :func:`~spikelut.compiler.passes.widths.rnn_widths` or
  :func:`~spikelut.compiler.passes.widths.transformer_widths` infers;
- memory per layer (embedding, then the LUTs): bits and where each is placed, by the
  compile manifest (``spikelut compile``) and by the board build (``board.json``);
- the validation losses ``spikelut quantize`` records in the model
  (``meta["quantization"]["evaluation"]``: ``float_val_loss``, ``int_val_loss``; a
  language-model demo's ``summary.json`` otherwise), and the hardware's: the integer loss when
  every simulation in the sources chose every byte as the golden model, else not measured;
- the simulations (``sim.json``, ``run.json``, ``lm-board.json``), one record per run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from spikelut.compiler.analysis.figures import device_memories
from spikelut.compiler.analysis.inputs import ReportError, ReportInputs
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.operations import lut_layer_operations
from spikelut.compiler.passes.widths import (
    DEFAULT_MAX_WIDTH,
    WidthError,
    rnn_widths,
    transformer_widths,
)

__all__ = ["collect_lm", "loss_figures", "memory_figures", "model_figures", "simulation_records"]


def collect_lm(inputs: ReportInputs) -> dict:
    """Every figure of a language model's report as a JSON-able dict (``None`` where data
    is missing)."""
    model = inputs.model
    assert isinstance(model, (IntegerRNN, IntegerTransformer))
    sims = simulation_records(inputs)
    r: dict[str, Any] = {
        "model": str(inputs.model_path),
        "model_kind": "language_model",
        "integer": True,
        "shape": model_figures(model),
        "memories": memory_figures(model, inputs.manifest, inputs.board),
        "losses": loss_figures(model, inputs.summary, sims),
        "simulations": sims,
        "manifest": inputs.manifest,
        "build": inputs.build,
        "board": inputs.board,
        "summary": inputs.summary,
        "files": [str(p) for p in inputs.files],
    }
    if inputs.manifest is not None:
        r["device_memories"] = device_memories(inputs.manifest)
    return r


def model_figures(model: IntegerRNN | IntegerTransformer) -> dict:
    """The shape of ``model``: ``kind`` ("rnn" or "transformer"), sizes, every LUT's
    tables, bits, shifts and (when they can be inferred) widths, and ``facts``: the
    model-wide figures as (label, value) rows."""
    if isinstance(model, IntegerTransformer):
        return _transformer_figures(model)
    meta = model.meta or {}
    w, width_error = _widths(model, rnn_widths)
    luts = []
    for name, lut, q in (
        ("cell", model.cell, model.cell_quant),
        ("unembedder", model.unembedder, model.unembedder_quant),
    ):
        d = {
            "lut": name,
            "in_dim": lut.in_dim,
            "out_dim": lut.out_dim,
            "n_tables": lut.n_tables,
            "n_c": lut.n_c,
            "rows_per_table": 1 << lut.n_c,
            "table_bits": q.table_bits,
            "in_shift": q.in_shift,
            "scale_log2": q.out_scale_log2,
            "comparisons": lut_layer_operations(lut, q.table_bits)["comparisons"],
            "table_memory_bits": lut.memory_bits(q.table_bits),
        }
        if w is not None:
            lw = getattr(w, name)
            d.update(
                in_width=lw.in_width,
                compare_width=lw.compare_width,
                acc_width=lw.acc_width,
                out_width=lw.out_width,
            )
        luts.append(d)
    training = meta.get("training") or {}
    state_width = None if w is None else w.state_width
    cell_acc_width = None if w is None else w.cell_acc_width
    return {
        "kind": "rnn",
        "facts": [
            ["vocabulary (V)", model.vocab],
            ["neurons (D)", model.dim],
            ["context (training windows)", model.context],
            ["embedding bits", model.embedding_bits],
            ["state width (bits)", state_width],
            ["state accumulator (bits)", cell_acc_width],
        ],
        "vocab": model.vocab,
        "dim": model.dim,
        "context": model.context,
        "embedding_bits": model.embedding_bits,
        "luts": luts,
        "state_width": state_width,
        "cell_acc_width": cell_acc_width,
        "width_error": width_error,
        "train_steps": training.get("step"),
    }


def memory_figures(
    model: IntegerRNN | IntegerTransformer, manifest: dict | None, board: dict | None
) -> list[dict]:
    """Per memory (embedding, then an RNN's cell or a transformer's attention heads and
    FFN per layer, then the unembedder): its shape, entry bits, memory bits, and its
    placement in the compiled core (``manifest``) and in the bitstream (``board``), each
    ``None`` when that input is missing."""
    if isinstance(model, IntegerTransformer):
        return _transformer_memories(model, manifest, board)
    compiled = _plan(manifest, "plan")
    built = _plan(board, "rnn_plan")
    rows = [
        {
            "memory": "embedding",
            "shape": f"{model.vocab} x {model.dim}",
            "entry_bits": model.embedding_bits,
            "memory_bits": model.embedding_memory_bits,
        }
    ]
    for name, lut, q in (
        ("cell", model.cell, model.cell_quant),
        ("unembedder", model.unembedder, model.unembedder_quant),
    ):
        rows.append(
            {
                "memory": name,
                "shape": f"{lut.n_tables} x {1 << lut.n_c} x {lut.out_dim}",
                "entry_bits": q.table_bits,
                "memory_bits": lut.memory_bits(q.table_bits),
            }
        )
    for row in rows:
        row["compiled"] = _placement(compiled, row["memory"])
        row["built"] = _placement(built, row["memory"])
    return rows


def _widths(model, infer) -> tuple[Any, str | None]:
    """``(widths, None)`` that ``infer`` finds for ``model`` at the maximum width its
    quantisation recorded, or ``(None, why not)``."""
    quant = (model.meta or {}).get("quantization") or {}
    try:
        return infer(model, max_width=quant.get("max_width") or DEFAULT_MAX_WIDTH), None
    except WidthError as e:
        return None, str(e)


def _transformer_figures(model: IntegerTransformer) -> dict:
    """:func:`model_figures` of a transformer: one row per attention layer (its heads'
    tables together), FFN and the unembedder; widths of the residual stream."""
    meta = model.meta or {}
    w, width_error = _widths(model, transformer_widths)
    n_layers, n_heads, n_t, n_c = model.attn_a.shape
    p = model.pe_bits.shape[4]
    scale = model.stream_scale_log2
    luts = []
    for k in range(n_layers):
        attn_bits = model.attn_tables[k].size * model.table_bits
        luts.append({
            "lut": f"attention {k} ({n_heads} heads)", "in_dim": model.dim, "out_dim": model.dim,
            "n_tables": n_heads * n_t, "n_c": n_c, "rows_per_table": model.attn_tables.shape[3],
            # a query's and a key's index per table and head: 2 N_C comparisons each
            "comparisons": 2 * n_heads * n_t * n_c, "table_bits": model.table_bits,
            "in_shift": 0, "scale_log2": scale, "table_memory_bits": attn_bits,
            "in_width": None if w is None else w.layer_in_widths[k],
        })  # fmt: skip
        ffn = LUTLayer(a=model.ffn_a[k], b=model.ffn_b[k], tables=model.ffn_tables[k],
                       in_dim=model.dim)  # fmt: skip
        luts.append(_lut_row(f"ffn {k}", ffn, model.table_bits, scale,
                             None if w is None else w.ffn_in_widths[k]))  # fmt: skip
    unemb = LUTLayer(a=model.unemb_a, b=model.unemb_b, tables=model.unemb_tables,
                     in_dim=model.dim)  # fmt: skip
    row = _lut_row("unembedder", unemb, model.unemb_bits, model.unemb_scale_log2, None)
    if w is not None:
        uw = w.unembedder
        row.update(in_width=uw.in_width, compare_width=uw.compare_width,
                   acc_width=uw.acc_width, out_width=uw.out_width)  # fmt: skip
    luts.append(row)
    for row in luts[:-1]:
        row.update(compare_width=row["in_width"],
                   acc_width=None if w is None else w.stream_acc_width,
                   out_width=None if w is None else w.stream_width)  # fmt: skip
    return {
        "kind": "transformer",
        "facts": [
            ["vocabulary (V)", model.vocab],
            ["residual stream (E)", model.dim],
            ["context (positions attended)", model.context],
            ["layers", n_layers],
            ["heads per layer", n_heads],
            ["positional bits per table (P)", p],
            ["embedding and table bits", model.table_bits],
            ["unembedder table bits", model.unemb_bits],
            ["stream width (bits)", None if w is None else w.stream_width],
            ["stream accumulator (bits)", None if w is None else w.stream_acc_width],
        ],
        "vocab": model.vocab,
        "dim": model.dim,
        "context": model.context,
        "layers": n_layers,
        "heads": n_heads,
        "embedding_bits": model.embedding_bits,
        "luts": luts,
        "state_width": None if w is None else w.stream_width,
        "width_error": width_error,
        "train_steps": (meta.get("training") or {}).get("step"),
    }


def _lut_row(name: str, lut: LUTLayer, bits: int, scale: int, in_width) -> dict:
    """A model table row of a transformer's FFN or unembedder (an ordinary LUT layer)."""
    return {
        "lut": name, "in_dim": lut.in_dim, "out_dim": lut.out_dim,
        "n_tables": lut.n_tables, "n_c": lut.n_c, "rows_per_table": 1 << lut.n_c,
        "comparisons": lut_layer_operations(lut, bits)["comparisons"], "table_bits": bits,
        "in_shift": 0, "scale_log2": scale, "table_memory_bits": lut.memory_bits(bits),
        "in_width": in_width,
    }  # fmt: skip


# the prefix of each memory's fields in a TransformerPlan (manifest "plan", board.json
# "transformer_plan")
_TRANSFORMER_PLAN_PREFIX = {"embedding": "embedding", "attention": "attn", "ffn": "ffn",
                            "unembedder": "unemb"}  # fmt: skip


def _transformer_memories(
    model: IntegerTransformer, manifest: dict | None, board: dict | None
) -> list[dict]:
    """:func:`memory_figures` of a transformer: the embedding, per layer its attention
    heads (one memory each) and FFN, the unembedder."""
    compiled = _plan(manifest, "plan")
    built = _plan(board, "transformer_plan")
    n_layers, n_heads, n_t, n_c = model.attn_a.shape
    rows_attn = model.attn_tables.shape[3]  # 2**(2 N_C + P)
    rows = [("embedding", "embedding", f"{model.vocab} x {model.dim}", model.table_bits,
             model.embedding_memory_bits)]  # fmt: skip
    for k in range(n_layers):
        rows += [
            (f"attention {k}.{h}", "attention", f"{n_t} x {rows_attn} x {model.dim}",
             model.table_bits, model.attn_tables[k, h].size * model.table_bits)
            for h in range(n_heads)
        ]  # fmt: skip
        rows.append((f"ffn {k}", "ffn", f"{n_t} x {1 << n_c} x {model.dim}", model.table_bits,
                     model.ffn_tables[k].size * model.table_bits))  # fmt: skip
    rows.append(("unembedder", "unembedder", f"{n_t} x {1 << n_c} x {model.vocab}",
                 model.unemb_bits, model.unemb_tables.size * model.unemb_bits))  # fmt: skip
    return [
        {
            "memory": name,
            "shape": shape,
            "entry_bits": bits,
            "memory_bits": int(mbits),
            "compiled": _transformer_placement(compiled, kind),
            "built": _transformer_placement(built, kind),
        }
        for name, kind, shape, bits, mbits in rows
    ]


def _transformer_placement(plan: dict | None, kind: str) -> dict | None:
    """``{"storage", "tables_per_cycle", "lanes"}`` of a kind of memory in a transformer
    plan (``None`` values: the planner's default for that memory)."""
    if plan is None:
        return None
    prefix = _TRANSFORMER_PLAN_PREFIX[kind]
    return {k: plan.get(f"{prefix}_{k}") for k in ("storage", "tables_per_cycle", "lanes")}


def _plan(figures: dict | None, key: str) -> dict | None:
    plan = (figures or {}).get(key)
    return plan if isinstance(plan, dict) else None


def _placement(plan: dict | None, memory: str) -> dict | None:
    """``{"storage", "tables_per_cycle", "lanes"}`` of ``memory`` in an RNN plan."""
    p = (plan or {}).get(memory)
    if not isinstance(p, dict):
        return None
    return {k: p.get(k) for k in ("storage", "tables_per_cycle", "lanes")}


def _number(v: Any) -> float | None:
    """``v`` when it is a finite number (not a bool), else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return v


def loss_figures(
    model: IntegerRNN | IntegerTransformer, summary: dict | None, sims: list[dict]
) -> dict:
    """The validation losses (nats per byte): float and integer as ``spikelut quantize``
    recorded them (a demo's ``summary.json`` otherwise), the hardware's, where they come
    from, and the uniform guess ``ln V`` for scale."""
    evaluation = ((model.meta or {}).get("quantization") or {}).get("evaluation") or {}
    source = "the model (spikelut quantize)"
    fl, il = _number(evaluation.get("float_val_loss")), _number(evaluation.get("int_val_loss"))
    if fl is None and il is None and summary:
        fl, il = _number(summary.get("float_val_loss")), _number(summary.get("int_val_loss"))
        source = "the demo's summary.json"
    out = {
        "float": fl,
        "integer": il,
        "source": source if fl is not None or il is not None else None,
        "data": evaluation.get("data"),
        "n_windows": evaluation.get("n_windows"),
        "uniform": math.log(model.vocab),
        "calibration": ((model.meta or {}).get("quantization") or {}).get(
            "calibration_loss_all_positions"
        ),
    }
    checked = sum(s["tokens"] or 0 for s in sims)
    mismatches = sum(s["mismatches"] for s in sims if s["mismatches"] is not None)
    verdict = {"tokens_checked": checked, "mismatches": mismatches, "runs": len(sims)}
    if sims and checked and mismatches == 0 and all(s["mismatches"] is not None for s in sims):
        verdict["hardware"] = il
        verdict["status"] = "equal"
    elif mismatches:
        verdict["hardware"] = None
        verdict["status"] = "mismatch"
    else:
        verdict["hardware"] = None
        verdict["status"] = "not measured"
    out.update(verdict)
    return out


# -- simulations ----------------------------------------------------------------------------

_SIM_KINDS = {
    "sim": "cocotb on Verilator, the core",
    "run": "the board's design over the simulated UART",
    "bench": "the board's design over the simulated UART",
}


def simulation_records(inputs: ReportInputs) -> list[dict]:
    """One record per simulated run in ``sim.json``, ``run.json`` and ``lm-board.json``:
    where it comes from, what ran, the rule, tokens checked, mismatches (bytes and logit
    chunks that differ from the golden model), cycles per token and tokens per second
    through the simulated UART at its baud rate. A file of no known shape is a
    :class:`~spikelut.compiler.analysis.inputs.ReportError`."""
    out = []
    for attr in ("sim", "run", "bench"):
        data, path = getattr(inputs, attr), getattr(inputs, f"{attr}_path")
        if data is None:
            continue
        runs = _runs(data)
        if not runs:
            raise ReportError(
                f"{path} is not a language model's simulation (spikelut sim LM --json, or "
                "bench/lm_board.py --json); remove it or give the model's directories only"
            )
        for rule, rec in runs:
            out.append(_record(attr, Path(path), rule, rec))
    return out


def _runs(data: dict) -> list[tuple[str, dict]]:
    """``(rule, run)`` of a simulation file: ``bench/lm_board.py``'s ``{"runs": {...}}``, a
    demo stage's ``{rule: run}``, or one run (``spikelut sim LM --json``)."""
    if isinstance(data.get("runs"), dict):
        data = data["runs"]
    elif _is_run(data):
        return [("run", data)]
    return [(str(k), v) for k, v in data.items() if isinstance(v, dict) and _is_run(v)]


def _is_run(d: dict) -> bool:
    return any(k in d for k in ("steps", "tokens", "n")) and ("mismatches" in d or "agree" in d)


def _rule(d: dict) -> str:
    t = _number(d.get("temperature"))
    return "greedy" if not t else f"sampled at {t:g}"


def _record(attr: str, path: Path, rule: str, rec: dict) -> dict:
    tokens = next(
        (rec[k] for k in ("steps", "tokens", "n") if _number(rec.get(k)) is not None), None
    )
    m = rec.get("mismatches")
    if _number(rec.get("agree")) is not None and tokens is not None:
        mismatches = int(tokens - rec["agree"])  # run.json lists the positions instead
    elif _number(m) is not None:
        mismatches = int(m) + int(_number(rec.get("logit_mismatches")) or 0)
    else:
        mismatches = None
    cycles = next(
        (
            rec[k]
            for k in ("cycles_per_token", "board_cycles_per_token", "core_cycles_per_token")
            if _number(rec.get(k)) is not None
        ),
        None,
    )
    what = _SIM_KINDS[attr]
    netlist = rec.get("netlist")
    if attr == "sim" and isinstance(netlist, dict):
        what = f"cocotb on Verilator, the {netlist.get('family', '?')} netlist"
    return {
        "file": str(path),
        "what": what,
        "rule": _rule(rec) if "temperature" in rec else rule,
        "tokens": tokens,
        "mismatches": mismatches,
        "cycles_per_token": cycles,
        "uart_tokens_per_second": _number(rec.get("sim_tokens_per_second")),
        "baud": _number(rec.get("sim_baud")),
    }
