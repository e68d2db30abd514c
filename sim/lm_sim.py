"""Simulate a language-model core in cocotb against the integer golden model.

:func:`simulate_lm` builds the core of an integer RNN (:func:`spikelut.compiler.backend.sequence.rnn_core`
with a plan and a next-byte selection), writes what :mod:`spikelut.sim.tb_lm` reads
(:func:`write_lm_case`: the table loads, the prompt, the golden model's choice at every
step and the logit chunks of the first steps), runs it in Verilator (cached builds), or its
Yosys netlist with the vendor cell models, and returns an :class:`LMSimReport`. The prompt
runs under random stream gaps and stalls; then the core generates, each answer fed back as
the next token, and every generated token is checked.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from spikelut.compiler.backend.manifest import describe_shape
from spikelut.compiler.backend.sequence import RNNPlan, rnn_core
from spikelut.compiler.backend.targets import TARGETS, Target
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.golden import generate_rnn, rnn_choices
from spikelut.compiler.ir.integer_sequence import IntegerRNN
from spikelut.compiler.ir.selection import Selection
from spikelut.hdl.storage import Storage, bank_image
from spikelut.sim.cocotb_lib import pack_value
from spikelut.sim.cocotb_runner import run_cocotb
from spikelut.sim.netlist import CELL_MODEL_ARGS, synthesize

__all__ = [
    "LMSimReport",
    "lm_loads",
    "lm_sim_report",
    "logit_chunks",
    "run_lm_testbench",
    "simulate_lm",
    "tb_config",
    "write_lm_case",
]

TOPLEVEL = "spikelut_lm"
TEST_MODULE = "spikelut.sim.tb_lm"
PERIOD_NS = 10


@dataclass
class LMSimReport:
    """What one language-model simulation measured: ``steps`` answers checked (prompt and
    generation), ``mismatches`` (the first in ``first_mismatch``), the logit chunks checked
    and differing, the ``generated`` bytes, ``cycles_per_token`` while generating (at full
    rate), ``latency_cycles`` of the first token, simulated cycles per wall and CPU second,
    and for a netlist run the family and Yosys's cell counts."""

    steps: int
    mismatches: int
    first_mismatch: str
    logit_chunks_checked: int
    logit_mismatches: int
    generated: str
    cycles_per_token: float | None
    table_cycles_per_token: int
    latency_cycles: int | None
    cycles: int
    cycles_per_second: float
    cycles_per_cpu_second: float
    build_seconds: float
    build_cached: bool
    total_seconds: float
    kind: str
    netlist: dict | None = None

    def to_dict(self) -> dict:
        """JSON-able fields."""
        return asdict(self)


def _payloads(desc: dict, items) -> list[str]:
    return [format(pack_value(desc, item), "x") for item in items]


def _port_payload(core, name: str) -> dict:
    return describe_shape(core.signature.members[name].signature.members["payload"].shape)


def lm_loads(core, *, all_memories: bool) -> dict[str, list[dict]]:
    """Write-port payloads that load ``core``'s memories: those no bitstream initialises
    (SPRAM), or every one with ``all_memories``."""
    out = {}
    emb = core.embedding_image
    if all_memories or core.embedding_storage == Storage.SPRAM:
        out["w_embedding"] = [
            {"lane": 0, "addr": a, "data": emb[a].tolist()} for a in range(len(emb))
        ]
    for name, p in (("w_cell", core.cell), ("w_unembedder", core.unembedder)):
        if p.storage == Storage.LOGIC or not (all_memories or p.storage == Storage.SPRAM):
            continue
        img = bank_image(p.tables, tables_per_cycle=p.tables_per_cycle, lanes=p.lanes)
        out[name] = [
            {"lane": q, "addr": a, "data": img[q, a].tolist()}
            for q in range(img.shape[0])
            for a in range(img.shape[1])
        ]
    return out


