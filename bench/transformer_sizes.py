"""Benchmark: which LUT-transformer shapes fit the ECP5-85, and their validation losses.

    python bench/transformer_sizes.py --text CORPUS [--config C/E/L/H/NT/NC/P/B ...]
                                      [--steps N] [--out DIR] [--target ecp5-85] [--json]

Each configuration (context C, embedding E, L layers of H heads, N_T attention and FFN
tables of N_C comparisons, N_PE positional bits P, B-bit tables) goes through the real
commands, as a user would run them: ``spikelut train lm --arch transformer`` (``--steps``,
10,000 held-out validation windows), ``spikelut quantize --bits B`` (float and integer
validation loss on the same 10,000 windows) and ``spikelut compile --target TARGET`` (block
RAMs of the placement, cycles per token against the tables' floor). A shape whose core does
not fit is reported with the block RAMs it needs (the compile's one-line refusal). The
model files stay in ``--out`` (default ``transformer-sizes``); a configuration whose
integer model is already there is not trained again.

Without ``--config`` it runs the candidates of issue #15 (all fit the ECP5-85's 208 block
RAMs as placed by ``compile``). Training runs one thread (``--mode faithful``): on a busy
machine the losses are the same, only slower.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SPIKELUT = [sys.executable, "-m", "spikelut.cli.main"]

CANDIDATES = (
    "32/32/1/2/16/3/2/6",
    "32/32/2/1/16/3/2/6",
    "32/32/2/2/8/3/2/6",
    "32/32/1/4/8/3/2/6",
    "32/32/1/1/16/4/1/6",
    "32/32/2/2/16/3/1/6",
)
FIELDS = ("context", "dim", "layers", "heads", "n_tables", "n_c", "n_pe", "bits")


def parse_config(text: str) -> dict:
    """``C/E/L/H/NT/NC/P/B`` as a dict of FIELDS."""
    parts = text.split("/")
    if len(parts) != len(FIELDS) or not all(p.isdigit() for p in parts):
        raise SystemExit(f"--config {text!r}: give C/E/L/H/NT/NC/P/B, e.g. {CANDIDATES[0]}")
    return dict(zip(FIELDS, map(int, parts), strict=True))


def _run(cmd: list[str]) -> dict:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(res.stdout)


def measure(cfg: dict, text: str, steps: int, out: Path, target: str) -> dict:
    """Train, quantise and compile one configuration; its figures."""
    name = "tf-" + "-".join(str(cfg[f]) for f in FIELDS) + f"-s{steps}"
    float_path, int_path = out / f"{name}.lutnet", out / f"{name}-int.lutnet"
    row = {"config": "/".join(str(cfg[f]) for f in FIELDS), **cfg, "steps": steps}
    if not int_path.exists():
        trained = _run([
            *SPIKELUT, "train", "lm", "--text", text, "--arch", "transformer",
            "--steps", str(steps), "--val-every", str(steps), "--val-windows", "10000",
            "--log-every", str(steps), "--sample-bytes", "0", "-o", str(float_path),
            "--context", str(cfg["context"]), "--dim", str(cfg["dim"]),
            "--layers", str(cfg["layers"]), "--heads", str(cfg["heads"]),
            "--n-tables", str(cfg["n_tables"]), "--n-c", str(cfg["n_c"]),
            "--n-pe", str(cfg["n_pe"]), "--json",
        ])  # fmt: skip
        if "error" in trained:
            return {**row, **trained}
        row["train_seconds"] = trained["train_seconds"]
        quant = _run([
            *SPIKELUT, "quantize", str(float_path), "-o", str(int_path), "--bits",
            str(cfg["bits"]), "--data", text, "--val-windows", "10000", "--json",
        ])  # fmt: skip
        if "error" in quant:
            return {**row, **quant}
        (out / f"{name}-quantize.json").write_text(json.dumps(quant))
    quant = json.loads((out / f"{name}-quantize.json").read_text())
    row.update(float_val_loss=quant["float_val_loss"], int_val_loss=quant["int_val_loss"],
               table_memory_bits=quant["table_memory_bits"])  # fmt: skip
    core = _run([*SPIKELUT, "compile", str(int_path), "--target", target, "-o",
                 str(out / f"{name}-core"), "--json"])  # fmt: skip
    if "error" in core:
        return {**row, "fits": False, "reason": core["error"]}
    row.update(fits=True, block_rams=core["block_rams"], cycles=core["cycles_per_token"],
               floor=core["table_cycles_per_token"])  # fmt: skip
    return row


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", required=True, help="training text (.gz allowed)")
    ap.add_argument("--config", action="append", default=None, help="C/E/L/H/NT/NC/P/B")
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--out", type=Path, default=Path("transformer-sizes"))
    ap.add_argument("--target", default="ecp5-85")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for text in args.config or CANDIDATES:
        rows.append(measure(parse_config(text), args.text, args.steps, args.out, args.target))
        if not args.json:
            r = rows[-1]
            print(
                f"{r['config']:<22} steps {r['steps']:>7}  float {_fmt(r.get('float_val_loss'), '.4f')}"
                f"  int {_fmt(r.get('int_val_loss'), '.4f')}  tables "
                f"{_fmt(r.get('table_memory_bits'), ',')} bits  "
                + (
                    f"{r['block_rams']} BRAM, {r['cycles']:g} cycles/token (floor {r['floor']:g})"
                    if r.get("fits")
                    else r.get("reason") or r.get("error", "")
                ),
                flush=True,
            )
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
