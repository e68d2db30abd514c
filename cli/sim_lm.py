"""``spikelut sim LM``: a language model's core in cocotb, every chosen byte against the golden model.

The prompt is held-out text (the validation windows of the training text, ``--data``,
concatenated: ``--vectors`` bytes, default 256) or random bytes (``--dataset random``); the
core then generates ``--generate`` bytes (each fed back as the next token), greedy or
sampled at ``--temperature`` from its hardware random source (``--seed``). Every answer is
checked, and the logits of the first steps chunk by chunk. The core is, as for classifiers,
the one ``spikelut build --board BOARD`` puts in the bitstream (default icebreaker, or
ulx3s-85f with ``--netlist ecp5``: :func:`~spikelut.boards.lm_design.lm_board_fit`), the one
of an existing build (``--build DIR``), or the one ``spikelut compile --target`` writes.
A transformer's core is by default the one ``spikelut compile --target`` writes (default
ecp5-85: its block RAMs placed by
:func:`~spikelut.compiler.backend.compile_transformer.fit_transformer`), or with
``--board``/``--build`` the one of a board build, as for an RNN.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from spikelut.boards.lm_design import lm_board_fit, lm_plan_of_build, lm_selection
from spikelut.boards.platforms import board
from spikelut.cli import output
from spikelut.compiler.backend.compile_lm import plan_lm
from spikelut.compiler.backend.compile_transformer import TransformerPlan, fit_transformer
from spikelut.compiler.backend.sequence import RNNPlan
from spikelut.compiler.backend.targets import TARGETS, Target
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.text import load_text, text_fingerprint, training_split, windows
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.sim.lm_sim import simulate_lm
from spikelut.sim.transformer_sim import simulate_transformer

DEFAULT_PROMPT_BYTES = 256
DEFAULT_GENERATE = 1000
TRANSFORMER_TARGET = "ecp5-85"  # the device a transformer's default core is placed for


def _prompt(args: argparse.Namespace, model: IntegerRNN | IntegerTransformer) -> tuple[bytes, str]:
    """The prompt bytes and where they come from."""
    n = args.vectors or DEFAULT_PROMPT_BYTES
    if args.dataset == "random":
        rng = np.random.default_rng(args.seed)
        return bytes(rng.integers(0, model.vocab, n).tolist()), "random bytes"
    if not args.data:
        raise UserError(
            f"give {args.model}'s training text with --data FILE (its held-out windows are "
            "the prompt), or use --dataset random"
        )
    data = load_text(args.data)
    training = (model.meta or {}).get("training") or {}
    if training.get("text") and training["text"] != text_fingerprint(data):
        raise UserError(f"{args.data} is not the text {args.model} was trained on; give that text")
    val_starts, _ = training_split(model, data)
    if len(val_starts) == 0:
        raise UserError(f"{args.data} has no held-out windows for {args.model}")
    need = -(-n // model.context)
    held_out = windows(data, val_starts[:need], model.context).reshape(-1)[:n]
    return bytes(held_out.tolist()), f"{len(held_out)} held-out bytes of {args.data}"


def _lm_core(
    args: argparse.Namespace, model: IntegerRNN | IntegerTransformer
) -> tuple[RNNPlan | TransformerPlan, Target, str]:
    """The placement to simulate, its target and where it comes from (module docstring)."""
    is_tf = isinstance(model, IntegerTransformer)
    if is_tf and (args.netlist is not None or args.indexer not in ("auto", "parallel")):
        flag = "--netlist" if args.netlist is not None else f"--core {args.indexer}"
        raise UserError(
            f"{flag} does not apply to a transformer: its core has one kind, simulated as RTL"
        )
    if args.build is not None:
        if args.indexer != "auto":
            raise UserError("--build simulates the core the build chose; drop --core")
        path = Path(args.build) / "board.json"
        try:
            spec, plan = lm_plan_of_build(json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            raise UserError(f"cannot use {path}: {e}") from None
        if is_tf != isinstance(plan, TransformerPlan):
            raise UserError(f"{args.build} is the build of another kind of language model")
        return plan, spec.target, f"the core of the build in {args.build} ({spec.name})"
    if args.target is not None or (is_tf and args.board is None):
        target = TARGETS[args.target or TRANSFORMER_TARGET]
        if is_tf:
            plan = fit_transformer(model, target)[0]
        else:
            plan = plan_lm(model, target, kind=args.indexer).plan
        return plan, target, f"compile --target {target.name}"
    name = args.board or ("ulx3s-85f" if args.netlist == "ecp5" else "icebreaker")
    spec = board(name)
    kind = "auto" if is_tf else args.indexer
    return lm_board_fit(model, spec, kind=kind).plan, spec.target, f"build --board {name}"


def run_language_model(args: argparse.Namespace, model: IntegerRNN | IntegerTransformer) -> int:
    """Simulate a language model's core (RNN or transformer); 0 when every answer matches,
    1 otherwise."""
    if args.waves is not None:
        raise UserError("--waves applies to classifiers; drop it for a language model")
    if args.simulator != "verilator":
        raise UserError("a language model's core is simulated with --simulator verilator")
    is_rnn = isinstance(model, IntegerRNN)
    plan, target, core_of = _lm_core(args, model)
    if args.netlist and args.netlist != target.family:
        raise UserError(f"--netlist {args.netlist} does not match {target.name} ({target.family})")
    prompt, source = _prompt(args, model)
    selection = lm_selection(model, args.temperature, args.sample_seed)
    quiet = getattr(args, "json", False)
    try:
        if is_rnn:
            report = simulate_lm(
                model,
                prompt,
                args.generate,
                plan=plan,
                selection=selection,
                target=target,
                seed=args.seed,
                netlist=bool(args.netlist),
                progress=None if quiet else print,
            )
        else:
            report = simulate_transformer(
                model, prompt, args.generate, plan=plan, selection=selection, seed=args.seed
            )
    except ValueError as e:
        raise UserError(str(e)) from None
    result = {
        "model": str(args.model),
        "prompt_from": source,
        "prompt_bytes": len(prompt),
        "core_of": core_of,
        "plan": plan.to_json(),
        "temperature": args.temperature,
        **report.to_dict(),
    }
    output.emit(args, result, _human)
    return 1 if report.mismatches or report.logit_mismatches else 0


def _human(r: dict) -> str:
    sample = "greedy" if not r["temperature"] else f"sampled at temperature {r['temperature']:g}"
    design = f"{r['netlist']['family']} netlist" if r["netlist"] else "RTL"
    return "\n".join(
        [
            f"core                {r['kind']} language-model core of {r['core_of']}, {design}",
            f"prompt              {r['prompt_from']}",
            f"answers checked     {r['steps']} ({r['steps'] - r['prompt_bytes']} generated, "
            f"{sample})",
            f"mismatches          {r['mismatches']}"
            + (f" (first: {r['first_mismatch']})" if r["mismatches"] else ""),
            f"logit chunks        {r['logit_chunks_checked']} checked, "
            f"{r['logit_mismatches']} differ",
            f"cycles per token    {r['cycles_per_token']:.1f} generating "
            f"(tables {r['table_cycles_per_token']}), latency {r['latency_cycles']}",
            f"simulation speed    {r['cycles_per_second']:,.0f} cycles/s "
            f"({r['cycles_per_cpu_second']:,.0f} per CPU second)",
            f"generated           {r['generated'][:80]!r}",
        ]
    )