def logit_chunks(logits: np.ndarray, lanes: int, count: int) -> list[dict]:
    """The unembedder's output beats for the first ``count`` steps of ``logits`` (steps x
    vocab): ``lanes`` values a beat, the last beat zero-padded and flagged ``last``."""
    vocab = logits.shape[1]
    beats = -(-vocab // lanes)
    padded = np.zeros((len(logits), beats * lanes), np.int64)
    padded[:, :vocab] = logits
    return [
        {"values": padded[t, b * lanes : (b + 1) * lanes].tolist(), "last": int(b == beats - 1)}
        for t in range(min(count, len(logits)))
        for b in range(beats)
    ]


def tb_config(
    core, vocab: int, prompt: bytes, generate: int, *, seed, gap_prob, stall_prob,
    check_logits, loads, timeout_cycles,
) -> dict:  # fmt: skip
    """The ``tb.json`` of :mod:`spikelut.sim.tb_lm` for ``core``."""
    return {
        "period_ns": PERIOD_NS,
        "seed": seed,
        "gap_prob": gap_prob,
        "stall_prob": stall_prob,
        "max_gap": 3,
        "max_stall": 3,
        "loads": loads,
        "write_ports": [n for n in core.signature.members if n.startswith(("w_", "cfg_"))],
        "tokens": list(prompt),
        "token_bits": (vocab - 1).bit_length(),
        "generate": generate,
        "check_logits": check_logits,
        "timeout_cycles": timeout_cycles,
    }


def write_lm_case(
    case_dir,
    core,
    model: IntegerRNN,
    prompt,
    generate: int,
    selection: Selection,
    *,
    seed: int = 0,
    gap_prob: float = 0.2,
    stall_prob: float = 0.2,
    check_logits: int = 64,
    load_all: bool = False,
) -> bytes:
    """Write the files :mod:`spikelut.sim.tb_lm` reads; returns the golden generation."""
    case = Path(case_dir)
    case.mkdir(parents=True, exist_ok=True)
    prompt = bytes(prompt)
    generated = generate_rnn(model, prompt, generate + 1, selection)
    fed = prompt + generated[:generate]
    logits, choices = rnn_choices(model, np.frombuffer(fed, np.uint8), selection)
    assert bytes(choices[len(prompt) - 1 :].tolist()) == generated  # the two golden views agree
    chunk_desc = _port_payload(core, "o_logits")
    chunks = logit_chunks(logits, core.unembedder.lanes, check_logits)
    loads = {
        name: _payloads(_port_payload(core, name), items)
        for name, items in lm_loads(core, all_memories=load_all).items()
    }
    steps = len(fed)
    per_token = core.table_cycles_per_token * 4 + 8 * model.vocab + 200
    cfg = tb_config(
        core,
        model.vocab,
        prompt,
        generate,
        seed=seed,
        gap_prob=gap_prob,
        stall_prob=stall_prob,
        check_logits=check_logits,
        loads=loads,
        timeout_cycles=steps * per_token + 20 * sum(len(v) for v in loads.values()) + 10_000,
    )
    write_text_atomic(case / "tb.json", json.dumps(cfg))
    expected = {"choices": choices.tolist(), "logit_chunks": _payloads(chunk_desc, chunks)}
    write_text_atomic(case / "expected.json", json.dumps(expected))
    (case / "results.json").unlink(missing_ok=True)
    return generated[:generate]


def run_lm_testbench(design, case: Path, *, build_dir, seed: int, libraries=()):
    """Run the language-model testbench (:mod:`spikelut.sim.tb_lm`) on ``design`` with the
    case files in ``case``: ``(cocotb result, results.json as a dict)``; RuntimeError with
    the log's tail when the testbench did not finish."""
    res = run_cocotb(
        design,
        toplevel=TOPLEVEL,
        test_module=TEST_MODULE,
        build_dir=build_dir,
        test_dir=case / "run",
        env={"SPIKELUT_TB_DIR": str(case.resolve())},
        seed=seed,
        check=False,
        public="ports",
        libraries=libraries,
        build_args=list(CELL_MODEL_ARGS) if libraries else None,
    )
    path = case / "results.json"
    if not path.exists():
        log = case / "run" / "sim.log"
        tail = "\n".join(log.read_text().splitlines()[-20:]) if log.exists() else "(no log)"
        raise RuntimeError(f"the testbench did not finish (hang or crash):\n{tail}")
    return res, json.loads(path.read_text())


def lm_sim_report(
    r: dict, res, generated: bytes, *, table_cycles_per_token: int, started: float, **extra
) -> LMSimReport:
    """The :class:`LMSimReport` of one testbench run: ``r`` its results.json, ``res`` the
    cocotb result, ``generated`` the golden model's bytes, ``started`` the run's
    ``perf_counter`` start; ``extra`` the remaining fields (kind, netlist)."""
    wall = r["wall_seconds"]
    return LMSimReport(
        steps=r["checked"],
        mismatches=r["mismatches"],
        first_mismatch=r["first_mismatch"],
        logit_chunks_checked=r["logit_chunks_checked"],
        logit_mismatches=r["logit_mismatches"],
        generated=generated.decode("latin-1"),
        cycles_per_token=r["cycles_per_token"],
        table_cycles_per_token=table_cycles_per_token,
        latency_cycles=r["latency_cycles"],
        cycles=r["cycles"],
        cycles_per_second=r["cycles"] / wall if wall > 0 else 0.0,
        cycles_per_cpu_second=r["cycles"] / r["cpu_seconds"] if r["cpu_seconds"] > 0 else 0.0,
        build_seconds=res.build_seconds,
        build_cached=res.cached,
        total_seconds=time.perf_counter() - started,
        **extra,
    )


def simulate_lm(
    model: IntegerRNN,
    prompt,
    generate: int,
    *,
    plan: RNNPlan | None = None,
    selection: Selection | None = None,
    target: Target = TARGETS["ice40-up5k"],
    seed: int = 0,
    gap_prob: float = 0.2,
    stall_prob: float = 0.2,
    check_logits: int = 64,
    load_all: bool = False,
    netlist: bool = False,
    build_dir=None,
    work_dir=None,
    progress=None,
) -> LMSimReport:
    """Run ``model``'s core on ``prompt`` (bytes, at least one) and let it generate
    ``generate`` tokens; every answer is checked against the golden model (see the module
    docstring). ``plan``/``selection``: the core's placement and rule (defaults: parallel in
    block RAM, greedy); ``target``: the platform the core is converted for (SPRAM on an
    UltraPlus) and, with ``netlist``, synthesised for; ``check_logits``: steps whose logits
    are compared chunk by chunk. ValueError for bad input."""
    if not isinstance(model, IntegerRNN):
        raise ValueError("simulation needs a quantised RNN; run spikelut quantize first")
    prompt = bytes(prompt)
    if not prompt or generate < 0:
        raise ValueError("simulation needs a prompt of at least one byte and generate >= 0")
    plan, selection = plan or RNNPlan(), selection or Selection()
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    core = rnn_core(model, plan, selection)
    tmp = None
    if work_dir is None:
        tmp = work_dir = tempfile.mkdtemp(prefix="spikelut-lm-")
    try:
        case = Path(work_dir)
        gen = write_lm_case(
            case,
            core,
            model,
            prompt,
            generate,
            selection,
            seed=seed,
            gap_prob=gap_prob,
            stall_prob=stall_prob,
            check_logits=check_logits,
            load_all=load_all,
        )
        design, libraries, synth = core, (), None
        if netlist:
            say(f"sim: synthesising the language-model core for {target.family} with Yosys")
            synth = synthesize(core, target, case / "netlist", top=TOPLEVEL)
            design, libraries = synth.path, synth.libraries
        say(f"sim: verilator, {len(prompt)} prompt tokens and {generate} generated")
        res, r = run_lm_testbench(design, case, build_dir=build_dir, seed=seed, libraries=libraries)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return lm_sim_report(
        r,
        res,
        gen,
        table_cycles_per_token=core.table_cycles_per_token,
        started=t0,
        kind=plan.kind.value,
        netlist=None
        if synth is None
        else {"family": synth.family, "cells": synth.cells, "synth_seconds": synth.synth_seconds},
    )
