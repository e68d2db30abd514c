"""Run a cocotb test module on an Amaranth design (or Verilog) with Verilator, cached.

:func:`run_cocotb` converts the design to Verilog, builds it with
``cocotb_tools.runner`` into a directory named by a hash of the Verilog, the top-level name,
the build options and the Verilator and cocotb versions (so an unchanged design is never
rebuilt), runs the test module, reads the xUnit results and raises :class:`CocotbFailure`
when any test failed or none ran.

cocotb's Verilator runner makes every signal of the design visible to Python
(``--public-flat-rw``), which keeps Verilator from optimising the model: a large core then
simulates about three times slower. ``public="ports"`` builds with only the top module's
signals visible (a Verilator control file instead of the flag), for testbenches that touch
nothing but the ports.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spikelut.compiler import progress
from spikelut.compiler.build import toolchain
from spikelut.compiler.fileio import write_text_atomic

DEFAULT_CACHE_ENV = "SPIKELUT_COCOTB_CACHE"

# what a build makes visible to Python: every signal (cocotb's default), or the top's ports
PUBLIC = ("all", "ports")


class CocotbFailure(AssertionError):
    """A cocotb run failed: some test failed, none ran, or the simulator crashed."""


@dataclass
class TestOutcome:
    """One cocotb test: name, pass/fail, failure message, simulated ns and wall seconds."""

    name: str
    passed: bool
    message: str = ""
    sim_time_ns: float = 0.0
    wall_seconds: float = 0.0

    __test__ = False  # not a pytest test class


@dataclass
class CocotbResults:
    """Outcome of :func:`run_cocotb`: every test, where things are, and whether the build was cached."""

    tests: list[TestOutcome]
    results_xml: Path
    build_dir: Path
    test_dir: Path
    cached: bool
    build_seconds: float
    run_seconds: float
    waves: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when at least one test ran and all passed."""
        return bool(self.tests) and all(t.passed for t in self.tests)


