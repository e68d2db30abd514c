"""A language model on the complete simulated board: thousands of tokens over the UART, checked.

Builds the design ``spikelut build MODEL --board BOARD`` would put in the bitstream (the RNN
core placed for area), simulates it in Verilator with real UART bit timing
(:func:`spikelut.sim.board_sim.run_lm_board_sim`: 100 MHz, 6.25 Mbaud), and generates
``--tokens`` after a prompt, greedy and sampled, every byte checked against
:func:`~spikelut.compiler.ir.golden.generate_rnn` by the host runtime. Reports per rule: the
tokens, mismatches, requests, the board's cycles per token (its cycle counter), tokens per
second through the simulated UART, and what the same cycles per token give at the board's
clock and through its UART at 115,200 baud.

Usage (the simulation runs Verilator: hold the shared lock)::

    flock /tmp/spikelut-heavy.lock .venv/bin/python bench/lm_board.py /tmp/lmi.lutnet \\
        --tokens 2000 --json /tmp/lm-board.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from spikelut.boards.build import DEFAULT_BAUD, uart_tokens_per_second
from spikelut.boards.lm_design import lm_board_fit, lm_selection
from spikelut.boards.platforms import board
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.modelfile import load_model
from spikelut.sim.board_sim import run_lm_board_sim

PROMPT = b"import os\nimport sys\n\n\ndef main(argv=None):\n    "


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="integer spiking RNN (.lutnet)")
    ap.add_argument("--board", default="icebreaker")
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--temperature", type=float, default=0.4)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    spec = board(args.board)
    fit = lm_board_fit(model, spec)
    print(f"{spec.name}: plan {fit.plan.to_json()}, estimate {fit.estimate}", flush=True)
    runs = {}
    for name, temperature, tables in (
        ("greedy", 0.0, "flash"),
        ("sampled", args.temperature, "link"),
    ):
        selection = lm_selection(model, temperature, args.seed)
        t0 = time.perf_counter()
        r = run_lm_board_sim(
            model, PROMPT, args.tokens, selection, spec=spec, tables=tables, plan=fit.plan,
            chunk=args.chunk, progress=lambda msg: print(msg, flush=True),
        )  # fmt: skip
        cycles = r["core_cycles_per_token"]
        figures = {
            "tables": tables,
            "temperature": temperature,
            "tokens": r["n"],
            "agree": r["agree"],
            "mismatches": r["n"] - r["agree"],
            "requests": r["requests"],
            "tokens_fed": r["tokens_fed"],
            "board_cycles_per_token": cycles,
            "sim_tokens_per_second": r["sim_tokens_per_second"],
            "sim_baud": r["sim_baud"],
            "tokens_per_second_at_board_clock": spec.clock_hz / cycles,
            "uart_tokens_per_second_115200": uart_tokens_per_second(
                DEFAULT_BAUD, args.chunk, cycles, spec.clock_hz
            ),
            "wall_seconds": round(time.perf_counter() - t0, 1),
            "text": (PROMPT + r["generated"].encode("latin-1")).decode("utf-8", "replace"),
        }
        runs[name] = figures
        print(json.dumps({k: v for k, v in figures.items() if k != "text"}), flush=True)
        print(figures["text"][:600], flush=True)
    out = {"model": args.model, "board": spec.name, "plan": fit.plan.to_json(), "runs": runs}
    if args.json:
        write_text_atomic(args.json, json.dumps(out, indent=1))
    return 0 if all(r["mismatches"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
