"""The zoo's default subset (what ``pytest`` runs without ``--zoo=full``) still proves each
plan catches its defects; ``--zoo=full`` / ``BMSRIG_ZOO=full`` selects every case."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from itertools import product

from rig.sim.defects import catalog

from .test_zoo import NOT_JUDGED
from .catalog_expectations import CAUGHT, IDENTITY, PROFILES, VENDOR_CAUGHT, WITHIN_SPEC, defect_name
from .conftest import REPO, default_seed, full_plan_default_specs, in_default_subset
from .test_zoo import SEEDS


def _default(test, **params):
    return in_default_subset(test, params)


def test_default_subset_catches_every_catalog_defect_once_on_every_profile_mix():
    runs = [(b, s) for b, s in product(PROFILES, CAUGHT) if _default("test_defect_is_caught", board=b, spec=s)]
    per_spec = {s: [b for b, s2 in runs if s2 == s] for s in CAUGHT}
    assert all(len(boards) == 1 for boards in per_spec.values()), per_spec
    silencing = [(b, s) for b, s in product(PROFILES, NOT_JUDGED) if _default("test_silenced_board_is_not_judged", board=b, spec=s)]
    assert sorted(s for _, s in silencing) == sorted(NOT_JUDGED), "each link-silencing defect runs once by default"
    # the vendor boards' faulty variants run on their vendor board in every run (test_zoo.py)
    vendor = {defect_name(row[1]) for row in VENDOR_CAUGHT}
    assert {defect_name(s) for _, s in runs + silencing} | {defect_name(s) for s in IDENTITY} | vendor == {d.name for d in catalog()}
    assert {b for b, _ in runs} == set(PROFILES), "every profile catches some defect by default"
    within = [(b, s) for b, s in product(PROFILES, WITHIN_SPEC) if _default("test_defect_within_spec_passes", board=b, spec=s)]
    assert sorted(s for _, s in within) == sorted(WITHIN_SPEC)


def test_default_subset_runs_one_more_seed_per_profile_and_the_full_plan_per_plan_file():
    for board in PROFILES:
        seeds = [s for s in SEEDS if s != 1 and _default("test_reference_board_passes", board=board, seed=s)]
        assert seeds == [default_seed(board)]
    assert len({default_seed(b) for b in PROFILES}) == len(PROFILES)
    specs = full_plan_default_specs()
    assert sorted(CAUGHT[s][0] for s in specs) == sorted({plan for plan, _, _ in CAUGHT.values()})
    assert all(_default("test_full_plan_fails_each_defect_in_its_intended_test", spec=s) == (s in specs) for s in CAUGHT)


def _collected(*args, env=None):
    out = subprocess.run([sys.executable, "-m", "pytest", "tests/zoo/test_zoo.py", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *args], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=300)
    m = re.search(r"(\d+)(?:/(\d+))? tests? collected", out.stdout)
    assert m, out.stdout[-2000:] + out.stderr[-2000:]
    return int(m.group(1)), int(m.group(2) or m.group(1)), out


def test_zoo_option_and_environment_select_the_full_sweep():
    env = {"BMSRIG_ZOO": ""}
    selected, total, _ = _collected(env=env)
    cases = (len(PROFILES) * (1 + len(SEEDS) - 1) + len(PROFILES) * (len(CAUGHT) + len(WITHIN_SPEC)) + len(CAUGHT))
    assert total >= cases and selected < total
    assert _collected("--zoo=full", env=env)[:2] == (total, total)
    assert _collected(env={"BMSRIG_ZOO": "full"})[:2] == (total, total)
    assert _collected("--zoo=default", env={"BMSRIG_ZOO": "full"})[0] == selected
    code = subprocess.run([sys.executable, "-m", "pytest", "tests/zoo/test_zoo.py", "--collect-only", "-q",
                           "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "BMSRIG_ZOO": "everything"}, timeout=300)
    assert code.returncode == 4 and "BMSRIG_ZOO='everything': expected one of default, full" in code.stderr
