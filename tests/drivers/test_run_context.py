"""The run context reaches the drivers as a labgrid resource (``RunContext``), not as an
attribute of the Target: the rig a file describes is the same whatever order its drivers
are listed or activated in, and the resource/driver modules import without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import yaml

from rig.build import DEFAULT_ENV, build_rig
from rig.context import RigContext, RunContext, attach_context, context_of, find_context
from rig.errors import ConfigError

RIG = Path(__file__).resolve().parents[2] / "rig"


def _reordered(tmp_path, order) -> Path:
    raw = yaml.safe_load(DEFAULT_ENV.read_text())
    drivers = raw["targets"]["main"]["drivers"]
    names = list(drivers)
    raw["targets"]["main"]["drivers"] = {n: drivers[n] for n in order(names)}
    path = tmp_path / f"sim-{'-'.join(order(names))[:40]}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _observe(rig) -> dict:
    """What a plan would see after a baseline: limits, clock, board state, instruments."""
    rig.baseline()
    rig.clock.sleep(2.0)
    sample = rig.link.latest()
    return {
        "limits": rig.emulator.limits.describe(),
        "t": round(rig.clock.now(), 6),
        "cells": np.round(np.asarray(sample.cell_v, dtype=float), 4).tolist(),
        "emulator": np.round(rig.emulator.read_voltages(), 4).tolist(),
        "instruments": [(i.role, i.model, i.serial) for i in rig.instruments()],
    }


@pytest.mark.parametrize("order", [lambda n: list(reversed(n)), lambda n: sorted(n), lambda n: n[3:] + n[:3]],
                         ids=["reversed", "sorted", "rotated"])
def test_bench_rig_is_the_same_whatever_the_driver_order(tmp_path, board_profile, order):
    seen = []
    for env in (DEFAULT_ENV, _reordered(tmp_path, order)):
        rig = build_rig(env, board_profile, seed=7)
        try:
            assert not hasattr(rig.target, "bmsrig")  # no attribute on the Target any more
            ctx = rig.target.get_resource(RunContext).context
            assert ctx is context_of(rig.target) and ctx.profile is board_profile and ctx.seed == 7
            assert ctx.clock is rig.clock
            seen.append(_observe(rig))
        finally:
            rig.close()
    assert seen[0] == seen[1]


def test_drivers_find_the_context_whatever_order_they_activate_in(make_target, step_clock):
    """Targets built by hand (tests, tools) attach the context as the same resource."""
    from rig.drivers.sim import SimBenchDriver, SimCellEmulatorDriver, SimChamberDriver

    resources = {"SimBench": {}}
    drivers = {"SimBenchDriver": {}, "SimCellEmulatorDriver": {}, "SimChamberDriver": {}}
    target = make_target(resources, drivers)
    chamber = target.get_driver(SimChamberDriver)  # activates the bench through its binding
    emulator = target.get_driver(SimCellEmulatorDriver)
    assert target.get_driver(SimBenchDriver).world is not None
    assert emulator.limits["voltage_range_v"].hi == 4.0  # narrowed to LFP: the profile was found
    chamber.set_temperature(30.0)
    assert find_context(target).clock is not step_clock  # the bench installed its virtual clock


def test_a_target_without_a_context_says_so(tmp_path):
    from labgrid import Environment

    import rig.labgrid  # noqa: F401

    env = tmp_path / "rig.yaml"
    env.write_text(yaml.safe_dump({"imports": ["rig.labgrid"], "targets": {"main": {"resources": {}, "drivers": {}}}}))
    target = Environment(str(env)).get_target("main")
    assert find_context(target) is None
    with pytest.raises(RuntimeError, match="no RunContext"):
        context_of(target)
    ctx = RigContext(profile=None)
    attach_context(target, ctx)
    assert context_of(target) is ctx


def test_run_context_is_not_written_in_a_rig_file(tmp_path, board_profile):
    raw = yaml.safe_load(DEFAULT_ENV.read_text())
    raw["targets"]["main"]["resources"]["RunContext"] = {}
    env = tmp_path / "with-context.yaml"
    env.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match="RunContext is supplied by bmsrig"):
        build_rig(env, board_profile)


def _module_imports(path: Path, name: str) -> set[str]:
    """Modules imported at module level (not inside functions) by the module ``name``."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def test_no_import_cycle_through_the_labgrid_registration_or_the_drivers():
    modules = {}
    for path in RIG.rglob("*.py"):
        rel = path.relative_to(RIG.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = path
    graph = {m: {i for i in _module_imports(p, m) if i in modules and i != m} for m, p in modules.items()}
    watched = {m for m in modules if m in ("rig.labgrid", "rig.resources", "rig.context", "rig.safety")
               or m.startswith("rig.drivers")}

    def reaches(start, goal):
        stack, seen = [start], set()
        while stack:
            m = stack.pop()
            for nxt in graph[m]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    cycles = sorted((a, b) for a in watched for b in graph[a] if reaches(b, a))
    assert cycles == []
