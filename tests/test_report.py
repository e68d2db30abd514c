"""``spikelut report``: figures, missing-data sections, self-containment, and rendering in a
real headless browser (Debian's chromium, which .ci/run installs)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spikelut.cli.main import main
from spikelut.compiler.analysis.energy import build_energy
from spikelut.compiler.analysis.figures import spike_times
from spikelut.compiler.analysis.inputs import find_inputs
from spikelut.compiler.analysis.render import SECTIONS
from spikelut.compiler.analysis.report import write_report
from spikelut.compiler.backend.cores import CoreKind
from spikelut.compiler.backend.manifest import manifest
from spikelut.compiler.backend.network import build_network
from spikelut.compiler.backend.placement import LayerPlan
from spikelut.compiler.frontend.datasets import load_dataset
from spikelut.compiler.ir.modelfile import load_model, save_model
from spikelut.compiler.ir.operations import versus_dense
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.passes.widths import infer_widths
from spikelut.compiler.train.classifier import train_on_dataset

PLOTTED = ("layers", "memory", "resources", "operations", "throughput", "confusion", "raster")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    """A small float digits classifier and its integer version, on disk."""
    root = tmp_path_factory.mktemp("models")
    data = load_dataset("digits")
    fmodel = train_on_dataset(data, n_tables=8, n_c=4, epochs=2)
    qmodel = quantize_classifier(fmodel, calib_raw=data.X_train)
    save_model(fmodel, root / "float.lutnet")
    save_model(qmodel, root / "model.lutnet")
    return root / "float.lutnet", root / "model.lutnet"


@pytest.fixture(scope="module")
def full_dir(models, tmp_path_factory) -> Path:
    """A directory with both models, a compile manifest and a board build's report."""
    root = tmp_path_factory.mktemp("full")
    fpath, qpath = models
    shutil.copy(fpath, root / "float.lutnet")
    (root / "compile").mkdir()
    shutil.copy(qpath, root / "compile" / "model.lutnet")
    q = load_model(qpath)
    net = build_network(q, LayerPlan(tables_per_cycle=2, lanes=5))
    man = manifest(net, CoreKind.PARALLEL, infer_widths(q))
    man.update(target="ice40-up5k", block_rams=3, sprams=0)
    (root / "compile" / "manifest.json").write_text(json.dumps(man))
    (root / "build").mkdir()
    build = {
        "board": "icebreaker",
        "family": "ice40",
        "bitstream": "build/spikelut.bin",
        "resources": {
            "logic_cells": {"used": 2345, "available": 5280},
            "block_rams": {"used": 7, "available": 30},
            "sprams": {"used": 0, "available": 4},
        },
        "fmax_mhz": {"cd_sync.clk": 31.5},
        "target_mhz": 12.0,
        "timing_met": True,
        "fits": True,
        "ok": True,
        "seconds": 40.0,
        "suggestion": "",
        "log": "build/spikelut.tim",
    }
    (root / "build" / "build-report.json").write_text(json.dumps(build))
    board_json = {
        "board": "icebreaker",
        "device": "iCE40UP5K",
        "indexer": "parallel",
        "resources": build["resources"],
        "cycles_per_inference": man["cycles_per_inference"],
        "target_mhz": 12.0,
        "timing_met": True,
        "fits": True,
        "bitstream": "build/spikelut.bin",
    }
    (root / "build" / "board.json").write_text(json.dumps(board_json))
    # bench/energy_per_inference.py --json: the LUT build beside a MAC build, from activity
    mac_json = {**board_json, "baseline": "mac", "cycles_per_inference": 339}
    rows = [build_energy(board_json, 12.7), build_energy(mac_json, 20.8)]
    (root / "build" / "energy.json").write_text(json.dumps({"builds": rows}))
    return root


@given(arrays(np.int64, st.integers(2, 40), elements=st.integers(-5, 5)))
def test_spike_times_follow_value_order(x):
    t = spike_times(x)
    assert t[np.argmax(x)] == 0
    i, j = np.meshgrid(np.arange(len(x)), np.arange(len(x)))
    # larger fires strictly earlier, equal fires together; times are dense ranks
    assert np.all((x[i] > x[j]) == (t[i] < t[j]))
    assert np.all((x[i] == x[j]) == (t[i] == t[j]))
    assert t.max() == len(np.unique(x)) - 1


def test_operations_follow_the_manifesto_accounting(models):
    # the report's figures are spikelut.compiler.ir.operations' count (see its docstring):
    # the argmax's comparisons, N_T - 1 row additions, the dense ANN's 10 biases
    q = load_model(models[1])
    ops = versus_dense(q)["total"]
    (layer,) = q.layers
    bits = q.quant[0].table_bits
    assert ops["lut_rows_read"] == layer.n_tables
    assert ops["lut_comparisons"] == layer.n_tables * layer.n_c + q.n_classes - 1
    assert ops["lut_additions"] == (layer.n_tables - 1) * 10
    assert ops["lut_bits_read"] == layer.n_tables * 10 * bits
    assert ops["lut_multiplications"] == 0
    assert ops["ann_macs"] == ops["ann_parameters_read"] - 10 == 64 * 10
    assert ops["ann_bits_read"] == (64 * 10 + 10) * 8


