"""The profile's vocabulary for vendor choices, and what the plans read from it.

Derating curves of points (linear, steps), the balancing states and the pack current that
puts a board in one, absolute start levels, groups and odd/even sets, reporting period and
resolution, recovery rules; bad declarations are ConfigErrors naming the key.
"""

import numpy as np
import pytest

from rig.errors import ConfigError
from rig.identity import ITEM_RECORD, fill_identity
from rig.profile import Derating, load_profile
from rig.protocols import BmsFlags, BmsSample
from rig.sim.reference.protection import Cutoff
from testplans import procedures
from testplans.groups import bleed_groups, both_parities, most_in_a_group
from testplans.test_noise_immunity import noise_window_s


def test_a_linear_curve_of_points_is_interpolated_and_a_stepwise_one_held():
    lin = Derating(points=[[50, 1.0], [60, 0.7], [70, 0.2], [78, 0.0]])
    assert (lin.start_c, lin.zero_c) == (50.0, 78.0)
    assert lin.duty_at(40) == 1.0 and lin.duty_at(55) == pytest.approx(0.85) and lin.duty_at(74) == pytest.approx(0.1)
    assert lin.duty_at(78) == 0.0 and lin.duty_at(90) == 0.0
    steps = Derating(points=[[38, 1.0], [43, 0.5], [48, 0.0]], shape="steps")
    assert [steps.duty_at(t) for t in (30, 40, 42.9, 43, 47.9, 48)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.0]
    old = Derating()  # start/zero as before: 1 up to 60 °C, linear to 0 at 80 °C
    assert old.duty_at(60) == 1.0 and old.duty_at(70) == pytest.approx(0.5) and old.curve() == [(60, 1.0), (80, 0.0)]


@pytest.mark.parametrize("points,problem", [
    ([[50, 1.0], [45, 0.0]], "temperatures must rise"),
    ([[50, 0.5], [60, 0.8], [70, 0.0]], "duty must not rise"),
    ([[50, 1.0], [60, 0.2]], "the last point must be duty 0"),
])
def test_a_bad_curve_is_refused_naming_the_key(tmp_path, points, problem):
    src = open(procedures.__file__.replace("procedures.py", "profiles/reference-16s-lfp.yaml")).read()
    bad = src.replace("    start_c: 60.0\n    zero_c: 80.0\n", f"    points: {points}\n")
    path = tmp_path / "bad.yaml"
    path.write_text(bad.replace("dbc: reference-bms.dbc", f"dbc: {procedures.__file__.replace('procedures.py', 'profiles/reference-bms.dbc')}")
                    .replace("signal_map: reference-bms-can.yaml",
                             f"signal_map: {procedures.__file__.replace('procedures.py', 'profiles/reference-bms-can.yaml')}"))
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert "balancing.derating.points" in str(exc.value) and problem in str(exc.value)


def test_the_balancing_state_and_its_pack_current_come_from_the_strategies():
    ref, nw, gn = load_profile("reference-16s-lfp"), load_profile("northwind-nw16c"), load_profile("gannet-gn24")
    assert ref.balancing.strategies.balancing_state() == "rest" and procedures.pack_current_in(ref, "rest") == 0.0
    assert nw.balancing.strategies.balancing_state() == "charge"
    assert procedures.pack_current_in(nw, "charge") > nw.balancing.strategies.float_current_a
    st = gn.balancing.strategies
    assert st.balancing_state() == "float" and st.rest_current_a < procedures.pack_current_in(gn, "float") < st.float_current_a


class _Source:
    def __init__(self):
        self.calls = []

    def set_current(self, amps, voltage_limit_v=None):
        self.calls.append(("set", amps))

    def off(self):
        self.calls.append(("off", 0.0))


def test_entering_the_balancing_state_drives_the_charger_only_when_the_board_needs_it():
    src = _Source()
    assert procedures.enter_balancing_state(load_profile("reference-16s-lfp"), src) == {"pack_state": "rest",
                                                                                         "pack_current_a": 0.0}
    assert src.calls == [("off", 0.0)]
    cond = procedures.enter_balancing_state(load_profile("northwind-nw16c"), src)
    assert cond == {"pack_state": "charge", "pack_current_a": 4.0} and src.calls[-1] == ("set", 4.0)


class _Link:
    def latest(self):
        return BmsSample(t=0.0, cell_v=np.full(8, 3.3), temps_c=np.full(9, 25.0), balancing=np.zeros(8, bool),
                         flags=BmsFlags(), charge_fet=True, discharge_fet=True)


def test_absolute_start_levels_sit_on_either_side_of_the_declared_voltage():
    lv = procedures.balancing_levels(load_profile("kestrel-ks8"), _Link())
    assert lv.start_v == 3.45 and lv.stop_v == pytest.approx(3.435)
    assert lv.base_v < lv.stop_v - lv.margin_v and lv.high_v > lv.start_v
    ref = procedures.balancing_levels(load_profile("reference-16s-lfp"), _Link())
    assert ref.start_v - ref.base_v == pytest.approx(0.030) and ref.margin_v == pytest.approx(0.010)


def test_bleed_sets_respect_the_per_group_limit_and_odd_even_sets():
    nw = load_profile("northwind-nw16c")  # two groups of 8, at most 2 each, 4 in all
    sets = bleed_groups(nw, 16)
    assert all(most_in_a_group(nw, m) <= 2 and m.sum() <= 4 and not both_parities(m) for m in sets)
    assert np.logical_or.reduce(sets).all()
    assert most_in_a_group(nw, np.array([1, 0, 1, 0, 1] + [0] * 11, bool)) == 3


def test_the_noise_window_grows_for_a_short_filter_and_a_slow_report():
    ref, fj = load_profile("reference-16s-lfp"), load_profile("fjord-fj12")
    n_ref = procedures.independent_samples(ref, noise_window_s(ref))
    n_fj = procedures.independent_samples(fj, noise_window_s(fj))
    assert 20 <= n_ref <= 400 and n_fj > n_ref  # 2-sample filter: more independent values needed
    assert procedures.settle_s(fj) > procedures.settle_s(ref)  # 1 s reports


def test_a_lockout_holds_the_release_until_it_has_run_out():
    c = Cutoff()
    c.compare(0.0, True, False, 1.0, 3.0)
    assert c.expire(1.0) and c.active and c.tripped_t == 1.0
    c.compare(1.25, False, True, 1.0, 1.0, lockout=10.0)  # back at once: the lockout decides
    assert c.recover_at == 11.0
    assert not c.expire(10.9) and c.expire(11.0) and not c.active
    c2 = Cutoff()
    c2.compare(0.0, True, False, 1.0, 3.0)
    c2.expire(1.0)
    c2.compare(20.0, False, True, 1.0, 1.0, lockout=10.0)  # back after the lockout: the recovery time
    assert c2.recover_at == 21.0


def test_identity_from_the_item_record_fills_only_what_the_board_left_blank():
    out = fill_identity({"serial": "", "hw_revision": "C", "fw_version": "0.0.0"},
                        {"item": {"serial": "SN-1", "fw_version": "2.3.1", "hw_revision": "X"}})
    assert (out["serial"], out["hw_revision"], out["fw_version"]) == ("SN-1", "C", "2.3.1")
    assert out["identity_source"] == {"serial": ITEM_RECORD, "hw_revision": "board", "fw_version": ITEM_RECORD}
    assert fill_identity({"serial": "", "hw_revision": "", "fw_version": ""}, None)["serial"] == ""
