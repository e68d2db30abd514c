"""``--port sim``: the complete board core on Verilator, reachable over TCP like a real board.

:func:`simulated_board` builds :class:`~spikelut.boards.top.BoardCore` with Verilator
(cached by :func:`~spikelut.sim.cocotb_runner.run_cocotb`), runs ``spikelut.sim.tb_board``
in a background thread on its simulated board (:mod:`spikelut.sim.board_harness`: boot from
the flash holding ``flash_area``, then the UART bridged to a local TCP port with real bit
timing) and yields a :class:`SimBoard` whose
``port`` (``tcp:127.0.0.1:N``) :func:`spikelut.boards.host.open_transport` opens.
:func:`run_board_sim` builds the design a board build would ship and runs inputs through it;
:func:`run_lm_board_sim` does the same for a language model, generating text. The
simulation ends when the host closes the connection.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikelut.boards.design import board_core, core_tables, make_core, model_hash, model_tables
from spikelut.boards.flash_image import table_area, table_payload
from spikelut.boards.host import BoardClient, open_transport
from spikelut.boards.lm_design import (
    DEFAULT_TEMPERATURE,
    lm_board_fit,
    lm_core_tables,
    lm_selection,
    lm_tables,
    make_lm_core,
)
from spikelut.boards.lm_runtime import DEFAULT_CHUNK, generate_on_board
from spikelut.boards.platforms import BoardSpec
from spikelut.boards.runtime import run_on_board, upload_tables
from spikelut.compiler.backend.compile_transformer import TransformerPlan
from spikelut.compiler.backend.sequence import RNNPlan
from spikelut.compiler.errors import UserError
from spikelut.compiler.fileio import write_bytes_atomic
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.selection import Selection
from spikelut.hdl.hostlink.wire import FrameType
from spikelut.hdl.uart import MIN_DIVISOR
from spikelut.sim.board_harness import BoardHarness
from spikelut.sim.cocotb_runner import run_cocotb

__all__ = [
    "SIM_CLOCK_NS",
    "SIM_DIVISOR",
    "SimBoard",
    "board_flash_area",
    "run_board_sim",
    "run_lm_board_sim",
    "sim_rate",
    "simulated_board",
]

SIM_CLOCK_NS = 10  # 100 MHz
SIM_DIVISOR = MIN_DIVISOR  # 25 Mbaud, the fastest the UART gateware takes: a short simulation


@dataclass
class SimBoard:
    """A running simulated board: ``port`` to connect to; after the session, ``timeline``
    (see ``spikelut.sim.tb_board``) and ``results`` (the cocotb outcome)."""

    port: str
    clock_hz: int
    baud: float
    timeline: dict = field(default_factory=dict)
    results: object = None


def sim_rate(timeline: dict, request_type: int, reply_type: int) -> tuple[int, float]:
    """``(frames, simulated seconds)`` from the first ``request_type`` frame sent to the
    design to the last ``reply_type`` frame received from it."""
    starts = [t for ty, t in timeline.get("frames_in", []) if ty == request_type]
    ends = [t for ty, t in timeline.get("frames_out", []) if ty == reply_type]
    if not starts or not ends:
        return 0, 0.0
    return len(ends), (max(ends) - min(starts)) * 1e-9


@contextlib.contextmanager
def simulated_board(
    core,
    *,
    flash_area: bytes | None = None,
    clock_ns: int = SIM_CLOCK_NS,
    work_dir: str | Path | None = None,
    start_timeout: float = 900.0,
):
    """Run ``core`` (a BoardCore built for ``clock_hz = 1e9 / clock_ns``) on its simulated
    board (:class:`~spikelut.sim.board_harness.BoardHarness`) in Verilator; yields a
    :class:`SimBoard`. ``flash_area``: the table area the flash holds at the core's flash
    offset (None: an erased flash). Raises the simulation's failure on exit.

    Only the harness's ports are visible to the test and the model is compiled with -O2:
    the board sessions are long, and nothing inside the core is probed."""
    own = work_dir is None
    root = Path(tempfile.mkdtemp(prefix="spikelut-board-")) if own else Path(work_dir)
    root.mkdir(parents=True, exist_ok=True)
    port_file = root / "port"
    timeline_file = root / "timeline.json"
    for stale in (port_file, timeline_file):
        stale.unlink(missing_ok=True)
    env = {
        "BRIDGE_PORT_FILE": str(port_file),
        "UART_DIVISOR": str(core.divisor),
        "CLOCK_NS": str(clock_ns),
        "TIMELINE_FILE": str(timeline_file),
    }
    if flash_area is not None:
        write_bytes_atomic(root / "flash-area.bin", flash_area)
        env["FLASH_AREA"] = str(root / "flash-area.bin")
    out: dict = {}

    def simulate():
        try:
            out["results"] = run_cocotb(
                BoardHarness(core),
                toplevel="board_harness",
                test_module="spikelut.sim.tb_board",
                env=env,
                test_dir=root / "sim",
                optimize=True,
                public="ports",
            )
        except BaseException as e:  # re-raised in the caller's thread
            out["error"] = e

    thread = threading.Thread(target=simulate, daemon=True)
    thread.start()
    try:
        _wait_for_port(port_file, thread, out, start_timeout)
        board = SimBoard(
            port=f"tcp:127.0.0.1:{int(port_file.read_text())}",
            clock_hz=round(1e9 / clock_ns),
            baud=1e9 / clock_ns / core.divisor,
        )
        try:
            yield board
        finally:
            thread.join(600)
            if timeline_file.exists():
                board.timeline = json.loads(timeline_file.read_text())
            board.results = out.get("results")
        if "error" in out:
            raise out["error"]
    except BaseException:
        own = False  # keep the logs a failure message points to
        raise
    finally:
        if own and not thread.is_alive():
            shutil.rmtree(root, ignore_errors=True)


def _wait_for_port(port_file: Path, thread: threading.Thread, out: dict, timeout: float) -> None:
    """Wait until the simulation publishes its port; raise its failure if it ended first."""
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if not thread.is_alive():
            raise out.get("error") or RuntimeError("the board simulation ended before serving")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the board simulation did not start in {timeout:g} s")
        time.sleep(0.05)


def board_flash_area(core, tables: dict, model_hash: bytes) -> bytes | None:
    """The table area a flash written by ``spikelut flash`` holds for ``core`` (a
    BoardCore) with ``tables`` (table-space layer -> table) of the model ``model_hash``;
    None when the core does not boot its tables from flash."""
    if not core.boot_load:
        return None
    return table_area(table_payload(core.space, tables), model_hash, core.shape_hash)


def run_board_sim(
    model: ClassifierMLP,
    x: np.ndarray,
    labels: np.ndarray | None,
    *,
    spec: BoardSpec,
    tables: str,
    kind: str = "auto",
    progress=print,
) -> dict:
    """Run integer inputs ``x`` through the complete design a build of ``model`` for board
    ``spec`` with core ``kind`` (as ``spikelut build --core``) would put in the bitstream,
    simulated with real UART bit timing, with the host
    runtime (:func:`~spikelut.boards.runtime.run_on_board`) checking every answer against the
    golden model. ``tables``: ``"flash"`` (a design with SPRAM boots its tables from the
    simulated flash) or ``"link"`` (the flash is blank; the tables are loaded over the link,
    LOAD_TABLES and COMMIT_TABLES, whatever the board holds). Returns the runtime's result
    plus simulated-time figures (``sim_inferences_per_second``: through the simulated UART
    link)."""
    try:
        core_plan = board_core(model, spec, kind=kind)
        core = make_core(model, core_plan, clock_hz=round(1e9 / SIM_CLOCK_NS), divisor=SIM_DIVISOR)
    except ValueError as e:
        raise UserError(str(e)) from None
    build = core_tables(core_plan)
    area = (
        board_flash_area(core, model_tables(model), model_hash(model))
        if tables == "flash"
        else None
    )
    progress(f"run: simulating the {spec.name} board design in Verilator")
    with simulated_board(core, flash_area=area) as sim:
        client = BoardClient(open_transport(sim.port), timeout=120.0, retries=0)
        with client:
            loaded = 0
            if tables == "link":
                progress("run: loading the tables over the link")
                loaded = upload_tables(client, build.space, model_tables(model), model_hash(model))
            result = run_on_board(client, model, x, labels=labels, build=build, progress=progress)
            result["table_frames"] += loaded
    _, seconds = sim_rate(sim.timeline, FrameType.INFER_BATCH, FrameType.RESULT_BATCH)
    result.update(
        port="sim",
        board=spec.name,
        boot=sim.timeline.get("boot"),
        boot_ns=sim.timeline.get("boot_ns"),
        sim_clock_hz=sim.clock_hz,
        sim_baud=sim.baud,
        sim_seconds=seconds,
        sim_inferences_per_second=len(x) / seconds if seconds else 0.0,
        cycles_per_inference=core_plan.cycles_per_inference,
        indexer=core_plan.kind.value,
    )
    return result


def run_lm_board_sim(
    model: IntegerRNN | IntegerTransformer,
    prompt: bytes,
    n: int,
    selection: Selection,
    *,
    spec: BoardSpec,
    tables: str = "flash",
    plan: RNNPlan | TransformerPlan | None = None,
    chunk: int = DEFAULT_CHUNK,
    progress=print,
) -> dict:
    """Generate ``n`` tokens after ``prompt`` on the complete design a build of the language
    model ``model`` for board ``spec`` would put in the bitstream (``plan``: another
    placement), simulated with real UART bit timing, the host runtime
    (:func:`~spikelut.boards.lm_runtime.generate_on_board`) checking every byte against
    the golden model. ``tables`` as :func:`run_board_sim`. Returns the runtime's result plus
    simulated-time figures (``sim_tokens_per_second``: generated tokens through the
    simulated UART link, from the first GENERATE sent to the last GENERATED received)."""
    try:
        plan = plan or lm_board_fit(model, spec).plan
        # the rule at reset is the build's default, as in the bitstream: the host sets its
        # own (GENERATE's sample flag, SET_SAMPLER), so every rule shares one Verilator build
        at_reset = lm_selection(model, DEFAULT_TEMPERATURE, 1)
        core = make_lm_core(
            model, plan, at_reset, clock_hz=round(1e9 / SIM_CLOCK_NS), divisor=SIM_DIVISOR
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    build = lm_core_tables(core.net)
    area = (
        board_flash_area(core, lm_tables(model), model_hash(model)) if tables == "flash" else None
    )
    progress(f"run: simulating the {spec.name} board design in Verilator")
    with simulated_board(core, flash_area=area) as sim:
        client = BoardClient(open_transport(sim.port), timeout=120.0, retries=0)
        with client:
            loaded = 0
            if tables == "link":
                progress("run: loading the tables over the link")
                loaded = upload_tables(client, build.space, lm_tables(model), model_hash(model))
            result = generate_on_board(
                client, model, prompt, n, selection, chunk=chunk, build=build, progress=progress
            )
            result["table_frames"] += loaded
    _, seconds = sim_rate(sim.timeline, FrameType.GENERATE, FrameType.GENERATED)
    result.update(
        port="sim",
        board=spec.name,
        plan=plan.to_json(),
        boot=sim.timeline.get("boot"),
        boot_ns=sim.timeline.get("boot_ns"),
        sim_clock_hz=sim.clock_hz,
        sim_baud=sim.baud,
        sim_seconds=seconds,
        sim_tokens_per_second=n / seconds if seconds else 0.0,
    )
    return result
