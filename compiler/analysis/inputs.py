"""The inputs of ``spikelut report``: what a model file or a directory offers.

:func:`find_inputs` gathers the model files (``.lutnet``), a compile ``manifest.json``, the
``build-report.json`` and ``board.json`` of a board build and a demo's ``summary.json`` into a
:class:`ReportInputs`; anything unusable is a :class:`ReportError` naming the fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.ir.modelfile import ModelFileError, load_model

__all__ = ["JSON_INPUTS", "ReportError", "ReportInputs", "find_inputs"]

# attribute of ReportInputs -> the JSON file that fills it (its path goes in ``<attr>_path``)
JSON_INPUTS = {
    "manifest": "manifest.json",
    "build": "build-report.json",
    "board": "board.json",
    "summary": "summary.json",
}


class ReportError(ValueError):
    """The report's input cannot be used; the message names the problem and the fix."""


@dataclass
class ReportInputs:
    """What was found for a report: the main model (integer preferred), its float original
    when present, and the optional compile, build and demo figures with their paths."""

    model: ClassifierMLP
    model_path: Path
    float_model: ClassifierMLP | None = None
    float_path: Path | None = None
    manifest: dict | None = None
    manifest_path: Path | None = None
    build: dict | None = None
    build_path: Path | None = None
    board: dict | None = None
    board_path: Path | None = None
    summary: dict | None = None
    summary_path: Path | None = None
    files: list[Path] = field(default_factory=list)


def find_inputs(*sources: str | os.PathLike) -> ReportInputs:
    """Gather a report's inputs from ``.lutnet`` files and directories searched recursively
    (a demo, compile or build directory; e.g. a model file and its build directory). The
    integer model found first is the report's model (a float one when there is none), the
    first float model its float original; the first ``manifest.json``, ``build-report.json``,
    ``board.json`` and ``summary.json`` (shallowest first) fill their sections. Raises
    :class:`ReportError` when no classifier model is found or a file cannot be read."""
    if not sources:
        raise ReportError("give a .lutnet model or a directory holding one")
    models: list[tuple[Path, ClassifierMLP]] = []
    found: dict[str, Path] = {}
    for source in sources:
        src = Path(source)
        models += _models_in(src)
        if src.is_dir():
            for name, path in _json_files_in(src).items():
                found.setdefault(name, path)
    if not models:
        where = ", ".join(str(s) for s in sources)
        raise ReportError(
            f"no classifier .lutnet model in {where}; give the model file too, e.g. "
            "spikelut report MODEL BUILD_DIR"
        )
    inputs = _pick_models(models)
    for attr, name in JSON_INPUTS.items():
        path = found.get(name)
        if path is not None:
            setattr(inputs, attr, _read_json(path))
            setattr(inputs, f"{attr}_path", path)
            inputs.files.append(path)
    return inputs


def _models_in(src: Path) -> list[tuple[Path, ClassifierMLP]]:
    """The classifier models of ``src``: the file itself, or every ``.lutnet`` below the
    directory (shallowest first; models of other kinds are skipped in a directory)."""
    if not src.exists():
        raise ReportError(f"{src} does not exist; give a .lutnet model or a build directory")
    paths = [src] if src.is_file() else sorted(src.rglob("*.lutnet"), key=_depth)
    models = []
    for path in paths:
        m = _load(path)
        if isinstance(m, ClassifierMLP):
            models.append((path, m))
        elif src.is_file():
            raise ReportError(f"{src} is not a classifier; reports cover classifiers only")
    return models


def _json_files_in(root: Path) -> dict[str, Path]:
    """The shallowest file of each :data:`JSON_INPUTS` name below ``root``, by name."""
    found = {}
    for name in JSON_INPUTS.values():
        hits = sorted(root.rglob(name), key=_depth)
        if hits:
            found[name] = hits[0]
    return found


def _pick_models(models: list[tuple[Path, ClassifierMLP]]) -> ReportInputs:
    """The inputs of the first integer model (else the first float one) and, beside an
    integer model, the first float model as its float original."""
    ints = [(p, m) for p, m in models if m.is_integer]
    floats = [(p, m) for p, m in models if not m.is_integer]
    main_path, main = (ints or floats)[0]
    inputs = ReportInputs(model=main, model_path=main_path, files=[main_path])
    if ints and floats:
        inputs.float_path, inputs.float_model = floats[0]
        inputs.files.append(floats[0][0])
    return inputs


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ReportError(f"cannot read {path}: {e}; rebuild it or remove it") from None


def _load(path: Path) -> Any:
    try:
        return load_model(path)
    except (ModelFileError, IRError, OSError, KeyError) as e:
        raise ReportError(f"cannot read {path}: {e}") from None


def _depth(p: Path) -> tuple:
    return (len(p.parts), str(p))
