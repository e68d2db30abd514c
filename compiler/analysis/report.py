"""``spikelut report``: one self-contained HTML page describing a model and its hardware.

:func:`write_report` finds the inputs (:mod:`~spikelut.compiler.analysis.inputs`), computes
the figures (:mod:`~spikelut.compiler.analysis.figures`, for a language model
:mod:`~spikelut.compiler.analysis.figures_lm`), draws the page
(:mod:`~spikelut.compiler.analysis.render`, :mod:`~spikelut.compiler.analysis.render_lm`)
and writes it atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from spikelut.compiler.analysis.figures import collect
from spikelut.compiler.analysis.figures_lm import collect_lm
from spikelut.compiler.analysis.inputs import ReportError, find_inputs
from spikelut.compiler.analysis.render import SECTIONS, render_html
from spikelut.compiler.analysis.render_lm import LM_SECTIONS, render_lm_html
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
    ``data`` names a classifier's data set to evaluate on (default: the one the model
    records); a language model's report (an integer spiking RNN or transformer, figures of
    :func:`~spikelut.compiler.analysis.figures_lm.collect_lm`) takes none."""
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    inputs = find_inputs(*sources)
    if inputs.is_language_model:
        if data is not None:
            raise ReportError(
                "--data is for classifiers: a language model's losses are those spikelut "
                "quantize recorded; drop --data"
            )
        r = collect_lm(inputs)
        page, sections = render_lm_html(r), LM_SECTIONS
    else:
        r = collect(inputs, data=data)
        page, sections = render_html(r), SECTIONS
    write_text_atomic(output, page)
    r["output"] = str(output)
    r["missing"] = _missing_sections(page, sections)
    return r


def _missing_sections(page: str, sections: list[tuple[str, str]]) -> list[str]:
    """The ids of the page's ``sections`` that say their data is missing."""
    missing = []
    for sid, _ in sections:
        start = page.index(f'<section id="{sid}">')
        end = page.index("</section>", start)
        if 'class="missing"' in page[start:end]:
            missing.append(sid)
    return missing