@pytest.mark.slow
def test_a_float_model_alone_says_what_is_missing(models, tmp_path):
    out = tmp_path / "r.html"
    r = write_report(models[0], out)
    page = out.read_text()
    for sid, heading in SECTIONS:
        assert f'<section id="{sid}"><h2>{heading}</h2>' in page
    assert set(r["missing"]) >= {"memory", "resources", "throughput"}
    assert "spikelut compile" in page and "spikelut build" in page
    assert r["classification"]["which"] == "float"


@pytest.mark.slow
def test_a_full_directory_fills_every_section(full_dir, tmp_path):
    inputs = find_inputs(full_dir)
    assert inputs.model.is_integer and inputs.float_model is not None
    out = tmp_path / "r.html"
    r = write_report(full_dir, out)
    page = out.read_text()
    assert r["missing"] == []
    c = r["classification"]
    assert sum(map(sum, c["confusion"])) == c["n"] == 450
    assert np.trace(np.array(c["confusion"])) == round(c["accuracy"] * c["n"])
    assert "2,345" in page and "31.5 MHz" in page
    # energy: the build's own estimate from its cells, and energy.json's two cores
    e = r["energy"]["build"]["energy"]
    assert e["uj_low"] < e["uj"] < e["uj_high"]
    assert f"{e['uj']:.3g} uJ per inference" in page
    lut, mac = r["energy"]["compared"]
    assert mac["core"] == "mac" and lut["energy_from_activity"]["toggles_per_bit"] == 12.7
    assert f"{mac['energy_from_activity']['uj']:.3g} (" in page
    # self-contained: no external resource of any kind
    assert not re.search(r'(src|href)\s*=\s*"(?!data:)', page)
    assert "<script" not in page and "<link" not in page
    for m in re.finditer(r'src="data:image/png;base64,([^"]+)"', page):
        assert base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_cli(models, full_dir, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", str(models[1]), "-o", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["output"] == str(out) and out.stat().st_size > 10_000
    assert set(r["missing_sections"]) >= {"memory", "resources"}
    # a model file with a separate build directory (which holds no model)
    build = full_dir / "build"
    assert main(["report", str(models[1]), str(build), "-o", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert "resources" not in r["missing_sections"] and "memory" in r["missing_sections"]
    assert main(["report", str(build), "-o", str(out)]) == 2
    assert "give the model file too" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing"), "-o", str(out)]) == 2
    assert main(["report", str(tmp_path), "-o", str(out)]) == 2  # no model in it
    assert "no classifier" in capsys.readouterr().err


# -- a real browser ---------------------------------------------------------------------------


def _find_chromium() -> str:
    """Debian's chromium (/usr/bin/chromium, else ``chromium`` on PATH), which .ci/run
    installs; the test fails (not skips) when it is absent, since CI has it."""
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "chromium is not installed: .ci/run installs it (apt-get install -y chromium); "
            "install it to run the browser test"
        )
    return found


def _browser(chromium: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )


# Run by the test only, on a copy of the report: write every image's decoded size into the DOM.
_PROBE = """<script>
window.addEventListener('load', () => {
  for (const img of document.images) {
    img.setAttribute('data-w', img.naturalWidth);
    img.setAttribute('data-h', img.naturalHeight);
  }
  document.body.setAttribute('data-probed', 'yes');
});
</script></body>"""


@pytest.mark.slow
def test_every_section_renders_in_chromium(full_dir, tmp_path):
    chromium = _find_chromium()
    page = tmp_path / "report.html"
    write_report(full_dir, page)
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", _PROBE))
    res = _browser(chromium, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    dom = res.stdout
    assert 'data-probed="yes"' in dom, res.stderr[-2000:]
    for sid, heading in SECTIONS:
        m = re.search(rf'<section id="{sid}"><h2>(.*?)</h2>(.*?)</section>', dom, re.S)
        assert m and m.group(1) == heading
        if sid in PLOTTED:
            sizes = re.findall(r'<img[^>]*data-w="(\d+)" data-h="(\d+)"', m.group(2))
            assert sizes, f"section {sid} has no decoded image"
            assert all(int(w) > 100 and int(h) > 100 for w, h in sizes), (sid, sizes)
    shot = tmp_path / "shot.png"
    res = _browser(
        chromium,
        "--hide-scrollbars",
        "--window-size=1100,3000",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    assert shot.exists() and shot.stat().st_size > 50_000, res.stderr[-2000:]
