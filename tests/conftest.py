"""Shared fixtures."""

import pytest


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory):
    """One build folder for the toolchain smoke checks, shared so Verilator builds once."""
    return tmp_path_factory.mktemp("smoke")
