"""The ``.lutnet`` model file: one versioned zip holding a JSON header and numpy arrays.

Layout of the zip:

- ``header.json``: ``{"format": "spikelut-lutnet", "schema": 1, "arch": ..., "model": {...},
  "arrays": {name: {"dtype", "shape", "sha256"}}, "spikelut_version": ...}``; ``model`` is the
  architecture's own header (shapes, training metadata, provenance).
- ``arrays/NAME.npy``: one ``.npy`` file per array (``NAME`` may contain ``/``).

Loading checks the container, the schema version, every array's dtype, shape and SHA-256,
and the architecture's own consistency rules, and raises :class:`ModelFileError` (one line)
on any problem; nothing loads half. Saving is atomic.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import zipfile
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from .fileio import atomic_path

FORMAT = "spikelut-lutnet"
SCHEMA = 1

# arch name -> "module:Class"; each class has ARCH, to_arrays() and from_arrays(header, arrays).
ARCHITECTURES = {
    "classifier": "spikelut.compiler.ir:ClassifierMLP",
    "transformer": "spikelut.compiler.seqmodels:TransformerLM",
    "rnn": "spikelut.compiler.seqmodels:SpikingRNN",
    "rnn-int": "spikelut.compiler.intseq:IntegerRNN",
    "transformer-int": "spikelut.compiler.intseq:IntegerTransformer",
}


class ModelFileError(ValueError):
    """A model file could not be read or written; the message is one line."""


def _arch_class(arch: str) -> type:
    try:
        module, name = ARCHITECTURES[arch].split(":")
    except KeyError:
        raise ModelFileError(
            f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None
    return getattr(importlib.import_module(module), name)


def _version() -> str:
    try:
        return version("spikelut")
    except PackageNotFoundError:
        return "unknown"


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Write ``model`` (any registered IR architecture) to ``path`` atomically."""
    header, arrays = model.to_arrays()
    index = {}
    payload = {}
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        data = buf.getvalue()
        index[name] = {
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        payload[name] = data
    top = {
        "format": FORMAT,
        "schema": SCHEMA,
        "arch": model.ARCH,
        "spikelut_version": _version(),
        "model": header,
        "arrays": index,
    }
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("header.json", json.dumps(top, indent=1, sort_keys=True))
        for name, data in payload.items():
            zf.writestr(f"arrays/{name}.npy", data)


def read_header(path: str | os.PathLike) -> dict:
    """The top-level header of a model file, checked for format and schema version."""
    try:
        with zipfile.ZipFile(path) as zf:
            return _check_header(zf, path)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ModelFileError(f"{path}: not a readable .lutnet file ({e})") from None


def _check_header(zf: zipfile.ZipFile, path: Any) -> dict:
    try:
        top = json.loads(zf.read("header.json"))
    except KeyError:
        raise ModelFileError(f"{path}: no header.json; not a .lutnet file") from None
    except (ValueError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"{path}: corrupted header ({e})") from None
    if not isinstance(top, dict) or top.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a spikelut model file")
    if top.get("schema") != SCHEMA:
        raise ModelFileError(
            f"{path}: schema version {top.get('schema')!r}, this spikelut reads version {SCHEMA}; "
            "re-create the model with this version"
        )
    return top


def load_model(path: str | os.PathLike) -> Any:
    """Read a model file written by :func:`save_model`; raises :class:`ModelFileError`."""
    try:
        with zipfile.ZipFile(path) as zf:
            top = _check_header(zf, path)
            arrays = {}
            for name, spec in top["arrays"].items():
                data = zf.read(f"arrays/{name}.npy")
                if hashlib.sha256(data).hexdigest() != spec["sha256"]:
                    raise ModelFileError(f"{path}: array {name!r} is corrupted (checksum mismatch)")
                arr = np.load(io.BytesIO(data), allow_pickle=False)
                if arr.dtype.str != spec["dtype"] or list(arr.shape) != spec["shape"]:
                    raise ModelFileError(f"{path}: array {name!r} does not match its header")
                arrays[name] = arr
            cls = _arch_class(top["arch"])
            return cls.from_arrays(top["model"], arrays)
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ModelFileError(f"{path}: not a readable .lutnet file ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: inconsistent model file ({type(e).__name__}: {e})") from None
