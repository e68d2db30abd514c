"""Benchmark: the faithful engine on the C reference's own random numbers, curve for curve.

    python bench/reference_stream.py --text FILE --steps N [--seed S] [--val-every K] [--json]

Draws the validation windows, the initial model and every training window exactly as the
reference's ``main.c`` does after ``srand(S)`` (:mod:`spikelut.compiler.train.reference_stream`),
trains the default transformer in faithful mode and prints the validation losses. The
reference validates at multiples of 10,000 steps and then samples text, which consumes
random numbers: this script does the same at those steps, so its losses there can be set
beside the reference's ``loss.csv`` for the same seed, number for number. Extra validations
(``--val-every`` below 10,000) draw nothing and change nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from spikelut.compiler.frontend.text import load_text
from spikelut.compiler.train.lm import learning_rate
from spikelut.compiler.train.lm_engine import TransformerEngine
from spikelut.compiler.train.reference_stream import draw_train_start, reference_setup, skip_sample

REFERENCE_VAL_EVERY = 10_000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seed", type=int, default=1, help="the reference's srand() seed")
    p.add_argument("--val-every", type=int, default=REFERENCE_VAL_EVERY)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.steps < 1 or args.val_every < 1 or not 0 <= args.seed < 2**31:
        p.error("--steps and --val-every must be >= 1 and --seed in 0..2**31-1")
    data = load_text(args.text)
    model, split, rand = reference_setup(data, args.seed)
    engine = TransformerEngine(model)
    val: list[dict] = []
    cpu0 = time.process_time()
    t = 0
    while t < args.steps:
        nxt = min(args.steps, (t // args.val_every + 1) * args.val_every, t + 1000)
        steps = range(t + 1, nxt + 1)
        starts = np.array([draw_train_start(rand, split) for _ in steps], np.int64)
        lrs = np.array([learning_rate(k) for k in steps], np.float32)
        loss = engine.train(data, starts, lrs) / len(starts)
        t = nxt
        print(f"t={t} train loss {loss:.4f}", file=sys.stderr, flush=True)
        if t % args.val_every == 0 or t == args.steps:
            v = engine.validate(data, split.val_starts)
            val.append({"step": t, "loss": round(v, 6)})
            print(f"t={t} validation loss {v:.4f}", file=sys.stderr, flush=True)
        if t % REFERENCE_VAL_EVERY == 0:
            skip_sample(rand)
    out = {
        "seed": args.seed,
        "steps": t,
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "val": val,
    }
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        for v in val:
            print(f"step {v['step']:>7,}  validation loss {v['loss']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
