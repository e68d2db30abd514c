"""A compiled classifier core as reusable IP: Verilog, a FuseSoC core file, integration notes.

:func:`export_core` compiles the core exactly as ``spikelut compile`` does
(:func:`~spikelut.compiler.backend.compile.compile_core`: ``core.v``, ``core.il``,
``manifest.json``), and beside it writes

- ``NAME.core``: a FuseSoC CAPI2 description: the file sets, a ``default`` target, a
  ``lint`` target (Verilator, lint only), and with the Wishbone top its lint and a
  ``sim_wishbone`` target (Verilator builds it with a small C++ harness and runs it);
- ``INTEGRATION.md``: ports, the stream handshake, the table write ports, latency and
  cycles per inference, the resource estimate, all quoted from the manifest
  (:mod:`spikelut.compiler.backend.integration` renders it);
- with ``wishbone``: ``spikelut_wb.v``, the same core inside
  :class:`~spikelut.hdl.wishbone.WishbonePeripheral`, and its register map in the notes;
- ``export.json``: what was written, the FuseSoC name, and the register map.

Every file is written atomically; nothing is written when the core cannot be compiled.
"""

from __future__ import annotations

import json
import os
import re
from importlib import metadata
from pathlib import Path

from amaranth.back import verilog

from spikelut.compiler.backend.compile import CORE_NAME, CompileError, compile_core, plan_core
from spikelut.compiler.backend.cores import CoreKind, build_core
from spikelut.compiler.backend.integration import integration_notes
from spikelut.compiler.backend.targets import Target
from spikelut.compiler.fileio import write_text_atomic
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.hdl.wishbone import WishbonePeripheral

__all__ = ["WISHBONE_NAME", "core_file", "export_core", "fusesoc_name"]

WISHBONE_NAME = "spikelut_wb"
HARNESS = "sim_main.cpp"
SPRAM_MODEL = "sb_spram256ka_model.v"

# Tables in UP5K SPRAM instantiate the device primitive, which synthesis provides; Verilator
# needs a model of it. This one (written here) stores 16,384 16-bit words, writes the nibbles
# MASKWREN selects, and reads when not writing, all while selected and powered.
SPRAM_VERILOG = """\
// Behavioural model of the iCE40 UltraPlus SB_SPRAM256KA, for lint and simulation only
// (written by spikelut export; synthesis uses the device's primitive).
module SB_SPRAM256KA (
  input [13:0] ADDRESS, input [15:0] DATAIN, input [3:0] MASKWREN, input WREN,
  input CHIPSELECT, input CLOCK, input STANDBY, input SLEEP, input POWEROFF,
  output reg [15:0] DATAOUT
);
  reg [15:0] mem [0:16383];
  wire [15:0] mask = {{4{MASKWREN[3]}}, {4{MASKWREN[2]}}, {4{MASKWREN[1]}}, {4{MASKWREN[0]}}};
  always @(posedge CLOCK)
    if (CHIPSELECT && !STANDBY && !SLEEP && POWEROFF) begin
      if (WREN) mem[ADDRESS] <= (mem[ADDRESS] & ~mask) | (DATAIN & mask);
      else DATAOUT <= mem[ADDRESS];
    end
endmodule
"""


def fusesoc_name(name: str) -> str:
    """The FuseSoC VLNV of an exported core named ``name`` (letters, digits, ``_`` kept)."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "core"
    try:
        version = metadata.version("spikelut")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    return f"spikelut:cores:{clean}:{version}"


def _target(name: str, files: list[str], toplevel: str, *, tool: dict | None = None) -> list[str]:
    lines = [f"  {name}:"]
    if tool is not None:
        lines.append("    default_tool: verilator")
    lines += [f"    filesets: [{', '.join(files)}]", f"    toplevel: {toplevel}"]
    if tool is not None:
        opts = ", ".join(json.dumps(o) for o in tool["options"])
        lines += [
            "    tools:",
            "      verilator:",
            f"        mode: {tool['mode']}",
            f"        verilator_options: [{opts}]",
        ]
    return lines


# Verilator's default lint, every warning fatal, except four idioms of the Verilog Yosys
# writes for Amaranth (zero-width wires declared [-1:0]; operands of mixed widths that
# Verilog extends or truncates as intended; case statements without a default whose
# process assigns defaults first).
WAIVED = ["-Wno-ASCRANGE", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE"]
LINT = {"mode": "lint-only", "options": WAIVED}
VERILATE = {"mode": "cc", "options": WAIVED}


def harness(peripheral: WishbonePeripheral) -> str:
    """A C++ main for Verilator's model of the Wishbone top: reset, then read ``INPUTS`` and
    ``OUTPUTS`` over the bus; exit 0 when they hold the core's sizes, 1 otherwise."""
    regs = peripheral.register_map()["registers"]
    inputs = peripheral.n_inputs | (peripheral.in_width << 16)
    outputs = peripheral.n_outputs | (peripheral.logit_width << 16)
    top = f"V{WISHBONE_NAME}"
    return f"""// Written by spikelut export: resets {WISHBONE_NAME} and reads two registers.
#include <cstdint>
#include <cstdio>
#include "{top}.h"
#include "verilated.h"

static void tick({top}& top) {{
    top.clk = 0; top.eval();
    top.clk = 1; top.eval();
}}

static uint32_t bus_read({top}& top, uint32_t adr) {{
    top.wb_adr_i = adr; top.wb_we_i = 0; top.wb_cyc_i = 1; top.wb_stb_i = 1;
    for (int wait = 0; wait < 16; ++wait) {{
        tick(top);
        if (top.wb_ack_o) {{
            uint32_t value = top.wb_dat_o;
            top.wb_cyc_i = 0; top.wb_stb_i = 0;
            tick(top);
            return value;
        }}
    }}
    std::printf("no acknowledge at word %u\\n", adr);
    return 0xffffffffu;
}}

int main(int argc, char** argv) {{
    Verilated::commandArgs(argc, argv);
    {top} top;
    top.wb_cyc_i = 0; top.wb_stb_i = 0; top.rst = 1;
    for (int i = 0; i < 4; ++i) tick(top);
    top.rst = 0;
    uint32_t inputs = bus_read(top, {regs["INPUTS"]}), outputs = bus_read(top, {regs["OUTPUTS"]});
    top.final();
    std::printf("INPUTS 0x%08x OUTPUTS 0x%08x\\n", inputs, outputs);
    return inputs == 0x{inputs:08x}u && outputs == 0x{outputs:08x}u ? 0 : 1;
}}
"""


