"""``spikelut run MODEL --port DEVICE|tcp:HOST:PORT|sim``: inference on a board, checked.

Runs MODEL on the board when its shape fits the bitstream (loading its tables, with the
placement of ``--load-tables BUILD_DIR``, when the board holds others), streams the inputs
(``--input FILE``: raw features as .npy or .csv, one row per input; or ``--dataset test``:
the test split of the model's data set), compares every answer with the integer golden model and prints agreement,
accuracy and measured inferences per second. ``--port sim`` runs the complete board design
(the placement ``spikelut build --board BOARD`` would use) in Verilator with real UART bit
timing: SPRAM tables boot from the simulated configuration flash (``--tables flash``) or are
loaded over the link (``--tables link``). ``spikelut sim-board MODEL`` serves the same
simulated design on a pseudo-terminal instead, at the board's clock and a standard
``--baud``: ``--port /dev/pts/N`` then goes through pyserial exactly as with a USB UART
(give a ``--timeout`` of some seconds: the simulation is slower than the board). Exit 1
when any answer differs from the golden model or the board cannot run the model.

A language model (an integer spiking RNN or LUT transformer) generates ``--bytes N`` after ``--prompt TEXT``
on a language-model board (:mod:`spikelut.boards.lm_runtime`: requests of ``--chunk``
tokens), sampled at ``--temperature`` (default 0.4; 0 is greedy) from ``--seed``, every byte
checked against the golden model; ``--port sim`` simulates the design ``spikelut build``
makes of it. It prints the text, the tokens that agree, tokens per second through the link
and the board's cycles per token.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from spikelut.boards.design import build_tables
from spikelut.boards.host import BoardClient, LinkTimeout, open_transport
from spikelut.boards.lm_design import DEFAULT_TEMPERATURE, lm_build_tables, lm_selection
from spikelut.boards.lm_runtime import DEFAULT_CHUNK, generate_on_board
from spikelut.boards.platforms import board
from spikelut.boards.runtime import BoardMismatch, run_on_board
from spikelut.cli import output
from spikelut.cli.common import (
    add_board_core_flag,
    load_board_model,
    non_negative_float,
    positive_float,
    positive_int,
    seed_int,
    utf8_text,
)
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.datasets import load_dataset, real_features
from spikelut.compiler.ir.integer_sequence import (
    INTEGER_LANGUAGE_MODELS,
    IntegerRNN,
    IntegerTransformer,
)
from spikelut.hdl.hostlink.wire import ProtocolError
from spikelut.sim.board_sim import run_board_sim, run_lm_board_sim


def add_parser(sub: Any) -> None:
    """Register the ``run`` subcommand."""
    p = sub.add_parser(
        "run",
        help="run a classifier or language model on a board (or its simulation), checked",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="integer (quantised) .lutnet classifier, spiking RNN or transformer",
    )
    p.add_argument(
        "--port",
        required=True,
        help="serial device (a board's USB UART, or the /dev/pts/N spikelut sim-board serves), "
        "tcp:HOST:PORT, or sim",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FILE", help="raw input features (.npy or .csv)")
    src.add_argument("--dataset", choices=["test"], help="the model's data set's test split")
    p.add_argument("--limit", type=positive_int, metavar="N", help="use only the first N inputs")
    p.add_argument("--baud", type=positive_int, default=115200, help="serial baud rate")
    p.add_argument("--board", default="icebreaker", help="placement for --port sim")
    p.add_argument(
        "--tables",
        choices=["flash", "link"],
        default="flash",
        help="--port sim: SPRAM tables from the flash model at boot, or uploaded over the link",
    )
    add_board_core_flag(p, "--port sim, the core simulated (as spikelut build --core)")
    p.add_argument(
        "--load-tables",
        metavar="BUILD_DIR",
        help="the build of the board's bitstream: load the model's tables when the board "
        "holds others",
    )
    p.add_argument("--timeout", type=positive_float, default=2.0, help="reply timeout in seconds")
    add_lm_options(p)
    output.add_json_flag(p)
    p.set_defaults(func=run)


def add_lm_options(p, *, prompt_default: str | None = None) -> None:
    """The options of a language model's generation on a board (``run`` and ``sample``)."""
    g = p.add_argument_group("language models")
    g.add_argument(
        "--prompt",
        default=prompt_default,
        type=utf8_text,
        metavar="TEXT",
        help="text to continue (UTF-8)",
    )
    g.add_argument(
        "--bytes", type=positive_int, dest="n_bytes", metavar="N", help="bytes to generate"
    )
    g.add_argument(
        "--temperature",
        type=non_negative_float,
        metavar="T",
        help=f"sampling temperature (default {DEFAULT_TEMPERATURE}; 0: the most likely byte)",
    )
    g.add_argument("--seed", type=seed_int, metavar="S", help="the sampler's seed (default 1)")
    g.add_argument(
        "--chunk",
        type=positive_int,
        default=DEFAULT_CHUNK,
        metavar="N",
        help=f"tokens a GENERATE request asks for (default {DEFAULT_CHUNK})",
    )


