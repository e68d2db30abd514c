"""Sphinx directives that put spikelut's own words into the documentation, not copies of them.

- ``spikelut-help`` ``COMMAND [SUBCOMMAND]``: the ``--help`` text of a command, from the
  argument parser of :mod:`spikelut.cli.main`.
- ``spikelut-commands``: a section per command (and per ``train`` subcommand), each with its
  ``--help``, in the order ``spikelut --help`` lists them.
- ``spikelut-targets``: the table of devices, :data:`spikelut.compiler.backend.targets.TARGETS`.
- ``spikelut-boards``: the table of boards, :data:`spikelut.boards.platforms.BOARDS`.
- ``spikelut-demo-stages`` ``[lm]``: the stages of ``spikelut demo`` (or ``demo --lm``), each
  with the folder it writes and what it does, from the demo's own list.
"""

from __future__ import annotations

import argparse
import inspect
import os

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

# argparse wraps help at $COLUMNS; a fixed width keeps the pages the same on every machine
HELP_COLUMNS = "88"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of ``parser`` by name, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, keyed ``"train"``, ``"train classifier"``, ...: each command,
    then its own subcommands (``train classifier``, ``train lm``)."""
    from spikelut.cli.main import build_parser

    found = {}
    for name, sub in _subparsers(build_parser()).items():
        found[name] = sub
        for inner, parser in _subparsers(sub).items():
            found[f"{name} {inner}"] = parser
    return found


def help_text(parser: argparse.ArgumentParser) -> str:
    """``parser``'s help at :data:`HELP_COLUMNS` columns."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        return parser.format_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _literal(text: str) -> nodes.literal_block:
    block = nodes.literal_block(text, text)
    block["language"] = "text"
    return block


def _table(header: list[str], rows: list[list[str]]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(header))
    table += group
    # relative widths (the text builder draws them as they are): the widest cell, capped
    widths = [min(max(len(str(c)) for c in col), 40) for col in zip(header, *rows, strict=True)]
    group += [nodes.colspec(colwidth=w) for w in widths]

    def row(cells, entry_text=nodes.paragraph):
        r = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += entry_text(text=str(cell))
            r += entry
        return r

    head = nodes.thead()
    head += row(header)
    body = nodes.tbody()
    for cells in rows:
        body += row(cells)
    group += head
    group += body
    return table


class HelpDirective(SphinxDirective):
    """``.. spikelut-help:: COMMAND [SUBCOMMAND]``: that command's ``--help``."""

    required_arguments = 1
    optional_arguments = 1

    def run(self):
        name = " ".join(self.arguments)
        parsers = command_parsers()
        if name not in parsers:
            raise self.error(f"no spikelut command {name!r}; there are: {', '.join(parsers)}")
        return [_literal(help_text(parsers[name]))]


class CommandsDirective(SphinxDirective):
    """``.. spikelut-commands::``: a section with the ``--help`` of every command (in an
    reStructuredText page: the sections are parsed as its own)."""

    def run(self):
        from spikelut.cli.main import build_parser

        lines = [".. code-block:: text", ""]
        lines += ["   " + line for line in help_text(build_parser()).splitlines()]
        for name, parser in command_parsers().items():
            title = f"spikelut {name}"
            lines += ["", title, "-" * len(title), "", ".. code-block:: text", ""]
            lines += ["   " + line if line else "" for line in help_text(parser).splitlines()]
        return self.parse_text_to_nodes("\n".join(lines) + "\n", allow_section_headings=True)


class TargetsDirective(SphinxDirective):
    """``.. spikelut-targets::``: every ``--target``, from the one table of device facts."""

    def run(self):
        from spikelut.compiler.backend.targets import HOST_LINK_CELLS, TARGETS

        header = [
            "target",
            "device",
            "logic cells",
            "block RAMs (bits each)",
            "SPRAMs",
            "DSPs",
            "default clock (MHz)",
            "host link's logic cells",
        ]
        rows = [
            [
                t.name,
                t.device,
                t.logic_cells,
                f"{t.block_rams} ({t.block_ram_bits})",
                t.sprams,
                t.dsps,
                f"{t.clock_mhz:g}",
                HOST_LINK_CELLS[t.family],
            ]
            for t in TARGETS.values()
        ]
        return [_table(header, rows)]


class BoardsDirective(SphinxDirective):
    """``.. spikelut-boards::``: every ``--board``, from the board registry."""

    def run(self):
        from spikelut.boards.platforms import BOARDS

        header = ["board", "target", "device", "bitstream", "programmer", "host link"]
        rows = []
        for b in BOARDS.values():
            if b.no_host_link:
                link = f"none: {b.no_host_link}"
            elif b.extra_uart is not None:
                link = f"UART on pins {b.extra_uart[0]} (TX), {b.extra_uart[1]} (RX)"
            else:
                link = "UART on the board's USB bridge"
            rows.append([b.name, b.target.name, b.device, b.bitstream_ext, b.programmer, link])
        return [_table(header, rows)]


class DemoStagesDirective(SphinxDirective):
    """``.. spikelut-demo-stages:: [lm]``: the demo's stages, in order."""

    optional_arguments = 1

    def run(self):
        if self.arguments and self.arguments[0] == "lm":
            from spikelut.flows.demo_lm import LM_STAGES as stages
        else:
            from spikelut.flows.demo import DEFAULT_STAGES as stages
        from pathlib import PurePath

        from spikelut.flows.demo import stage_folder

        rows = []
        for index, stage in enumerate(stages, 1):
            doc = inspect.getdoc(stage.fn) or ""
            folder = f"{stage_folder(PurePath(), index, stage)}/"
            rows.append([stage.name, folder, stage.what or doc.split("\n\n")[0]])
        return [_table(["stage", "writes into", "what it does"], rows)]


def _constructor_signature(app, what, name, obj, options, signature, return_annotation):
    """An Amaranth component's signature is its ``__init__``'s: autodoc would otherwise show
    the ``(*args, src_loc_at=0, **kwargs)`` of the ``__new__`` Amaranth's elaboratables
    inherit."""
    if what != "class" or not isinstance(obj, type):
        return None
    from amaranth.hdl import Elaboratable
    from amaranth.lib import wiring

    if not issubclass(obj, Elaboratable):
        return None
    init = next((c.__dict__["__init__"] for c in obj.__mro__ if "__init__" in c.__dict__), None)
    if init is None or init is object.__init__:
        return None
    if init is wiring.Component.__init__:
        # a component whose ports are class annotations: built with no arguments
        return "()", return_annotation
    sig = inspect.signature(init)
    params = [
        p.replace(annotation=_Annotation(p.annotation)) if isinstance(p.annotation, str) else p
        for p in list(sig.parameters.values())[1:]  # self
    ]
    return str(sig.replace(parameters=params, return_annotation=sig.empty)), return_annotation


class _Annotation(str):
    """An annotation kept as text (``from __future__ import annotations``), shown unquoted."""

    def __repr__(self) -> str:
        return str(self)


def setup(app):
    app.connect("autodoc-process-signature", _constructor_signature)
    app.add_directive("spikelut-help", HelpDirective)
    app.add_directive("spikelut-commands", CommandsDirective)
    app.add_directive("spikelut-targets", TargetsDirective)
    app.add_directive("spikelut-boards", BoardsDirective)
    app.add_directive("spikelut-demo-stages", DemoStagesDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
