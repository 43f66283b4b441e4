"""Every defect knob does what its name says, observed through the world, DAQ and telemetry."""

from __future__ import annotations

import numpy as np
import pytest

from rig.errors import ConfigError
from rig.sim.defects import catalog, parse_defects

from ._util import PROFILE, collect, conv_times_after, world

R = PROFILE.balancing.bleed_resistor_ohm
MUTE = 1 - PROFILE.sampling.mute_s / PROFILE.sampling.period_s


# ---------------------------------------------------------------- catalog and parsing


def test_catalog_documents_every_defect():
    names = [d.name for d in catalog()]
    assert len(names) == len(set(names)) >= 22
    for d in catalog():
        assert d.layer in ("hardware", "firmware") and d.caught_by.startswith("test_") and d.description
    with open("docs/defects.md") as f:
        doc = f.read()
    for n in names:
        assert f"`{n}" in doc, n


@pytest.mark.parametrize("spec, key_fragment", [
    ("adc_offsett:cell=1,mv=2", "unknown defect"),
    ("adc_offset:cell=1", "'mv' is missing"),
    ("adc_offset:cell=1,mv=abc", "'mv': 'abc' is not a number"),
    ("adc_offset:cell=1.5,mv=2", "'cell': '1.5' is not an integer"),
    ("adc_offset:cell=1,mv=2,volts=3", "'volts': unknown"),
    ("adc_offset:cell=17,mv=2", "out of range"),
    ("bleed_current:ma=-5", "below the minimum"),
    ("cell_swap:a=3,b=3", "must differ"),
])
def test_parse_errors_name_spec_param_problem(spec, key_fragment):
    with pytest.raises(ConfigError) as ei:
        parse_defects([spec], n_cells=16)
    assert ei.value.key == spec and key_fragment in ei.value.problem


def test_parse_and_get():
    d = parse_defects(["adc_offset:cell=5,mv=8", "hvc_flag_missing"])
    assert d.get("adc_offset")["mv"] == 8.0 and d.get("adc_offset").index() == 4
    assert "hvc_flag_missing" in d and d.get("no_derating") is None


def test_board_defects_are_typed_in_si_units_and_built_once():
    from rig.sim.defects import BoardDefects, board_defects

    d = parse_defects(["hvc_threshold:mv=20", "hvc_delay:s=2", "hvc_hysteresis:mv=50", "lvc_threshold:mv=30",
                       "balance_start_delta:mv=40", "balance_stop_delta:mv=5", "derating_late:c=7",
                       "no_temp_compensation", "adc_offset:cell=5,mv=8"])
    fd = board_defects(d)
    assert fd is d.board is board_defects(d)  # built once per defect set
    assert fd.hvc_threshold_shift_v == pytest.approx(0.020) and fd.hvc_extra_delay_s == 2.0
    assert fd.hvc_hysteresis_v == pytest.approx(0.050) and fd.lvc_threshold_shift_v == pytest.approx(0.030)
    assert fd.balance_start_delta_v == pytest.approx(0.040) and fd.balance_stop_delta_v == pytest.approx(0.005)
    assert fd.derating_shift_c == 7.0 and fd.no_temp_compensation and not fd.no_derating
    assert fd.any and not BoardDefects().any and not board_defects(parse_defects(["adc_offset:cell=5,mv=8"])).any
    with pytest.raises(Exception):
        fd.no_derating = True  # frozen
    assert board_defects(["balance_chatter"]).balance_chatter and board_defects(None) == BoardDefects()


def test_every_firmware_defect_sets_a_board_defects_field():
    from rig.sim.defects import board_defects

    good = board_defects(None)
    for info in catalog():
        if info.layer != "firmware":
            continue
        spec = info.name + (":" + ",".join(f"{p.name}=3" for p in info.params) if info.params else "")
        assert board_defects([spec]) != good, spec


def test_reference_board_reads_the_typed_value():
    w = world(defects=["hvc_threshold:mv=20", "balance_stop_delta:mv=5"])
    b = w.board
    assert b.hvc_thr == pytest.approx(PROFILE.protection.hvc.threshold_v + 0.020)
    assert b.stop_v == pytest.approx(0.005) and b.firmware_defects is w.defects.board


# ---------------------------------------------------------------- hardware


def _error_mv(w, v=3.30, settle=3.0):
    w.set_emulator_voltages(v)
    w.advance(settle)
    tel = collect(w, 5.0)
    return (np.mean([t.cell_v for t in tel], axis=0) - w.terminal_voltages()) * 1e3


def test_good_board_is_within_1p5_mv():
    for seed in range(5):
        assert np.max(np.abs(_error_mv(world(seed=seed)))) < 1.5


def test_adc_offset():
    e = _error_mv(world(["adc_offset:cell=5,mv=8"]))
    assert e[4] == pytest.approx(8.0, abs=1.5)
    assert np.max(np.abs(np.delete(e, 4))) < 1.5


