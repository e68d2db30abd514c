"""``spikelut report``: one self-contained HTML page describing a model and its hardware.

:func:`write_report` finds the inputs (:mod:`~spikelut.compiler.analysis.inputs`), computes
the figures (:mod:`~spikelut.compiler.analysis.figures`), draws the page
(:mod:`~spikelut.compiler.analysis.render`) and writes it atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from spikelut.compiler.analysis.figures import collect
from spikelut.compiler.analysis.inputs import find_inputs
from spikelut.compiler.analysis.render import SECTIONS, render_html
from spikelut.compiler.fileio import write_text_atomic

__all__ = ["write_report"]


def write_report(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    data: str | None = None,
) -> dict:
    """Write the HTML report of ``source`` (a model file or directory, or a list of them;
    see :func:`~spikelut.compiler.analysis.inputs.find_inputs`) to ``output`` atomically;
    returns the figures of :func:`~spikelut.compiler.analysis.figures.collect` plus
    ``"output"`` and the list of ``"missing"`` section ids (those shown without their data).
    ``data`` names the data set to evaluate on (default: the one the model records)."""
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    r = collect(find_inputs(*sources), data=data)
    page = render_html(r)
    write_text_atomic(output, page)
    r["output"] = str(output)
    r["missing"] = _missing_sections(page)
    return r


def _missing_sections(page: str) -> list[str]:
    """The ids of the page's sections that say their data is missing."""
    missing = []
    for sid, _ in SECTIONS:
        start = page.index(f'<section id="{sid}">')
        end = page.index("</section>", start)
        if 'class="missing"' in page[start:end]:
            missing.append(sid)
    return missing
