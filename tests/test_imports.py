"""Imports flow one way: every module's imports of the project go down the layers.

The layers, top to bottom (docs/architecture.md draws them): the command line, the flows,
verification (sim), boards, then the compiler's stages, and the gateware at the bottom. A
module may import its own layer and the layers below it, never one above; the modules of
one layer import each other without cycles. Project imports sit at the top of a module;
the only ones deferred into a function are those in :data:`DEFERRED`, each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"hdl": "hdl", "compiler": "compiler", "boards": "boards", "sim": "sim",
           "flows": "flows", "cli": "cli"}  # fmt: skip

# top to bottom; a module belongs to the first (longest) prefix that matches
LAYERS = [
    ["spikelut.cli"],
    ["spikelut.flows"],
    ["spikelut.sim"],
    ["spikelut.boards"],
    ["spikelut.compiler.analysis", "spikelut.compiler.build", "spikelut.compiler.sweep"],
    ["spikelut.compiler.backend"],
    ["spikelut.compiler.passes"],
    ["spikelut.compiler.train"],
    ["spikelut.compiler.frontend"],
    ["spikelut.compiler.ir"],
    ["spikelut.compiler.errors", "spikelut.compiler.fileio", "spikelut.compiler"],
    ["spikelut.hdl"],
]

# (importing module, imported module) -> why the import waits until it is needed
DEFERRED = {
    ("spikelut.compiler.train.lm", "spikelut.compiler.train.lm_engine"): "numba: 0.4 s to import",
    ("spikelut.compiler.passes.evaluate", "spikelut.compiler.train.lm_engine"): "numba",
    ("spikelut.cli.quantize", "spikelut.compiler.train.lm_engine"): "numba",
}


def _modules() -> dict[str, Path]:
    out = {}
    for folder in FOLDERS.values():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out["spikelut." + ".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """``(top-level, deferred)`` project modules imported by the file (a name imported from
    a package that is itself a module counts as that module)."""
    tree = ast.parse(path.read_text())
    top_nodes = {id(n) for n in tree.body}
    top, deferred = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spikelut"):
            assert node.level == 0, f"{path}: use absolute imports"
            names = {f"{node.module}.{a.name}" for a in node.names}
            found = {n for n in names if n in MODULES} or {node.module}
        elif isinstance(node, ast.Import):
            found = {a.name for a in node.names if a.name.startswith("spikelut")}
        else:
            continue
        (top if id(node) in top_nodes else deferred).update(found)
    return top, deferred


def _layer(module: str) -> int:
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or module.startswith(prefix + ".")
            if inside and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    assert best is not None, f"{module} is in no layer"
    return best[0]


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    top, deferred = GRAPH[module]
    for target in top | deferred:
        assert _layer(target) >= _layer(module), f"{module} imports {target}, a layer above it"
    if module.startswith("spikelut.hdl"):
        assert all(t.startswith("spikelut.hdl") for t in top | deferred), (
            f"gateware imports only gateware: {module} imports {sorted(top | deferred)}"
        )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_project_imports_sit_at_the_top(module):
    _, deferred = GRAPH[module]
    for target in deferred:
        assert (module, target) in DEFERRED, (
            f"{module} imports {target} inside a function; import it at the top "
            "(or name it, with the reason, in DEFERRED)"
        )


def test_no_module_cycles():
    # depth-first search over the top-level import graph
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(GRAPH[m][0]):
            if t not in GRAPH:
                continue
            if state.get(t) == 1:
                cycle = [*stack[stack.index(t) :], t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t, [*stack, t])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])


def test_every_deferred_import_still_exists():
    for (module, target), _why in DEFERRED.items():
        assert target in GRAPH[module][1], f"{module} no longer defers {target}: drop it"
