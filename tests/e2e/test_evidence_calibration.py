"""`bmsrig check` and instrument calibration: exit 2 naming instrument and date when one has
expired, a warning within 30 days; "today" is a parameter, never the clock, in these tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rig.check import check_calibration
from rig.cli import main
from rig.errors import ConfigError

ENVS = Path(__file__).resolve().parents[2] / "rig" / "envs"
TODAY = dt.date(2026, 12, 2)
REAL_RIG = ENVS / "example-real-rig.yaml"


def _env_with_due(tmp_path, due: str) -> Path:
    text = REAL_RIG.read_text().replace('calibration_due: "2027-01-15"', f'calibration_due: "{due}"', 1)
    assert due in text
    path = tmp_path / "rig.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("env", sorted(ENVS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_rig_descriptions_are_in_calibration_on_the_reference_date(env):
    assert check_calibration(env, today=TODAY) == []


def test_expired_calibration_names_file_key_instrument_and_date(tmp_path):
    env = _env_with_due(tmp_path, "2026-11-30")
    with pytest.raises(ConfigError) as err:
        check_calibration(env, today=TODAY)
    e = err.value
    assert e.file == str(env) and e.key == "targets.main.resources[1].ScpiInstrument.calibration_due"
    assert "bidirectional DC supply 80 V / 60 A BD80-1177: calibration expired on 2026-11-30" in e.problem
    assert check_calibration(env, today=dt.date(2026, 11, 30)) != []  # the due day itself: still valid, warned


@pytest.mark.parametrize("due, warned", [("2026-12-02", True), ("2027-01-01", True), ("2027-01-02", False)])
def test_calibration_due_within_30_days_warns(tmp_path, due, warned):
    warnings = check_calibration(_env_with_due(tmp_path, due), today=TODAY)
    assert bool(warnings) == warned
    if warned:
        assert f"BD80-1177: calibration due on {due}" in warnings[0]


def test_not_a_date_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is not a date"):
        check_calibration(_env_with_due(tmp_path, "soon"), today=TODAY)


def test_bmsrig_check_exits_2_on_an_expired_calibration(tmp_path, capsys):
    env = _env_with_due(tmp_path, "2000-01-01")  # expired whatever the clock says
    assert main(["check", "--rig", str(env)]) == 2
    err = capsys.readouterr().err
    assert "calibration expired on 2000-01-01" in err and "BD80-1177" in err and "Traceback" not in err
