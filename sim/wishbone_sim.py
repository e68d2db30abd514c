"""Drive an exported core's Wishbone peripheral in cocotb and check it against the golden model.

:func:`simulate_wishbone` takes the directory ``spikelut export --wishbone`` wrote
(``spikelut_wb.v``, ``export.json``), the model it was exported from and input vectors;
it writes the case :mod:`spikelut.sim.tb_wishbone` reads (register map, vectors, the golden
model's classes and logits) and runs the test on Verilator. With ``reload`` (a model of the
same shape with other tables) the test then writes ``reload``'s tables through the table
window and checks the same vectors against ``reload``'s golden model. Memories the bitstream
does not initialise (SPRAM) are written with ``model``'s tables before the first vector.
An export with SPRAM tables is built with its ``sb_spram256ka_model.v``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from spikelut.boards.tables import LayerTables, TableSpace
from spikelut.compiler.backend.export import SPRAM_MODEL
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.golden import run_classifier
from spikelut.hdl.storage import Storage
from spikelut.sim.cocotb_runner import run_cocotb

__all__ = ["simulate_wishbone", "window_writes"]

BUS_BITS = 32


def window_writes(
    register_map: dict, manifest: dict, model: ClassifierMLP, *, boot_only: bool = False
) -> list[list[int]]:
    """``[word address, data]`` of every table-window write that loads ``model``'s tables
    into the peripheral of ``register_map`` (``export.json``), lane by lane, each word's
    chunks low first (:class:`~spikelut.boards.tables.TableSpace` with 32-bit chunks);
    ``boot_only``: only the layers the bitstream does not initialise (SPRAM)."""
    writes = []
    for t in register_map["table_layers"]:
        layer = manifest["layers"][t["layer"]]
        if boot_only and not layer["load_at_boot"]:
            continue
        entries = layer["lanes"]
        lt = LayerTables(
            layer=t["layer"],
            storage=Storage[layer["storage"].upper()],
            lanes=t["lanes"],
            depth=t["depth"],
            entries=entries,
            table_width=t["word_bits"] // entries,
            tables_per_cycle=t["lanes"],
            slot_bits=t["slot_bits"],
        )
        if (lt.addr_bits, lt.lane_bits) != (t["addr_bits"], t["lane_bits"]):
            raise ValueError(f"layer {t['layer']}: the window's geometry is not the table space's")
        space = TableSpace((lt,), BUS_BITS, lt.lane_bits + lt.addr_bits + lt.slot_bits, 1)
        chunks = space.chunks(t["layer"], np.asarray(model.layers[t["layer"]].tables, np.int64))
        for lane, row in enumerate(chunks):
            base = t["base"] + lt.lane_offset(lane)
            writes += [[base + i, int(c)] for i, c in enumerate(row)]
    return writes


def _golden(model: ClassifierMLP, x: np.ndarray) -> list[dict]:
    trace = run_classifier(model, x)
    return [
        {"index": int(p), "logits": [int(v) for v in row]}
        for p, row in zip(trace.predictions, trace.logits, strict=True)
    ]


def simulate_wishbone(
    export_dir: str | os.PathLike,
    model: ClassifierMLP,
    x: np.ndarray,
    *,
    reload: ClassifierMLP | None = None,
    seed: int = 0,
    work_dir: str | os.PathLike | None = None,
) -> dict:
    """Run integer vectors ``x`` (B, D) through the exported Wishbone peripheral: returns
    the test's ``results.json`` (``checked``, ``mismatches``, ``first_mismatch``,
    ``table_writes``, ``cycles``). Raises :class:`~spikelut.sim.cocotb_runner.CocotbFailure`
    when the test fails (a mismatch fails it)."""
    export = Path(export_dir)
    info = json.loads((export / "export.json").read_text())
    man = json.loads((export / "manifest.json").read_text())
    if not info.get("register_map"):
        raise ValueError(f"{export} holds no Wishbone peripheral; export with --wishbone")
    case = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="spikelut-wb-"))
    case.mkdir(parents=True, exist_ok=True)
    x = np.asarray(x, np.int64)
    # memories the bitstream does not initialise (SPRAM) are written first, as on a board
    first = window_writes(info["register_map"], man, model, boot_only=True)
    phases = [{"name": "bitstream tables", "writes": first, "expected": _golden(model, x)}]
    if reload is not None:
        phases.append(
            {
                "name": "tables written through the window",
                "writes": window_writes(info["register_map"], man, reload),
                "expected": _golden(reload, x),
            }
        )
    cfg = {
        "register_map": info["register_map"],
        "inputs": int(x.shape[1]),
        "in_width": man["ports"]["i_stream"]["payload"]["array"]["width"],
        "vectors": x.tolist(),
        "phases": phases,
        "seed": seed,
    }
    write_text_atomic(case / "case.json", json.dumps(cfg))
    cells = [export / SPRAM_MODEL] if (export / SPRAM_MODEL).exists() else []
    run_cocotb(
        export / f"{info['wishbone_toplevel']}.v",
        toplevel=info["wishbone_toplevel"],
        test_module="spikelut.sim.tb_wishbone",
        env={"SPIKELUT_TB_DIR": str(case)},
        test_dir=case / "run",
        libraries=cells,
    )
    return json.loads((case / "results.json").read_text())
