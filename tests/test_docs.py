"""The documentation site in docs/: it builds with warnings as errors, its examples run, and
its guides cover every command and every core kind.

Conventions the tests read from the Markdown sources: a ```` ```console ```` block holds
``$ spikelut ...`` lines that are cheap enough to run here, in order, in one temporary
directory; a ```` ```sh ```` block holds commands that need boards, long tool runs or files
the reader has, and each of its ``spikelut ...`` lines must parse with the real argument
parser; Python examples are ```` ```{doctest} ```` blocks, run by ``sphinx-build -b doctest``.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
from sphinx.cmd.build import build_main

from spikelut.cli.main import build_parser, main
from spikelut.compiler.backend.cores import CoreKind

DOCS = Path(__file__).resolve().parents[1] / "docs"
# the hand-written guides (the command reference page is generated, so it proves nothing)
GUIDES = [DOCS / "getting-started.md", *sorted((DOCS / "guides").glob("*.md"))]
PAGES = sorted(DOCS.glob("*.md")) + sorted((DOCS / "guides").glob("*.md"))
_FENCE = re.compile(r"^(`{3,})\s*([^\s`]*)\s*$")


def code_blocks(path: Path, language: str) -> list[list[str]]:
    """The lines of every fenced block of ``language`` in a Markdown file."""
    blocks, fence, lang, body = [], None, None, []
    for line in path.read_text().splitlines():
        m = _FENCE.match(line)
        if fence is None:
            if m:
                fence, lang, body = m.group(1), m.group(2), []
        elif m and m.group(1) == fence and not m.group(2):
            if lang == language:
                blocks.append(body)
            fence = None
        else:
            body.append(line)
    return blocks


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command of the CLI's parser by name (``train classifier`` and ``train lm``
    beside ``train``), found by walking the parser, not from a list."""

    def children(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    found = {}
    for name, sub in children(build_parser()).items():
        found[name] = sub
        found.update({f"{name} {inner}": p for inner, p in children(sub).items()})
    return found


@pytest.mark.slow
# myst-parser 5.2 still reads an attribute Sphinx 9 deprecates; nothing of ours
@pytest.mark.filterwarnings("ignore:.*Check CHANGES for Sphinx API modifications")
def test_site_builds_with_warnings_as_errors_and_its_doctests_pass(tmp_path):
    doctrees = tmp_path / "doctrees"
    html_warnings = tmp_path / "html-warnings.txt"
    options = ["-W", "--keep-going", "-q", "-b", "html", "-d", str(doctrees)]
    status = build_main([*options, "-w", str(html_warnings), str(DOCS), str(tmp_path / "html")])
    assert status == 0, html_warnings.read_text()
    html = tmp_path / "html"
    for page in PAGES:
        assert (html / page.relative_to(DOCS)).with_suffix(".html").is_file(), page
    # autodoc rendered the components with their constructors' signatures, and the
    # directives their tables
    hdl = (html / "api" / "hdl.html").read_text()
    assert 'id="spikelut.hdl.layer.Network"' in hdl and "src_loc_at" not in hdl, "signatures"
    assert "ice40-up5k" in (html / "guides" / "cores.html").read_text()
    assert "icebreaker" in (html / "guides" / "boards.html").read_text()
    commands = (html / "commands.html").read_text()
    for name in subcommand_parsers():
        assert f"spikelut {name}" in commands, name

    # the doctest builder reads the environment the html build pickled
    out = tmp_path / "doctest"
    status = build_main(["-W", "-q", "-b", "doctest", "-d", str(doctrees), str(DOCS), str(out)])
    report = (out / "output.txt").read_text()
    assert status == 0, report
    ran = int(re.search(r"^\s*(\d+) tests$", report, re.M).group(1))
    assert ran >= 40 and "0 failures in tests" in report, report


def test_every_sh_example_parses_with_the_real_parser():
    parser = build_parser()
    lines = [
        line.strip()
        for page in PAGES
        for block in code_blocks(page, "sh")
        for line in block
        if line.strip().startswith("spikelut ")
    ]
    assert len(lines) > 60
    for line in lines:
        argv = shlex.split(line)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit:  # --help and friends exit 0
            pytest.fail(f"{line!r} exits while parsing")
        except Exception as e:  # the CLI's parser raises on a bad command line
            pytest.fail(f"{line!r} does not parse: {e}")


@pytest.mark.slow
def test_every_console_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    commands = [
        line.strip()[2:]
        for page in PAGES
        for block in code_blocks(page, "console")
        for line in block
        if line.strip().startswith("$ ")
    ]
    assert commands, "no console example"
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "spikelut", command
        status = main(argv[1:])
        err = capsys.readouterr().err
        assert status == 0, f"{command}: exit {status}: {err}"
    assert (tmp_path / "core" / "core.v").is_file()
    assert (tmp_path / "ip" / "spikelut_wb.v").is_file()


def test_guides_cover_every_command_and_core_kind():
    text = "\n".join(page.read_text() for page in GUIDES)
    missing = [name for name in subcommand_parsers() if f"spikelut {name}" not in text]
    assert not missing, f"commands no guide shows: {missing}"
    cores = (DOCS / "guides" / "cores.md").read_text()
    kinds = [k.value for k in CoreKind if f"\n### {k.value}\n" not in cores]
    assert not kinds, f"core kinds without a section in guides/cores.md: {kinds}"
    assert len(subcommand_parsers()) >= 17
