"""The .lutnet file: exact round trips, one-line errors for every bad file, atomic writes."""

import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikelut.compiler.ir.classifier import ClassifierMLP, InputEncoding, LayerQuant
from spikelut.compiler.ir.lut import LUTLayer
from spikelut.compiler.ir.modelfile import ModelFileError, load_model, read_header, save_model


def _random_classifier(rng, dims, n_tables, n_c, integer, float_dtype=np.float32):
    layers = []
    for k in range(len(dims) - 1):
        layer = LUTLayer.random(
            in_dim=dims[k], out_dim=dims[k + 1], n_tables=n_tables[k], n_c=n_c[k], rng=rng
        )
        shape = layer.tables.shape
        if integer:
            tables = rng.integers(-8, 8, size=shape)
        else:
            tables = rng.normal(size=shape).astype(float_dtype)
        layers.append(layer.with_tables(tables))
    enc = InputEncoding(
        offset=rng.normal(size=dims[0]),
        gain=rng.uniform(0.1, 3, size=dims[0]),
        bits=9,
        frac_bits=3,
    )
    quant = [LayerQuant(table_bits=4, in_shift=k, out_scale_log2=-k) for k in range(len(layers))]
    return ClassifierMLP(
        encoding=enc,
        layers=layers,
        n_classes=dims[-1],
        quant=quant if integer else None,
        class_names=[f"c{i}" for i in range(dims[-1])],
        meta={"dataset": "test", "seed": 3, "nested": {"acc": [0.5, 1.0]}, "note": "é"},
    )


def _assert_same(m1, m2):
    assert m2.n_classes == m1.n_classes and m2.class_names == m1.class_names
    assert m2.meta == m1.meta and m2.quant == m1.quant
    assert (m2.encoding.bits, m2.encoding.frac_bits) == (m1.encoding.bits, m1.encoding.frac_bits)
    np.testing.assert_array_equal(m2.encoding.offset, m1.encoding.offset)
    np.testing.assert_array_equal(m2.encoding.gain, m1.encoding.gain)
    assert len(m2.layers) == len(m1.layers)
    for l1, l2 in zip(m1.layers, m2.layers, strict=True):
        assert l2.tables.dtype == l1.tables.dtype and l2.residual == l1.residual
        assert l2.in_dim == l1.in_dim
        np.testing.assert_array_equal(l2.a, l1.a)
        np.testing.assert_array_equal(l2.b, l1.b)
        np.testing.assert_array_equal(l2.tables, l1.tables)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dims=st.lists(st.integers(2, 7), min_size=2, max_size=4),
    n_tables=st.lists(st.integers(1, 4), min_size=3, max_size=3),
    n_c=st.lists(st.integers(1, 5), min_size=3, max_size=3),
    integer=st.booleans(),
    float64=st.booleans(),
)
def test_round_trip_is_exact(seed, dims, n_tables, n_c, integer, float64):
    rng = np.random.default_rng(seed)
    model = _random_classifier(
        rng, dims, n_tables, n_c, integer, np.float64 if float64 else np.float32
    )
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.lutnet"
        save_model(model, path)
        again = load_model(path)
        assert read_header(path)["arch"] == "classifier"
    _assert_same(model, again)


@pytest.fixture
def saved(tmp_path):
    model = _random_classifier(np.random.default_rng(0), [5, 4, 3], [2, 3], [3, 2], False)
    path = tmp_path / "m.lutnet"
    save_model(model, path)
    return model, path


def _load_error(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        load_model(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_file(tmp_path):
    _load_error(tmp_path / "nope.lutnet", "no such model file")


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, 0.9, -1])
def test_truncated_file(saved, keep):
    _, path = saved
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path.write_bytes(data[:n])
    _load_error(path, str(path))


def _offset_of(data, name):
    # a stored (uncompressed) member's data follows its name in the local file header
    key = name.encode()
    pos = data.index(key)
    return pos + len(key)


@pytest.mark.parametrize("member", ["arrays/layers/1/tables.npy", "header.json"])
def test_flipped_byte(saved, member):
    _, path = saved
    data = bytearray(path.read_bytes())
    pos = _offset_of(data, member) + 200  # inside the member's data
    data[pos] ^= 0x10
    path.write_bytes(bytes(data))
    _load_error(path, "corrupt|Bad CRC|not a readable")


def _rewrite(path, edit_header=None, edit_arrays=None):
    """Rewrite a model file with an edited header / arrays (checksums not recomputed)."""
    with zipfile.ZipFile(path) as zf:
        top = json.loads(zf.read("header.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "header.json"}
    if edit_header:
        edit_header(top)
    if edit_arrays:
        edit_arrays(members)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("header.json", json.dumps(top))
        for n, data in members.items():
            zf.writestr(n, data)


def test_wrong_version(saved):
    _, path = saved
    _rewrite(path, lambda top: top.update(schema=99))
    msg = _load_error(path, "schema version 99")
    assert "re-create" in msg
    with pytest.raises(ModelFileError, match="schema version 99"):
        read_header(path)


def test_not_a_model_file(saved, tmp_path):
    _, path = saved
    _rewrite(path, lambda top: top.update(format="something-else"))
    _load_error(path, "not a spikelut model file")
    other = tmp_path / "x.lutnet"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("hello.txt", "hi")
    _load_error(other, "no header.json")


def test_inconsistent_header(saved):
    _, path = saved

    def bad_dim(top):
        top["model"]["layers"][1]["in_dim"] = 9  # anchors of layer 1 index 4 values

    _rewrite(path, bad_dim)
    _load_error(path, "inconsistent model file")


def test_missing_array(saved):
    _, path = saved
    _rewrite(path, edit_arrays=lambda m: m.pop("arrays/layers/0/a.npy"))
    _load_error(path, "inconsistent|not a readable")


def test_unknown_architecture(saved):
    _, path = saved
    _rewrite(path, lambda top: top.update(arch="perceptron"))
    _load_error(path, "unknown architecture 'perceptron'")


def test_atomic_write_keeps_old_file(saved):
    model, path = saved
    before = path.read_bytes()
    meta = model.meta
    model.meta = {"not json": object()}
    with pytest.raises(TypeError):
        save_model(model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.lutnet"]  # no temp left
    model.meta = meta
    _assert_same(model, load_model(path))


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os

    from spikelut.compiler.fileio import write_text_atomic

    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "report.html", "<html></html>")
    finally:
        os.umask(umask)
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == 0o644
