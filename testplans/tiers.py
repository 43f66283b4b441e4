"""The tier of every plan test (``testplans/tiers.yaml``), read once.

``regression``: judged in minutes of rig time at room temperature (a firmware build's
check). ``qualification``: every requirement. A qualification run runs every test, a
regression run the regression tests only. Keys are ``plan file::test function`` (a
parametrised test has one tier for all its cases).
"""

from __future__ import annotations

from pathlib import Path

from rig.errors import ConfigError
from rig.yamlio import load_yaml_mapping

TIERS_FILE = Path(__file__).resolve().with_name("tiers.yaml")
"""The one tier table (shipped as package data)."""

TIERS = ("regression", "qualification")
"""The tiers, quickest first; a tier runs its own tests and those of every tier before it."""

DEFAULT_TIER = "qualification"


def load_tiers(path: str | Path = TIERS_FILE) -> dict[str, str]:
    """``plan file::test function`` -> tier. ConfigError naming the file and key when a key
    is not ``file.py::function`` or a tier is not one of :data:`TIERS`."""
    raw = load_yaml_mapping(path, "tier table")
    tests = raw.get("tests")
    if not isinstance(tests, dict) or not tests:
        raise ConfigError(path, "tests", "a mapping `plan file::test function: tier` is required")
    out: dict[str, str] = {}
    for key, tier in tests.items():
        name = str(key)
        file, sep, func = name.partition("::")
        if not sep or not file.endswith(".py") or not func.isidentifier():
            raise ConfigError(path, f"tests.{name}", "a key is `plan file.py::test function`, e.g. "
                                                    "test_hvc.py::test_hvc_threshold")
        if tier not in TIERS:
            raise ConfigError(path, f"tests.{name}", f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
        out[name] = str(tier)
    return out


def tier_key(path: str | Path, function: str) -> str:
    """The table key of test ``function`` in plan file ``path``."""
    return f"{Path(path).name}::{function}"


def runs_in(test_tier: str, run_tier: str) -> bool:
    """Does a test of ``test_tier`` run in a run of ``run_tier``?"""
    return TIERS.index(test_tier) <= TIERS.index(run_tier)
