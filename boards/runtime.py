"""The host runtime: run a classifier on a board (real or simulated) and check every answer.

:func:`run_on_board` identifies the board and checks its input format against the model;
when the board does not hold the model's tables (IDENTIFY's tables hash,
:mod:`spikelut.hdl.hostlink.wire`, "Tables") it loads them, provided the model's shape
fingerprint at the bitstream's placement equals the board's (any model of that shape runs on
the bitstream, whatever its model hash), and checks that IDENTIFY then reports the model's
hash; it streams the inputs in batches, compares every answer with the integer golden model,
and measures inferences per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from spikelut.boards.design import BuildTables, model_hash, model_tables
from spikelut.boards.host import BoardClient
from spikelut.boards.tables import TableSpace
from spikelut.compiler import progress as progress_display
from spikelut.compiler.ir.golden import run_classifier
from spikelut.hdl.hostlink.wire import ErrorCode, ProtocolError

__all__ = ["BoardMismatch", "ensure_tables", "run_on_board", "upload_tables"]

LOAD_ATTEMPTS = 2  # a retried LOAD_TABLES (a lost reply) fails the commit: load once more


class BoardMismatch(ProtocolError):
    """The board cannot run the model: another input format or shape, or it holds other
    tables and none can be loaded."""


def upload_tables(
    link: BoardClient, space: TableSpace, tables: dict[int, np.ndarray], model_hash: bytes
) -> int:
    """Load every memory-backed layer's tables (one load: LOAD_TABLES frames, then
    COMMIT_TABLES with ``model_hash``); returns the LOAD_TABLES frames sent. ProtocolError
    (code TABLES_MISMATCH) when the board's record of the load differs from what was sent."""
    link.begin_tables()
    frames = 1
    lanes = sum(lt.lanes for lt in space.layers)
    with progress_display.task("loading the tables", total=lanes, unit="lanes") as shown:
        for lt in space.layers:
            chunks = space.chunks(lt.layer, tables[lt.layer])
            for lane in range(lt.lanes):
                words = [int(w) for w in chunks[lane]]
                frames += link.load_tables(lt.layer, words, offset=lt.lane_offset(lane))
                shown.advance()
    link.commit_tables(model_hash)
    return frames


def ensure_tables(
    link: BoardClient,
    model,
    build: BuildTables | None,
    *,
    tables: dict[int, np.ndarray] | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> int:
    """Make the board hold ``model``'s tables: nothing when it does; else, with ``build``
    (the bitstream's table space and the model's fingerprint there), load them when the
    fingerprint is the board's. ``tables``: the model's tables by table-space layer
    (default a classifier's, :func:`~spikelut.boards.design.model_tables`). Returns the
    LOAD_TABLES frames sent. Raises :class:`BoardMismatch` when the tables cannot or did not
    become the model's."""
    want = model_hash(model)
    ident = link.identify()
    if build is not None and build.shape_hash != ident.shape_hash:
        raise BoardMismatch(
            f"the model's shape (fingerprint {build.shape_hash.hex()} at the build's placement) "
            f"is not the bitstream's ({ident.shape_hash.hex()}); build a bitstream for it"
        )
    if ident.holds(want):
        return 0
    held = ident.tables_hash.hex() if ident.tables_valid else "no valid tables"
    if build is None:
        raise BoardMismatch(
            f"the board holds {held}, not the tables of model {want.hex()}; give the build "
            "folder of its bitstream to load them (spikelut run --load-tables BUILD_DIR)"
        )
    progress(f"run: the board holds {held}; loading the tables of model {want.hex()}")
    frames = 0
    for attempt in range(LOAD_ATTEMPTS):
        try:
            frames += upload_tables(
                link, build.space, model_tables(model) if tables is None else tables, want
            )
            break
        except ProtocolError as e:
            if e.code != ErrorCode.TABLES_MISMATCH or attempt == LOAD_ATTEMPTS - 1:
                raise
            progress("run: the board's record of the load differs (a frame resent?); again")
    ident = link.identify()
    if not ident.holds(want):
        raise BoardMismatch(
            f"after the load the board reports tables {ident.tables_hash.hex()} "
            f"(valid: {ident.tables_valid}), not {want.hex()}"
        )
    return frames


def run_on_board(
    link: BoardClient,
    model,
    x_int: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    build: BuildTables | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Run integer inputs ``x_int`` (N, D) on the board behind ``link``; returns figures.

    ``build``: what loading the model's tables takes (:func:`ensure_tables`). Raises
    :class:`BoardMismatch` when the board's input format differs from ``model``'s, or it
    does not hold the model's tables and they cannot be loaded. Result keys: ``n``,
    ``agree`` (answers equal to the golden model),
    ``mismatches`` (first indices that differ), ``accuracy``/``golden_accuracy`` (against
    ``labels``), ``seconds``, ``inferences_per_second``, ``identity``, ``counters``,
    ``core_cycles_per_inference`` (the board's cycle counter over its inferences).
    """
    ident = link.identify()
    if ident.is_language_model:
        raise BoardMismatch("the board runs a language model, not a classifier")
    if ident.n_inputs != model.encoding.width or ident.in_width != model.encoding.bits:
        raise BoardMismatch(
            f"the board takes {ident.n_inputs} inputs of {ident.in_width} bits, the model "
            f"{model.encoding.width} of {model.encoding.bits}"
        )
    frames = ensure_tables(link, model, build, progress=progress)
    ident = link.identity
    x = np.atleast_2d(np.asarray(x_int, np.int64))
    golden = run_classifier(model, x).predictions
    before = link.read_counters()
    progress(f"run: {len(x)} inputs in batches of {ident.max_batch}")
    start = time.monotonic()
    vectors, answers = x.tolist(), []
    with progress_display.task("inferences on the board", len(x), "inferences") as shown:
        for first in range(0, len(vectors), ident.max_batch):  # a request per batch
            answers += link.infer_batch(vectors[first : first + ident.max_batch])
            shown.update(completed=len(answers))
    got = np.asarray(answers, np.int64)
    seconds = time.monotonic() - start
    after = link.read_counters()
    inferences = after.inferences - before.inferences
    agree = got == golden
    result = {
        "n": len(x),
        "agree": int(agree.sum()),
        "mismatches": [int(i) for i in np.flatnonzero(~agree)[:20]],
        "predictions": got.tolist(),
        "seconds": seconds,
        "inferences_per_second": len(x) / seconds if seconds > 0 else 0.0,
        "table_frames": frames,
        "identity": {
            "clock_hz": ident.clock_hz,
            "n_inputs": ident.n_inputs,
            "in_width": ident.in_width,
            "max_batch": ident.max_batch,
            "model_hash": ident.model_hash.hex(),
            "shape_hash": ident.shape_hash.hex(),
            "tables_hash": ident.tables_hash.hex(),
        },
        "counters": {
            "inferences": after.inferences,
            "errors": after.errors,
            "frames": after.frames,
            "cycles": after.cycles,
        },
        "core_cycles_per_inference": (
            (after.cycles - before.cycles) / inferences if inferences else None
        ),
    }
    if labels is not None:
        labels = np.asarray(labels)
        result["accuracy"] = float(np.mean(got == labels))
        result["golden_accuracy"] = float(np.mean(golden == labels))
    return result
