"""``spikelut run MODEL --port DEVICE|tcp:HOST:PORT|sim``: inference on a board, checked.

Checks the board's model hash against MODEL, streams the inputs (``--input FILE``: raw
features as .npy or .csv, one row per input; or ``--dataset test``: the test split of the
model's data set), compares every answer with the integer golden model and prints agreement,
accuracy and measured inferences per second. ``--port sim`` runs the complete board design
(the placement ``spikelut build --board BOARD`` would use) in Verilator with real UART bit
timing: SPRAM tables boot from the simulated configuration flash (``--tables flash``) or are
uploaded over the link (``--tables link``). Exit 1 when any answer differs from the golden
model or the board runs another model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from spikelut.boards.design import table_space_of_build
from spikelut.boards.host import BoardClient, LinkTimeout, open_transport
from spikelut.boards.platforms import board
from spikelut.boards.runtime import BoardMismatch, run_on_board
from spikelut.cli import output
from spikelut.cli.common import load_integer_classifier
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.hdl.hostlink.wire import ProtocolError
from spikelut.sim.board_sim import run_board_sim


def add_parser(sub: Any) -> None:
    """Register the ``run`` subcommand."""
    p = sub.add_parser(
        "run",
        help="run a classifier on a board (or its simulation) and check every answer",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("model", metavar="MODEL", help="integer (quantised) .lutnet classifier")
    p.add_argument("--port", required=True, help="serial device, tcp:HOST:PORT, or sim")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FILE", help="raw input features (.npy or .csv)")
    src.add_argument("--dataset", choices=["test"], help="the model's data set's test split")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N inputs")
    p.add_argument("--baud", type=int, default=115200, help="serial baud rate")
    p.add_argument("--board", default="icebreaker", help="placement for --port sim")
    p.add_argument(
        "--tables",
        choices=["flash", "link"],
        default="flash",
        help="--port sim: SPRAM tables from the flash model at boot, or uploaded over the link",
    )
    p.add_argument(
        "--load-tables",
        metavar="BUILD_DIR",
        help="upload the tables over the link first, with the placement of this build",
    )
    p.add_argument("--timeout", type=float, default=2.0, help="reply timeout in seconds")
    output.add_json_flag(p)
    p.set_defaults(func=run)


def _inputs(args, model) -> tuple[np.ndarray, np.ndarray | None]:
    if args.input:
        path = Path(args.input)
        try:
            raw = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",")
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read inputs from {path}: {e}") from None
        labels = None
    else:
        name = model.meta.get("dataset")
        if not name:
            raise UserError(f"{args.model} records no data set; pass --input FILE")
        data = load_dataset(name)
        raw, labels = data.X_test, data.y_test
    raw = np.atleast_2d(np.asarray(raw, np.float64))
    if raw.shape[1] != model.encoding.dim:
        raise UserError(
            f"inputs have {raw.shape[1]} features, the model reads {model.encoding.dim}"
        )
    if args.limit is not None:
        raw = raw[: args.limit]
        labels = None if labels is None else labels[: args.limit]
    return model.encoding.encode_int(raw), labels


def _space_of_build(model, build_dir: str):
    """The table space of the build in ``build_dir`` (its ``board.json``), or UserError."""
    try:
        info = json.loads((Path(build_dir) / "board.json").read_text())
        return table_space_of_build(model, info)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot use {build_dir}/board.json: {e}") from None


def run(args: argparse.Namespace) -> int:
    """Run and check; 0 when every answer matches the golden model."""
    model = load_integer_classifier(args.model)
    x, labels = _inputs(args, model)
    if not len(x):
        raise UserError("no inputs to run")
    quiet = getattr(args, "json", False)
    progress = (lambda msg: None) if quiet else print
    try:
        if args.port == "sim":
            result = run_board_sim(
                model, x, labels, spec=board(args.board), tables=args.tables, progress=progress
            )
        else:
            space = _space_of_build(model, args.load_tables) if args.load_tables else None
            try:
                transport = open_transport(args.port, baud=args.baud)
            except (ConnectionError, ValueError) as e:
                raise UserError(str(e)) from None
            with BoardClient(transport, timeout=args.timeout) as link:
                result = run_on_board(link, model, x, labels=labels, space=space, progress=progress)
            result["port"] = args.port
    except BoardMismatch as e:
        print(f"spikelut run: {e}")
        return 1
    except (LinkTimeout, ProtocolError) as e:
        print(f"spikelut run: the board did not answer correctly: {e}")
        return 1
    output.emit(args, result, _human)
    return 0 if result["agree"] == result["n"] else 1


def _human(r: dict) -> str:
    lines = [
        f"board answers equal to the golden model: {r['agree']}/{r['n']}"
        + (f" (first mismatches at {r['mismatches']})" if r["mismatches"] else ""),
    ]
    if "accuracy" in r:
        lines.append(
            f"accuracy: board {100 * r['accuracy']:.2f}%, golden model "
            f"{100 * r['golden_accuracy']:.2f}%"
        )
    lines.append(
        f"{r['inferences_per_second']:,.1f} inferences/s measured at the host "
        f"({r['n']} in {r['seconds']:.2f} s)"
    )
    if r.get("port") == "sim":
        lines.append(
            f"simulated board: boot {r['boot']}; {r['sim_inferences_per_second']:,.0f} "
            f"inferences/s through the simulated UART link ({r['sim_baud']:,.0f} baud, "
            f"{r['sim_clock_hz'] / 1e6:g} MHz clock); core {r['cycles_per_inference']} "
            "cycles per inference"
        )
    return "\n".join(lines)
