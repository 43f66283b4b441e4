"""Board profiles: shipped ones load; bad ones give one clear error naming file and key."""

from pathlib import Path

import pytest
import yaml

from rig.errors import ConfigError
from rig.profile import list_profiles, load_profile

SHIPPED = {"reference-16s-lfp": 16, "reference-32s-lfp": 32, "reference-4s-lfp-uart": 4}


@pytest.mark.parametrize("name,cells", sorted(SHIPPED.items()))
def test_shipped_profiles_load(name, cells):
    p = load_profile(name)
    assert p.cells == cells
    assert p.balancing.stop_delta_mv < p.balancing.start_delta_mv
    assert p.protection.hvc.threshold_v > p.balancing.min_cell_v


def test_list_profiles_has_the_three_references():
    assert SHIPPED.keys() <= {p.stem for p in list_profiles()}


def _write(tmp_path, mutate):
    src = load_profile("reference-16s-lfp").source
    raw = yaml.safe_load(Path(src).read_text())
    mutate(raw)
    for k in ("dbc", "signal_map"):
        raw["link"][k] = str(Path(src).parent / raw["link"][k])
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_stop_delta_above_start_delta_is_named(tmp_path):
    path = _write(tmp_path, lambda r: r["balancing"].update(stop_delta_mv=40))
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert str(path) in str(exc.value) and "stop_delta_mv" in str(exc.value)


def test_wrong_type_names_the_key(tmp_path):
    path = _write(tmp_path, lambda r: r["protection"]["hvc"].update(delay_s="soon"))
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert exc.value.key == "protection.hvc.delay_s"


def test_unknown_key_is_refused(tmp_path):
    path = _write(tmp_path, lambda r: r["balancing"].update(bleed_curent_ma=[30, 60]))
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert "bleed_curent_ma" in exc.value.key


def test_hvc_below_balance_minimum_is_refused(tmp_path):
    path = _write(tmp_path, lambda r: r["protection"]["hvc"].update(threshold_v=3.3))
    with pytest.raises(ConfigError, match="must be above balancing.min_cell_v"):
        load_profile(path)


def test_missing_link_file_is_named(tmp_path):
    path = _write(tmp_path, lambda r: None)
    raw = yaml.safe_load(path.read_text())
    raw["link"]["dbc"] = "nope.dbc"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert exc.value.key == "link.dbc" and "nope.dbc" in exc.value.problem


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("name: x\ncells: [16\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert "line" in exc.value.key


def test_unknown_profile_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="reference-16s-lfp"):
        load_profile("no-such-board")


def test_temperature_compensated_minimum():
    b = load_profile("reference-16s-lfp").balancing
    assert b.min_cell_v_at(25.0) == pytest.approx(b.min_cell_v)
    assert b.min_cell_v_at(45.0) == pytest.approx(b.min_cell_v + 20 * b.temp_comp_mv_per_c * 1e-3)


def test_derating_curve():
    d = load_profile("reference-16s-lfp").balancing.derating
    assert d.duty_at(d.start_c - 5) == 1.0
    assert d.duty_at((d.start_c + d.zero_c) / 2) == pytest.approx(0.5)
    assert d.duty_at(d.zero_c + 1) == 0.0
