"""``spikelut build MODEL --board BOARD``: a quantised classifier to a board bitstream.

Places the tables in the board's memories (the fastest placement within an eighth of the
block RAMs unless ``--max-brams`` says otherwise, SPRAM on an UltraPlus), picks the serial
core (:mod:`spikelut.hdl.serial_core`: a few comparisons per clock, the same table rate) or
the parallel indexer, whichever the logic estimate finds smaller, wraps the network in the
board top (UART host link, boot-time table loader for SPRAM, LEDs, a PLL when ``--freq``
differs from the oscillator), runs Yosys/nextpnr/packing, and reports resources and timing.
Writes into DIR: the bitstream, ``build-report.json`` (tool figures), ``board.json`` (what
``spikelut run`` and ``flash`` need: board, plans, indexer, clock, baud, model hash) and,
when tables live in SPRAM, ``tables.bin`` and ``flash.bin`` (bitstream + tables at the
documented offset).
Exit 1 when the design does not fit or misses timing.

``--baseline mac``: MODEL is a trained ANN (.onnx or a scikit-learn pickle, as
``spikelut compile --baseline mac``); it is quantised to 8-bit weights on ``--data``'s
training split and built as the multiply-accumulate core
(:mod:`spikelut.boards.mac_design`: one unit per DSP block unless ``--macs``) in the same
board top, with the same report (``board.json`` has ``"baseline": "mac"``; no plans, no
tables: the weights are in the bitstream).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import report_out
from .errors import UserError
from .fileio import write_bytes_atomic, write_text_atomic
from .ir import ClassifierMLP, IRError
from .modelfile import ModelFileError, load_model

DEFAULT_BAUD = 115200


def add_parser(sub: Any) -> None:
    """Register the ``build`` subcommand."""
    p = sub.add_parser(
        "build",
        help="synthesise a quantised classifier into a bitstream for a board",
        description=__doc__.splitlines()[0],
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="integer (quantised) .lutnet classifier, or with --baseline mac an ANN file",
    )
    p.add_argument("--board", required=True, metavar="BOARD", help="target board")
    p.add_argument("-o", "--output", metavar="DIR", help="output directory (default build-BOARD)")
    p.add_argument("--freq", type=float, metavar="MHZ", help="clock (default: the oscillator)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="UART baud rate")
    p.add_argument(
        "--max-brams",
        type=int,
        metavar="N",
        help="block RAMs the tables may use (default: all but the host link's); fewer "
        "means fewer tables read per cycle, less logic and a faster build",
    )
    p.add_argument(
        "--indexer",
        choices=["auto", "parallel", "serial"],
        default="auto",
        help="comparators all at once, or a few per clock at the same table rate (auto: "
        "whichever the logic estimate finds smaller)",
    )
    p.add_argument(
        "--baseline",
        choices=["mac"],
        help="build the ANN MODEL (.onnx, scikit-learn file) as the multiply-accumulate "
        "baseline core instead (8-bit weights, DSP multipliers)",
    )
    p.add_argument(
        "--data",
        metavar="NAME|FILE",
        help="calibration data for --baseline (default digits)",
    )
    p.add_argument("--macs", type=int, metavar="M", help="multiply-accumulate units (--baseline)")
    report_out.add_json_flag(p)
    p.set_defaults(func=run)


def load_classifier(path: str) -> ClassifierMLP:
    """An integer classifier from ``path``, or UserError."""
    try:
        model = load_model(path)
    except (ModelFileError, IRError, OSError) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    if not isinstance(model, ClassifierMLP) or not model.is_integer:
        raise UserError(f"{path} is not an integer classifier; run spikelut quantize first")
    return model


def build_board(
    model,
    spec,
    out: Path,
    *,
    freq=None,
    seed=1,
    baud=DEFAULT_BAUD,
    indexer="auto",
    max_brams=None,
    progress=print,
):
    """Build ``model`` for ``spec`` into ``out``; returns the result dict (see module doc)."""
    from spikelut.boards.design import (
        board_plans,
        choose_indexer,
        make_core,
        model_hash,
        model_tables,
        plans_to_json,
    )
    from spikelut.boards.flash_image import TABLE_OFFSET, build_image, table_area, table_payload

    try:
        plans = board_plans(model, spec, max_brams=max_brams)
        if indexer == "auto":
            indexer = choose_indexer(model, spec, plans=plans)
    except ValueError as e:
        raise UserError(str(e)) from None

    def core_at(clock_hz: int, divisor: int):
        return make_core(model, plans, clock_hz=clock_hz, divisor=divisor, indexer=indexer)

    core, report, common = _build_core(
        core_at,
        lambda core: core.net.cycles_per_inference,
        spec,
        out,
        freq=freq,
        seed=seed,
        baud=baud,
        progress=progress,
    )
    result = {
        **common,
        "plans": plans_to_json(plans),
        "indexer": indexer,
        "model_hash": model_hash(model).hex(),
        "boot_load": core.boot_load,
        "table_offset": TABLE_OFFSET if core.boot_load else None,
        "flash_image": None,
    }
    if report.bitstream and core.boot_load:
        area = table_area(table_payload(core.space, model_tables(model)), model_hash(model))
        write_bytes_atomic(out / "tables.bin", area)
        image = build_image(Path(report.bitstream).read_bytes(), area)
        write_bytes_atomic(out / "flash.bin", image)
        result["flash_image"] = str(out / "flash.bin")
    write_text_atomic(out / "board.json", json.dumps(result, indent=1, sort_keys=True))
    return result


def _build_core(make, cycles_of, spec, out: Path, *, freq, seed, baud, progress):
    """Clock the core ``make(clock_hz, divisor)`` makes for ``spec`` (PLL for ``freq``, UART
    divisor for ``baud``), wrap it in the board top and run Yosys/nextpnr into ``out``.

    Returns ``(core, report, fields)``: ``fields`` are the ``board.json`` entries every build
    has (board, tool figures, clock, UART, and the rate from ``cycles_of(core)``). A
    ValueError from the core or the clock becomes a UserError."""
    from spikelut.boards.top import BoardTop, choose_pll
    from spikelut.hdl.uart import uart_divisor

    from .build import run_build

    try:
        pll = choose_pll(spec, freq)
        clock_hz = pll.out_hz if pll is not None else spec.clock_hz
        divisor = uart_divisor(clock_hz, baud)
        core = make(round(clock_hz), divisor)
    except ValueError as e:
        raise UserError(str(e)) from None
    cycles = cycles_of(core)
    out.mkdir(parents=True, exist_ok=True)
    report = run_build(
        BoardTop(core, pll=pll),
        spec,
        out,
        target_mhz=clock_hz / 1e6,
        seed=seed,
        name="spikelut",
        progress=progress,
    )
    fields = {
        "board": spec.name,
        "device": spec.device,
        "ok": report.ok,
        "fits": report.fits,
        "timing_met": report.timing_met,
        "target_mhz": clock_hz / 1e6,
        "fmax_mhz": report.fmax_mhz,
        "resources": report.resources,
        "seconds": round(report.seconds, 1),
        "suggestion": report.suggestion,
        "bitstream": report.bitstream,
        "pll": None if pll is None else pll.params,
        "baud": baud,
        "uart_divisor": divisor,
        "cycles_per_inference": cycles,
        "inferences_per_second": clock_hz / cycles,
    }
    return core, report, fields


def build_mac_board(
    net,
    spec,
    out: Path,
    *,
    macs: int | None = None,
    freq=None,
    seed=1,
    baud=DEFAULT_BAUD,
    progress=print,
) -> dict:
    """Build the integer MAC network ``net`` (:class:`spikelut.sim.mac_golden.MACNetwork`)
    for ``spec`` into ``out`` on ``macs`` units (default
    :func:`spikelut.boards.mac_design.board_macs`); returns the result dict of
    :func:`build_board` with ``baseline``, ``macs`` and the core's per-inference figures
    (``weight_bits_read``, ``multiplications``, ``additions``) instead of plans and tables."""
    from spikelut.boards.mac_design import board_macs, mac_hash, make_mac_core

    from .mac_backend import core_figures

    try:
        macs = board_macs(spec, net) if macs is None else macs
    except ValueError as e:
        raise UserError(str(e)) from None

    def core_at(clock_hz: int, divisor: int):
        return make_mac_core(net, macs=macs, clock_hz=clock_hz, divisor=divisor)

    core, _, common = _build_core(
        core_at,
        lambda core: core_figures(core.net)["cycles_per_inference"],
        spec,
        out,
        freq=freq,
        seed=seed,
        baud=baud,
        progress=progress,
    )
    figures = core_figures(core.net)
    result = {
        "baseline": "mac",
        **common,
        "macs": macs,
        "weight_bits_read": figures["weight_bits_read"],
        "multiplications": figures["multiplications"],
        "additions": figures["additions"],
        "model_hash": mac_hash(net).hex(),
        "boot_load": False,
        "table_offset": None,
        "flash_image": None,
    }
    write_text_atomic(out / "board.json", json.dumps(result, indent=1, sort_keys=True))
    return result


def _mac_network(args: argparse.Namespace):
    """``--baseline mac``: the ANN file quantised for the MAC core (UserError on bad input)."""
    from .ann import ANNError, load_ann
    from .mac_backend import quantize_for

    try:
        net, _ = quantize_for(load_ann(args.model), args.data or "digits")
    except (ANNError, ValueError, OSError) as e:
        raise UserError(f"cannot build {args.model} as the MAC baseline: {e}") from None
    return net


def run(args: argparse.Namespace) -> int:
    """Build; 0 when the bitstream fits and meets timing, 1 otherwise."""
    from spikelut.boards.platforms import board

    spec = board(args.board)
    out = Path(args.output or f"build-{spec.name}")
    common = dict(
        freq=args.freq,
        seed=args.seed,
        baud=args.baud,
        progress=(lambda msg: None) if getattr(args, "json", False) else print,
    )
    if getattr(args, "baseline", None) == "mac":
        if args.max_brams is not None or args.indexer != "auto":
            raise UserError(
                "--max-brams and --indexer are LUT-core options; drop them for --baseline"
            )
        result = build_mac_board(_mac_network(args), spec, out, macs=args.macs, **common)
    else:
        if args.macs is not None or args.data is not None:
            raise UserError("--macs and --data apply to --baseline mac only")
        model = load_classifier(args.model)
        result = build_board(
            model, spec, out, indexer=args.indexer, max_brams=args.max_brams, **common
        )
    report_out.emit(args, result, _human)
    return 0 if result["ok"] else 1


def _human(r: dict) -> str:
    res = r["resources"]

    def cell(name):
        entry = res.get(name)
        return "-" if entry is None else f"{entry['used']}/{entry['available']}"

    rows = [
        (name, cell(key))
        for name, key in (
            ("logic cells", "logic_cells"),
            ("flip-flops", "flip_flops"),
            ("block RAMs", "block_rams"),
            ("SPRAMs", "sprams"),
            ("DSPs", "dsps"),
            ("PLLs", "plls"),
        )
    ]
    fmax = min(r["fmax_mhz"].values(), default=0.0)
    rows.append(("Fmax", f"{fmax:.1f} MHz (requested {r['target_mhz']:.1f} MHz)"))
    verdict = "PASS" if r["ok"] else "FAIL"
    rows.append(("result", verdict))
    lines = [
        report_out.table(rows, ("resource", "used/available")),
        (
            f"MAC baseline on {r['macs']} multiply-accumulate units"
            if r.get("baseline") == "mac"
            else f"{r['indexer']} indexer"
        )
        + f", {r['cycles_per_inference']} cycles per inference: "
        f"{r['inferences_per_second']:,.0f} inferences/s at {r['target_mhz']:.1f} MHz "
        f"(UART at {r['baud']} baud is the bound on a host link)",
    ]
    if r["bitstream"]:
        lines.append(f"bitstream: {r['bitstream']}")
    if r["flash_image"]:
        lines.append(
            f"flash image (bitstream + tables at 0x{r['table_offset']:x}): {r['flash_image']}"
        )
    if r["suggestion"]:
        lines.append(f"{verdict}: {r['suggestion']}")
    return "\n".join(lines)
