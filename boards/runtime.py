"""The host runtime: run a classifier on a board (real or simulated) and check every answer.

:func:`run_on_board` identifies the board, checks its model hash and input format against the
model, optionally uploads the tables (LOAD_TABLES), streams the inputs in batches, compares
every answer with the integer golden model, and measures inferences per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from spikelut.boards.design import model_hash, model_tables
from spikelut.boards.host import BoardClient
from spikelut.boards.tables import TableSpace
from spikelut.compiler.ir.golden import run_classifier
from spikelut.hdl.hostlink.wire import ProtocolError

__all__ = ["BoardMismatch", "run_on_board", "upload_tables"]


class BoardMismatch(ProtocolError):
    """The board runs another model or takes another input format."""


def upload_tables(link: BoardClient, space: TableSpace, tables: dict[int, np.ndarray]) -> int:
    """Write every memory-backed layer's tables through LOAD_TABLES; returns frames sent."""
    frames = 0
    for lt in space.layers:
        chunks = space.chunks(lt.layer, tables[lt.layer])
        for lane in range(lt.lanes):
            words = [int(w) for w in chunks[lane]]
            frames += link.load_tables(lt.layer, words, offset=lt.lane_offset(lane))
    return frames


def run_on_board(
    link: BoardClient,
    model,
    x_int: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    space: TableSpace | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Run integer inputs ``x_int`` (N, D) on the board behind ``link``; returns figures.

    ``space``: upload the model's tables first (the board's table space). Raises
    :class:`BoardMismatch` when the board's model hash or input format differs from
    ``model``'s. Result keys: ``n``, ``agree`` (answers equal to the golden model),
    ``mismatches`` (first indices that differ), ``accuracy``/``golden_accuracy`` (against
    ``labels``), ``seconds``, ``inferences_per_second``, ``identity``, ``counters``,
    ``core_cycles_per_inference`` (the board's cycle counter over its inferences).
    """
    ident = link.identify()
    want = model_hash(model)
    if ident.model_hash != want[: len(ident.model_hash)] or not ident.model_hash:
        raise BoardMismatch(
            f"the board runs model {ident.model_hash.hex() or '(none)'}, the file is "
            f"{want.hex()}; build and flash the bitstream for this model"
        )
    if ident.n_inputs != model.encoding.dim or ident.in_width != model.encoding.bits:
        raise BoardMismatch(
            f"the board takes {ident.n_inputs} inputs of {ident.in_width} bits, the model "
            f"{model.encoding.dim} of {model.encoding.bits}"
        )
    frames = 0
    if space is not None:
        progress(f"run: uploading tables of {len(space.layers)} layer(s)")
        frames = upload_tables(link, space, model_tables(model))
    x = np.atleast_2d(np.asarray(x_int, np.int64))
    golden = run_classifier(model, x).predictions
    before = link.read_counters()
    progress(f"run: {len(x)} inputs in batches of {ident.max_batch}")
    start = time.monotonic()
    got = np.asarray(link.infer_batch(x.tolist()), np.int64)
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
