"""The ``.lutnet`` model file: one versioned zip holding a JSON header and numpy arrays.

Layout of the zip:

- ``header.json``: ``{"format": "spikelut-lutnet", "schema": 1, "arch": ..., "model": {...},
  "arrays": {name: {"dtype", "shape", "sha256"}}, "spikelut_version": ...}``; ``model`` is the
  architecture's own header (shapes, training metadata, provenance).
- ``arrays/NAME.npy``: one ``.npy`` file per array (``NAME`` may contain ``/``).

Loading checks the container, the schema version, every array's dtype, shape and SHA-256,
and the architecture's own consistency rules, and raises :class:`ModelFileError` (one line)
on any problem; nothing loads half. Saving is atomic and streams each array into the zip
(the default transformer's tables are about 3 GB: no second copy is made in memory).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from spikelut.compiler.fileio import atomic_path
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.integer_sequence import IntegerRNN, IntegerTransformer
from spikelut.compiler.ir.sequence import SpikingRNN, TransformerLM

__all__ = [
    "ARCHITECTURES",
    "FORMAT",
    "SCHEMA",
    "ModelFileError",
    "load_model",
    "read_header",
    "save_model",
]

FORMAT = "spikelut-lutnet"
SCHEMA = 1

# arch name -> IR class; each has ARCH, to_arrays() and from_arrays(header, arrays)
ARCHITECTURES: dict[str, type] = {
    cls.ARCH: cls
    for cls in (ClassifierMLP, TransformerLM, SpikingRNN, IntegerRNN, IntegerTransformer)
}


class ModelFileError(ValueError):
    """A model file could not be read or written; the message is one line."""


def _arch_class(arch: str) -> type:
    try:
        return ARCHITECTURES[arch]
    except (KeyError, TypeError):
        raise ModelFileError(
            f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None


def _version() -> str:
    try:
        return version("spikelut")
    except PackageNotFoundError:
        return "unknown"


class _HashingWriter(io.RawIOBase):
    """A write-only stream that passes bytes on and hashes them on the way."""

    def __init__(self, fh):
        self.fh = fh
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.sha.update(b)
        return self.fh.write(b)


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Write ``model`` (any architecture of :data:`ARCHITECTURES`) to ``path`` atomically,
    streaming each array into the zip; the header, with every array's SHA-256, comes last."""
    header, arrays = model.to_arrays()
    index = {}
    with (
        atomic_path(path) as tmp,
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf,
    ):
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            with zf.open(f"arrays/{name}.npy", "w", force_zip64=True) as fh:
                w = _HashingWriter(fh)
                np.lib.format.write_array(w, arr, allow_pickle=False)
            index[name] = {
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "sha256": w.sha.hexdigest(),
            }
        top = {
            "format": FORMAT,
            "schema": SCHEMA,
            "arch": model.ARCH,
            "spikelut_version": _version(),
            "model": header,
            "arrays": index,
        }
        zf.writestr("header.json", json.dumps(top, indent=1, sort_keys=True))


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
