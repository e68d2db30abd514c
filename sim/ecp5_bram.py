"""A behavioural simulation model of the ECP5 block RAM ``DP16KD``, which Yosys ships only
as a black box.

Yosys's ECP5 cell library (``ecp5/cells_sim.v``) gives every cell a netlist can hold a
behaviour except ``DP16KD``, declared ``(* blackbox *)``: simulated as it is, every block
RAM reads zero and a post-synthesis simulation would test nothing. :func:`write_ecp5_models`
writes the library without that declaration and :func:`dp16kd_model`, this project's model,
beside it.

The model follows the primitive as Yosys's memory mapping (``lattice/brams_map_16kd.v``)
drives it; its layout is the one that mapping's ``INIT`` assumes:

- 18,432 bits, held as 2,048 bytes of 9 bits; ``INITVAL_xx`` holds 16 words of 18 bits,
  word ``i`` in bits ``20 i .. 20 i + 17``: 18-bit word ``16 xx + i``, bytes ``2w`` (low)
  and ``2w + 1``.
- Width 36 (only the pseudo-dual-port form: port A writes ``{DIB, DIA}``, port B reads
  ``{DOB, DOA}``): address ``AD[13:5]``, bytes ``4k .. 4k+3``, write enables ``ADA[3:0]``
  per byte. Width 18: ``AD[13:4]``, bytes ``2k, 2k+1``, write enables ``AD[1:0]``. Width 9:
  ``AD[13:3]``, byte ``k``. Widths 4, 2, 1: ``AD[13:2]``, ``AD[13:1]``, ``AD[13:0]``, the
  data bits (not the ninth) of byte ``k / (8 / W)``, lowest first.
- A port acts on its clock edge (``CLKxMUX "INV"``: the falling edge) when ``CEx`` is high
  and its chip-select pins equal ``CSDECODE_x``; a write stores the enabled bytes and leaves
  the port's output as ``WRITEMODE_x`` says (NORMAL: unchanged, WRITETHROUGH: the new word,
  READBEFOREWRITE: the old word); a read of the other port in the same cycle sees the old
  contents. ``REGMODE_x "OUTREG"`` adds an output register enabled by ``OCEx``. ``RSTx``
  clears the output, on the clock edge (``RESETMODE "SYNC"``) or at once (``"ASYNC"``).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["dp16kd_model", "write_ecp5_models"]

_INITVALS = [f"INITVAL_{i:02X}" for i in range(64)]


def _pins(prefix: str, n: int) -> str:
    return ", ".join(f"{prefix}{i}" for i in reversed(range(n)))


def _port(p: str) -> str:
    """The always blocks of port ``p`` ("A" or "B")."""
    lo = p.lower()
    return f"""
  wire clk_{lo} = (CLK{p}MUX == "INV") ? ~CLK{p} : CLK{p};
  wire [2:0] cs_{lo} = {{CS{p}2, CS{p}1, CS{p}0}};
  wire [2:0] csd_{lo} = {{CSDECODE_{p}[16 +: 8] == "1", CSDECODE_{p}[8 +: 8] == "1",
                       CSDECODE_{p}[0 +: 8] == "1"}};
  wire en_{lo} = CE{p} && cs_{lo} == csd_{lo};
  reg [35:0] rd_{lo};
  reg [35:0] out_{lo};
  always @(posedge clk_{lo} or posedge rst_async_{lo}) begin
    if (rst_async_{lo}) begin
      rd_{lo} <= 36'd0;
    end else if (RESETMODE == "SYNC" && RST{p}) begin
      rd_{lo} <= 36'd0;
    end else if (en_{lo}) begin
      if (WE{p}) begin
        if (WIDTH_{p} == 36) begin
          for (j = 0; j < 4; j = j + 1)
            if (ad_{lo}[j]) mem[{{ad_{lo}[13:5], 2'b00}} + j] <= di36[j*9 +: 9];
        end else if (WIDTH_{p} == 18) begin
          if (ad_{lo}[0]) mem[{{ad_{lo}[13:4], 1'b0}}] <= di_{lo}[8:0];
          if (ad_{lo}[1]) mem[{{ad_{lo}[13:4], 1'b1}}] <= di_{lo}[17:9];
        end else if (WIDTH_{p} == 9) begin
          mem[ad_{lo}[13:3]] <= di_{lo}[8:0];
        end else if (WIDTH_{p} == 4) begin
          mem[ad_{lo}[13:3]][ad_{lo}[2]*4 +: 4] <= di_{lo}[3:0];
        end else if (WIDTH_{p} == 2) begin
          mem[ad_{lo}[13:3]][ad_{lo}[2:1]*2 +: 2] <= di_{lo}[1:0];
        end else begin
          mem[ad_{lo}[13:3]][ad_{lo}[2:0]] <= di_{lo}[0];
        end
      end
      if (!WE{p} || WRITEMODE_{p} == "READBEFOREWRITE") begin
        rd_{lo} <= read_{lo};
      end else if (WRITEMODE_{p} == "WRITETHROUGH") begin
        rd_{lo} <= (WIDTH_{p} == 36) ? di36 : {{18'd0, di_{lo}}};
      end
    end
  end
  always @(posedge clk_{lo} or posedge rst_async_{lo}) begin
    if (rst_async_{lo}) out_{lo} <= 36'd0;
    else if (RESETMODE == "SYNC" && RST{p}) out_{lo} <= 36'd0;
    else if (OCE{p}) out_{lo} <= rd_{lo};
  end
  wire [35:0] q_{lo} = (REGMODE_{p} == "OUTREG") ? out_{lo} : rd_{lo};
"""


def _read(p: str) -> str:
    lo = p.lower()
    return f"""
  wire [8:0] byte_{lo} = mem[ad_{lo}[13:3]];
  wire [35:0] read_{lo} =
    (WIDTH_{p} == 36) ? {{mem[{{ad_{lo}[13:5], 2'b11}}], mem[{{ad_{lo}[13:5], 2'b10}}],
                        mem[{{ad_{lo}[13:5], 2'b01}}], mem[{{ad_{lo}[13:5], 2'b00}}]}} :
    (WIDTH_{p} == 18) ? {{18'd0, mem[{{ad_{lo}[13:4], 1'b1}}], mem[{{ad_{lo}[13:4], 1'b0}}]}} :
    (WIDTH_{p} == 9) ? {{27'd0, byte_{lo}}} :
    (WIDTH_{p} == 4) ? {{32'd0, byte_{lo}[ad_{lo}[2]*4 +: 4]}} :
    (WIDTH_{p} == 2) ? {{34'd0, byte_{lo}[ad_{lo}[2:1]*2 +: 2]}} :
    {{35'd0, byte_{lo}[ad_{lo}[2:0]]}};
"""


def dp16kd_model() -> str:
    """The Verilog text of this project's ``DP16KD`` model (see the module docstring)."""
    ports = []
    for p in "AB":
        ports += [
            f"  input {_pins('DI' + p, 18)},",
            f"  input {_pins('AD' + p, 14)},",
            f"  input CE{p}, OCE{p}, CLK{p}, WE{p}, RST{p},",
            f"  input CS{p}2, CS{p}1, CS{p}0,",
            f"  output {_pins('DO' + p, 18)}{',' if p == 'A' else ''}",
        ]
    params = "\n".join(
        [
            "  parameter DATA_WIDTH_A = 18;",
            "  parameter DATA_WIDTH_B = 18;",
            '  parameter REGMODE_A = "NOREG";',
            '  parameter REGMODE_B = "NOREG";',
            '  parameter RESETMODE = "SYNC";',
            '  parameter ASYNC_RESET_RELEASE = "SYNC";',
            '  parameter CSDECODE_A = "0b000";',
            '  parameter CSDECODE_B = "0b000";',
            '  parameter WRITEMODE_A = "NORMAL";',
            '  parameter WRITEMODE_B = "NORMAL";',
            '  parameter CLKAMUX = "CLKA";',
            '  parameter CLKBMUX = "CLKB";',
            '  parameter GSR = "ENABLED";',
            '  parameter INIT_DATA = "STATIC";',
            *(f"  parameter {name} = 320'h0;" for name in _INITVALS),
        ]
    )
    init_case = "\n".join(f"        {i}: iv = {name};" for i, name in enumerate(_INITVALS))
    return f"""// DP16KD behavioural model written for spikelut's post-synthesis simulation
// (spikelut/sim/ecp5_bram.py says what it models).
module DP16KD(
{chr(10).join(ports)}
);
{params}
  localparam WIDTH_A = DATA_WIDTH_A;
  localparam WIDTH_B = DATA_WIDTH_B;
  reg [8:0] mem [0:2047];
  integer w, i, j;
  reg [319:0] iv;
  initial begin
    for (w = 0; w < 64; w = w + 1) begin
      case (w)
{init_case}
        default: iv = 320'h0;
      endcase
      for (i = 0; i < 16; i = i + 1) begin
        mem[(w * 16 + i) * 2] = iv[i * 20 +: 9];
        mem[(w * 16 + i) * 2 + 1] = iv[i * 20 + 9 +: 9];
      end
    end
  end
  wire [17:0] di_a = {{{_pins("DIA", 18)}}};
  wire [17:0] di_b = {{{_pins("DIB", 18)}}};
  wire [35:0] di36 = {{di_b, di_a}};
  wire [13:0] ad_a = {{{_pins("ADA", 14)}}};
  wire [13:0] ad_b = {{{_pins("ADB", 14)}}};
  wire rst_async_a = RESETMODE == "ASYNC" && RSTA;
  wire rst_async_b = RESETMODE == "ASYNC" && RSTB;
{_read("A")}{_read("B")}{_port("A")}{_port("B")}
  // width 36 is the pseudo-dual-port form: port B reads on DOA and DOB
  wire [35:0] q_b36 = q_b;
  assign {{{_pins("DOA", 18)}}} = (WIDTH_B == 36) ? q_b36[17:0] : q_a[17:0];
  assign {{{_pins("DOB", 18)}}} = (WIDTH_B == 36) ? q_b36[35:18] : q_b[17:0];
endmodule
"""


_BLACKBOX = re.compile(r"\(\*\s*blackbox\s*\*\)\s*module\s+DP16KD\s*\(.*?\bendmodule\b", re.S)
_INCLUDE = re.compile(r'`include\s+"([^"/]+)"')


def _inlined(path: Path, depth: int = 0) -> str:
    """``path``'s text with its relative includes replaced by their (inlined) text."""
    if depth > 8:
        raise ValueError(f"{path}: includes nested too deeply")
    text = path.read_text()
    return _INCLUDE.sub(lambda m: _inlined(path.parent / m.group(1), depth + 1), text)


def write_ecp5_models(cells_sim: Path, work_dir: Path) -> tuple[Path, Path]:
    """Write into ``work_dir`` Yosys's ECP5 cell library ``cells_sim`` without its ``DP16KD``
    black box (its includes inlined) and :func:`dp16kd_model`; returns the two paths.
    ValueError if the library holds no such black box (a Yosys that ships its own model:
    use it as it is)."""
    stripped, n = _BLACKBOX.subn("", _inlined(cells_sim))
    if n != 1:
        raise ValueError(f"{cells_sim} declares no DP16KD black box")
    work_dir.mkdir(parents=True, exist_ok=True)
    lib = work_dir / "ecp5_cells_sim.v"
    model = work_dir / "ecp5_dp16kd.v"
    lib.write_text(stripped)
    model.write_text(dp16kd_model())
    return lib, model
