"""reports.plots: every capture kind draws a valid, self-contained SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from reports import plots

PROFILE = {
    "sampling": {"accuracy_mv": 5.0},
    "balancing": {"start_delta_mv": 30.0, "stop_delta_mv": 10.0,
                  "derating": {"start_c": 60.0, "zero_c": 80.0, "duty_tolerance": 0.1}},
    "protection": {"hvc": {"threshold_v": 3.65, "latency_max_s": 1.5}, "lvc": {"threshold_v": 2.5, "latency_max_s": 1.5}},
}


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert len(ids) == len(set(ids))
    return root


def _texts(svg: str) -> str:
    return " ".join(t.text or "" for t in ET.fromstring(svg).iter() if t.tag.endswith("text"))


def test_balancing_convergence():
    t = np.linspace(0, 7200, 5000)
    cols = {"t_s": t, **{f"v_cell_{i:02d}": 3.45 + 0.004 * i * np.exp(-t / 2000) for i in range(1, 17)}}
    cols["delta_v"] = 0.06 * np.exp(-t / 2000)
    svg = plots.capture_svg("balancing_convergence", "conv", cols, {"delta_v": "V"}, {}, PROFILE)
    _parse(svg)
    text = _texts(svg)
    assert "Cell voltages under balancing" in text and "start delta 30 mV" in text and "time (min)" in text


@pytest.mark.parametrize("kind", ["hvc_timing", "lvc_timing"])
def test_cutoff_timing_marks_crossing_and_trip(kind):
    t = np.arange(0, 10, 0.01)
    hvc = kind == "hvc_timing"
    v = 3.60 + 0.01 * t if hvc else 2.55 - 0.01 * t
    thr = 3.65 if hvc else 2.50
    t_cross = t[np.argmax(v >= thr) if hvc else np.argmax(v <= thr)]
    fet = t < t_cross + 1.2
    cols = {"t_s": t, "cell_v": v, "threshold_v": np.full_like(t, thr),
            ("charge_fet" if hvc else "discharge_fet"): fet.astype(float), "flag": (t >= t_cross + 1.1).astype(float)}
    svg = plots.capture_svg(kind, "ramp", cols, {}, {}, PROFILE)
    _parse(svg)
    text = _texts(svg)
    # time runs from the crossing (rig time reaches 1e5 s on the bench: no axis offsets)
    assert "crossing" in text and "trip +1.200 s" in text and "time from the crossing (s)" in text
    assert "latency 1.200 s (limit ≤ 1.5 s)" in text
    assert ("HVC" if hvc else "LVC") + " timing" in text


def test_derating_against_profile_curve():
    temp = np.arange(50, 90, 5.0)
    exp = np.clip(1 - (temp - 60) / 20, 0, 1)
    duty = exp.copy()
    duty[-3] += 0.3  # out of tolerance
    svg = plots.capture_svg("derating", "d", {"temp_c": temp, "duty": duty, "expected_duty": exp}, {}, {}, PROFILE)
    _parse(svg)
    assert "profile derating curve" in _texts(svg) and "out of tolerance" in _texts(svg)


def test_sampling_error_from_measurements_one_series_per_temperature():
    ms = [
        {"name": f"sampling_error_cell_{c:02d}", "value": 0.001 * (c % 3), "unit": "V", "limits": [-0.005, 0.005],
         "uncertainty": 0.0012, "verdict": "pass", "conditions": {"cell": c, "temp_c": temp}}
        for temp in (-10, 25, 45) for c in range(1, 17)
    ]
    ms.append({"name": "other", "value": 1.0, "conditions": {"cell": 1}})
    rows = plots.sampling_points_from_measurements(ms)
    assert len(rows) == 48 and rows[0]["limit_v"] == pytest.approx(0.005)
    svg = plots.sampling_error_svg(ms, 5.0)
    _parse(svg)
    text = _texts(svg)
    assert "-10 °C" in text and "25 °C" in text and "45 °C" in text and "± 5 mV spec" in text
    assert plots.sampling_error_svg([], 5.0) is None


def test_sampling_error_capture_kind():
    cols = {"cell": np.arange(1, 9), "temp_c": np.full(8, 25.0), "set_v": np.full(8, 3.3),
            "error_v": np.linspace(-0.002, 0.002, 8), "u_v": np.full(8, 0.001)}
    svg = plots.capture_svg("sampling_error", "sweep", cols, {}, {}, PROFILE)
    _parse(svg)
    assert "Sampling error: sweep" in _texts(svg)


def test_unknown_kind_is_a_generic_line_plot():
    svg = plots.capture_svg("pack_current", "pack", {"t_s": np.arange(10.0), "pack_a": np.ones(10), "state": np.array(["a"] * 10, object)},
                            {"pack_a": "A"}, {}, None)
    _parse(svg)
    assert "pack (pack_current)" in _texts(svg) and "pack_a (A)" in _texts(svg)


def test_two_plots_never_share_an_id():
    a = plots.capture_svg(None, "a", {"x": np.arange(5.0), "y": np.arange(5.0)}, {}, {}, None)
    b = plots.capture_svg(None, "a", {"x": np.arange(5.0), "y": np.arange(5.0)}, {}, {}, None)
    ids_a = set(re.findall(r'\bid="([^"]+)"', a))
    ids_b = set(re.findall(r'\bid="([^"]+)"', b))
    assert ids_a and not ids_a & ids_b
    for ref in re.findall(r'url\(#([^)]+)\)', a):
        assert ref in ids_a


def test_decimate_keeps_the_last_sample():
    x = np.arange(10_001.0)
    (d,) = plots.decimate(x, max_points=1000)
    assert len(d) <= 1001 and d[-1] == 10_000.0 and d[0] == 0.0


def test_safe_svg_turns_an_exception_into_a_note():
    out = plots.safe_svg(lambda: 1 / 0, "captures/x.csv")
    assert 'class="plot-error"' in out and "ZeroDivisionError" in out and "captures/x.csv" in out


def test_plot_rc_does_not_leak():
    from matplotlib import rcParams

    before = rcParams["svg.fonttype"]
    plots.capture_svg(None, "a", {"x": np.arange(3.0), "y": np.arange(3.0)}, {}, {}, None)
    assert rcParams["svg.fonttype"] == before
