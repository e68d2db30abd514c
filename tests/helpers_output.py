"""What counts as spikelut's own output (issue 19): the check that a command's captured
stdout/stderr holds nothing the tools print."""

from __future__ import annotations

import re

# A line spikelut writes: a stage tag, a two-space indented sub-step, or a word (its log
# lines "sim: ...", "epoch 3/4 ...", its summary rows "label   value" and their "---  ---"
# rule, its errors "spikelut CMD: ..."), or an empty line between a summary's parts...
OWN_LINE = re.compile(r"^$|^-+(  -+)*$|^(\[(\d+/\d+|summary)\] |  )?[A-Za-z]")
# ...and never what the tools print: command lines, make, compiler warnings, cocotb's log
# format and banners, Yosys/nextpnr/Verilator reports, escape sequences
TOOL_OUTPUT = re.compile(
    r"Running command|Entering directory|^c\+\+ |%Warning|%Error|\bINFO\b|\bcocotb\.|"
    r"running with cocotb|Yosys \d|/----|Info: |Warning: |V e r i l a t i o n|"
    r"^\s*\d+\.\d+\s*ns|\x1b|\r"
)


def foreign_lines(text: str) -> list[str]:
    """The lines of ``text`` that are not spikelut's own (empty when all are)."""
    return [
        line for line in text.splitlines() if not OWN_LINE.match(line) or TOOL_OUTPUT.search(line)
    ]
