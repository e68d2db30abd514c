# amaranth: UnusedElaboratable=no
"""``spikelut compile``: Verilog, RTLIL and a manifest that fits the target, or a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spikelut.compiler.backend import bank_blocks, fit_plans, lane_blocks
from spikelut.compiler.cli import main
from spikelut.compiler.ir import ClassifierMLP, InputEncoding, LayerQuant, LUTLayer
from spikelut.compiler.modelfile import save_model
from spikelut.hdl.bank import Storage


def digits_like(rng, n_t=16, n_c=6, hidden=32):
    layers = []
    for d_in, d_out in ((64, hidden), (hidden, 10)):
        layer = LUTLayer.random(in_dim=d_in, out_dim=d_out, n_tables=n_t, n_c=n_c, rng=rng)
        layers.append(layer.with_tables(rng.integers(-8, 8, layer.tables.shape)))
    quant = [LayerQuant(table_bits=4), LayerQuant(table_bits=4)]
    return ClassifierMLP(InputEncoding.identity(64, bits=6), layers, 10, quant=quant)


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "digits-int.lutnet"
    save_model(digits_like(np.random.default_rng(40)), path)
    return path


def test_compile_fits_the_up5k(model_path, tmp_path, capsys):
    out = tmp_path / "core"
    assert main(["compile", str(model_path), "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((out / "manifest.json").read_text())
    assert "module spikelut_core" in (out / "core.v").read_text()
    assert (out / "core.il").read_text().startswith(("attribute", "autoidx", "module"))
    assert 0 < result["block_rams"] <= 30
    assert result["cycles_per_inference"] == max(
        layer["cycles_per_inference"] for layer in result["layers"]
    )
    assert result["compile_seconds"] < 10
    for layer in result["layers"]:
        assert layer["load_at_boot"] == (layer["storage"] == "spram")


def test_compile_with_spram_instantiates_sb_spram(model_path, tmp_path):
    out = tmp_path / "core"
    args = ["compile", str(model_path), "-o", str(out), "--storage", "spram"]
    assert main([*args, "--tables-per-cycle", "1", "--lanes", "4"]) == 0
    assert (out / "core.v").read_text().count("SB_SPRAM256KA") == 2
    assert json.loads((out / "manifest.json").read_text())["sprams"] == 2


def test_compile_refuses_what_does_not_fit(model_path, tmp_path, capsys):
    out = tmp_path / "core"
    args = ["compile", str(model_path), "-o", str(out), "--tables-per-cycle", "16"]
    assert main([*args, "--lanes", "32"]) == 2
    assert "block RAMs" in capsys.readouterr().err
    assert (
        main(
            [
                "compile",
                str(model_path),
                "-o",
                str(out),
                "--target",
                "ice40-hx8k",
                "--storage",
                "spram",
            ]
        )
        == 2
    )
    assert "has no SPRAM" in capsys.readouterr().err
    assert not out.exists() or not (out / "core.v").exists()


def test_fit_reports_the_shortfall():
    model = digits_like(np.random.default_rng(41), n_t=32, n_c=8, hidden=64)
    with pytest.raises(
        ValueError,
        match=r"need at least 592 block RAMs \(or SPRAMs beyond the 0 there are\), the target has 30",
    ):
        fit_plans(model, family="ice40", block_rams=30)
    with pytest.raises(ValueError, match="beyond the 4 there are"):
        fit_plans(model, family="ice40", block_rams=30, sprams=4)
    plans = fit_plans(
        digits_like(np.random.default_rng(42)), family="ice40", block_rams=30, sprams=4
    )
    assert [p.storage for p in plans] == [Storage.SPRAM, Storage.BRAM]


def test_block_estimates():
    assert lane_blocks(16, 256, "ice40") == 1
    assert lane_blocks(4, 1024, "ice40") == 1
    assert lane_blocks(24, 300, "ice40") == 3  # 3 x 512x8 beats 2 x 2 x 256x16
    assert bank_blocks(4, 4, 3, 8, 2, 3, Storage.SPRAM, "ice40") == (0, 4)
    assert bank_blocks(4, 4, 3, 8, 2, 3, Storage.LOGIC, "ice40") == (0, 0)
