"""The project's layering, checked from its source: no import cycle, no module over 500
lines, no reach into another module's private (``_underscore``) names.

The walk parses (``ast``, nothing is imported) every ``*.py`` under ``rig/``, ``fixtures/``,
``reports/`` and ``testplans/``. A module is named by its dotted path (``rig/sim/world.py``
is ``rig.sim.world``, a package by its ``__init__.py``).

Import edges. Every ``import``/``from … import`` of a project module counts, wherever it
stands:

- module level: the plain case;
- inside a function (a lazy import): counted too. A lazy import defers the cost or breaks
  an import-time cycle, but the dependency is still there, and a cycle through it is
  still a cycle in the layering (the two modules cannot be understood, tested or
  replaced apart). Lazy imports of optional vendor libraries are outside the project
  and never an edge;
- under ``if TYPE_CHECKING:``: counted too (a type-only back edge still says the lower
  module knows the upper one);
- ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``;
  importing ``a.b.c`` is an edge to ``a.b.c`` only (the parent packages' ``__init__`` run
  too, but they hold no imports of their children here, so they add no edge worth a cycle).

Private reaches: ``from X import _name``, ``X._name`` on a name bound to a project module
(``import rig.x as m; m._y``), and importing a ``_private`` module from outside its own
package. Dunder names are public.

Known violations other work is removing are listed by module in ``KNOWN_*`` below; each
is an ``xfail(strict=True)`` case, so it turns into a failure (and must be struck off the
list) the moment it is fixed. Every other module must be clean.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rig", "fixtures", "reports", "testplans")
MAX_LINES = 500

# module -> why it is a known violation (fixed on another branch; remove when it flips)
KNOWN_CYCLES: dict[str, str] = {
    "rig.labgrid": "rig.labgrid <-> rig.drivers chamber modules (_CalibratedInstrument)",
}
KNOWN_LONG: dict[str, str] = {
    "rig.sim.reference_board": "board model: fast-forward maths moving to the bench",
}
KNOWN_PRIVATE: dict[str, str] = {}


# ----------------------------------------------------------------------------- the walk
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.lru_cache(maxsize=1)
def project_modules() -> dict[str, Path]:
    """Every project module: dotted name -> path."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" not in path.parts:
                out[_module_name(path)] = path
    return out


def _is_package(name: str) -> bool:
    return project_modules()[name].name == "__init__.py"


def _resolve_from(module: str, node: ast.ImportFrom) -> str | None:
    """The absolute module a ``from … import`` names (relative levels resolved)."""
    if not node.level:
        return node.module
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _project(name: str | None) -> str | None:
    """``name`` if it is a project module, else the longest project-module prefix, else None."""
    mods = project_modules()
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


class ModuleFacts:
    """What one module imports and which private names it reaches for."""

    def __init__(self, name: str, path: Path):
        self.name = name
        self.lines = len(path.read_text(encoding="utf-8").splitlines())
        self.imports: set[str] = set()
        self.private: list[str] = []
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        bound: dict[str, str] = {}  # local name -> project module it stands for
        mods = project_modules()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = _project(alias.name)
                    if target is None:
                        continue
                    self._edge(target, node.lineno)
                    if alias.asname:
                        bound[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                src = _resolve_from(name, node)
                if _project(src) is None:
                    continue
                for alias in node.names:
                    sub = f"{src}.{alias.name}"
                    if sub in mods:
                        self._edge(sub, node.lineno)
                        bound[alias.asname or alias.name] = sub
                    else:
                        self._edge(_project(src), node.lineno)
                        if _private(alias.name):
                            self.private.append(f"line {node.lineno}: from {src} import {alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = ast.unparse(node.value)
                target = bound.get(owner) or (owner if owner in mods else None)
                if target is not None and target != name:
                    self.private.append(f"line {node.lineno}: {owner}.{node.attr} ({target})")

    def _edge(self, target: str, lineno: int) -> None:
        if target == self.name:
            return
        self.imports.add(target)
        # a _private module is its own package's business
        parts = target.split(".")
        for i, part in enumerate(parts):
            if _private(part):
                package = ".".join(parts[:i])
                if not (self.name == package or self.name.startswith(package + ".")):
                    self.private.append(f"line {lineno}: imports private module {target}")
                break


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@functools.lru_cache(maxsize=1)
def facts() -> dict[str, ModuleFacts]:
    return {name: ModuleFacts(name, path) for name, path in project_modules().items()}


@functools.lru_cache(maxsize=1)
def cycles() -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan)."""
    graph = {name: sorted(f.imports) for name, f in facts().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _cycle_of(module: str) -> list[str] | None:
    return next((c for c in cycles() if module in c), None)


def _path_in_cycle(cycle: list[str]) -> str:
    """One concrete loop through the component, for the failure message."""
    members = set(cycle)
    start = cycle[0]
    path, seen = [start], {start}
    while True:
        nxt = next(w for w in sorted(facts()[path[-1]].imports) if w in members)
        if nxt in seen:
            return " -> ".join(path[path.index(nxt):] + [nxt])
        path.append(nxt)
        seen.add(nxt)


def _known(table: dict[str, str]):
    return [pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=why), id=m) for m, why in table.items()]


# ----------------------------------------------------------------------------- the checks
def test_the_walk_sees_the_project():
    mods = project_modules()
    assert {"rig.sim.world", "rig.sim.harness", "fixtures.plugin", "reports.build"} <= set(mods)
    assert "rig.sim.harness" in facts()["rig.sim.world"].imports


def test_no_import_cycle():
    bad = [c for c in cycles() if not set(c) & set(KNOWN_CYCLES)]
    assert not bad, "import cycles:\n" + "\n".join(_path_in_cycle(c) for c in bad)


@pytest.mark.parametrize("module", _known(KNOWN_CYCLES))
def test_known_cycle_is_gone(module):
    cycle = _cycle_of(module)
    assert cycle is None, f"{module} is still in an import cycle: {_path_in_cycle(cycle)}"


def test_no_module_over_500_lines():
    long = {m: f.lines for m, f in facts().items() if f.lines > MAX_LINES and m not in KNOWN_LONG}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("module", _known(KNOWN_LONG))
def test_known_long_module_is_split(module):
    assert facts()[module].lines <= MAX_LINES


def test_no_private_reach():
    bad = {m: f.private for m, f in facts().items() if f.private and m not in KNOWN_PRIVATE}
    assert not bad, "reaches into another module's private names:\n" + "\n".join(
        f"{m}: {r}" for m, rs in sorted(bad.items()) for r in rs)


@pytest.mark.parametrize("module", _known(KNOWN_PRIVATE))
def test_known_private_reach_is_gone(module):
    assert not facts()[module].private, facts()[module].private