def _read_inputs(path: Path) -> np.ndarray:
    """The array in an .npy or .csv file of inputs; UserError when unreadable or empty."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # loadtxt's "no data": refused below
            raw = (
                np.load(path, allow_pickle=False)
                if path.suffix.lower() == ".npy"
                else np.loadtxt(path, delimiter=",", ndmin=2)
            )
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"cannot read inputs from {path}: {e}") from None
    if np.size(raw) == 0:
        raise UserError(f"{path} holds no inputs; give one row of features per input")
    return raw


def _inputs(args, model) -> tuple[np.ndarray, np.ndarray | None]:
    if args.input:
        path = Path(args.input)
        raw = real_features(_read_inputs(path), what=str(path))
        if raw.ndim not in (1, 2):
            raise UserError(
                f"{path}: inputs must be one row of features or a 2-D array (inputs, features), "
                f"not shape {raw.shape}"
            )
        if not np.all(np.isfinite(raw)):
            raise UserError(f"{path}: inputs contain NaN or infinity; give finite features")
        labels = None
    else:
        name = model.meta.get("dataset")
        if not name:
            raise UserError(f"{args.model} records no data set; pass --input FILE")
        data = load_dataset(name)
        raw, labels = data.X_test, data.y_test
    raw = np.atleast_2d(raw)
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
        return build_tables(model, info)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot use {build_dir}/board.json: {e}") from None


def _lm_build(model, build_dir: str):
    """What loading ``model``'s tables into the language-model build in ``build_dir``
    takes, or UserError."""
    try:
        info = json.loads((Path(build_dir) / "board.json").read_text())
        return lm_build_tables(model, info)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot use {build_dir}/board.json: {e}") from None


def generate_lm(model: IntegerRNN | IntegerTransformer, args: argparse.Namespace, progress) -> dict:
    """Generate on the board of ``args.port`` (or its simulation) and check every byte:
    :func:`~spikelut.boards.lm_runtime.generate_on_board`'s result. UserError for bad
    options; BoardMismatch, LinkTimeout, ProtocolError from the board."""
    if not args.n_bytes:
        raise UserError("give --bytes N (at least 1): how many bytes to generate")
    prompt = (args.prompt or "").encode("utf-8")
    if not prompt:
        raise UserError("give --prompt TEXT: generation continues at least one byte")
    if max(prompt) >= model.vocab:
        raise UserError(
            f"the prompt holds byte {max(prompt)}; the model's tokens are 0..{model.vocab - 1}"
        )
    temperature = DEFAULT_TEMPERATURE if args.temperature is None else args.temperature
    if temperature < 0:
        raise UserError(f"--temperature must be >= 0, not {temperature:g}")
    seed = 1 if args.seed is None else args.seed
    if seed == 0:
        raise UserError("--seed must be non-zero: the board's random source stops at 0")
    selection = lm_selection(model, temperature, seed)
    if args.port == "sim":
        return run_lm_board_sim(
            model,
            prompt,
            args.n_bytes,
            selection,
            spec=board(args.board),
            tables=args.tables,
            chunk=args.chunk,
            progress=progress,
        )
    build = _lm_build(model, args.load_tables) if args.load_tables else None
    try:
        transport = open_transport(args.port, baud=args.baud)
    except (ConnectionError, ValueError) as e:
        raise UserError(str(e)) from None
    with BoardClient(transport, timeout=args.timeout) as link:
        result = generate_on_board(
            link, model, prompt, args.n_bytes, selection, chunk=args.chunk, build=build,
            progress=progress,
        )  # fmt: skip
    result["port"] = args.port
    return result


def lm_summary(r: dict) -> str:
    """The check and the figures of a generation on a board, for people."""
    lines = [
        f"board tokens equal to the golden model: {r['agree']}/{r['n']}"
        + (f" (first mismatches at {r['mismatches']})" if r["mismatches"] else ""),
        f"{r['tokens_per_second']:,.1f} tokens/s measured at the host ({r['n']} in "
        f"{r['seconds']:.2f} s, {r['requests']} requests)",
    ]
    if r["core_cycles_per_token"]:
        lines.append(
            f"board: {r['core_cycles_per_token']:,.1f} cycles per token "
            f"({r['identity']['clock_hz'] / r['core_cycles_per_token']:,.0f} tokens/s at its "
            "clock)"
        )
    if r.get("port") == "sim":
        lines.append(
            f"simulated board: boot {r['boot']}; {r['sim_tokens_per_second']:,.0f} tokens/s "
            f"through the simulated UART link ({r['sim_baud']:,.0f} baud, "
            f"{r['sim_clock_hz'] / 1e6:g} MHz clock)"
        )
    return "\n".join(lines)


def _run_lm(model: IntegerRNN | IntegerTransformer, args: argparse.Namespace) -> int:
    if args.input or args.dataset or args.limit is not None:
        raise UserError("--input, --dataset and --limit are a classifier's; give --prompt")
    quiet = getattr(args, "json", False)
    try:
        result = generate_lm(model, args, (lambda msg: None) if quiet else print)
    except BoardMismatch as e:
        print(f"spikelut run: {e}")
        return 1
    except (LinkTimeout, ProtocolError) as e:
        print(f"spikelut run: the board did not answer correctly: {e}")
        return 1

    def human(r: dict) -> str:
        text = r["generated"].encode("latin-1").decode("utf-8", "replace")
        return f"{args.prompt}{text}\n{lm_summary(r)}"

    output.emit(args, result, human)
    return 0 if result["agree"] == result["n"] else 1


def run(args: argparse.Namespace) -> int:
    """Run and check; 0 when every answer matches the golden model."""
    model = load_board_model(args.model)
    board(args.board).require_host_link()  # an unknown --board is refused, whatever --port uses
    if args.indexer != "auto" and (
        args.port != "sim" or isinstance(model, INTEGER_LANGUAGE_MODELS)
    ):
        raise UserError(
            "--core chooses the classifier core of --port sim; a real board runs the core "
            "its bitstream holds"
        )
    if isinstance(model, INTEGER_LANGUAGE_MODELS):
        return _run_lm(model, args)
    lm_only = (args.prompt, args.n_bytes, args.temperature, args.seed)
    if any(v is not None for v in lm_only) or args.chunk != DEFAULT_CHUNK:
        raise UserError(
            "--prompt, --bytes, --temperature, --seed and --chunk are a language model's"
        )
    x, labels = _inputs(args, model)
    if not len(x):
        raise UserError("no inputs to run")
    quiet = getattr(args, "json", False)
    progress = (lambda msg: None) if quiet else print
    try:
        if args.port == "sim":
            result = run_board_sim(
                model,
                x,
                labels,
                spec=board(args.board),
                tables=args.tables,
                kind=args.indexer,
                progress=progress,
            )
        else:
            space = _space_of_build(model, args.load_tables) if args.load_tables else None
            try:
                transport = open_transport(args.port, baud=args.baud)
            except (ConnectionError, ValueError) as e:
                raise UserError(str(e)) from None
            with BoardClient(transport, timeout=args.timeout) as link:
                result = run_on_board(link, model, x, labels=labels, build=space, progress=progress)
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
