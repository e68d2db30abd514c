"""The inputs of ``spikelut report``: what a model file or a directory offers.

:func:`find_inputs` gathers the model files (``.lutnet``), a compile ``manifest.json``, the
``build-report.json`` and ``board.json`` of a board build, a demo's ``summary.json`` and the
``energy.json`` of ``bench/energy_per_inference.py --json`` into a :class:`ReportInputs`;
anything unusable is a :class:`ReportError` naming the fix.

The model is a classifier or an integer language model (``IntegerRNN`` or
``IntegerTransformer``: :data:`~spikelut.compiler.ir.integer_sequence.INTEGER_LANGUAGE_MODELS`).
For a language model the same search also reads the simulations of :data:`LM_JSON_INPUTS`:
``sim.json`` (``spikelut sim LM --json > DIR/sim.json``, or a language-model demo's sim
stage), ``run.json`` (the demo's run stage: the bitstream's design over the UART) and
``lm-board.json`` (``python bench/lm_board.py LM --json DIR/lm-board.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.integer_sequence import (
    INTEGER_LANGUAGE_MODELS,
    IntegerRNN,
    IntegerTransformer,
)
from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.ir.modelfile import ModelFileError, load_model
from spikelut.compiler.ir.sequence import SpikingRNN, TransformerLM

__all__ = ["JSON_INPUTS", "LM_JSON_INPUTS", "ReportError", "ReportInputs", "find_inputs"]

# attribute of ReportInputs -> the JSON file that fills it (its path goes in ``<attr>_path``)
JSON_INPUTS = {
    "manifest": "manifest.json",
    "build": "build-report.json",
    "board": "board.json",
    "summary": "summary.json",
    "energy": "energy.json",
}
# the same for a language model only (a classifier demo's sim.json and run.json are other
# figures, which a classifier's report does not read)
LM_JSON_INPUTS = {
    "sim": "sim.json",
    "run": "run.json",
    "bench": "lm-board.json",
}


_LM_ARCHS = tuple(cls.ARCH for cls in INTEGER_LANGUAGE_MODELS)


class ReportError(ValueError):
    """The report's input cannot be used; the message names the problem and the fix."""


@dataclass
class ReportInputs:
    """What was found for a report: the main model (integer preferred), its float original
    when present, and the optional compile, build and demo figures with their paths (and,
    for a language model, its simulations)."""

    model: ClassifierMLP | IntegerRNN | IntegerTransformer
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
    energy: dict | None = None
    energy_path: Path | None = None
    sim: dict | None = None
    sim_path: Path | None = None
    run: dict | None = None
    run_path: Path | None = None
    bench: dict | None = None
    bench_path: Path | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def is_language_model(self) -> bool:
        """True for an integer language model (RNN or transformer), False for a
        classifier."""
        return isinstance(self.model, INTEGER_LANGUAGE_MODELS)


def find_inputs(*sources: str | os.PathLike) -> ReportInputs:
    """Gather a report's inputs from ``.lutnet`` files and directories searched recursively
    (a demo, compile or build directory; e.g. a model file and its build directory). The
    integer model found first is the report's model (a float one when there is none), the
    first float model its float original; the first ``manifest.json``, ``build-report.json``,
    ``board.json`` and ``summary.json`` (shallowest first) fill their sections.

    A classifier found anywhere makes a classifier's report, unless a source named directly
    is an integer language model: then (or when the only models are integer language models)
    the report is the language model's, which reads :data:`LM_JSON_INPUTS` too. Raises
    :class:`ReportError` when no usable model is found, a file cannot be read or a compile
    or build directory is of another kind of model."""
    if not sources:
        raise ReportError("give a .lutnet model or a directory holding one")
    models: list[tuple[Path, ClassifierMLP]] = []
    rnns: list[tuple[Path, IntegerRNN | IntegerTransformer]] = []
    named: dict[str, Path] = {}  # "classifier" / "rnn" -> a model file given by name
    found: dict[str, Path] = {}
    for source in sources:
        src = Path(source)
        classifiers, lms = _models_in(src)
        models += classifiers
        rnns += lms
        if src.is_file():
            named.setdefault("rnn" if lms else "classifier", src)
        if src.is_dir():
            for name, path in _json_files_in(src).items():
                found.setdefault(name, path)
    inputs = _choose(models, rnns, named, sources)
    names = {**JSON_INPUTS, **LM_JSON_INPUTS} if inputs.is_language_model else JSON_INPUTS
    for attr, name in names.items():
        path = found.get(name)
        if path is not None:
            setattr(inputs, attr, _read_json(path))
            setattr(inputs, f"{attr}_path", path)
            inputs.files.append(path)
    _check_kinds(inputs)
    return inputs


