"""The package's import graph: no module reaches itself through others (every import counts, also one inside
a function), and the layers the core is built from only import downwards."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pytest_autoware_deploy"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            deps |= {c for c in candidates if c in modules and c != name}
        graph[name] = deps
    return graph


def cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_core_has_no_import_circles():
    """plugin -> suite -> fixtures -> plugin and spec.load <-> spec.stages were circles (issue 11). A dialects
    package importing its own submodules, which read the package's shared helpers, is the one left."""
    core = [c for c in cycles(import_graph()) if not all(m.startswith("pytest_autoware_deploy.spec.dialects")
                                                         for m in c)]
    assert core == []


LOWER = {  # module -> what it must never import (higher layers)
    "pytest_autoware_deploy.policies": ("export", "backends", "spec", "session", "suite", "plugin", "fixtures"),
    "pytest_autoware_deploy.backends.registry": ("export", "spec", "session", "suite", "plugin", "fixtures",
                                                 "backends.builtin", "backends.tensorrt", "backends.onnxruntime"),
    "pytest_autoware_deploy.spec.load": ("export", "session", "suite", "plugin", "fixtures", "collect"),
    "pytest_autoware_deploy.session": ("suite", "plugin", "fixtures", "collect", "context"),
    "pytest_autoware_deploy.suite": ("plugin", "fixtures"),
    "pytest_autoware_deploy.fixtures": ("plugin", "suite"),
    "pytest_autoware_deploy.collect": ("plugin", "fixtures"),
}


@pytest.mark.parametrize("module", sorted(LOWER))
def test_a_lower_layer_never_imports_a_higher_one(module):
    deps = import_graph()[module]
    bad = sorted(d for d in deps for higher in LOWER[module]
                 if d == f"pytest_autoware_deploy.{higher}" or d.startswith(f"pytest_autoware_deploy.{higher}."))
    assert bad == [], f"{module} imports {bad}"
