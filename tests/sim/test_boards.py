"""Board-model registry (built-in table, ``bmsrig.boards`` entry points, ``module:Class``)
and a toy board model that passes a plan and is fast-forwarded by the bench."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from rig.errors import ConfigError
from rig.sim import boards
from rig.sim.boards import BUILTIN, ENTRY_POINT_GROUP, load_board, registered
from rig.sim.reference import ReferenceBoard

from ._util import PROFILE, world
from .toy_board import ToyBoard

ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.sim.toy_board:ToyBoard"


def test_reference_is_built_in_and_loads_by_name():
    assert BUILTIN["reference"] == "rig.sim.reference:ReferenceBoard"
    assert registered()["reference"] == BUILTIN["reference"]
    from rig.sim.reference_board import ReferenceBoard as Compat

    assert load_board("reference") is ReferenceBoard is Compat
    assert load_board("rig.sim.reference_board:ReferenceBoard") is ReferenceBoard


def test_pyproject_registers_the_reference_board():
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    eps = data["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert eps == {"reference": BUILTIN["reference"]}


def test_an_entry_point_from_an_installed_distribution_is_a_name(tmp_path, monkeypatch):
    dist = tmp_path / "toy_boards-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-boards\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntoy = {TOY}\nreference = {TOY}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert names["toy"] == TOY
    assert registered()["toy"] == TOY
    assert load_board("toy") is ToyBoard
    assert load_board("reference") is ReferenceBoard  # a built-in name keeps its class


def test_entry_points_read_through_importlib_metadata(monkeypatch):
    ep = metadata.EntryPoint(name="toy2", value=TOY, group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(boards.metadata, "entry_points", lambda group: [ep] if group == ENTRY_POINT_GROUP else [])
    assert load_board("toy2", source="p.yaml") is ToyBoard


@pytest.mark.parametrize("spec, fragment", [
    ("nope", "not a registered name (fjord-fj12, gannet-gn24, kestrel-ks8, northwind-nw16c, reference) and not 'module:Class'"),
    ("", "must be a registered name or 'module:Class'"),
    ("a:b:c", "must be 'module:Class'"),
    ("no_such_pkg.boards:Mine", "cannot import board model module 'no_such_pkg.boards'"),
    ("tests.sim.toy_board:Nope", "has no board model class 'Nope'"),
])
def test_bad_names_are_config_errors_naming_file_and_key(spec, fragment):
    with pytest.raises(ConfigError) as ei:
        load_board(spec, source="board.yaml", key="bench.model")
    assert ei.value.file == "board.yaml" and ei.value.key == "bench.model" and fragment in ei.value.problem


def test_a_module_in_the_working_directory_loads_without_it_on_the_path(tmp_path, monkeypatch):
    """A console script (``bmsrig run``) does not put the working directory on sys.path
    the way ``python -m`` and pytest do: the loader retries from there."""
    pkg = tmp_path / "bmsrig_toy_cwd_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "board.py").write_text("from tests.sim.toy_board import ToyBoard as Board\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if os.path.abspath(p or os.curdir) != str(tmp_path)])
    try:
        assert load_board("bmsrig_toy_cwd_pkg.board:Board") is ToyBoard
    finally:
        for name in [m for m in sys.modules if m.startswith("bmsrig_toy_cwd_pkg")]:
            del sys.modules[name]


# ---------------------------------------------------------------- the toy board on the bench


def test_toy_board_is_fast_forwarded_at_rest():
    w = world(board_model=TOY)
    w.advance(3600.0)
    assert w.telemetry.serial.startswith("TOY-")
    # 3600 s of virtual time in a few dozen fine steps: the bench jumped
    assert w.stats["ff"] >= 1 and w.stats["ff_s"] > 3500.0 and w.stats["events"] < 100


def test_toy_board_balancing_at_its_derating_fixed_point_is_fast_forwarded():
    w = world(board_model=TOY, ambient_c=45.0)
    v = np.full(16, 3.45)
    v[::2] = 3.50  # eight non-adjacent high cells: the toy bleeds them all, no alternation
    w.set_emulator_voltages(v)
    w.advance(7200.0)
    assert w.telemetry.balancing.tolist() == [True, False] * 8
    assert w.stats["ff_s"] > 0.9 * w.t and w.stats["events"] < 0.02 * w.t / PROFILE.sampling.period_s
    # the bench's average duty is the toy's derating at its fixed point (the NTC sits on it)
    duty = float(np.mean(w.bleed_on_s[::2])) / w.t
    expected = PROFILE.balancing.derating.duty_at(w.hot_spot_temperature())
    assert 0.0 < expected < 1.0 and duty == pytest.approx(expected, abs=0.03)
    assert not w.bleed_on_s[1::2].any()


def test_toy_board_hvc_opens_the_charge_fet():
    w = world(board_model=TOY)
    v = np.full(16, 3.30)
    v[3] = 3.70
    w.set_emulator_voltages(v)
    w.advance(3.0)
    assert not w.charge_fet and w.telemetry.hvc and w.digital_level("hvc_out")


@pytest.mark.slow
def test_toy_board_passes_the_hvc_and_mapping_plans(tmp_path):
    out = tmp_path / "toy"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "--board-model", TOY, "-k", "hvc or channel_mapping",
                           "--out", str(out)], capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PASS (exit 0)" in proc.stdout
    junit = (out / "junit.xml").read_text()
    assert 'failures="0"' in junit and "test_hvc_threshold" in junit



def test_the_working_directory_wins_over_another_distributions_top_level_package(tmp_path, monkeypatch):
    """Another installed distribution ships a top-level package of the same name (as some
    ship ``tests``): ``tests.sim.toy_board:ToyBoard`` from a console script failed with
    ModuleNotFoundError 'tests.sim'; the working directory's package is meant."""
    site, cwd = tmp_path / "site", tmp_path / "cwd"
    (site / "bmsrig_shadow_pkg").mkdir(parents=True)
    (site / "bmsrig_shadow_pkg" / "__init__.py").write_text("")
    (cwd / "bmsrig_shadow_pkg" / "sim").mkdir(parents=True)
    (cwd / "bmsrig_shadow_pkg" / "__init__.py").write_text("")
    (cwd / "bmsrig_shadow_pkg" / "sim" / "__init__.py").write_text("")
    (cwd / "bmsrig_shadow_pkg" / "sim" / "board.py").write_text("from tests.sim.toy_board import ToyBoard as Board\n")
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", [str(site)] + [p for p in sys.path if os.path.abspath(p or os.curdir) != str(cwd)])
    try:
        assert load_board("bmsrig_shadow_pkg.sim.board:Board") is ToyBoard
        assert sys.modules["bmsrig_shadow_pkg"].__file__.startswith(str(cwd))
    finally:
        for name in [m for m in sys.modules if m.startswith("bmsrig_shadow_pkg")]:
            del sys.modules[name]