def default_cache_dir() -> Path:
    """``$SPIKELUT_COCOTB_CACHE``, else ``$XDG_CACHE_HOME/spikelut/cocotb`` (or ~/.cache/...)."""
    if os.environ.get(DEFAULT_CACHE_ENV):
        return Path(os.environ[DEFAULT_CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikelut" / "cocotb"


def to_verilog(design, toplevel: str) -> str:
    """Verilog text of ``design``: an Amaranth component/elaboratable, Verilog text, or a path."""
    if isinstance(design, os.PathLike):
        return Path(design).read_text()
    if isinstance(design, str):
        if "module" not in design:
            raise ValueError(
                "design string is not Verilog (no 'module'); pass a component, Verilog text or a Path"
            )
        return design
    from amaranth.back import verilog

    return verilog.convert(design, name=toplevel, emit_src=False)


_TIME_UNITS_NS = {"fs": 1e-6, "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def _have_lz4_header() -> bool:
    dirs = [*os.environ.get("CPATH", "").split(os.pathsep), "/usr/include", "/usr/local/include"]
    return any(d and Path(d, "lz4.h").exists() for d in dirs)


def parse_results(xml_path: str | os.PathLike) -> list[TestOutcome]:
    """The test cases of a cocotb xUnit results file."""
    root = ET.parse(xml_path).getroot()
    out = []
    for case in root.iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        message = ""
        if failure is not None:
            message = (failure.get("message") or "") + (
                ("\n" + failure.text) if failure.text else ""
            )
        props = {q.get("name"): q.get("value") for q in case.iter("property")}
        scale = _TIME_UNITS_NS.get(props.get("sim_time_unit", "ns"), 1.0)
        out.append(
            TestOutcome(
                name=case.get("name", "?"),
                passed=failure is None and case.find("skipped") is None,
                message=message.strip(),
                sim_time_ns=float(props.get("sim_time_duration", 0) or 0) * scale,
                wall_seconds=float(case.get("time", 0) or 0),
            )
        )
    return out


def build_key(
    verilog: str,
    toplevel: str,
    *,
    parameters: Mapping,
    waves: str | None,
    build_args: list[str],
    optimize: bool = False,
    public: str = "all",
    libraries: Sequence[Path] = (),
) -> str:
    """Hash naming a Verilator build: design, top, options, library files (their contents),
    the tool versions and the cocotb installation it links to."""
    import cocotb

    blob = json.dumps(
        {
            "verilog": hashlib.sha256(verilog.encode()).hexdigest(),
            **(
                {"libraries": [hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in libraries]}
                if libraries
                else {}
            ),
            "top": toplevel,
            "parameters": {k: str(v) for k, v in sorted(parameters.items())},
            "waves": waves,
            "build_args": build_args,
            **({"optimize": True} if optimize else {}),
            **({"public": public} if public != "all" else {}),
            "verilator": toolchain.tool_version("verilator"),
            "cocotb": cocotb.__version__,
            # the binary loads cocotb's VPI library from this installation by its path: a
            # build made under another (or a since deleted) virtual environment cannot run
            "cocotb_path": str(Path(cocotb.__file__).resolve().parent),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _verilator_runner(public: str):
    """cocotb's Verilator runner; with ``public="ports"`` one whose build makes only the top
    module's signals visible (its command without ``--public-flat-rw``)."""
    from cocotb_tools.runner import Verilator

    if public == "all":
        return Verilator()

    class PortsOnlyVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            return cmds

    return PortsOnlyVerilator()


def _build(
    verilog, toplevel, bdir, parameters, build_args, waves, optimize, public="all", libraries=()
) -> None:
    """Build into a private directory, then rename it to ``bdir`` (concurrent builds are safe).

    ``optimize`` compiles the model's C++ with -O2 instead of Verilator's default -Os (make's
    OPT_FAST): a longer build, a faster simulation. ``public`` is ``"all"`` or ``"ports"``
    (see the module's docstring)."""
    runner = _verilator_runner(public)
    tmp = bdir.with_name(f".{bdir.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    src = tmp / f"{toplevel}.v"
    write_text_atomic(src, verilog)
    sources = [src, *libraries]
    build_args = [*build_args, *sorted({f"-I{Path(f).parent}" for f in libraries})]
    if public == "ports":
        control = tmp / "public.vlt"
        write_text_atomic(
            control, f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n'
        )
        sources.append(control)
    log = tmp / "build.log"
    old_makeflags = os.environ.get("MAKEFLAGS")
    if optimize:
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [old_makeflags, "OPT_FAST=-O2"]))
    try:
        with (
            progress.task(f"Verilator build of {toplevel}") as task,
            progress.follow_logs(task, [(log, _verilator_phase)]),
        ):
            task.update(phase="verilating")
            runner.build(
                sources=sources,
                hdl_toplevel=toplevel,
                build_dir=tmp,
                parameters=parameters,
                build_args=["-Wno-fatal", *build_args],
                waves=waves,
                log_file=log,
            )
    except (Exception, SystemExit) as e:
        tail = log.read_text()[-3000:] if log.exists() else ""
        kept = bdir.with_name(f"{bdir.name}.failed.log")  # the build folder goes
        if log.exists():
            shutil.copyfile(log, kept)
        shutil.rmtree(tmp, ignore_errors=True)
        where = f"; its full log is {kept}" if kept.exists() else ""
        raise CocotbFailure(
            f"Verilator build of {toplevel} failed ({_one_line(str(e))}){where}\n{tail}"
        ) from None
    finally:
        if optimize:
            if old_makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = old_makeflags
    try:
        os.rename(tmp, bdir)
    except OSError:  # another process finished the same build first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)


def _verilator_phase(line: str, task: progress.Task) -> None:
    """The phase of a Verilator build from a line of its log: verilating, compiling the
    C++ (counting the files make has started on), linking."""
    if line.startswith("- Verilator: Built from"):
        task.update(phase="compiling the C++")
    elif line.startswith(("c++ ", "g++ ", "ccache ", "clang++ ")):
        if " -c " in line:
            task.advance(phase=f"compiling the C++ (file {task.completed + 1:.0f})")
        else:
            task.update(phase="linking")


def run_cocotb(
    design,
    *,
    toplevel: str,
    test_module: str,
    build_dir: str | os.PathLike | None = None,
    test_dir: str | os.PathLike | None = None,
    parameters: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    waves: str | os.PathLike | None = None,
    testcase: str | None = None,
    seed: int | None = None,
    build_args: list[str] | None = None,
    check: bool = True,
    strict_warnings: bool = True,
    optimize: bool = False,
    public: str = "all",
    libraries: Sequence[str | os.PathLike] = (),
) -> CocotbResults:
    """Build ``design`` as module ``toplevel`` with Verilator (cached) and run ``test_module``.

    ``design`` is an Amaranth component (converted with the name ``toplevel``), Verilog text,
    or a path to a Verilog file. ``build_dir`` is the cache root (default
    :func:`default_cache_dir`); the build goes into a sub-directory named by
    :func:`build_key`. ``env`` is passed to the test module's process (the way to give it
    parameters), ``parameters`` become Verilog parameters. ``waves`` is a ``.vcd`` or ``.fst``
    path to write a trace to. With ``strict_warnings`` (the default) DeprecationWarning and
    FutureWarning are errors in the simulator's Python, as in the test suite, unless ``env``
    sets ``PYTHONWARNINGS`` itself. ``optimize`` compiles the model with -O2 (about a quarter
    longer to build, faster to simulate a large core). ``public``: ``"all"`` (every signal
    visible to the test, as cocotb builds) or ``"ports"`` (only the top module's: about
    three times faster on a large core, and quicker to build). ``libraries``: more Verilog
    files built with the design (cell models of a synthesised netlist); each file's folder
    is on the include path. Returns
    :class:`CocotbResults`; with ``check`` (the default) raises :class:`CocotbFailure`
    naming every failed test when any failed or none ran.
    """
    from cocotb_tools.runner import get_runner

    toolchain.prepare_cocotb_environment()
    parameters = dict(parameters or {})
    build_args = list(build_args or [])
    if public not in PUBLIC:
        raise ValueError(f"public must be one of {PUBLIC}, not {public!r}")
    waves = None if waves is None else Path(waves)
    waves_kind = _waves_kind(waves, build_args)

    verilog = to_verilog(design, toplevel)
    libraries = [Path(f).resolve() for f in libraries]
    key = build_key(
        verilog,
        toplevel,
        parameters=parameters,
        waves=waves_kind,
        build_args=build_args,
        optimize=optimize,
        public=public,
        libraries=libraries,
    )
    root = Path(build_dir) if build_dir is not None else default_cache_dir()
    bdir = (root / f"{toplevel}-{key}").resolve()
    binary = bdir / toplevel
    cached = binary.exists()

    runner = get_runner("verilator")
    t0 = time.monotonic()
    if not cached:
        _build(
            verilog,
            toplevel,
            bdir,
            parameters,
            build_args,
            waves is not None,
            optimize,
            public,
            libraries,
        )
    build_seconds = time.monotonic() - t0

    tdir = (Path(test_dir) if test_dir is not None else bdir / "run").resolve()
    tdir.mkdir(parents=True, exist_ok=True)
    xml = tdir / "results.xml"
    sim_env = {k: str(v) for k, v in (env or {}).items()}
    if strict_warnings:
        sim_env.setdefault("PYTHONWARNINGS", "error::DeprecationWarning,error::FutureWarning")
    t1 = time.monotonic()
    crashed = None
    watched = progress.follow_child(tdir / "progress.txt", f"simulating {toplevel}", unit="outputs")
    try:
        with watched as child_env:
            sim_env.update(child_env)
            runner.test(
                test_module=test_module,
                hdl_toplevel=toplevel,
                hdl_toplevel_lang="verilog",
                build_dir=bdir,
                test_dir=tdir,
                parameters=parameters,
                extra_env=sim_env,
                waves=waves is not None,
                results_xml=str(xml),
                testcase=testcase,
                seed=seed,
                log_file=tdir / "sim.log",
            )
    except SystemExit as e:  # the runner exits on failures under pytest; we report instead
        crashed = e.code
    run_seconds = time.monotonic() - t1

    tests = parse_results(xml) if xml.exists() else []
    wave_out = None
    if waves is not None and (tdir / f"dump{waves_kind}").exists():
        waves.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tdir / f"dump{waves_kind}", waves)
        wave_out = waves
    results = CocotbResults(tests, xml, bdir, tdir, cached, build_seconds, run_seconds, wave_out)
    if check and not results.passed:
        raise CocotbFailure(_failure_message(tests, tdir, test_module, toplevel, crashed))
    return results


def _waves_kind(waves: Path | None, build_args: list[str]) -> str | None:
    """The trace format of ``waves`` (``.vcd`` or ``.fst``, adding Verilator's FST flag to
    ``build_args``); ValueError for another suffix or an FST without the lz4 headers."""
    if waves is None:
        return None
    kind = waves.suffix.lower()
    if kind not in (".vcd", ".fst"):
        raise ValueError(f"waves file must end in .vcd or .fst, not {waves.name!r}")
    if kind == ".fst":
        if not _have_lz4_header():
            raise ValueError(
                "FST traces need the lz4 headers (lz4.h, e.g. Debian's liblz4-dev), "
                "which are not installed; write a .vcd file instead"
            )
        build_args.append("--trace-fst")
    return kind


def _failure_message(tests, tdir: Path, test_module: str, toplevel: str, crashed) -> str:
    """One message naming every failed test, with the tail of the simulation log."""
    lines = [
        f"{t.name}: {t.message.splitlines()[0] if t.message else 'failed'}"
        for t in tests
        if not t.passed
    ]
    log_tail = ""
    if (tdir / "sim.log").exists():
        log_tail = "\n" + "\n".join((tdir / "sim.log").read_text().splitlines()[-25:])
    what = "; ".join(lines) if lines else f"no test ran (simulator exit {crashed})"
    where = f" (full log: {tdir / 'sim.log'})" if (tdir / "sim.log").exists() else ""
    return f"cocotb {test_module} on {toplevel}: {what}{where}{log_tail}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
