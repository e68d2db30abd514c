"""Benchmark: train the default LUT transformer on a text and report speed and losses.

    python bench/train_lm.py --text FILE --steps N [--mode faithful|fast] [--seed S] [--json]

Trains the reference's default transformer (context 32, embedding 32, 6 layers, 4 heads,
N_T 16, N_C 6, P 4) for N steps with the reference's protocol and prints the training
speed (steps/s and samples/s over training time, validation excluded; one sample = one
window of 32 predictions), the CPU time per step, and the validation losses, which can be
set side by side with the reference's ``loss.csv`` on the same file. Each validation also
records the training time spent until then, so ``--val-every 1000`` shows how long a mode
takes to reach a loss. ``--mode fast`` trains with one worker per core (numba's thread
count; ``NUMBA_NUM_THREADS`` sets it).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time

import numba

from spikelut.compiler.frontend.text import load_text
from spikelut.compiler.train.lm import LMTrainConfig, new_model, train_lm


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--mode", choices=("faithful", "fast"), default="faithful")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--val-every", type=int, default=10_000)
    p.add_argument("--val-windows", type=int, default=10_000)
    p.add_argument("--csv", default=None, help="also write the validation curve here")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    data = load_text(args.text)
    model = new_model("transformer", args.seed)
    cfg = LMTrainConfig(
        steps=args.steps,
        mode=args.mode,
        seed=args.seed,
        val_every=args.val_every,
        val_windows=args.val_windows,
        log_every=min(1000, args.steps),
    )
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    result = train_lm(model, data, cfg, csv=args.csv)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    out = {
        "mode": args.mode,
        "workers": numba.get_num_threads() if args.mode == "fast" else 1,
        "seed": args.seed,
        "steps": result.steps_run,
        "train_seconds": round(result.train_seconds, 2),
        "val_seconds": round(result.val_seconds, 2),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "steps_per_s": round(result.steps_per_s, 3),
        "samples_per_s": round(result.steps_per_s, 3),
        "predictions_per_s": round(result.steps_per_s * model.context, 1),
        "max_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "val": [
            {"step": s, "loss": round(v, 6), "train_seconds": round(ts, 2)}
            for (s, v), ts in zip(result.val, result.val_train_seconds, strict=True)
        ],
    }
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        print(
            f"{out['steps']} steps ({args.mode}, seed {args.seed}): {out['steps_per_s']} steps/s, "
            f"{out['samples_per_s']} samples/s ({out['predictions_per_s']} predictions/s), "
            f"train {out['train_seconds']} s, validation {out['val_seconds']} s, "
            f"cpu {out['cpu_seconds']} s, max RSS {out['max_rss_gib']} GiB"
        )
        for v in out["val"]:
            print(
                f"  step {v['step']:>8} ({v['train_seconds']:>8.1f} s of training): "
                f"validation loss {v['loss']:.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
