"""Tiers, the chamber schedule, rig-time estimates and the live progress line (issue 15).

The lab's view: every plan test carries a tier; a regression run runs the room-temperature
tests only and fits in 20 minutes of rig time; a qualification run runs everything in 4 h;
``bmsrig plan`` says beforehand how long each test takes, within 10 % of what the run
record shows afterwards.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.schedule import baseline_point_c, chamber_order, chamber_travel
from rig import options
from rig.errors import ConfigError
from rig.estimate import Estimate, format_plan, rig_time_per_test
from rig.progress import Progress, hms
from testplans.tiers import TIERS, TIERS_FILE, load_tiers, runs_in

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "testplans"


def plan_tests() -> set[str]:
    """Every ``file::test function`` in the plans, read from their source (ast)."""
    out = set()
    for path in PLANS.glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                out.add(f"{path.name}::{node.name}")
    return out


def test_every_plan_test_carries_a_tier_and_the_table_names_no_other():
    tiers = load_tiers()
    assert set(tiers) == plan_tests(), (set(tiers) ^ plan_tests())
    assert set(tiers.values()) <= set(TIERS)


def test_the_cli_offers_exactly_the_tiers_of_the_table():
    opt = next(o for o in options.RUN_OPTIONS if o.flag == "--tier")
    assert tuple(opt.choices) == TIERS and opt.default == "qualification"


def test_regression_covers_the_quickly_judged_requirements_and_qualification_all(tmp_path):
    tiers = load_tiers()
    regression = {k for k, t in tiers.items() if t == "regression"}
    for needed in ("test_sampling_accuracy.py::test_sampling_accuracy", "test_hvc.py::test_hvc_threshold",
                   "test_lvc.py::test_lvc_threshold", "test_bleed_timing.py::test_balancing_start",
                   "test_bleed_timing.py::test_balancing_stop", "test_bleed_timing.py::test_bleed_current",
                   "test_channel_mapping.py::test_cell_mapping", "test_noise_immunity.py::test_sampling_noise"):
        assert needed in regression
    assert all(runs_in(t, "qualification") for t in tiers.values())
    assert not runs_in("qualification", "regression")


def test_a_malformed_tier_table_names_the_file_and_the_key(tmp_path):
    bad = tmp_path / "tiers.yaml"
    bad.write_text("tests:\n  test_hvc.py::test_hvc_threshold: nightly\n")
    with pytest.raises(ConfigError) as e:
        load_tiers(bad)
    assert "test_hvc.py::test_hvc_threshold" in str(e.value) and "nightly" in str(e.value)
    bad.write_text("tests:\n  test_hvc_threshold: regression\n")
    with pytest.raises(ConfigError, match="plan file.py::test function"):
        load_tiers(bad)


class _Item:
    """A collected test as the schedule sees it: name, needs markers, module setpoints."""

    def __init__(self, name, points=None):
        self.name = name
        self.chamber = points is not None
        self.module = type("M", (), {"setpoints": staticmethod(lambda profile: points)})() if points else None

    def iter_markers(self, name):
        return [pytest.mark.needs("chamber").mark] if (name == "needs" and self.chamber) else []


def test_chamber_tests_run_last_each_starting_where_the_last_one_left_the_chamber():
    items = [_Item("derating", [25, 25, 10, 38]), _Item("hvc"), _Item("accuracy_temp", [-10, 50]),
             _Item("temp_comp", [38, 10]), _Item("mapping")]
    order = [it.name for it in chamber_order(items, profile=object())]
    # room first (no ramp), then the test starting at 38 where derating ended, then -10 from 10
    assert order == ["hvc", "mapping", "derating", "temp_comp", "accuracy_temp"]


def test_a_chamber_test_ending_hot_runs_last_when_that_moves_the_chamber_least():
    # derating ends past its curve's zero (83 °C): run first, the next test waits for the
    # chamber to come down 45 °C; run last, nothing waits (travel 58 °C against 65 °C)
    items = [_Item("derating", [25, 25, 10, 38, 83]), _Item("accuracy_temp", [-10, 50]), _Item("temp_comp", [38, 10])]
    order = [it.name for it in chamber_order(items, profile=object())]
    assert order == ["temp_comp", "accuracy_temp", "derating"]
    assert chamber_travel([[38, 10], [-10, 50], [25, 25, 10, 38, 83]]) == 13 + 20 + 25


def test_a_board_left_over_temperature_goes_to_the_next_tests_first_set_point_when_inside_its_window():
    # accuracy ends at 50 °C, above the board's OT: the baseline takes the chamber straight to
    # the next test's first set point (38 °C, inside the window) instead of via ambient
    window = (5.0, 40.0)
    assert chamber_travel([[-10, 50], [38, 10]], window=window) == 35 + 12
    assert chamber_travel([[-10, 50], [38, 10]]) == 35 + 12
    # ... but via ambient when the next test starts outside the window too (50 °C after 83 °C)
    assert chamber_travel([[25, 83], [50, -10]], window=window) == 58 + 25
    assert chamber_travel([[25, 83], [50, -10]]) == 33
    profile = type("P", (), {"protection": type("Q", (), {"ut_charge_c": 0.0, "ot_charge_c": 45.0})()})()
    assert baseline_point_c(_Item("temp_comp", [38, 10]), profile) == 38.0
    assert baseline_point_c(_Item("accuracy_temp", [-10, 50]), profile) == 25.0  # UT there: ambient
    # the reference board's chamber plans: accuracy (out and back), then temperature
    # compensation from its hot point, then derating from the cold point compensation left
    items = [_Item("derating", [10, 25, 25, 38, 83]), _Item("accuracy_temp", [-10, 50]), _Item("temp_comp", [38, 10])]
    assert [it.name for it in chamber_order(items, profile)] == ["accuracy_temp", "temp_comp", "derating"]


def test_plan_table_lists_each_test_and_the_total():
    est = Estimate("reference-16s-lfp", "regression", {"a.py::t1": 90.0, "b.py::t2": 3600.0})
    text = format_plan(est)
    assert "a.py::t1" in text and "0:01:30" in text and "1:01:30" in text and "1.02 h" in text
    assert hms(3725) == "1:02:05" and hms(None) == "?"


def test_progress_shows_test_phase_rig_time_and_eta_plain_lines_when_not_a_tty():
    lines, rewrites = [], []
    wall = iter(range(0, 1000, 10))
    p = Progress({"t1": 100.0, "t2": 300.0}, lines.append, rewrites.append, tty=False, n_tests=2,
                 wall=lambda: float(next(wall)))
    p.start_test("t1", 0.0)
    p.set_phase("soak at 45 °C")
    p.tick(50.0)  # not a TTY: no line per tick
    p.set_phase("soak at 45 °C")  # same phase: no new line
    assert len(lines) == 2 and not rewrites
    assert "soak at 45 °C" in lines[-1] and "[1/2] t1" in lines[-1]
    p.end_test("t1", 100.0)
    p.start_test("t2", 100.0)
    assert p.remaining_rig() == 300.0 and "rig 0:01:40 / 0:06:40 est" in lines[-1]
    p.tick(250.0)
    assert p.remaining_rig() == 150.0 and p.eta_wall() is not None


def test_progress_rewrites_one_line_on_a_terminal():
    lines, rewrites = [], []
    p = Progress(None, lines.append, rewrites.append, tty=True, n_tests=1, wall=lambda: 0.0, refresh_s=0.0)
    p.start_test("t1", 0.0)
    p.tick(5.0)
    assert not lines and len(rewrites) == 2 and "/ ? est" in rewrites[-1] and "ETA ?" in rewrites[-1]


def _bmsrig(*args, cwd, env):
    return subprocess.run([sys.executable, "-m", "rig.cli", *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("tier,limit_s", [("regression", 20 * 60), ("qualification", 4 * 3600)])
def test_plan_estimate_is_within_10_percent_of_the_record_and_the_tier_within_its_rig_time(tmp_path, tier, limit_s):
    """`bmsrig plan` (a dry run, seed 0) against a run on another bench seed: per-test and
    total rig time from the run record within 10 %; the tier within its rig-time budget."""
    env = dict(os.environ, BMSRIG_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    plan = _bmsrig("plan", "--tier", tier, "--json", cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stderr
    est = json.loads(plan.stdout)
    run_dir = tmp_path / "run"
    ran = subprocess.run([sys.executable, "-m", "pytest", str(PLANS), "-p", "no:cacheprovider", "--rootdir", str(PLANS),
                          "-o", "testpaths=", "--tier", tier, "--seed", "7", "--run-dir", str(run_dir), "-q",
                          "--tb=line"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-2000:]
    record = rig_time_per_test(run_dir)
    assert set(record) == set(est["tests"])
    total = sum(record.values())
    assert abs(est["total_s"] - total) <= 0.10 * total
    for nodeid, s in record.items():
        if s > 60.0:  # a test of a minute or more: its own estimate within 10 % too
            assert abs(est["tests"][nodeid] - s) <= 0.10 * s, nodeid
    assert "bmsrig:" in ran.stdout and "rig " in ran.stdout  # progress lines in a log (not a TTY)
    assert total <= limit_s, f"{tier}: {total / 3600:.2f} h of rig time"


def test_a_scaled_capacity_cell_follows_the_full_cells_voltage_trajectory_in_scaled_time():
    """The equivalence BAL-007's scaled run rests on: the profile's cell (100 Ah LFP) and the
    same cell with its charge capacity x 0.01, driven by the same currents (a 50 mA bleed on
    one cell, a 40 mA trickle on all), give the same terminal voltages at times x 0.01."""
    import numpy as np

    from rig.cellmodel import scaled_cell_params
    from rig.sim.cells import CellParams, PackModel

    n, cap, scale = 4, 100.0, 0.01
    soc = np.array([0.979, 0.979, 0.999, 0.979])
    current = np.array([0.04, 0.04, -0.01, 0.04])  # A, positive charges
    full = PackModel("lfp", n, cap, soc, np.random.default_rng(3), params=CellParams.for_chemistry("lfp", cap))
    fast = PackModel("lfp", n, cap * scale, soc, np.random.default_rng(3), params=scaled_cell_params("lfp", cap, scale))
    for _ in range(20):  # 20 h of the full cell, 12 min of the scaled one
        full.step(3600.0, current)
        fast.step(3600.0 * scale, current)
    assert np.allclose(fast.soc, full.soc, atol=2e-4)
    # the scaled cell's RC has had 1/100 of the time to relax: allow the RC part of a 50 mA step
    assert np.allclose(fast.terminal_voltage(current), full.terminal_voltage(current), atol=0.5e-3)
    with pytest.raises(ValueError, match="capacity_scale"):
        scaled_cell_params("lfp", cap, 1.5)
