"""The package layout: six code folders installed under the namespace package spikelut."""

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["hdl", "compiler", "boards", "sim", "flows", "cli"]


@pytest.mark.parametrize("name", FOLDERS)
def test_subpackages_import_under_spikelut(name):
    module = importlib.import_module(f"spikelut.{name}")
    assert Path(module.__file__).resolve().parent == ROOT / name


@pytest.mark.parametrize("name", FOLDERS)
def test_folders_are_not_top_level_modules(name, tmp_path):
    # run from an unrelated folder so the checkout is not on sys.path
    proc = subprocess.run(
        [sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "ModuleNotFoundError" in proc.stderr


def test_every_code_folder_is_packaged():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packaged = set(config["packages"])
    for folder in FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            dotted = "spikelut." + ".".join(rel.parts)
            assert dotted in packaged, f"{rel} is a package but not listed in pyproject.toml"
    assert config["package-dir"] == {f"spikelut.{f}": f for f in FOLDERS}
