"""Benchmarks of the virtual bench (``bmsrig bench --json``).

Each scenario drives a :class:`rig.sim.world.World` directly in big ``advance`` steps
(they are benchmarks of the simulator, not test plans) and returns::

    {"scenario": name, "simulated_s": s, "wall_s": s, "ratio": simulated/wall, "result": {...}}

Scenarios:

- ``balance-40h`` — 16S LFP 100 Ah (reference-16s-lfp), cell-model mode, fifteen cells 2 Ah
  above the sixteenth, held at the top of charge by a CV charger; reports the time until
  the true Vmax − Vmin falls below the stop delta, the prediction from bleed current ×
  duty (odd/even alternation, measurement pauses, derating equilibrium), per-cell bleed-on
  hours (≈ 40 h for 2 Ah at 50 mA) and the charge bled.
- ``daily-60d`` — the same pack cycled daily for 60 days (discharge to 30 % SOC, rest on the
  plateau, CC then CV with a 45-minute top-of-charge window, 24 h a day): the day the
  voltage delta at the end of the window falls below the stop delta (None if not within the
  days), and the true SOC gap by day with the day it is projected to close.
- ``ff-vs-fine`` — 2 h of balancing with fast-forward and with a fixed 10 ms step: charge
  bled and final delta must agree within 1 %.
- ``duration-scaling`` — what simulated duration costs: the ``balance-40h`` pack left for
  10 h, 160 h and 640 h, each in one ``advance`` (a plan's long sleep): ms per simulated
  hour and ``cost_growth`` (wall ratio over duration ratio; < 1: cost grows less than
  linearly).
- ``fine-path`` — µs per event on the cell-model fine path (fast-forward off: every
  conversion of the board and every step between), and seconds per simulated hour.
- ``peer-ecm`` — throughput side by side with PyBaMM's Thevenin model of the same pack
  (:mod:`rig.bench_peer`); ``"status": "absent"`` when PyBaMM is not installed.
- ``can-decode`` — the CAN link's decode rate (:func:`rig.links.bench.can_decode_rate`).
- ``report-build`` — wall time of a full report (junit.xml, report.html, report.pdf,
  manifest) of the full plan on reference-16s-lfp (seed 1, run first in a subprocess and
  not timed), with the time of each build step; ``simulated_s`` is 0 (no simulation timed).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .sim.fastforward import derating_fixed_point

PROFILE = "reference-16s-lfp"
CV_CELL_V = 3.47
"""CV hold per cell for the top-of-charge scenarios, V (high cells sit around 3.45–3.5 V)."""


def _profile():
    from .profile import load_profile
    return load_profile(PROFILE)


def _imbalanced_world(profile, seed=0, fine_step_s=None, soc_high=0.995, offset_ah=2.0, params=None):
    from .sim.world import World
    w = World(profile, seed=seed, fine_step_s=fine_step_s)
    cap = profile.capacity_ah
    soc = np.full(profile.cells, soc_high)
    soc[-1] = soc_high - offset_ah / cap
    w.set_cell_model(profile.chemistry, cap, soc, params=params)
    return w


def _delta_v(w) -> float:
    v = w.terminal_voltages()
    return float(v.max() - v.min())


def _result(name, simulated, wall, result):
    return {"scenario": name, "simulated_s": simulated, "wall_s": round(wall, 4),
            "ratio": round(simulated / wall, 1) if wall > 0 else math.inf, "result": result}


def predicted_duty(profile, v_cell: float, n_candidates: int) -> dict:
    """Bleed duty per candidate cell the profile predicts at the top of charge.

    - alternation: non-adjacent odd/even sets alternate, so a run of adjacent candidates
      is bled every other interval (0.5); ``max_channels`` caps a set;
    - measurement pauses: ``1 − mute_s / period_s``;
    - derating: the fixed point of ``d = duty_at(T)`` with the hot spot at
      ``T = T_board + c_per_w · P · d`` (mean power of the alternating sets), solved by
      :func:`rig.sim.fastforward.derating_fixed_point` (the bench's fast-forward uses it too).
    """
    b, s = profile.balancing, profile.sampling
    n_odd = min(math.ceil(n_candidates / 2), b.max_channels)
    n_even = min(n_candidates // 2, b.max_channels)
    alternation = (n_odd + n_even) / (2.0 * n_candidates) if not b.allow_adjacent else min(1.0, b.max_channels / n_candidates)
    mute = 1.0 - s.mute_s / s.period_s
    i_bleed = v_cell / b.bleed_resistor_ohm
    p_avg = 0.5 * (n_odd + n_even) * v_cell * i_bleed * mute
    derating = derating_fixed_point(b.derating.duty_at, lambda d: 25.0 + b.resistor_thermal_c_per_w * p_avg * d)
    return {"i_bleed_a": i_bleed, "alternation": alternation, "mute": mute, "derating": derating,
            "duty": alternation * mute * derating}


# --------------------------------------------------------------------------- scenarios


def balance_40h(max_hours: float = 600.0, step_s: float = 3600.0) -> dict:
    p = _profile()
    w = _imbalanced_world(p)
    w.set_charger(5.0, p.cells * CV_CELL_V)
    stop = p.balancing.stop_delta_mv * 1e-3
    t0 = time.perf_counter()
    t_done = None
    while w.t < max_hours * 3600.0:
        w.advance(step_s)
        if _delta_v(w) < stop:
            t_done = w.t
            break
    wall = time.perf_counter() - t0
    v_high = float(np.median(w.terminal_voltages()[:-1]))
    pred = predicted_duty(p, v_high, p.cells - 1)
    bled_ah = w.bleed_charge_c / 3600.0
    need_ah = float(np.mean(bled_ah[:-1]))  # what each high cell actually had to lose
    t_pred = 2.0 * 3600.0 / (pred["i_bleed_a"] * pred["duty"])
    res = {
        "hours_to_stop_delta": None if t_done is None else round(t_done / 3600.0, 2),
        "predicted_hours": round(t_pred / 3600.0, 2),
        "predicted_hours_from_bled_charge": round(need_ah / (pred["i_bleed_a"] * pred["duty"]), 2),
        "agreement": None if t_done is None else round(t_done / t_pred - 1.0, 4),
        "prediction": {k: round(v, 4) for k, v in pred.items()},
        "bleed_on_hours_per_cell": [round(x, 2) for x in (w.bleed_on_s / 3600.0)],
        "bleed_on_hours_mean_high_cells": round(float(np.mean(w.bleed_on_s[:-1])) / 3600.0, 2),
        "charge_bled_ah_per_cell": [round(x, 4) for x in bled_ah],
        "charge_bled_ah_total": round(float(bled_ah.sum()), 3),
        "final_delta_mv": round(_delta_v(w) * 1e3, 2),
        "hot_spot_c": round(w.hot_spot_temperature(), 1),
        "world_stats": dict(w.stats),
    }
    w.close()
    return _result("balance-40h", w.t, wall, res)


def daily_60d(days: int = 60, discharge_a: float = 20.0, charge_a: float = 20.0,
              low_soc: float = 0.30, top_window_s: float = 2700.0,
              self_discharge_spread: float | None = None, name: str = "daily-60d") -> dict:
    """``self_discharge_spread`` (relative half-width) overrides the cells' default (±50 %
    of 2 %/month, every cell inside the ≤ 3 %/month LFP spec); 0 gives a matched pack whose
    only imbalance is the injected 2 Ah."""
    from .sim.cells import CellParams
    p = _profile()
    params = None
    if self_discharge_spread is not None:
        params = CellParams.for_chemistry(p.chemistry, p.capacity_ah, self_discharge_spread=self_discharge_spread)
    w = _imbalanced_world(p, params=params)
    stop = p.balancing.stop_delta_mv * 1e-3
    v_cv = p.cells * CV_CELL_V
    t0 = time.perf_counter()
    day_done = None
    deltas = []
    gaps_mah = []  # true SOC gap, high cells' mean minus the low cell, mAh (the bench sees the truth)
    high_spread_mah = []  # drift among the fifteen high cells (max - min), mAh
    hvc_days = []  # days on which the HVC cut the charger
    day_lengths = []
    charge_est_s = None
    for day in range(1, days + 1):
        day_start = w.t
        # discharge to ~30 % SOC
        w.set_charger(-discharge_a, None)
        while float(np.mean(w.soc())) > low_soc:
            rem = (float(np.mean(w.soc())) - low_soc) * p.capacity_ah / discharge_a * 3600.0
            w.advance(max(60.0, rem))
        w.set_charger(0.0)
        # rest on the plateau (no balancing there) so that the day's only top-of-charge
        # time is the charge's end and the window: the day is 24 h long
        if charge_est_s is None:
            charge_est_s = (0.99 - low_soc) * p.capacity_ah / charge_a * 3600.0
        w.advance(max(600.0, day_start + 86400.0 - w.t - charge_est_s - top_window_s))
        # CC until the CV limit takes over, then the 45-minute top-of-charge window
        w.set_charger(charge_a, v_cv)
        t_charge = w.t
        while w.pack_current() > 0.95 * charge_a:
            rem = (0.99 - float(np.mean(w.soc()))) * p.capacity_ah / charge_a * 3600.0
            w.advance(max(60.0, rem))
            if w.t - day_start > 86000:
                break
        charge_est_s = w.t - t_charge  # the next day's rest is sized from today's charge
        w.advance(top_window_s)
        d = _delta_v(w)
        deltas.append(round(d * 1e3, 2))
        soc = w.soc()
        gaps_mah.append(round(float(np.mean(soc[:-1]) - soc[-1]) * p.capacity_ah * 1e3, 1))
        high_spread_mah.append(round(float(np.ptp(soc[:-1])) * p.capacity_ah * 1e3, 1))
        if any(e.line == "hvc_out" and e.level and e.t >= day_start for e in w.daq_edges):
            hvc_days.append(day)
        w.daq_edges.clear()
        w.set_charger(0.0)
        day_lengths.append(w.t - day_start)
        if d < stop and day_done is None:
            day_done = day
            break
    wall = time.perf_counter() - t0
    bled = w.bleed_charge_c / 3600.0
    per_day = float(np.mean(bled[:-1])) / len(deltas)
    res = {
        "day_below_stop_delta": day_done,
        "day_below_start_delta": next((i + 1 for i, d in enumerate(deltas) if d < p.balancing.start_delta_mv), None),
        "days_simulated": len(deltas),
        "delta_mv_end_of_cv_by_day": deltas,
        "charge_bled_ah_per_high_cell": round(float(np.mean(bled[:-1])), 4),
        "charge_bled_ah_per_high_cell_per_day": round(per_day, 5),
        "projected_days_for_2ah": round(2.0 / per_day, 1) if per_day > 0 else None,
        "bleed_on_hours_mean_high_cells": round(float(np.mean(w.bleed_on_s[:-1])) / 3600.0, 2),
        "mean_day_h": round(float(np.mean(day_lengths)) / 3600.0, 3),
        "soc_gap_mah_by_day": gaps_mah,
        "high_cells_soc_spread_mah_by_day": high_spread_mah,
        "high_cells_drift_mah_per_day": round((high_spread_mah[-1] - high_spread_mah[0]) / max(1, len(high_spread_mah) - 1), 2),
        "days_with_hvc_cut": hvc_days,
        "soc_gap_closing_mah_per_day": round((gaps_mah[0] - gaps_mah[-1]) / max(1, len(gaps_mah) - 1), 2),
        "projected_day_soc_gap_closed": (round(1 + gaps_mah[0] / ((gaps_mah[0] - gaps_mah[-1]) / (len(gaps_mah) - 1)), 1)
                                         if len(gaps_mah) > 1 and gaps_mah[0] > gaps_mah[-1] else None),
        "world_stats": dict(w.stats),
    }
    w.close()
    return _result(name, w.t, wall, res)


def daily_60d_matched() -> dict:
    """``daily-60d`` on a matched pack (no self-discharge spread): the board's balancing
    rate alone, without drift between the high cells."""
    return daily_60d(self_discharge_spread=0.0, name="daily-60d-matched")


def ff_vs_fine(window_s: float = 7200.0, fine_step_s: float = 0.01, seed: int = 3) -> dict:
    """The same balancing window with fast-forward and with a fixed fine step."""
    p = _profile()
    out = {}
    walls = {}
    for label, fine in (("ff", None), ("fine", fine_step_s)):
        w = _imbalanced_world(p, seed=seed, fine_step_s=fine)
        w.set_charger(5.0, p.cells * CV_CELL_V)
        t0 = time.perf_counter()
        steps = max(1, int(round(window_s / 600.0)))
        for _ in range(steps):
            w.advance(window_s / steps)
        walls[label] = time.perf_counter() - t0
        out[label] = {"charge_bled_ah": float(w.bleed_charge_c.sum() / 3600.0),
                      "final_delta_mv": _delta_v(w) * 1e3, "events": w.stats["events"]}
        w.close()
    q_err = out["ff"]["charge_bled_ah"] / out["fine"]["charge_bled_ah"] - 1.0
    d_err = out["ff"]["final_delta_mv"] / out["fine"]["final_delta_mv"] - 1.0
    res = {
        "window_s": window_s,
        "ff": {k: round(v, 6) for k, v in out["ff"].items()},
        "fine": {k: round(v, 6) for k, v in out["fine"].items()},
        "charge_rel_error": round(q_err, 5),
        "delta_rel_error": round(d_err, 5),
        "agree_within_1pct": abs(q_err) < 0.01 and abs(d_err) < 0.01,
        "wall_ff_s": round(walls["ff"], 3),
        "wall_fine_s": round(walls["fine"], 3),
    }
    return _result("ff-vs-fine", window_s, walls["ff"] + walls["fine"], res)


def duration_scaling(hours=(10.0, 160.0, 640.0)) -> dict:
    """What simulated duration costs: the ``balance-40h`` pack (fifteen cells 2 Ah high, CV
    charger) left for each of ``hours`` in a single ``advance``, as a plan's long
    ``clock.sleep`` does, from the same start. Reports wall seconds, ms per simulated hour
    and fast-forward windows for each; ``cost_growth`` is the wall ratio of the longest to
    the shortest against their duration ratio (1.0: linear; less: sublinear)."""
    p = _profile()
    rows = []
    t_all = time.perf_counter()
    for h in hours:
        w = _imbalanced_world(p)
        w.set_charger(5.0, p.cells * CV_CELL_V)
        t0 = time.perf_counter()
        w.advance(h * 3600.0)
        wall = time.perf_counter() - t0
        rows.append({"hours": h, "wall_s": round(wall, 4), "ms_per_hour": round(1e3 * wall / h, 3),
                     "ff_windows": w.stats["ff"], "events": w.stats["events"],
                     "final_delta_mv": round(_delta_v(w) * 1e3, 2),
                     "charge_bled_ah_total": round(float(w.bleed_charge_c.sum()) / 3600.0, 3)})
        w.close()
    wall_all = time.perf_counter() - t_all
    first, last = rows[0], rows[-1]
    growth = (last["wall_s"] / first["wall_s"]) / (last["hours"] / first["hours"]) if first["wall_s"] > 0 else None
    res = {"runs": rows, "duration_ratio": last["hours"] / first["hours"],
           "wall_ratio": round(last["wall_s"] / first["wall_s"], 2) if first["wall_s"] > 0 else None,
           "cost_growth": None if growth is None else round(growth, 3)}
    return _result("duration-scaling", sum(h for h in hours) * 3600.0, wall_all, res)


def _fine_run(p, window_s: float, link: bool) -> dict:
    w = _imbalanced_world(p)
    if link:
        w.dut_ports.endpoint()  # the board's telemetry is encoded (CAN frames) as in a plan run
    w.set_charger(5.0, p.cells * CV_CELL_V)
    w.stepping.ff_enabled = False
    w.advance(5.0)
    e0, k0 = w.stats["events"], w.stats["wakes"]
    t0, c0 = time.perf_counter(), time.process_time()
    w.advance(window_s)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    events, wakes = w.stats["events"] - e0, w.stats["wakes"] - k0
    res = {"events": events, "wakes": wakes, "wall_s": round(wall, 4),
           "us_per_event": round(1e6 * wall / events, 2), "cpu_us_per_event": round(1e6 * cpu / events, 2),
           "s_per_simulated_hour": round(wall * 3600.0 / window_s, 3),
           "cpu_s_per_simulated_hour": round(cpu * 3600.0 / window_s, 3),
           "soc_sum": float(w.soc().sum()), "charge_bled_c_total": float(w.bleed_charge_c.sum())}
    w.close()
    return res


def fine_path(window_s: float = 600.0) -> dict:
    """What one event of the cell-model fine path costs: the ``balance-40h`` pack (CV
    charger, balancing, the board's mute and conversion every period) with fast-forward
    off, ``window_s`` of rig time after a 5 s start; ``no_link``: the board's telemetry
    goes nowhere (no link opened), ``can``: it is encoded into the board's CAN frames at
    every conversion, as in a plan run. Each reports µs per event (a fine step and the
    board's wake before it: conversion, protection, balancing, telemetry) in wall and CPU
    time, seconds per simulated hour, and the end state (SOC sum, charge bled) so that two
    builds can be checked for the same answer."""
    p = _profile()
    runs = {"no_link": _fine_run(p, window_s, False), "can": _fine_run(p, window_s, True)}
    wall = sum(r["wall_s"] for r in runs.values())
    return _result("fine-path", 2 * window_s, wall, runs)


def can_decode() -> dict | None:
    try:
        from .links.bench import can_decode_rate
    except ImportError:
        return None
    t0 = time.perf_counter()
    r = can_decode_rate()
    wall = time.perf_counter() - t0
    sim = r.get("simulated_s", r.get("samples", 0) * 0.25) if isinstance(r, dict) else 0.0
    return _result("can-decode", sim, wall, r)


def can_pump_vs_cantools() -> dict:
    """The CAN link's pump vs python-can + cantools on the same frames (18-cell multiplexed DBC)."""
    from .links.can_throughput import pump_vs_cantools

    r = pump_vs_cantools()
    return _result("can-pump-vs-cantools", r["simulated_s"], r["wall_s"], r)


def report_build(run_dir=None) -> dict:
    """Time ``reports.build`` (PDF included) of ``run_dir``, s; without ``run_dir``, of a
    fresh full-plan run of :data:`PROFILE` (the plan run itself is not timed)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import reports
    from .record import load_summary

    with tempfile.TemporaryDirectory(prefix="bmsrig-bench-") as tmp:
        if run_dir is None:
            run_dir = Path(tmp) / "run"
            plans = Path(__file__).resolve().parents[1] / "testplans"
            subprocess.run([sys.executable, "-m", "pytest", str(plans), "-p", "no:cacheprovider", "-p", "no:xdist",
                            "--rootdir", str(plans), "-o", "testpaths=", "-q", "--board", PROFILE, "--seed", "1",
                            "--run-dir", str(run_dir)], capture_output=True, check=False)
            if not (run_dir / "record.jsonl").is_file():
                from .errors import RigFault
                raise RigFault("bmsrig bench report-build", f"the plan run wrote no record in {run_dir}")
        run_dir = Path(run_dir)
        timings: dict = {}
        t0, c0 = time.perf_counter(), time.process_time()
        reports.build(run_dir, timings=timings)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        s = load_summary(run_dir)
        steps = {k: round(v, 3) for k, v in timings.items() if isinstance(v, float)}
        return _result("report-build", 0.0, wall, {
            "build_wall_s": round(wall, 3), "build_cpu_s": round(cpu, 3), "pdf_pages": timings.get("pdf_pages"),
            "measurements": len(s.measurements), "captures": len(s.captures), "steps_s": steps})


from .bench_peer import peer_ecm  # noqa: E402  (the peer comparison lives beside: module size)
from .bench_run import run_16s  # noqa: E402  (a whole `bmsrig run`, report included)

SCENARIOS = {
    "run-16s": run_16s,
    "balance-40h": balance_40h,
    "duration-scaling": duration_scaling,
    "peer-ecm": lambda: peer_ecm(PROFILE),
    "daily-60d": daily_60d,
    "daily-60d-matched": daily_60d_matched,
    "ff-vs-fine": ff_vs_fine,
    "fine-path": fine_path,
    "can-decode": can_decode,
    "can-pump-vs-cantools": can_pump_vs_cantools,
    "report-build": report_build,
}


def run_benchmarks(names=None) -> list[dict]:
    """Run the named scenarios (all by default) and return their result dicts."""
    names = list(names) if names else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        from .errors import ConfigError
        raise ConfigError("bmsrig bench", None, f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    out = []
    for n in names:
        r = SCENARIOS[n]()
        if r is not None:
            out.append(r)
    return out
