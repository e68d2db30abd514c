"""The build driver: an Amaranth board top to a packed bitstream, with a parsed report.

Synthesis, place-and-route and packing run through Amaranth's build plan with the tools the
toolchain module locates (never a programmer). nextpnr runs with a fixed seed, so identical
inputs give an identical bitstream. The report (:class:`BuildReport`) counts logic cells,
flip-flops, block RAMs, SPRAMs and DSPs from the tools' logs and states the achieved Fmax
against the requested clock.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spikelut.compiler import progress
from spikelut.compiler.backend.targets import Target
from spikelut.compiler.build import toolchain
from spikelut.compiler.fileio import write_text_atomic

# iCE40 synthesis maps multipliers onto the SB_MAC16 DSPs only when asked (ECP5 and Gowin
# always do); Gowin synthesis is told the device series (``-family``, see synth_options)
SYNTH_OPTIONS = {"ice40": "-dsp", "ecp5": "", "gowin": ""}


def synth_options(target: Target) -> str:
    """Options of ``synth_<family>`` for ``target``: :data:`SYNTH_OPTIONS` (no ``-dsp`` on
    an iCE40 without DSPs, such as the LP8K), and for Gowin the series of its die
    (``-family gw1n`` or ``gw2a``)."""
    if target.family == "gowin":
        return f"-family {target.die.split('-')[0].lower()}"
    if target.family == "ice40" and not target.dsps:
        return ""
    return SYNTH_OPTIONS[target.family]


def synth_command(family: str, top: str) -> str:
    """The Yosys synthesis command a build runs for ``family`` (the board build through
    Amaranth's script, the netlist simulation directly): one definition for both."""
    return " ".join(filter(None, [f"synth_{family}", SYNTH_OPTIONS[family], "-top", top]))


# nextpnr's utilisation names per family -> spikelut's resource names
_RESOURCES = {
    "ice40": {
        "ICESTORM_LC": "logic_cells",
        "ICESTORM_RAM": "block_rams",
        "ICESTORM_SPRAM": "sprams",
        "ICESTORM_DSP": "dsps",
        "ICESTORM_PLL": "plls",
        "SB_IO": "io",
    },
    "ecp5": {
        "TRELLIS_COMB": "logic_cells",
        "TRELLIS_FF": "flip_flops",
        "DP16KD": "block_rams",
        "MULT18X18D": "dsps",
        "EHXPLLL": "plls",
        "TRELLIS_IO": "io",
    },
    # nextpnr's Gowin LUT4 count includes the LUT places its ALU (carry) cells take
    "gowin": {
        "LUT4": "logic_cells",
        "DFF": "flip_flops",
        "BSRAM": "block_rams",
        "RAM16SDP4": "lutrams",
        "MULT18X18": "dsps",
        "rPLL": "plls",
        "IOB": "io",
    },
}


@dataclass
class BuildReport:
    """What a build produced and measured.

    ``resources``: name -> {"used", "available"}; ``fmax_mhz``: clock -> achieved MHz;
    ``target_mhz``: the requested clock; ``timing_met``/``fits``/``ok`` the verdicts.
    """

    board: str
    family: str
    bitstream: str | None
    resources: dict[str, dict[str, int]] = field(default_factory=dict)
    fmax_mhz: dict[str, float] = field(default_factory=dict)
    target_mhz: float = 0.0
    timing_met: bool = False
    fits: bool = True
    ok: bool = False
    seconds: float = 0.0
    suggestion: str = ""
    log: str = ""

    def used(self, name: str) -> int:
        """Used count of resource ``name`` (0 when the design has none)."""
        return self.resources.get(name, {}).get("used", 0)

    def to_json(self) -> dict:
        """The report as a JSON-able dict."""
        return asdict(self)


def parse_utilisation(log: str, family: str) -> dict[str, dict[str, int]]:
    """Resource use from nextpnr's "Device utilisation" block (the last one in the log)."""
    blocks = log.split("Device utilisation:")
    if len(blocks) < 2:
        return {}
    out = {}
    for bel, used, avail in re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", blocks[-1], re.M):
        name = _RESOURCES[family].get(bel)
        if name is not None:
            out[name] = {"used": int(used), "available": int(avail)}
    return out


def parse_yosys_flip_flops(report: str) -> int:
    """Flip-flop cells (``SB_DFF*``, ``TRELLIS_FF``) in Yosys's last ``stat`` of a log."""
    text = report.rsplit("Printing statistics.", 1)[-1]
    text = text.rsplit("Count including submodules.", 1)[-1]
    cells = re.findall(r"^\s+(\d+)\s+(SB_DFF\w*|TRELLIS_FF)\s*$", text, re.M)
    return sum(int(count) for count, _ in cells)


def parse_fmax(log: str) -> dict[str, float]:
    """Achieved Fmax per clock (MHz) from the last timing report of a nextpnr log."""
    return {
        clk: float(mhz)
        for clk, mhz in re.findall(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz", log)
    }


def timing_passed(log: str) -> bool:
    """True when every clock's last timing verdict in the nextpnr log is PASS (nextpnr
    reports an estimate after placement and the final figure after routing)."""
    verdicts = dict(re.findall(r"Max frequency for clock\s+'([^']+)'.*\((PASS|FAIL) at", log))
    return bool(verdicts) and all(v == "PASS" for v in verdicts.values())


def _timing_suggestion(fmax_mhz: dict[str, float], target_mhz: float) -> str:
    worst = min(fmax_mhz.values(), default=0.0)
    return (
        f"timing missed: achieved {worst:.1f} MHz against {target_mhz:.1f} MHz; "
        f"ask for --freq {int(worst * 0.9)} or read fewer tables per cycle (--max-brams)"
    )


# file extension of a packed bitstream, per family
BITSTREAM_EXT = {"ice40": "bin", "ecp5": "bit", "gowin": "fs"}


def run_build(
    top,
    platform,
    out_dir: str | Path,
    *,
    target: Target,
    board: str,
    target_mhz: float,
    seed: int = 1,
    name: str = "top",
    progress=print,
) -> BuildReport:
    """Build ``top`` (an Elaboratable using the board's resources) on the amaranth-boards
    ``platform`` of board ``board``, whose device is ``target``, into ``out_dir``.

    Returns a :class:`BuildReport`; a design that does not fit or misses timing gives
    ``ok=False`` with a suggestion, never an exception.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    progress(f"build: synthesising and placing for {board} ({target.device}), seed {seed}")
    failed = _run_tools(top, platform, out, target, name, seed, target_mhz)
    log_path = out / f"{name}.tim"
    if failed is not None and not log_path.exists() and (out / f"{name}.rpt").exists():
        log_path = out / f"{name}.rpt"  # synthesis failed, nextpnr never ran: Yosys's reason
    log = log_path.read_text() if log_path.exists() else ""
    report = BuildReport(
        board=board, family=target.family, bitstream=None, target_mhz=target_mhz, log=str(log_path)
    )
    report.resources = parse_utilisation(log, target.family)
    if target.family == "ice40" and (out / f"{name}.rpt").exists():
        ffs = parse_yosys_flip_flops((out / f"{name}.rpt").read_text())
        report.resources["flip_flops"] = {"used": ffs, "available": target.logic_cells}
    report.fmax_mhz = parse_fmax(log)
    report.timing_met = timing_passed(log)
    report.seconds = time.monotonic() - start
    bitstream = out / f"{name}.{BITSTREAM_EXT[target.family]}"
    if failed is not None or not bitstream.exists():
        _explain_failure(report, log, failed)
    else:
        report.bitstream = str(bitstream)
        report.ok = report.timing_met
        if not report.timing_met:
            report.suggestion = _timing_suggestion(report.fmax_mhz, target_mhz)
    write_text_atomic(out / "build-report.json", json.dumps(report.to_json(), indent=1))
    return report


def _run_tools(
    top, platform, out: Path, target: Target, name: str, seed: int, target_mhz: float
) -> str | None:
    """Run Amaranth's build script for ``top`` in ``out``; the tools' output goes to
    ``build.log``, never to our stdout (which may carry ``--json``). Returns why the script
    failed, or None. Amaranth's Gowin flow writes no timing constraint for nextpnr, so a
    Gowin build asks for ``target_mhz`` on the command line (its one clock domain)."""
    env = {**toolchain.tool_env(), **toolchain.amaranth_toolchain_env(target.family)}
    options = synth_options(target)
    synth = {"synth_opts": options} if options else {}
    nextpnr = f"--seed {seed}"
    if target.family == "gowin":
        nextpnr += f" --freq {target_mhz:g}"
    plan = platform.prepare(top, name=name, nextpnr_opts=nextpnr, **synth)
    plan.extract(str(out))
    logs = (out / f"{name}.rpt", out / f"{name}.tim")  # Yosys's and nextpnr's
    for stale in logs:
        stale.unlink(missing_ok=True)
    with (
        progress.task(f"bitstream build for {target.device}") as task,
        progress.follow_logs(task, [(logs[0], _yosys_phase), (logs[1], _nextpnr_phase)]),
    ):
        task.update(phase="synthesis (Yosys)")
        proc = subprocess.run(
            ["sh", f"{plan.script}.sh"], cwd=out, env=env, capture_output=True, text=True
        )
    write_text_atomic(out / "build.log", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        return f"the build script exited with status {proc.returncode}"
    return None


def _yosys_phase(line: str, task: progress.Task) -> None:
    """Synthesis, and the Yosys pass running, from a line of Yosys's log."""
    match = re.search(r"Executing ([A-Z][A-Z0-9_]*) pass", line)
    if match:
        task.update(phase=f"synthesis (Yosys {match.group(1).lower()})")


# nextpnr's log lines that start each of its steps, and the step
_NEXTPNR_STEPS = (
    ("Info: Packing", "packing cells (nextpnr)"),
    ("Info: Creating initial analytic placement", "placing (nextpnr)"),
    ("Info: Running main analytical placer", "placing (nextpnr)"),
    ("Info: Running simulated annealing placer", "refining the placement (nextpnr)"),
    ("Info: Routing", "routing (nextpnr)"),
    ("Info: Program finished normally", "writing the bitstream"),
)


def _nextpnr_phase(line: str, task: progress.Task) -> None:
    """Place-and-route's step (pack, place, route) from a line of nextpnr's log."""
    for start, phase in _NEXTPNR_STEPS:
        if line.startswith(start):
            if phase != task.phase:
                task.update(phase=phase)
            return


def _explain_failure(report: BuildReport, log: str, failed: str | None) -> None:
    """Set ``report``'s verdicts and suggestion for a build that made no bitstream."""
    tail = "\n".join(log.strip().splitlines()[-5:]) or str(failed)
    over = [
        f"{name.replace('_', ' ')} {r['used']}/{r['available']}"
        for name, r in report.resources.items()
        if r["used"] > r["available"]
    ]
    placement_failed = any(text in log for text in ("Unable to place", "Failed to expand region"))
    report.fits = not over and not placement_failed and "not enough" not in log.lower()
    if not report.fits:
        report.suggestion = (
            f"the design does not fit ({', '.join(over) or 'placement failed'}): the "
            "comparators and index registers grow with tables x comparisons (N_T * N_C) "
            "and the adders with tables read per cycle; train fewer tables or pick a "
            "larger device"
        )
    elif report.fmax_mhz and not report.timing_met:  # nextpnr stops at a timing failure
        report.suggestion = _timing_suggestion(report.fmax_mhz, report.target_mhz)
    else:
        report.suggestion = f"the tools failed; see {report.log}: {tail}"
