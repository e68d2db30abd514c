"""The ``.lutnet`` model file: one versioned zip holding a JSON header and numpy arrays.

Layout of the zip:

- ``header.json``: ``{"format": "spikelut-lutnet", "schema": 1, "arch": ..., "model": {...},
  "arrays": {name: {"dtype", "shape", "sha256"}}, "spikelut_version": ...}``; ``model`` is the
  architecture's own header (shapes, training metadata, provenance).
- ``arrays/NAME.npy``: one ``.npy`` file per array (``NAME`` may contain ``/``).

Loading checks the container (each member named once), the schema version, every array's
dtype, shape and SHA-256 (and that a float array holds no NaN or infinity), and the
architecture's own consistency rules, and raises :class:`ModelFileError` (one line)
on any problem; nothing loads half. Saving is atomic and streams each array into the zip
(the default transformer's tables are about 3 GB: no second copy is made in memory).

A model file is untrusted input, so loading never allocates more than the header declares:
the header is at most :data:`MAX_HEADER_BYTES`, every array at most :data:`MAX_ARRAY_BYTES`
and all together at most :data:`MAX_MODEL_BYTES`; each member's uncompressed size (from the
zip directory) and its ``.npy`` header must agree with the header's dtype and shape before a
byte of data is read, and the data is read straight into the array (no second copy).
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import math
import os
import zipfile
import zlib
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
    "MAX_ARRAY_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_MODEL_BYTES",
    "SCHEMA",
    "ModelFileError",
    "load_model",
    "read_header",
    "save_model",
]

FORMAT = "spikelut-lutnet"
SCHEMA = 1

# bounds of what loading allocates (the default transformer's tables are about 3 GB)
MAX_HEADER_BYTES = 64 << 20
MAX_ARRAY_BYTES = 16 << 30
MAX_MODEL_BYTES = 32 << 30
# an .npy member is its header (magic, version, length, a padded dict: at most 64 KiB in
# versions 1.0, in practice 128 bytes) followed by the data
_NPY_HEADER_MAX = 1 << 16
_READ_CHUNK = 1 << 20  # zipfile copies what it reads: keep the copies small
_FINITE_CHUNK = 1 << 20  # elements checked for NaN and infinity at a time
# what zipfile raises for a container it cannot read: a bad structure, an unsupported zip
# version, compression method or encryption (NotImplementedError, RuntimeError), compressed
# data that does not inflate
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
    lzma.LZMAError,
)
# metadata every architecture may hold, and the JSON type it must have
_META_TYPES = {
    "dataset": (str, type(None)),
    "training": (dict, type(None)),
    "quantization": (dict, type(None)),
    "conversion": (dict, type(None)),
    "provenance": (dict, type(None)),
}

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
    except _ZIP_ERRORS as e:
        raise ModelFileError(f"{path}: not a readable .lutnet file ({e})") from None


def _check_header(zf: zipfile.ZipFile, path: Any) -> dict:
    names = zf.namelist()
    if len(names) != len(set(names)):
        twice = next(n for n in names if names.count(n) > 1)
        raise ModelFileError(
            f"{path}: the zip holds {twice!r} twice (which one is meant?); not a .lutnet "
            "file spikelut wrote"
        )
    try:
        info = zf.getinfo("header.json")
    except KeyError:
        raise ModelFileError(f"{path}: no header.json; not a .lutnet file") from None
    if info.file_size > MAX_HEADER_BYTES:
        raise ModelFileError(
            f"{path}: header.json is {info.file_size} bytes, more than a model header "
            f"({MAX_HEADER_BYTES} bytes at most); not a .lutnet file spikelut wrote"
        )
    try:
        top = json.loads(zf.read(info))
    except RecursionError:
        raise ModelFileError(f"{path}: corrupted header (nested too deeply)") from None
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
            cls = _arch_class(top.get("arch"))
            header = top.get("model")
            if not isinstance(header, dict):
                raise ModelFileError(f"{path}: the header's model must be an object")
            _check_meta(header.get("meta", {}), path)
            specs = _array_specs(top.get("arrays"), path)
            arrays = {name: _read_array(zf, name, *spec, path) for name, spec in specs.items()}
            return cls.from_arrays(header, arrays)
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except RecursionError as e:  # a RuntimeError, but not the zip's
        raise ModelFileError(f"{path}: inconsistent model file ({type(e).__name__}: {e})") from None
    except _ZIP_ERRORS as e:
        raise ModelFileError(f"{path}: not a readable .lutnet file ({e})") from None
    except (
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
        TypeError,
        ValueError,
    ) as e:
        raise ModelFileError(f"{path}: inconsistent model file ({type(e).__name__}: {e})") from None


def _check_meta(meta: Any, path: Any) -> None:
    """The metadata is an object, and the entries commands read have their JSON types."""
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: the model's meta must be an object, not {_json_kind(meta)}")
    for key, types in _META_TYPES.items():
        if key in meta and not isinstance(meta[key], types):
            raise ModelFileError(
                f"{path}: meta.{key} must be {' or '.join(_JSON_NAMES[t] for t in types)}, "
                f"not {_json_kind(meta[key])}"
            )


_JSON_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def _json_kind(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _array_specs(index: Any, path: Any) -> dict[str, tuple[np.dtype, tuple[int, ...], str, int]]:
    """``name -> (dtype, shape, sha256, bytes)`` from the header's ``arrays``, checked for
    types and against the size bounds before anything is read."""
    if not isinstance(index, dict):
        raise ModelFileError(
            f"{path}: the header's arrays must be an object (name -> dtype, shape, sha256), "
            f"not {_json_kind(index)}"
        )
    specs, total = {}, 0
    for name, spec in index.items():
        where = f"{path}: array {name!r}"
        if not isinstance(spec, dict):
            raise ModelFileError(f"{where}: its header entry must be an object")
        dtype, shape, sha = spec.get("dtype"), spec.get("shape"), spec.get("sha256")
        try:
            dt = np.dtype(dtype) if isinstance(dtype, str) else None
        except TypeError:
            dt = None
        if dt is None or dt.kind not in "biuf" or dt.str != dtype:
            raise ModelFileError(f"{where}: dtype {dtype!r} is not a numeric numpy dtype")
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise ModelFileError(f"{where}: shape {shape!r} is not a list of sizes")
        if not isinstance(sha, str):
            raise ModelFileError(f"{where}: no sha256 checksum")
        nbytes = math.prod(shape) * dt.itemsize
        total += nbytes
        if nbytes > MAX_ARRAY_BYTES or total > MAX_MODEL_BYTES:
            raise ModelFileError(
                f"{where}: shape {shape} declares {nbytes} bytes, more than a model holds "
                f"({MAX_ARRAY_BYTES} bytes an array, {MAX_MODEL_BYTES} in all)"
            )
        specs[name] = (dt, tuple(shape), sha, nbytes)
    return specs


class _HashingReader:
    """Reads from a stream and hashes what it read (what :func:`np.lib.format` reads the
    ``.npy`` header through)."""

    def __init__(self, fh, sha):
        self.fh, self.sha = fh, sha

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.sha.update(data)
        return data


def _read_npy_header(reader: _HashingReader, where: str) -> tuple[tuple, bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of an ``.npy`` stream, which is left at its data."""
    try:
        version = np.lib.format.read_magic(reader)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(reader)
        if version in ((2, 0), (3, 0)):
            return np.lib.format.read_array_header_2_0(reader)
        raise ValueError(f"unknown .npy version {version}")
    except ValueError as e:
        raise ModelFileError(f"{where}: not a readable .npy member ({e})") from None