def core_file(name: str, description: str, *, wishbone: bool, spram: bool = False) -> str:
    """The CAPI2 text of an export: file set ``rtl`` (``core.v``) and, with ``wishbone``,
    ``wishbone`` (``spikelut_wb.v``, which holds its own copy of the core) and ``harness``
    (:func:`harness`); targets ``default`` and ``lint`` for the core, ``lint_wishbone`` and
    ``sim_wishbone`` (Verilator builds the peripheral with the harness and runs it) for
    the peripheral. With ``spram`` (tables in UP5K SPRAM) the Verilator targets also read
    :data:`SPRAM_MODEL` (file set ``cells``); ``default`` does not, as synthesis has the
    primitive."""
    cells = ["cells"] if spram else []
    lines = [
        "CAPI=2:",
        f"name: {fusesoc_name(name)}",
        f"description: {json.dumps(description)}",
        "",
        "filesets:",
        "  rtl:",
        "    files: [core.v]",
        "    file_type: verilogSource",
    ]
    if wishbone:
        lines += [
            "  wishbone:",
            f"    files: [{WISHBONE_NAME}.v]",
            "    file_type: verilogSource",
            "  harness:",
            f"    files: [{HARNESS}]",
            "    file_type: cppSource",
        ]
    if spram:
        lines += ["  cells:", f"    files: [{SPRAM_MODEL}]", "    file_type: verilogSource"]
    lines += ["", "targets:"]
    lines += _target("default", ["rtl"], CORE_NAME)
    lines += _target("lint", [*cells, "rtl"], CORE_NAME, tool=LINT)
    if wishbone:
        lines += _target("lint_wishbone", [*cells, "wishbone"], WISHBONE_NAME, tool=LINT)
        sim = [*cells, "wishbone", "harness"]
        lines += _target("sim_wishbone", sim, WISHBONE_NAME, tool=VERILATE)
    return "\n".join(lines) + "\n"


def export_core(
    model: ClassifierMLP,
    out_dir: str | os.PathLike,
    target: Target,
    *,
    name: str,
    kind: CoreKind | str = "auto",
    wishbone: bool = False,
    clock_mhz: float | None = None,
) -> dict:
    """Export ``model``'s core for ``target`` into ``out_dir`` (see the module docstring);
    ``name`` names the FuseSoC core and the notes. Returns ``export.json``'s content, with
    the manifest under ``manifest``. Raises :class:`CompileError` before writing anything
    when the core does not fit or (``wishbone``) cannot be a Wishbone peripheral."""
    plan = plan_core(model, target, kind=kind, clock_mhz=clock_mhz)
    peripheral = None
    if wishbone:
        try:
            peripheral = WishbonePeripheral(build_core(plan.kind, plan.params))
        except ValueError as e:
            raise CompileError(str(e)) from None
    result = compile_core(model, out_dir, target, kind=kind, clock_mhz=clock_mhz, core=plan)
    out = Path(out_dir)
    files = ["core.v", "core.il", "manifest.json", f"{name}.core", "INTEGRATION.md"]
    register_map = None
    if peripheral is not None:
        register_map = peripheral.register_map()
        write_text_atomic(
            out / f"{WISHBONE_NAME}.v",
            verilog.convert(peripheral, name=WISHBONE_NAME, platform=target),
        )
        write_text_atomic(out / HARNESS, harness(peripheral))
        files += [f"{WISHBONE_NAME}.v", HARNESS]
    description = (
        f"spikelut {result['indexer']} LUT-network core for {target.name}, "
        f"{result['cycles_per_inference']} cycles per inference"
    )
    spram = result["sprams"] > 0
    if spram:
        write_text_atomic(out / SPRAM_MODEL, SPRAM_VERILOG)
        files.append(SPRAM_MODEL)
    text = core_file(name, description, wishbone=wishbone, spram=spram)
    write_text_atomic(out / f"{name}.core", text)
    info = {
        "name": name,
        "fusesoc": fusesoc_name(name),
        "toplevel": CORE_NAME,
        "wishbone_toplevel": WISHBONE_NAME if wishbone else None,
        "files": [*files, "export.json"],
        "register_map": register_map,
    }
    write_text_atomic(out / "INTEGRATION.md", integration_notes(name, result, info))
    write_text_atomic(out / "export.json", json.dumps(info, indent=1, sort_keys=True))
    return {**info, "manifest": result}
