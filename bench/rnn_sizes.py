"""Benchmark: which byte-level spiking-RNN shapes fit the iCE40 UP5K and the ECP5-85, and
their validation losses.

    python bench/rnn_sizes.py [MODEL_INT.lutnet ...] [--config D/NTxNC/NTUxNCU/B ...]
                              [--grid] [--fits TARGET] [--json]

For every configuration (hidden size D; the cell's N_T tables of N_C comparisons; the
unembedder's N_TU tables of N_CU comparisons; table bits B, the embedding's too) the three
memories the core reads are placed on each target:

- the embedding, V x D values of B bits: one lane memory of ``ceil(D / L)`` x 256 words of
  ``L * B`` bits;
- the cell, N_T x 2^N_C rows x D outputs, and the unembedder, N_TU x 2^N_CU rows x 256
  outputs, of B bits: a bank of ``P`` lanes of ``L`` values a word, ``G = ceil(N_T / P)``
  groups, ``ceil(Y / L)`` beats, ``G * ceil(Y / L) * 2^N_C`` words a lane
  (:func:`~spikelut.compiler.backend.placement.bank_blocks`).

Each memory goes to block RAM (best aspect ratio per lane,
:func:`~spikelut.compiler.backend.placement.lane_blocks`) or, on the UP5K, to SPRAM
(``ceil(L * B / 16)`` SB_SPRAM256KA side by side, at most 16,384 words deep). Every ``P``
and ``L`` is tried (at most ``--max-read`` table entries read a clock per LUT, since each
costs adders). The leanest placement (the least fill: the larger of the fractions of the
block RAMs and SPRAMs used) says whether and how well a configuration fits; the table
cycles per token (cell and unembedder) of the leanest and of the fastest placement that fits
are shown beside it. The budget is the target's memories less ``--reserve`` block RAMs for
the host link and the core's small memories (anchor ROMs, chunk accumulators, logit store,
exponential table).

Integer model files (``spikelut quantize`` output) add their figures: the float and integer
validation loss the quantiser measured (10,000 held-out windows), the training steps, and
the repository's board placement of the whole core (as
:func:`spikelut.boards.lm_design.lm_board_fit`: fewest estimated logic cells, serial or
parallel, every memory of the core counted, the host link's block RAMs kept) with its logic
estimate against the cells the core may take (``--core-cells``; 2,500 on the UP5K).
``--synth`` synthesises each model file's core as the iCEBreaker build places it (Yosys
``synth_ice40 -dsp``, then ``nextpnr-ice40 --pack-only``) and prints the logic cells beside
the estimate: the measurement :data:`~spikelut.compiler.backend.estimate.RNN_CALIBRATION`
records (run it under ``flock /tmp/spikelut-heavy.lock``).
``--config`` adds shapes without models, ``--grid`` the sweep of issue #14
(D 24/32/48, N_T 8/16/32 x N_C 4/6, N_TU 4/8/16 x N_CU 4/5/6, B 6/8); ``--fits TARGET``
keeps the configurations that fit that target. ``B`` may be ``Bc,Bu`` (the cell and
embedding at ``Bc`` bits, the unembedder at ``Bu``) to see what per-LUT table bits would
save.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import asdict, dataclass

from spikelut.compiler.backend.placement import bank_blocks, lane_blocks
from spikelut.compiler.backend.targets import TARGETS, Target
from spikelut.hdl.spram import SPRAM_DEPTH, SPRAM_WIDTH
from spikelut.hdl.storage import Storage

VOCAB = 256
TARGET_NAMES = ("ice40-up5k", "ecp5-85")
UP5K_CORE_CELLS = 2500  # of 5,280: what the host link, sampler and board top leave
MAX_READ = {"ice40-up5k": 16, "ecp5-85": 256}
GRID = {
    "dim": (24, 32, 48),
    "cell": tuple(itertools.product((8, 16, 32), (4, 6))),
    "unembedder": tuple(itertools.product((4, 8, 16), (4, 5, 6))),
    "bits": (6, 8),
}


@dataclass(frozen=True)
class Config:
    """One RNN shape and its table bits (embedding and cell ``bits``, unembedder
    ``unembed_bits``)."""

    dim: int
    n_tables: int
    n_c: int
    unembed_tables: int
    unembed_n_c: int
    bits: int
    unembed_bits: int

    @property
    def name(self) -> str:
        b = str(self.bits) if self.bits == self.unembed_bits else f"{self.bits},{self.unembed_bits}"
        return f"{self.dim}/{self.n_tables}x{self.n_c}/{self.unembed_tables}x{self.unembed_n_c}/{b}"

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return (self.dim, self.n_tables, self.n_c, self.unembed_tables, self.unembed_n_c)

    def memory_bits(self) -> dict[str, int]:
        """Bits of the three memories, as stored values (no packing losses)."""
        return {
            "embedding": VOCAB * self.dim * self.bits,
            "cell": (self.n_tables << self.n_c) * self.dim * self.bits,
            "unembedder": (self.unembed_tables << self.unembed_n_c) * VOCAB * self.unembed_bits,
        }

    @classmethod
    def parse(cls, text: str) -> Config:
        """``D/NTxNC/NTUxNCU/B`` or ``.../Bc,Bu``."""
        try:
            d, cell, unemb, bits = text.split("/")
            nt, nc = (int(v) for v in cell.split("x"))
            ntu, ncu = (int(v) for v in unemb.split("x"))
            b = [int(v) for v in bits.split(",")]
            if len(b) not in (1, 2):
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: write D/NTxNC/NTUxNCU/B, e.g. 32/16x6/8x5/8 (or B as Bc,Bu)"
            ) from None
        return cls(int(d), nt, nc, ntu, ncu, b[0], b[-1])


# -- placement -----------------------------------------------------------------------------


def _storages(target: Target) -> tuple[Storage, ...]:
    return (Storage.BRAM, Storage.SPRAM) if target.sprams else (Storage.BRAM,)


def _pareto(points: list[tuple]) -> list[tuple]:
    """Points ``(cycles, brams, sprams, ...)`` that no other point beats on all three."""
    out = []
    for p in sorted(points, key=lambda q: q[:3]):
        if not any(o[0] <= p[0] and o[1] <= p[1] and o[2] <= p[2] for o in out):
            out.append(p)
    return out


def lut_options(n_tables, n_c, out_dim, bits, target: Target, max_read: int) -> list[tuple]:
    """The Pareto front of ``(cycles, brams, sprams, (storage, P, L))`` of one LUT's bank."""
    points = []
    for storage in _storages(target):
        for p in range(1, n_tables + 1):
            groups = -(-n_tables // p)
            for lanes in range(1, min(out_dim, max_read // p) + 1):
                beats = -(-out_dim // lanes)
                if storage == Storage.SPRAM and groups * beats << n_c > SPRAM_DEPTH:
                    continue
                brams, sprams = bank_blocks(
                    n_tables, n_c, out_dim, bits, p, lanes, storage, target.family
                )
                points.append((groups * beats, brams, sprams, (storage.name.lower(), p, lanes)))
    return _pareto(points)


def embedding_options(dim: int, bits: int, target: Target) -> list[tuple]:
    """The Pareto front of ``(beats, brams, sprams, (storage, 1, L))`` of the embedding."""
    points = []
    for storage in _storages(target):
        for lanes in range(1, dim + 1):
            beats = -(-dim // lanes)
            depth, word = beats * VOCAB, lanes * bits
            if storage == Storage.BRAM:
                cost = (lane_blocks(word, depth, target.family), 0)
            elif depth <= SPRAM_DEPTH:
                cost = (0, -(-word // SPRAM_WIDTH))
            else:
                continue
            points.append((beats, *cost, (storage.name.lower(), 1, lanes)))
    return _pareto(points)


def place(cfg: Config, target: Target, reserve: int, max_read: int) -> dict:
    """Two placements of ``cfg``'s three memories on ``target`` (its memories less ``reserve``
    block RAMs): the leanest (the least fill, the larger of the fractions of block RAMs and
    SPRAMs used; then the least sum of the two; then fewest table cycles), which says
    whether and how well it fits, and the
    fastest that fits (fewest table cycles per token for the cell and unembedder; then
    fewest memories)."""
    budget = target.block_rams - reserve
    emb = embedding_options(cfg.dim, cfg.bits, target)
    cell = lut_options(cfg.n_tables, cfg.n_c, cfg.dim, cfg.bits, target, max_read)
    unemb = lut_options(
        cfg.unembed_tables, cfg.unembed_n_c, VOCAB, cfg.unembed_bits, target, max_read
    )
    lean = fast = None
    for e, c, u in itertools.product(emb, cell, unemb):
        brams, sprams = e[1] + c[1] + u[1], e[2] + c[2] + u[2]
        cycles = c[0] + u[0]
        fill = max(brams / budget, sprams / target.sprams if target.sprams else 2 * sprams)
        total = brams / budget + (sprams / target.sprams if target.sprams else 0)
        item = (brams, sprams, cycles, e[3], c[3], u[3])
        if lean is None or (fill, total, cycles) < lean[0]:
            lean = ((fill, total, cycles), item)
        if fill <= 1 and (fast is None or (cycles, brams + sprams) < fast[0]):
            fast = ((cycles, brams + sprams), item)
    return {
        "budget_block_rams": budget,
        "sprams_available": target.sprams,
        "fits": lean[0][0] <= 1,
        "fill": round(lean[0][0], 4),
        "leanest": _placement(lean[1]),
        "fastest": None if fast is None else _placement(fast[1]),
    }


def _placement(item: tuple) -> dict:
    brams, sprams, cycles, e, c, u = item
    return {
        "block_rams": brams,
        "sprams": sprams,
        "table_cycles_per_token": cycles,
        "placement": {
            name: {"storage": s, "tables_per_cycle": p, "lanes": lanes}
            for name, (s, p, lanes) in (("embedding", e), ("cell", c), ("unembedder", u))
        },
    }


# -- model files ---------------------------------------------------------------------------


def model_figures(path: str, core_cells: dict[str, int]) -> tuple[Config, dict]:
    """The configuration of an integer RNN file and its figures: the quantiser's float and
    integer validation loss, the training steps, and the repository's placement of the core
    on each target (:func:`~spikelut.compiler.backend.sequence.fit_rnn`)."""
    from spikelut.cli.common import load_model_file
    from spikelut.compiler.ir.integer_sequence import IntegerRNN

    model = load_model_file(path)
    if not isinstance(model, IntegerRNN):
        raise SystemExit(f"{path}: not an integer RNN (quantise it with spikelut quantize)")
    cfg = Config(
        model.dim,
        model.cell.n_tables,
        model.cell.n_c,
        model.unembedder.n_tables,
        model.unembedder.n_c,
        model.cell_quant.table_bits,
        model.unembedder_quant.table_bits,
    )
    ev = model.meta.get("quantization", {}).get("evaluation", {})
    training = model.meta.get("training", {})
    figures = {
        "file": path,
        "steps": training.get("step"),
        "val_windows": ev.get("n_windows"),
        "float_val_loss": ev.get("float_val_loss"),
        "int_val_loss": ev.get("int_val_loss"),
        "board_fit": {
            name: _fit_rnn(model, TARGETS[name], core_cells[name]) for name in TARGET_NAMES
        },
    }
    return cfg, figures


def _fit_rnn(model, target: Target, core_cells: int) -> dict:
    """The repository's board placement of the whole core (as
    :func:`spikelut.boards.lm_design.lm_board_fit`: the fewest estimated logic cells of the
    serial and parallel kinds, within the block RAMs less the host link's, every memory of
    the core counted), or why there is none; ``logic_ok``: the estimate within
    ``core_cells``."""
    try:
        from spikelut.boards.design import RESERVED_BRAMS
        from spikelut.compiler.backend.compile_lm import plan_lm

        fit = plan_lm(
            model,
            target,
            kind="auto",
            optimize="area",
            block_rams=target.block_rams - RESERVED_BRAMS[target.family],
        )
    except Exception as e:  # the LM back end is new: report its failure, do not stop
        return {"fits": False, "why": f"{type(e).__name__}: {e}"}
    cells = fit.estimate["logic_cells"]
    return {
        "fits": True,
        "kind": fit.plan.kind.value,
        "plan": fit.plan.to_json(),
        "block_rams": fit.block_rams,
        "sprams": fit.sprams,
        "logic_cells": cells,
        "core_logic_cells": core_cells,
        "logic_ok": cells <= core_cells,
        "table_cycles_per_token": fit.table_cycles_per_token,
    }


# -- synthesis -----------------------------------------------------------------------------


def synth_core(path: str, kind: str = "auto") -> dict:
    """The iCEBreaker build's placement of the integer RNN in ``path`` (of ``kind``; as
    :func:`~spikelut.boards.lm_design.lm_board_fit` but whatever its logic), synthesised
    alone: Yosys cell counts, nextpnr's packed logic cells, the estimate and the measured
    cycles per token."""
    import re
    import subprocess
    import tempfile
    import time
    from pathlib import Path

    from amaranth.back import rtlil

    from spikelut.boards.design import RESERVED_BRAMS
    from spikelut.boards.platforms import board
    from spikelut.cli.common import load_model_file
    from spikelut.compiler.backend.compile_lm import plan_lm
    from spikelut.compiler.backend.latency import token_cycles
    from spikelut.compiler.backend.sequence import rnn_core
    from spikelut.compiler.build.synthesis import synth_command
    from spikelut.compiler.build.toolchain import find
    from spikelut.compiler.ir.selection import Selection

    model = load_model_file(path)
    spec = board("icebreaker")
    # the board build's placement, its logic unbounded: a core beyond the estimate's limit
    # is measured too
    t = spec.target
    budget = t.block_rams - RESERVED_BRAMS[t.family]
    fit = plan_lm(model, t, kind=kind, optimize="area", block_rams=budget, logic_cells=1 << 30)
    core = rnn_core(model, fit.plan, Selection())
    latency, per_token, sampled = token_cycles(core)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "core.il").write_text(rtlil.convert(core, name="top", platform=spec.target))
        script = f"read_rtlil core.il; {synth_command('ice40', 'top')}; tee -o stat.txt stat; "
        script += "write_json core.json"
        # relative paths: the YoWASP build only sees the working directory
        subprocess.run([find("yosys"), "-q", "-p", script], check=True, capture_output=True,
                       cwd=tmp)  # fmt: skip
        stat = Path(tmp, "stat.txt").read_text()
        pack = subprocess.run(
            [find("nextpnr-ice40"), "--up5k", "--package", "sg48", "--json", "core.json",
             "--pack-only"],
            capture_output=True, text=True, cwd=tmp,
        )  # fmt: skip
    counts = {n: int(k) for k, n in re.findall(r"^\s+(\d+)\s+(SB_\w+)\s*$", stat, re.M)}
    packed = re.search(r"ICESTORM_LC:\s+(\d+)", pack.stdout + pack.stderr)
    return {
        "file": path,
        "plan": fit.plan.to_json(),
        "block_rams": fit.block_rams,
        "sprams": fit.sprams,
        "estimate": fit.estimate,
        "yosys_luts": counts.get("SB_LUT4", 0),
        "yosys_flip_flops": sum(v for k, v in counts.items() if "DFF" in k),
        "yosys_carries": counts.get("SB_CARRY", 0),
        "yosys_block_rams": counts.get("SB_RAM40_4K", 0),
        "yosys_sprams": counts.get("SB_SPRAM256KA", 0),
        "logic_cells": int(packed.group(1)) if packed else None,
        "cycles_per_token": per_token,
        "sampled_cycles_per_token": sampled,
        "latency_cycles": latency,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def print_synth(results: list[dict], as_json: bool) -> int:
    """Print :func:`synth_core` results, one line each (or JSON)."""
    if as_json:
        json.dump(results, sys.stdout, indent=1)
        print()
        return 0
    for r in results:
        est = r["estimate"]
        print(
            f"{r['file']}: {r['plan']['kind']} {r['block_rams']}B+{r['sprams']}S  "
            f"logic cells {r['logic_cells']} (estimate {est['logic_cells']}), Yosys "
            f"{r['yosys_luts']} LUT4 / {r['yosys_flip_flops']} FF / {r['yosys_carries']} "
            f"carries (estimate {est['luts']} / {est['flip_flops']}), "
            f"{r['cycles_per_token']:g} cycles/token greedy, "
            f"{r['sampled_cycles_per_token']:g} sampled, {r['seconds']} s"
        )
    return 0


# -- report --------------------------------------------------------------------------------


def _mem(r: dict) -> str:
    lean = r["leanest"]
    text = f"{lean['block_rams']}B" + (f"+{lean['sprams']}S" if r["sprams_available"] else "")
    text += f" {100 * r['fill']:.0f}%"
    if r["fits"]:
        return (
            f"{text} yes {lean['table_cycles_per_token']}/{r['fastest']['table_cycles_per_token']}c"
        )
    return f"{text} no"


def _loss(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def _fit(f: dict | None) -> str:
    if f is None:
        return "-"
    if not f["fits"]:
        return "no"
    mem = f"{f['block_rams']}B" + (f"+{f['sprams']}S" if f["sprams"] else "")
    return f"{mem} {f['logic_cells']}lc{'' if f['logic_ok'] else '!'}"


def human(rows: list[dict]) -> str:
    headers = ("config D/NTxNC/NTUxNCU/B", "kbit", "UP5K mem", "ECP5-85 mem", "steps",
               "float", "int", "delta", "board UP5K", "board ECP5")  # fmt: skip
    table = []
    for r in rows:
        m = r.get("model") or {}
        fl, il = m.get("float_val_loss"), m.get("int_val_loss")
        table.append((
            r["config"],
            f"{sum(r['memory_bits'].values()) / 1024:.0f}",
            _mem(r["targets"]["ice40-up5k"]),
            _mem(r["targets"]["ecp5-85"]),
            str(m.get("steps", "-")),
            _loss(fl),
            _loss(il),
            "-" if fl is None or il is None else f"{il - fl:+.4f}",
            _fit((m.get("board_fit") or {}).get("ice40-up5k")),
            _fit((m.get("board_fit") or {}).get("ecp5-85")),
        ))  # fmt: skip
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)) for t in table]
    lines.append(
        "mem: block RAMs (B) + SPRAMs (S) of the embedding, cell and unembedder tables in the "
        "leanest placement, its fill of the budget, fits?, table cycles per token of the leanest"
        "/fastest placement that fits (c); board: the repository's board placement (fewest "
        "logic cells), all the core's memories, estimated logic cells (lc; ! beyond the core's "
        "share)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", metavar="MODEL_INT", help="integer RNN .lutnet files")
    p.add_argument("--config", type=Config.parse, action="append", default=[])
    p.add_argument("--grid", action="store_true", help="add the sweep of issue #14")
    p.add_argument("--fits", choices=TARGET_NAMES, help="only configurations fitting TARGET")
    p.add_argument(
        "--reserve",
        type=int,
        default=6,
        help="block RAMs kept for the host link and the core's small memories (default 6)",
    )
    p.add_argument(
        "--max-read",
        type=int,
        action="append",
        default=[],
        metavar="TARGET=N",
        help="table entries read a clock per LUT at most (default ice40-up5k=16, ecp5-85=256)",
    )
    p.add_argument(
        "--core-cells",
        type=int,
        action="append",
        default=[],
        metavar="TARGET=N",
        help="logic cells for the RNN core (default ice40-up5k=2500, ecp5-85: the target's "
        "less the host link's)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--synth",
        action="store_true",
        help="synthesise each model's iCEBreaker core alone: Yosys and nextpnr --pack-only "
        "logic cells against the estimate (no table)",
    )
    p.add_argument("--kind", default="auto", help="with --synth: auto, parallel or serial")
    args = p.parse_args(argv)
    if args.synth:
        return print_synth([synth_core(m, args.kind) for m in args.models], args.json)
    core_cells = {name: TARGETS[name].core_logic_cells for name in TARGET_NAMES}
    core_cells["ice40-up5k"] = UP5K_CORE_CELLS
    for item in args.core_cells:
        name, _, n = item.partition("=")
        core_cells[name] = int(n)
    max_read = dict(MAX_READ)
    for item in args.max_read:
        name, _, n = item.partition("=")
        max_read[name] = int(n)
    entries: list[tuple[Config, dict | None]] = [model_figures(m, core_cells) for m in args.models]
    entries += [(c, None) for c in args.config]
    if args.grid:
        entries += [
            (Config(d, nt, nc, ntu, ncu, b, b), None)
            for d, (nt, nc), (ntu, ncu), b in itertools.product(*GRID.values())
        ]
    rows, seen = [], set()
    for cfg, figures in entries:
        if figures is None and cfg in seen:
            continue
        seen.add(cfg)
        targets = {
            name: place(cfg, TARGETS[name], args.reserve, max_read[name]) for name in TARGET_NAMES
        }
        if args.fits and not targets[args.fits]["fits"]:
            continue
        rows.append({
            "config": cfg.name,
            "shape": asdict(cfg),
            "memory_bits": cfg.memory_bits(),
            "targets": targets,
            "model": figures,
        })  # fmt: skip
    if args.json:
        json.dump({"reserve_block_rams": args.reserve, "max_read": max_read, "rows": rows},
                  sys.stdout, indent=1)  # fmt: skip
        print()
    else:
        print(human(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