def _read_array(
    zf: zipfile.ZipFile,
    name: str,
    dtype: np.dtype,
    shape: tuple[int, ...],
    sha256: str,
    nbytes: int,
    path: Any,
) -> np.ndarray:
    """One array, its size checked from the zip directory and its ``.npy`` header before the
    data is read into the one buffer it needs."""
    where = f"{path}: array {name!r}"
    try:
        info = zf.getinfo(f"arrays/{name}.npy")
    except KeyError:
        raise ModelFileError(
            f"{path}: inconsistent model file (array {name!r} is missing)"
        ) from None
    if not nbytes <= info.file_size <= nbytes + _NPY_HEADER_MAX:
        raise ModelFileError(
            f"{where}: the file holds {info.file_size} bytes for it, its header declares "
            f"{nbytes} bytes of data; the file is corrupted"
        )
    sha = hashlib.sha256()
    with zf.open(info) as fh:
        npy_shape, fortran, npy_dtype = _read_npy_header(_HashingReader(fh, sha), where)
        if npy_dtype.str != dtype.str or tuple(npy_shape) != shape:
            raise ModelFileError(f"{where} does not match its header")
        buf = np.empty(nbytes, np.uint8)
        view = memoryview(buf)
        pos = 0
        while pos < nbytes:
            n = fh.readinto(view[pos : pos + _READ_CHUNK])
            if not n:
                raise ModelFileError(f"{where}: the data ends early; the file is truncated")
            sha.update(view[pos : pos + n])
            pos += n
        if fh.read(1):
            raise ModelFileError(f"{where}: data beyond its shape; the file is corrupted")
    if sha.hexdigest() != sha256:
        raise ModelFileError(f"{where} is corrupted (checksum mismatch)")
    arr = buf.view(dtype)
    _check_finite(arr, where)
    return arr.reshape(shape, order="F" if fortran else "C")


def _check_finite(arr: np.ndarray, where: str) -> None:
    """ModelFileError when a float array holds NaN or infinity (checked a chunk at a time:
    no second array of the model's size)."""
    if arr.dtype.kind != "f":
        return
    for start in range(0, arr.size, _FINITE_CHUNK):
        if not np.isfinite(arr[start : start + _FINITE_CHUNK]).all():
            raise ModelFileError(
                f"{where} holds NaN or infinity; a model's numbers are finite (was it saved "
                "from a training run that diverged?)"
            )