def test_adc_gain():
    e = _error_mv(world(["adc_gain:cell=3,ppm=3000"]), v=3.30)
    assert e[2] == pytest.approx(3.3 * 3000e-6 * 1e3, abs=1.5)


def test_adc_tempco():
    w = world(["adc_tempco:cell=2,uv_per_c=200"])
    assert abs(_error_mv(w)[1]) < 1.5  # invisible at room temperature
    w.set_chamber(60.0, 3.0)
    w.advance(3 * 3600.0)
    tb = w.board_temperature()
    assert tb > 58.0
    e = _error_mv(w)
    assert e[1] == pytest.approx(0.2 * (tb - 25.0), abs=1.5)
    assert np.max(np.abs(np.delete(e, 1))) < 1.5


def test_adc_noise():
    def spread(w):
        w.advance(3.0)
        tel = collect(w, 30.0)
        return np.std([t.cell_v for t in tel], axis=0).mean() * 1e3
    # reported values are a 4-sample moving average: noise / 2
    assert spread(world(["adc_noise:mv_rms=5"])) == pytest.approx(2.5, rel=0.25)
    assert spread(world()) < 0.3


def test_cell_swap():
    w = world(["cell_swap:a=2,b=7"])
    v = np.full(16, 3.30)
    v[1], v[6] = 3.20, 3.40
    w.set_emulator_voltages(v)
    w.advance(3.0)
    c = w.telemetry.cell_v
    assert c[1] == pytest.approx(3.40, abs=2e-3) and c[6] == pytest.approx(3.20, abs=2e-3)


def _balance_one(defects, cell=4, hi=3.50):
    w = world(defects)
    v = np.full(16, 3.45)
    v[cell] = hi
    w.set_emulator_voltages(v)
    w.advance(20.0)
    return w


def test_bleed_current():
    w = _balance_one(["bleed_current:ma=100"])
    i = w.channel_currents(5.0)[4] - 1e-3
    assert i == pytest.approx(3.50 * 0.100 / PROFILE.balancing.min_cell_v * MUTE, rel=0.01)
    good = _balance_one(None).channel_currents(5.0)[4] - 1e-3
    assert good == pytest.approx(3.50 / R * MUTE, rel=0.01)


def test_bleed_stuck():
    w = world(["bleed_stuck:cell=3"])
    w.advance(20.0)
    assert not w.telemetry.balancing.any()
    i = w.channel_currents(5.0)
    assert i[2] - 1e-3 == pytest.approx(3.30 / R, rel=1e-6)
    assert np.allclose(np.delete(i, 2), 1e-3)


def test_bleed_dead():
    w = _balance_one(["bleed_dead:cell=5"])
    assert w.telemetry.balancing[4]  # the firmware thinks it bleeds
    assert w.channel_currents(5.0)[4] == pytest.approx(1e-3)


# ---------------------------------------------------------------- firmware: protection


def _trip_edges(w, line="charge_enable"):
    return [e for e in w.daq_edges if e.line == line and not e.level]


def _step_cell(w, volts, cell=7, base=3.40):
    v = np.full(16, base)
    v[cell] = volts
    t = w.t
    w.set_emulator_voltages(v)
    w.advance(4.0)
    return t


def test_hvc_threshold():
    good, bad = world(), world(["hvc_threshold:mv=50"])
    for w in (good, bad):
        _step_cell(w, 3.67)
    assert _trip_edges(good) and not _trip_edges(bad)
    _step_cell(bad, 3.71)
    assert _trip_edges(bad)


def test_hvc_delay():
    w = world(["hvc_delay:s=2"])
    w.advance(10.0)
    t = _step_cell(w, 3.70)
    w.advance(2.0)
    e = _trip_edges(w)
    assert e[0].t == pytest.approx(conv_times_after(t) + 1.0 + 2.0, abs=1e-3)


def test_hvc_hysteresis():
    good, bad = world(), world(["hvc_hysteresis:mv=20"])
    for w in (good, bad):
        _step_cell(w, 3.70)
        _step_cell(w, 3.62)  # below 3.65 − 20 mV, above 3.65 − 150 mV
        w.advance(4.0)
    assert good.telemetry.hvc and not good.charge_fet
    assert not bad.telemetry.hvc and bad.charge_fet
    _step_cell(good, 3.49)
    good.advance(4.0)
    assert good.charge_fet  # the good board recovers below threshold − 150 mV after 3 s


def test_hvc_flag_missing():
    good, bad = world(), world(["hvc_flag_missing"])
    for w in (good, bad):
        _step_cell(w, 3.70)
        assert not w.charge_fet and not w.telemetry.charge_fet
    assert good.telemetry.hvc and not bad.telemetry.hvc


def test_lvc_threshold():
    good, bad = world(), world(["lvc_threshold:mv=100"])
    for w in (good, bad):
        _step_cell(w, 2.45, base=3.30)
    assert _trip_edges(good, "discharge_enable") and good.telemetry.lvc
    assert not _trip_edges(bad, "discharge_enable")


# ---------------------------------------------------------------- firmware: balancing


