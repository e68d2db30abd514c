"""The sequence-model IR: validation on construction and model-file round trips."""

from __future__ import annotations

import numpy as np
import pytest

from spikelut.compiler.ir.lut import IRError
from spikelut.compiler.ir.modelfile import ModelFileError, load_model, save_model
from spikelut.compiler.ir.sequence import AttentionHead, SpikingRNN, TransformerLM

TINY = dict(context=8, dim=8, n_layers=1, n_heads=1, n_tables=2, n_c=3, n_pe=2)


def _tiny():
    m = TransformerLM.create(rng=np.random.default_rng(0), **TINY)
    m.attn_tables[:] = np.random.default_rng(1).normal(size=m.attn_tables.shape)
    return m


def _fields(m: TransformerLM) -> dict:
    return dict(m.to_arrays()[1])


def test_shapes_of_default_transformer():
    m = TransformerLM.create(rng=np.random.default_rng(0), n_layers=1, n_heads=1)
    assert (m.context, m.vocab, m.dim, m.n_tables, m.n_c, m.n_pe) == (32, 256, 32, 16, 6, 4)
    assert m.attn_tables.shape == (1, 1, 16, 1 << 16, 32)
    # the reference's six layers of four heads hold ~806 M values
    per_head = m.attn_tables[0, 0].size
    total = 24 * per_head + 6 * m.ffn_tables[0].size + m.unemb_tables.size
    assert 805e6 < total < 807e6
    assert np.all(np.abs(m.embedding) <= 1) and np.all(np.abs(m.pe) <= 1)
    assert not np.any(m.attn_a == m.attn_b)


def test_head_view_and_row_layout():
    m = _tiny()
    h = m.head(0, 0)
    assert isinstance(h, AttentionHead)
    assert np.shares_memory(h.tables, m.attn_tables)
    assert h.row(jq=0b101, jk=0b011, jpe=0b10) == (0b101 << 5) | (0b011 << 2) | 0b10
    assert m.ffn(0).residual and m.unembedder().out_dim == 256


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f["attn_b"].__setitem__((0, 0, 1, 2), f["attn_a"][0, 0, 1, 2]), "with itself"),
        (lambda f: f["ffn_a"].__setitem__((0, 1, 0), 8), "= 8 is out of range"),
        (lambda f: f.__setitem__("pe", f["pe"][..., :1].copy()), "attn_tables must have shape"),
        (lambda f: f.__setitem__("unemb_tables", f["unemb_tables"][:, :, :10]), "unemb_tables"),
    ],
)
def test_transformer_validation_quotes_value(change, message):
    f = {k: v.copy() for k, v in _fields(_tiny()).items()}
    change(f)
    with pytest.raises(IRError, match=message):
        TransformerLM(**f)


def test_n_c_range_is_checked():
    with pytest.raises(IRError, match=r"N_C must be 1\.\.16, not 17"):
        TransformerLM.create(rng=np.random.default_rng(0), n_c=17, n_pe=1)


def test_transformer_file_round_trip(tmp_path):
    m = _tiny()
    m.meta = {"training": {"step": 3}}
    for save in (save_model,):
        path = tmp_path / f"{save.__name__}.lutnet"
        save(m, path)
        back = load_model(path)
        assert isinstance(back, TransformerLM) and back.meta == m.meta
        for name, arr in _fields(m).items():
            np.testing.assert_array_equal(getattr(back, name), arr)
            assert getattr(back, name).dtype == arr.dtype


def test_rnn_file_round_trip_and_semantics_check(tmp_path):
    m = SpikingRNN.create(rng=np.random.default_rng(3), dim=16, n_tables=4, n_c=5)
    m.cell.tables[:] = 0.5
    save_model(m, tmp_path / "r.lutnet")
    back = load_model(tmp_path / "r.lutnet")
    assert isinstance(back, SpikingRNN) and back.context == 32
    np.testing.assert_array_equal(back.cell.tables, m.cell.tables)
    np.testing.assert_array_equal(back.unembedder.a, m.unembedder.a)
    np.testing.assert_array_equal(back.embedding, m.embedding)
    with pytest.raises(IRError, match="square non-residual"):
        SpikingRNN(embedding=m.embedding, cell=m.unembedder, unembedder=m.unembedder)


def test_corrupted_file_gives_one_line_error(tmp_path):
    path = tmp_path / "m.lutnet"
    save_model(_tiny(), path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert "\n" not in str(e.value)
