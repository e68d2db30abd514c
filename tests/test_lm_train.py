"""LM training: protocol, schedule, checkpoint/resume, sampling and the CLI."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from spikelut.cli.main import main
from spikelut.compiler.errors import UserError
from spikelut.compiler.frontend.text import load_text, make_split
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.compiler.train.lm import (
    LMTrainConfig,
    learning_rate,
    new_model,
    sample_text,
    train_lm,
)

TINY = dict(context=8, dim=8, n_layers=1, n_heads=1, n_tables=2, n_c=3, n_pe=2)


def _text(n: int = 20_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    words = [b"def ", b"self", b"return ", b"x = ", b"(a, b)", b":\n    ", b"import os\n"]
    out = b"".join(words[i] for i in rng.integers(0, len(words), n // 4))
    return np.frombuffer(bytearray(out[:n]), np.uint8)


def test_learning_rate_schedule():
    assert learning_rate(0) == 0
    assert learning_rate(2000) == pytest.approx(2000 / 4000 / math.sqrt(4000), rel=1e-6)
    assert learning_rate(4000) == pytest.approx(1 / math.sqrt(4001), rel=1e-6)
    assert learning_rate(10_000) == pytest.approx(1 / math.sqrt(10_001), rel=1e-6)
    assert learning_rate(3999) < learning_rate(4000) > learning_rate(4001)


def test_split_reserves_neighbourhood_of_validation_windows():
    data = _text()
    split = make_split(data, 8, 50, np.random.default_rng(0))
    assert split.n_starts == len(data) - 9
    for v in split.val_starts[:10]:
        assert split.reserved[max(0, v - 8) : v + 9].all()
    rng = np.random.default_rng(1)
    starts = np.array([split.draw_train_start(rng) for _ in range(500)])
    dist = np.abs(starts[:, None] - split.val_starts[None, :]).min(axis=1)
    assert dist.min() > 8  # no training window overlaps a validation window
    with pytest.raises(UserError, match="too short"):
        make_split(data[:30], 8, 5, rng)


def test_load_text_gz(tmp_path):
    (tmp_path / "t.txt.gz").write_bytes(gzip.compress(b"hello world"))
    assert load_text(tmp_path / "t.txt.gz").tobytes() == b"hello world"
    with pytest.raises(UserError, match="no such text file"):
        load_text(tmp_path / "missing.txt")


def _cfg(steps, **kw):
    base = dict(steps=steps, seed=3, val_every=20, val_windows=30, log_every=20, sample_bytes=4)
    base.update(kw)
    return LMTrainConfig(**base)


@pytest.mark.parametrize("arch", ["transformer", "rnn"])
def test_resume_equals_uninterrupted_run(tmp_path, arch):
    shape = TINY if arch == "transformer" else dict(context=8, dim=8, n_tables=3, n_c=3)
    data = _text()
    full = new_model(arch, 3, **shape)
    r_full = train_lm(full, data, _cfg(60))
    part = new_model(arch, 3, **shape)
    ckpt = tmp_path / "run.ckpt"
    train_lm(part, data, _cfg(40), checkpoint=ckpt)
    resumed = load_model(ckpt)
    assert resumed.meta["training"]["step"] == 40
    r_res = train_lm(resumed, data, _cfg(60), state=resumed.meta["training"])
    assert r_res.val == r_full.val
    assert [s for s, _ in r_full.val] == [0, 20, 40, 60]
    for (name, a), (_, b) in zip(
        sorted(full.to_arrays()[1].items()), sorted(resumed.to_arrays()[1].items()), strict=True
    ):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert r_full.val[-1][1] < r_full.val[0][1]  # it learned something


def test_seed_reproducible_and_seed_matters():
    data = _text()
    runs = []
    for seed in (3, 3, 4):
        m = new_model("transformer", seed, **TINY)
        runs.append(train_lm(m, data, _cfg(20, seed=seed, sample_bytes=0)).val)
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_resume_with_other_seed_is_refused(tmp_path):
    data = _text()
    m = new_model("transformer", 3, **TINY)
    train_lm(m, data, _cfg(20), checkpoint=tmp_path / "c")
    back = load_model(tmp_path / "c")
    with pytest.raises(UserError, match="another --seed"):
        train_lm(back, data, _cfg(40, seed=4), state=back.meta["training"])


def test_sampling_is_bytes_and_argmax_deterministic():
    m = new_model("rnn", 0, context=8, dim=8, n_tables=2, n_c=3)
    m.unembedder.tables[:, :, ord("q")] = 1.0
    assert sample_text(m, b"ab", 5, temperature=0) == b"qqqqq"
    out = sample_text(m, b"", 7, rng=np.random.default_rng(0))
    assert isinstance(out, bytes) and len(out) == 7


def test_cli_sample(tmp_path, capsysbinary):
    m = new_model("transformer", 0, **TINY)
    m.unemb_tables[:, :, ord("z")] = 1.0
    save_model(m, tmp_path / "m.lutnet")
    assert (
        main(
            [
                "sample",
                str(tmp_path / "m.lutnet"),
                "--prompt",
                "ab",
                "--bytes",
                "3",
                "--temperature",
                "0",
            ]
        )
        == 0
    )
    assert capsysbinary.readouterr().out == b"abzzz\n"
    assert main(["sample", str(tmp_path / "missing.lutnet")]) == 2


def test_cli_train_lm_and_resume(tmp_path, capsys):
    text = tmp_path / "t.txt.gz"
    text.write_bytes(gzip.compress(_text().tobytes()))
    model = tmp_path / "m.lutnet"
    shape = ["--context", "8", "--dim", "8", "--layers", "1", "--heads", "1"]
    shape += ["--n-tables", "2", "--n-c", "3", "--n-pe", "2"]
    common = ["train", "lm", "--text", str(text), "--val-every", "10", "--val-windows", "20"]
    common += ["--sample-bytes", "0", "--seed", "2", *shape, "--json"]
    assert main([*common, "--steps", "20", "-o", str(model), "--csv", str(tmp_path / "v.csv")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [v["step"] for v in out["val"]] == [0, 10, 20]
    assert (tmp_path / "v.csv").read_text().splitlines()[0] == "step,val_loss"
    assert load_model(model).meta["training"]["step"] == 20
    ckpt = tmp_path / "m.lutnet.ckpt"
    assert main([*common, "--steps", "30", "--resume", str(ckpt), "-o", str(model)]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert [v["step"] for v in resumed["val"]] == [0, 10, 20, 30]
    assert resumed["val"][:3] == out["val"]
    assert main([*common, "--steps", "30", "--resume", str(ckpt), "--arch", "rnn"]) == 2
