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
  importing ``a.b.c`` is an edge to ``a.b.c`` only: the parent packages' ``__init__`` run
  too, but a package importing its own children (``reports/__init__.py``) is how a package
  presents itself, not a layering edge, so implicit parent edges are not counted.

Private reaches: ``from X import _name``, ``X._name`` on a name bound to a project module
(``import rig.x as m; m._y``), and importing a ``_private`` module from outside its own
package. Dunder names are public.

Known violations (other work is removing them) are listed by module in ``KNOWN_*`` below;
each is an ``xfail(strict=True)`` case, so it turns into a failure (and must be struck off
the list) the moment it is fixed. Every other module must be clean; a cycle is excused only
as a whole, when one of its modules is listed. The checker itself is tested on a small
synthetic package first.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rig", "fixtures", "reports", "testplans")
MAX_LINES = 500

# Known violations, by module -> what it is (being removed on other branches; each entry
# is an xfail(strict=True) case: strike it off the moment it flips).
KNOWN_CYCLES: dict[str, str] = {
}
KNOWN_LONG: dict[str, str] = {
}
KNOWN_PRIVATE: dict[str, str] = {
}


# ----------------------------------------------------------------------------- the walk
def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class Project:
    """The modules under ``root``'s ``packages``, what each imports and reaches for."""

    def __init__(self, root: Path, packages=PACKAGES):
        self.root = root
        self.modules: dict[str, Path] = {}
        for pkg in packages:
            for path in sorted((root / pkg).rglob("*.py")):
                if "__pycache__" not in path.parts:
                    self.modules[self._name(path)] = path
        self.facts = {name: ModuleFacts(self, name, path) for name, path in self.modules.items()}
        self.cycles = _strongly_connected({n: sorted(f.imports) for n, f in self.facts.items()})

    def _name(self, path: Path) -> str:
        parts = list(path.relative_to(self.root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def is_package(self, name: str) -> bool:
        return self.modules[name].name == "__init__.py"

    def resolve_from(self, module: str, node: ast.ImportFrom) -> str | None:
        """The absolute module a ``from … import`` in ``module`` names (relative levels resolved)."""
        if not node.level:
            return node.module
        base = module.split(".")
        if not self.is_package(module):
            base = base[:-1]
        if node.level > 1:
            base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def project(self, name: str | None) -> str | None:
        """``name`` if it is a project module, else its longest project-module prefix, else None."""
        while name:
            if name in self.modules:
                return name
            name = name.rpartition(".")[0]
        return None

    def cycle_of(self, module: str) -> list[str] | None:
        return next((c for c in self.cycles if module in c), None)

    def loop(self, cycle: list[str]) -> str:
        """One concrete loop through a cycle's modules, for a failure message."""
        members = set(cycle)
        path = [cycle[0]]
        while True:
            nxt = next(w for w in sorted(self.facts[path[-1]].imports) if w in members)
            if nxt in path:
                return " -> ".join(path[path.index(nxt):] + [nxt])
            path.append(nxt)


class ModuleFacts:
    """What one module imports (project modules only) and which private names it reaches for."""

    def __init__(self, project: Project, name: str, path: Path):
        self.name = name
        text = path.read_text(encoding="utf-8")
        self.lines = len(text.splitlines())
        self.imports: set[str] = set()
        self.private: list[str] = []
        tree = ast.parse(text, filename=str(path))
        bound: dict[str, str] = {}  # local name -> the project module it stands for
        for node in ast.walk(tree):  # every scope: module level, functions, TYPE_CHECKING blocks
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = project.project(alias.name)
                    if target is not None:
                        self._edge(target, node.lineno)
                        if alias.asname:
                            bound[alias.asname] = target
            elif isinstance(node, ast.ImportFrom):
                src = project.resolve_from(name, node)
                if project.project(src) is None:
                    continue
                for alias in node.names:
                    sub = f"{src}.{alias.name}"
                    if sub in project.modules:
                        self._edge(sub, node.lineno)
                        bound[alias.asname or alias.name] = sub
                    else:
                        self._edge(project.project(src), node.lineno)
                        if _private(alias.name):
                            self.private.append(f"line {node.lineno}: from {src} import {alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = ast.unparse(node.value)
                target = bound.get(owner) or (owner if owner in project.modules else None)
                if target is not None and target != name:
                    self.private.append(f"line {node.lineno}: {owner}.{node.attr} ({target})")

    def _edge(self, target: str, lineno: int) -> None:
        if target == self.name:
            return
        self.imports.add(target)
        parts = target.split(".")
        for i, part in enumerate(parts):  # a _private module is its own package's business
            if _private(part):
                package = ".".join(parts[:i])
                if not (self.name == package or self.name.startswith(package + ".")):
                    self.private.append(f"line {lineno}: imports private module {target}")
                break


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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


@functools.lru_cache(maxsize=1)
def bmsrig() -> Project:
    return Project(ROOT)


def _known(table: dict[str, str]):
    return [pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=why), id=m) for m, why in table.items()]


# ----------------------------------------------------------------------------- the checker itself
def test_the_checker_finds_each_kind_of_violation(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "low.py": "def f():\n    from .high import g  # a lazy back edge\n    return g\n",
        "high.py": "from .low import f\n\ndef g():\n    return f\n",
        "reach.py": "from pkg.low import _hidden\nfrom pkg import high as h\nx = h._inner\nfrom .sub import _impl\n",
        "typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .reach import x\n",
        "sub/__init__.py": "from . import _impl\nfrom ._impl import _y  # inside its package, still a private name\n",
        "sub/_impl.py": "_y = 1\n" + "\n" * (MAX_LINES + 1),
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    p = Project(tmp_path, packages=("pkg",))
    assert p.cycles == [["pkg.high", "pkg.low"]]
    assert p.loop(p.cycles[0]) in ("pkg.high -> pkg.low -> pkg.high", "pkg.low -> pkg.high -> pkg.low")
    assert "pkg.reach" in p.facts["pkg.typed"].imports  # TYPE_CHECKING imports are edges
    reach = p.facts["pkg.reach"].private
    assert any("from pkg.low import _hidden" in r for r in reach)
    assert any("h._inner (pkg.high)" in r for r in reach)
    assert any("private module pkg.sub._impl" in r for r in reach)
    assert p.facts["pkg.sub"].private == ["line 2: from pkg.sub._impl import _y"]
    assert p.facts["pkg.sub._impl"].lines > MAX_LINES


# ----------------------------------------------------------------------------- the checks
def test_the_walk_sees_the_project():
    p = bmsrig()
    assert {"rig.sim.world", "rig.sim.harness", "fixtures.plugin", "reports.build", "testplans.procedures"} <= set(p.modules)
    assert "rig.sim.harness" in p.facts["rig.sim.world"].imports


def test_no_import_cycle():
    p = bmsrig()
    bad = [c for c in p.cycles if not set(c) & set(KNOWN_CYCLES)]
    assert not bad, "import cycles:\n" + "\n".join(p.loop(c) for c in bad)


@pytest.mark.parametrize("module", _known(KNOWN_CYCLES))
def test_known_cycle_is_gone(module):
    p = bmsrig()
    cycle = p.cycle_of(module)
    assert cycle is None, f"{module} is still in an import cycle: {p.loop(cycle)}"


def test_no_module_over_500_lines():
    long = {m: f.lines for m, f in bmsrig().facts.items() if f.lines > MAX_LINES and m not in KNOWN_LONG}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("module", _known(KNOWN_LONG))
def test_known_long_module_is_split(module):
    assert bmsrig().facts[module].lines <= MAX_LINES


def test_no_private_reach():
    bad = {m: f.private for m, f in bmsrig().facts.items() if f.private and m not in KNOWN_PRIVATE}
    assert not bad, "reaches into another module's private names:\n" + "\n".join(
        f"{m}: {r}" for m, rs in sorted(bad.items()) for r in rs)


@pytest.mark.parametrize("module", _known(KNOWN_PRIVATE))
def test_known_private_reach_is_gone(module):
    assert not bmsrig().facts[module].private, bmsrig().facts[module].private