def test_balance_start_delta():
    good = _balance_one(None, hi=3.49)  # 40 mV above the others
    bad = _balance_one(["balance_start_delta:mv=60"], hi=3.49)
    assert good.telemetry.balancing[4] and not bad.telemetry.balancing.any()


def test_balance_stop_delta():
    ws = [_balance_one(None), _balance_one(["balance_stop_delta:mv=25"])]
    for w in ws:
        assert w.telemetry.balancing[4]
        v = np.full(16, 3.45)
        v[4] = 3.47  # 20 mV: above the profile's 10 mV stop, below the defect's 25 mV
        w.set_emulator_voltages(v)
        w.advance(15.0)
    assert ws[0].telemetry.balancing[4] and not ws[1].telemetry.balancing.any()


def test_balance_mid_soc():
    good = _balance_one(None, hi=3.34)  # plateau: Vmax below min_cell_v 3.40
    for w in (good,):
        pass
    w_good = world()
    w_bad = world(["balance_mid_soc"])
    for w in (w_good, w_bad):
        v = np.full(16, 3.29)
        v[4] = 3.34
        w.set_emulator_voltages(v)
        w.advance(15.0)
    assert not w_good.telemetry.balancing.any() and w_bad.telemetry.balancing[4]


def test_balance_during_sampling_reads_low_by_ir_drop():
    good = _balance_one(None)
    bad = _balance_one(["balance_during_sampling"])
    e_good = (np.mean([t.cell_v for t in collect(good, 3.0)], axis=0) - good.terminal_voltages())[4]
    e_bad = (np.mean([t.cell_v for t in collect(bad, 3.0)], axis=0) - bad.terminal_voltages())[4]
    assert abs(e_good) < 1.5e-3
    assert e_bad == pytest.approx(-3.50 / R * 0.2, abs=1.5e-3)  # ≈ −10 mV
    # the good board's switch is really off at every conversion
    assert bad.channel_currents(5.0)[4] > good.channel_currents(5.0)[4]


def _masks(w, seconds=30.0):
    return [t.balancing.copy() for t in collect(w, seconds)]


def test_balance_adjacent():
    def run(defects):
        w = world(defects)
        v = np.full(16, 3.45)
        v[2:5] = 3.50
        w.set_emulator_voltages(v)
        w.advance(10.0)
        return _masks(w)
    adj = lambda m: bool(np.any(m[1:] & m[:-1]))  # noqa: E731
    assert not any(adj(m) for m in run(None))
    bad = run(["balance_adjacent"])
    assert any(adj(m) for m in bad) and max(m.sum() for m in bad) == 3


def test_balance_chatter():
    def toggles(defects):
        w = world(defects)
        v = np.full(16, 3.45)
        v[4] = 3.45 + PROFILE.balancing.start_delta_mv * 1e-3
        w.set_emulator_voltages(v)
        w.set_emulator_noise(2e-3)
        w.advance(5.0)
        m = _masks(w, 60.0)
        return sum(not np.array_equal(a, b) for a, b in zip(m, m[1:]))
    assert toggles(None) <= PROFILE.balancing.max_toggles_per_min
    assert toggles(["balance_chatter"]) > 20


def _hot_duty(defects, seconds=900.0, chamber_c=55.0):
    """A hot chamber plus 8 non-adjacent cells bled at once put the resistor NTC into the derating range."""
    w = world(defects)
    w.set_chamber(chamber_c, 3.0)
    w.advance(1800.0)
    v = np.full(16, 3.45)
    v[::2] = 3.50
    w.set_emulator_voltages(v)
    w.advance(seconds)
    i = w.channel_currents(60.0)[::2] - 1e-3
    duty = float(np.mean(i / (3.50 / R))) / MUTE
    ntc = float(w.telemetry.temps_c[-1])
    return duty, ntc


def test_derating_good_board_follows_curve():
    duty, ntc = _hot_duty(None)
    assert ntc > PROFILE.balancing.derating.start_c
    assert duty == pytest.approx(PROFILE.balancing.derating.duty_at(ntc), abs=0.1)


def test_no_derating():
    duty, ntc = _hot_duty(["no_derating"])
    assert duty > 0.95 and ntc > PROFILE.balancing.derating.zero_c


def test_derating_late():
    duty, ntc = _hot_duty(["derating_late:c=10"])
    good_duty, good_ntc = _hot_duty(None)
    assert ntc > good_ntc + 3.0  # hotter than the good board's fixed point
    assert duty - PROFILE.balancing.derating.duty_at(ntc) > 0.2


def test_no_temp_compensation():
    def run(defects):
        w = world(defects)
        w.set_chamber(55.0, 3.0)
        w.advance(1800.0)
        v = np.full(16, 3.38)
        v[0] = 3.42  # above 3.40 but below min_cell_v_at(55 °C) = 3.43
        w.set_emulator_voltages(v)
        w.advance(15.0)
        return w.telemetry.balancing[0]
    assert not run(None) and run(["no_temp_compensation"])