def _choose(models: list, rnns: list, named: dict[str, Path], sources) -> ReportInputs:
    """The report's model among the classifiers ``models`` and integer RNNs ``rnns`` found
    (``named``: the model files given by name, by kind); see :func:`find_inputs`."""
    if len(named) > 1:
        raise ReportError(
            f"{named['classifier']} is a classifier and {named['rnn']} a language model; "
            "a report covers one model: give one of them"
        )
    if "rnn" in named or (rnns and not models):
        return ReportInputs(model=rnns[0][1], model_path=rnns[0][0], files=[rnns[0][0]])
    if models:
        return _pick_models(models)
    where = ", ".join(str(s) for s in sources)
    raise ReportError(
        f"no classifier or integer language-model .lutnet model in {where}; give the "
        "model file too, e.g. spikelut report MODEL BUILD_DIR"
    )


def _models_in(src: Path) -> tuple[list, list]:
    """The classifiers and the integer language models of ``src``: the file itself, or every
    ``.lutnet`` below the directory (shallowest first; models of other kinds are skipped in
    a directory)."""
    if not src.exists():
        raise ReportError(f"{src} does not exist; give a .lutnet model or a build directory")
    paths = [src] if src.is_file() else sorted(src.rglob("*.lutnet"), key=_depth)
    classifiers, rnns = [], []
    for path in paths:
        m = _load(path)
        if isinstance(m, ClassifierMLP):
            classifiers.append((path, m))
        elif isinstance(m, INTEGER_LANGUAGE_MODELS):
            rnns.append((path, m))
        elif src.is_file() and isinstance(m, (SpikingRNN, TransformerLM)):
            kind = "spiking RNN" if isinstance(m, SpikingRNN) else "LUT transformer"
            raise ReportError(
                f"{src} is a float {kind}; quantise it (spikelut quantize {src} --data "
                "TEXT -o LM.lutnet) and report on the integer model"
            )
        elif src.is_file():
            raise ReportError(
                f"{src} is a {m.ARCH} model; reports cover classifiers and integer "
                "language models (RNN or transformer)"
            )
    return classifiers, rnns


def _check_kinds(inputs: ReportInputs) -> None:
    """A compile manifest or a board build of another kind of model (or, for a language
    model, of another shape) is a :class:`ReportError`."""
    lm = inputs.is_language_model
    m, b = inputs.manifest, inputs.board
    if m is not None and (m.get("architecture") in _LM_ARCHS) != lm:
        raise ReportError(
            f"{inputs.manifest_path} is the compile manifest of "
            f"{'a classifier' if lm else 'a language model'}, not of {inputs.model_path}; "
            f"compile the model (spikelut compile {inputs.model_path} -o DIR) and report on DIR"
        )
    if b is not None and (b.get("model_kind") == "language_model") != lm:
        raise ReportError(
            f"{inputs.board_path} is the build of "
            f"{'a classifier' if lm else 'a language model'}, not of {inputs.model_path}; "
            f"build the model (spikelut build {inputs.model_path} --board BOARD -o DIR)"
        )
    if not lm:
        return
    model = inputs.model
    kind = "transformer" if isinstance(model, IntegerTransformer) else "RNN"
    if m is not None and m.get("architecture") != model.ARCH:
        raise ReportError(
            f"{inputs.manifest_path} is the compile manifest of another kind of language "
            f"model, not of {inputs.model_path} (a {kind}); compile the model (spikelut compile "
            f"{inputs.model_path} -o DIR) and report on DIR"
        )
    if b is not None and ("transformer_plan" in b) != isinstance(model, IntegerTransformer):
        raise ReportError(
            f"{inputs.board_path} is the build of another kind of language model, not of "
            f"{inputs.model_path} (a {kind}); build the model (spikelut build "
            f"{inputs.model_path} --board BOARD -o DIR)"
        )
    shape = f"vocabulary {model.vocab}, {model.dim} neurons"
    if m is not None and (m.get("vocab"), m.get("dim")) != (model.vocab, model.dim):
        raise ReportError(
            f"{inputs.manifest_path} is of a language model with vocabulary {m.get('vocab')}, "
            f"{m.get('dim')} neurons, not of {inputs.model_path} ({shape}); compile the model"
        )
    if b is not None and b.get("vocab") != model.vocab:
        raise ReportError(
            f"{inputs.board_path} is the build of a language model with vocabulary "
            f"{b.get('vocab')}, not of {inputs.model_path} ({shape}); build the model"
        )


def _json_files_in(root: Path) -> dict[str, Path]:
    """The shallowest file of each :data:`JSON_INPUTS` and :data:`LM_JSON_INPUTS` name
    below ``root``, by name."""
    found = {}
    for name in [*JSON_INPUTS.values(), *LM_JSON_INPUTS.values()]:
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
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ReportError(f"cannot read {path}: {e}; rebuild it or remove it") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path} holds no JSON object; rebuild it or remove it")
    return data


def _load(path: Path) -> Any:
    try:
        return load_model(path)
    except (ModelFileError, IRError, OSError, KeyError) as e:
        raise ReportError(f"cannot read {path}: {e}") from None


def _depth(p: Path) -> tuple:
    return (len(p.parts), str(p))
