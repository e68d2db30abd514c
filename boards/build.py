"""Board builds: a quantised classifier, a language model (the MAC baseline) to a bitstream.

:func:`build_board` places the tables and picks the core as :mod:`spikelut.boards.design`
says, wraps the core in the board top (UART host link, boot-time table loader for SPRAM,
LEDs, a PLL when ``freq`` differs from the oscillator), runs Yosys/nextpnr/packing
(:func:`spikelut.compiler.build.synthesis.run_build`) and writes into the output folder:
the bitstream, ``build-report.json`` (tool figures), ``board.json`` (what ``spikelut run``
and ``flash`` need: board, plans, core kind, clock, baud, model hash) and, when tables live
in SPRAM, ``tables.bin`` and ``flash.bin`` (bitstream + tables at the documented offset).
:func:`build_mac_board` builds the multiply-accumulate baseline in the same board top, and
:func:`build_lm_board` an integer language model, a spiking RNN or a LUT transformer
(GENERATE over the host link), placed as :func:`spikelut.boards.lm_design.lm_board_fit` says.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from spikelut.boards.design import board_core, make_core, model_hash, model_tables
from spikelut.boards.flash_image import TABLE_OFFSET, build_image, table_area, table_payload
from spikelut.boards.lm_design import (
    DEFAULT_TEMPERATURE,
    lm_board_fit,
    lm_core,
    lm_plan_key,
    lm_selection,
    lm_tables,
    make_lm_core,
)
from spikelut.boards.mac_design import mac_hash, make_mac_core
from spikelut.boards.platforms import BoardSpec
from spikelut.boards.top import BoardTop, choose_pll
from spikelut.compiler.backend.compile import CorePlan
from spikelut.compiler.backend.latency import token_cycles
from spikelut.compiler.backend.mac import default_macs, mac_figures
from spikelut.compiler.backend.plan import plans_to_json
from spikelut.compiler.build.synthesis import run_build
from spikelut.compiler.errors import UserError
from spikelut.compiler.fileio import write_bytes_atomic, write_text_atomic
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.mac import MACNetwork
from spikelut.compiler.ir.selection import Selection
from spikelut.hdl.hostlink.wire import OVERHEAD_BYTES, GenerateHeader
from spikelut.hdl.uart import uart_divisor

__all__ = [
    "DEFAULT_BAUD",
    "build_board",
    "build_lm_board",
    "build_mac_board",
    "uart_tokens_per_second",
]

DEFAULT_BAUD = 115200


def build_board(
    model: ClassifierMLP,
    spec: BoardSpec,
    out: Path,
    *,
    freq: float | None = None,
    seed: int = 1,
    baud: int = DEFAULT_BAUD,
    kind: str = "auto",
    max_brams: int | None = None,
    plan: CorePlan | None = None,
    progress: Callable[[str], None] = print,
) -> dict:
    """Build ``model`` for ``spec`` into ``out``; returns what ``board.json`` holds (see the
    module docstring). ``kind``: the core kind or ``"auto"``; ``max_brams``: the block RAMs
    the tables may use; ``plan``: a core already decided (its kind and placement, from
    :func:`~spikelut.compiler.backend.compile.plan_core` for ``spec``'s target) instead of
    :func:`board_core`'s. Bad input or a core that cannot fit raises UserError."""
    try:
        core_plan = plan or board_core(model, spec, kind=kind, max_brams=max_brams)
    except ValueError as e:
        raise UserError(str(e)) from None

    def core_at(clock_hz: int, divisor: int):
        return make_core(model, core_plan, clock_hz=clock_hz, divisor=divisor)

    core, report, common = _build_core(
        core_at,
        lambda core: core_plan.cycles_per_inference,
        spec,
        out,
        freq=freq,
        seed=seed,
        baud=baud,
        progress=progress,
    )
    result = {
        **common,
        "plans": plans_to_json(core_plan.plans),
        "indexer": core_plan.kind.value,
        "model_hash": model_hash(model).hex(),
        "boot_load": core.boot_load,
        "table_offset": TABLE_OFFSET if core.boot_load else None,
        "flash_image": None,
    }
    _write_tables(out, report, core, model_tables(model), model_hash(model), result)
    write_text_atomic(out / "board.json", json.dumps(result, indent=1, sort_keys=True))
    return result


def _write_tables(out: Path, report, core, tables: dict, mhash: bytes, result: dict) -> None:
    """A design that boots its tables: ``tables.bin`` (the table area) and ``flash.bin``
    (bitstream and area), noted in ``result``."""
    if not (report.bitstream and core.boot_load):
        return
    area = table_area(table_payload(core.space, tables), mhash, core.shape_hash)
    write_bytes_atomic(out / "tables.bin", area)
    image = build_image(Path(report.bitstream).read_bytes(), area)
    write_bytes_atomic(out / "flash.bin", image)
    result["flash_image"] = str(out / "flash.bin")


def uart_tokens_per_second(
    baud: int, chunk: int, cycles_per_token: float, clock_hz: float
) -> float:
    """Generated tokens per second through a UART at ``baud`` (8N1) in GENERATE requests of
    ``chunk`` tokens with empty prompts: a request and its reply go one after the other; a
    reply's bytes leave as the core chooses them, so each token costs the longer of a byte
    time and the core's ``cycles_per_token`` at ``clock_hz``."""
    byte = 10 / baud
    request = OVERHEAD_BYTES + GenerateHeader.size // 8
    seconds = (request + OVERHEAD_BYTES) * byte + chunk * max(byte, cycles_per_token / clock_hz)
    return chunk / seconds


def build_lm_board(
    model: IntegerRNN | IntegerTransformer,
    spec: BoardSpec,
    out: Path,
    *,
    freq: float | None = None,
    seed: int = 1,
    baud: int = DEFAULT_BAUD,
    kind: str = "auto",
    temperature: float = DEFAULT_TEMPERATURE,
    progress: Callable[[str], None] = print,
) -> dict:
    """Build the integer language model ``model`` (a spiking RNN or a LUT transformer) for
    ``spec`` into ``out``: its core placed by
    :func:`~spikelut.boards.lm_design.lm_board_fit` (``kind``: an RNN's parallel, serial or
    auto) in the board top, the selector's exponential table at reset for ``temperature``
    (the host sets its own with SET_SAMPLER). Returns what ``board.json`` holds: the fields
    of every build, ``model_kind`` ``"language_model"``, the plan (``rnn_plan`` or
    ``transformer_plan``), the core kind (``indexer``), the model hash, the vocabulary, the
    temperature, the planned memories and logic estimate (an RNN's), the core's cycles per
    token (greedy, measured in Amaranth's simulator; sampled at most:
    :func:`~spikelut.compiler.backend.latency.token_cycles`) and tokens per second at the
    clock and through the UART. UserError when it does not fit."""
    try:
        fit = lm_board_fit(model, spec, kind=kind)
        selection = lm_selection(model, temperature, 1)
        _, cycles, sampled_cycles = token_cycles(lm_core(model, fit.plan, Selection()))
    except ValueError as e:
        raise UserError(str(e)) from None
    what = "transformer core" if fit.kind == "transformer" else f"{fit.kind} RNN core"
    logic = "" if fit.estimate is None else f", about {fit.estimate['logic_cells']} logic cells"
    progress(f"build: {what}, {fit.block_rams} block RAMs, {fit.sprams} SPRAMs{logic} (estimate)")

    def core_at(clock_hz: int, divisor: int):
        return make_lm_core(model, fit.plan, selection, clock_hz=clock_hz, divisor=divisor)

    core, report, common = _build_core(
        core_at, lambda core: cycles, spec, out, freq=freq, seed=seed, baud=baud, progress=progress
    )
    clock_hz = common["target_mhz"] * 1e6
    result = {
        **common,
        "model_kind": "language_model",
        lm_plan_key(fit.plan): fit.plan.to_json(),
        "indexer": fit.kind,
        "model_hash": model_hash(model).hex(),
        "vocab": model.vocab,
        "temperature": temperature,
        "planned": {"block_rams": fit.block_rams, "sprams": fit.sprams, "estimate": fit.estimate},
        "cycles_per_token": cycles,
        "sampled_cycles_per_token": sampled_cycles,
        "tokens_per_second": clock_hz / cycles,
        "uart_tokens_per_second": uart_tokens_per_second(baud, 64, cycles, clock_hz),
        "boot_load": core.boot_load,
        "table_offset": TABLE_OFFSET if core.boot_load else None,
        "flash_image": None,
    }
    _write_tables(out, report, core, lm_tables(model), model_hash(model), result)
    write_text_atomic(out / "board.json", json.dumps(result, indent=1, sort_keys=True))
    return result


def _build_core(make, cycles_of, spec, out: Path, *, freq, seed, baud, progress):
    """Clock the core ``make(clock_hz, divisor)`` makes for ``spec`` (PLL for ``freq``, UART
    divisor for ``baud``), wrap it in the board top and run Yosys/nextpnr into ``out``.

    Returns ``(core, report, fields)``: ``fields`` are the ``board.json`` entries every build
    has (board, tool figures, clock, UART, and the rate from ``cycles_of(core)``). A
    ValueError from the core or the clock becomes a UserError."""
    spec.require_host_link()
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
        spec.platform(),
        out,
        target=spec.target,
        board=spec.name,
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
    net: MACNetwork,
    spec,
    out: Path,
    *,
    macs: int | None = None,
    freq=None,
    seed=1,
    baud=DEFAULT_BAUD,
    progress=print,
) -> dict:
    """Build the integer MAC network ``net`` (:class:`spikelut.compiler.ir.mac.MACNetwork`)
    for ``spec`` into ``out`` on ``macs`` units (default
    :func:`spikelut.compiler.backend.mac.default_macs` of the board's target); returns the result dict of
    :func:`build_board` with ``baseline``, ``macs`` and the core's per-inference figures
    (``weight_bits_read``, ``multiplications``, ``additions``) instead of plans and tables."""
    macs = default_macs(net, spec.target) if macs is None else macs

    def core_at(clock_hz: int, divisor: int):
        return make_mac_core(net, macs=macs, clock_hz=clock_hz, divisor=divisor)

    core, _, common = _build_core(
        core_at,
        lambda core: core.net.cycles_per_inference,
        spec,
        out,
        freq=freq,
        seed=seed,
        baud=baud,
        progress=progress,
    )
    figures = mac_figures(core.net.params)
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
