"""Packaging: every third-party module the code imports is declared in pyproject.toml, and
constraints-floor.txt pins each declared dependency at exactly its declared floor (so the
floor check, .ci/floor, tests what pyproject.toml promises)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE_DIRS = ("rig", "fixtures", "reports", "testplans", "tests")
_REQ = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, list[str]]:
    """Normalised distribution name -> its specifiers, over dependencies and every extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    out: dict[str, list[str]] = {}
    for req in reqs:
        name, spec = _REQ.match(req.split(";", 1)[0]).groups()
        out.setdefault(_norm(name), []).extend(s.strip() for s in spec.split(",") if s.strip())
    return out


def _local_modules() -> set[str]:
    names = set(CODE_DIRS)
    for d in CODE_DIRS:
        names |= {p.stem for p in (REPO / d).rglob("*.py")} | {p.name for p in (REPO / d).rglob("*") if p.is_dir()}
    return names


def _imported_top_level() -> dict[str, str]:
    """Top-level module name -> one file importing it (absolute imports only)."""
    found: dict[str, str] = {}
    for d in CODE_DIRS:
        for path in sorted((REPO / d).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                for m in mods:
                    found.setdefault(m.split(".")[0], str(path.relative_to(REPO)))
    return found


def test_every_imported_third_party_module_is_declared():
    declared, local = _declared(), _local_modules()
    dists = packages_distributions()
    undeclared = {}
    for mod, where in _imported_top_level().items():
        if mod in sys.stdlib_module_names or mod in local or mod == "__future__":
            continue
        providers = {_norm(d) for d in dists.get(mod, [])}
        assert providers, f"{mod} (imported in {where}) is not installed: declare it in pyproject.toml"
        if not providers & set(declared):
            undeclared[mod] = (where, sorted(providers))
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_floor_constraints_pin_every_declared_dependency_at_its_floor():
    floors = {}
    for name, specs in _declared().items():
        lows = [s[2:].strip() for s in specs if s.startswith(">=")]
        assert lows, f"pyproject.toml: {name} has no floor (>=)"
        floors[name] = max(lows, key=lambda v: tuple(int(x) for x in re.findall(r"\d+", v)))
    pins = {}
    for line in (REPO / "constraints-floor.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_norm(name)] = version.strip()
    missing = sorted(set(floors) - set(pins))
    assert not missing, f"constraints-floor.txt: no pin for declared {missing}"
    def padded(v):
        parts = [int(x) for x in re.findall(r"\d+", v)]
        return tuple(parts + [0] * (4 - len(parts)))
    wrong = {n: (pins[n], floors[n]) for n in floors if padded(pins[n]) != padded(floors[n])}
    assert not wrong, f"constraints-floor.txt pin != pyproject.toml floor (pin, floor): {wrong}"


def test_the_installed_distribution_registers_the_link_kinds_and_board_models():
    """What a third party sees after ``pip install``: the entry points pyproject declares."""
    from importlib.metadata import entry_points

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    links = {ep.name: ep.value for ep in entry_points(group="bmsrig.links")}
    boards = {ep.name: ep.value for ep in entry_points(group="bmsrig.boards")}
    assert {"can", "modbus"} <= set(links) and "reference" in boards
    assert links["can"] == declared["bmsrig.links"]["can"] and boards["reference"] == declared["bmsrig.boards"]["reference"]

    from rig.links.registry import LinkKind
    from rig.sim.boards import load_board

    for name in ("can", "modbus"):
        kind = next(ep for ep in entry_points(group="bmsrig.links") if ep.name == name).load()
        assert isinstance(kind, LinkKind) and kind.name == name
    assert load_board("reference").__name__ == "ReferenceBoard"
