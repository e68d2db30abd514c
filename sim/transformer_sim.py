"""Simulate a transformer core in cocotb (Verilator) against the integer golden model.

:func:`simulate_transformer` builds the core of an integer transformer
(:func:`spikelut.compiler.backend.compile_transformer.transformer_core`), writes what the
language-model testbench :mod:`spikelut.sim.tb_lm` reads (the prompt, the golden model's
choice at every step from :func:`spikelut.compiler.ir.golden.transformer_choices`, the
logit chunks of the first steps), runs it and returns the
:class:`~spikelut.sim.lm_sim.LMSimReport` of the RNN's path. The prompt runs under random
stream gaps and stalls, then the core generates, each answer fed back as the next token;
every answer is checked. Tables are initialised in block RAM (nothing to load).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from spikelut.compiler.backend.compile_transformer import TransformerPlan, transformer_core
from spikelut.compiler.backend.manifest import describe_shape
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.golden import generate_transformer, transformer_choices
from spikelut.compiler.ir.integer_sequence import IntegerTransformer
from spikelut.compiler.ir.selection import Selection
from spikelut.sim.cocotb_lib import pack_value
from spikelut.sim.lm_sim import (
    LMSimReport,
    lm_sim_report,
    logit_chunks,
    run_lm_testbench,
    tb_config,
)

__all__ = ["simulate_transformer", "write_transformer_case"]


def _hex(core, port: str, items) -> list[str]:
    desc = describe_shape(core.signature.members[port].signature.members["payload"].shape)
    return [format(pack_value(desc, item), "x") for item in items]


def write_transformer_case(
    case_dir,
    core,
    model: IntegerTransformer,
    prompt,
    generate: int,
    selection: Selection,
    *,
    seed: int = 0,
    gap_prob: float = 0.2,
    stall_prob: float = 0.2,
    check_logits: int = 64,
) -> bytes:
    """Write the files :mod:`spikelut.sim.tb_lm` reads; returns the golden generation."""
    case = Path(case_dir)
    case.mkdir(parents=True, exist_ok=True)
    prompt = bytes(prompt)
    generated = generate_transformer(model, prompt, generate + 1, selection)
    fed = prompt + generated[:generate]
    logits, choices = transformer_choices(model, np.frombuffer(fed, np.uint8), selection)
    assert bytes(choices[len(prompt) - 1 :].tolist()) == generated  # the two golden views agree
    chunks = logit_chunks(logits, core.unembedder.lanes, check_logits)
    per_token = 4 * max(core.table_cycles(q) for q in range(model.context)) + 8 * model.vocab
    cfg = tb_config(
        core,
        model.vocab,
        prompt,
        generate,
        seed=seed,
        gap_prob=gap_prob,
        stall_prob=stall_prob,
        check_logits=check_logits,
        loads={},
        timeout_cycles=len(fed) * (per_token + 200) + 10_000,
    )
    write_text_atomic(case / "tb.json", json.dumps(cfg))
    expected = {"choices": choices.tolist(), "logit_chunks": _hex(core, "o_logits", chunks)}
    write_text_atomic(case / "expected.json", json.dumps(expected))
    (case / "results.json").unlink(missing_ok=True)
    return generated[:generate]


def simulate_transformer(
    model: IntegerTransformer,
    prompt,
    generate: int,
    *,
    plan: TransformerPlan | None = None,
    selection: Selection | None = None,
    seed: int = 0,
    gap_prob: float = 0.2,
    stall_prob: float = 0.2,
    check_logits: int = 64,
    build_dir=None,
    work_dir=None,
) -> LMSimReport:
    """Run ``model``'s core on ``prompt`` (at least one token) and let it generate
    ``generate`` tokens, every answer checked against the golden model (see the module
    docstring); ``plan``/``selection``: the core's placement and rule (default: block RAM,
    greedy). ValueError for bad input."""
    if not isinstance(model, IntegerTransformer):
        raise ValueError("simulation needs a quantised transformer; run spikelut quantize first")
    prompt = bytes(prompt)
    if not prompt or generate < 0:
        raise ValueError("simulation needs a prompt of at least one byte and generate >= 0")
    if max(prompt) >= model.vocab:
        raise ValueError(f"prompt tokens must be below the vocabulary's {model.vocab}")
    selection = selection or Selection()
    t0 = time.perf_counter()
    core = transformer_core(model, plan, selection)
    tmp = None
    if work_dir is None:
        tmp = work_dir = tempfile.mkdtemp(prefix="spikelut-tf-")
    try:
        case = Path(work_dir)
        gen = write_transformer_case(
            case, core, model, prompt, generate, selection, seed=seed, gap_prob=gap_prob,
            stall_prob=stall_prob, check_logits=check_logits,
        )  # fmt: skip
        res, r = run_lm_testbench(core, case, build_dir=build_dir, seed=seed)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return lm_sim_report(
        r,
        res,
        gen,
        table_cycles_per_token=round(core.window_table_cycles),
        started=t0,
        kind="parallel",
    )
