"""A realistic synthetic run record, written through RunRecord (no rig, no simulator).

``make_run(run_dir)`` writes what a qualification run of the reference 16S board would
leave: run_start with the full context, the board's identity, sampling accuracy at three
chamber temperatures (with defects: one channel out of spec at 45 °C), HVC/LVC timing, balancing,
derating, a skipped test (no chamber), a rig fault, captures of every kind, and run_end
(unless ``complete=False``: then the last test never ends and one planned test never starts).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

from rig.measurement import judge
from rig.profile import load_profile
from rig.protocols import DutIdentity, InstrumentInfo
from rig.record import RunRecord

RUN_ID = "20250314T101500Z-ref16-7f3a"
# calibration due dates relative to today: the record's dates of test are the wall clock's
_TODAY = _dt.datetime.now(_dt.timezone.utc).date()
EXPIRED_DUE = (_TODAY - _dt.timedelta(days=400)).isoformat()
VALID_DUE = (_TODAY + _dt.timedelta(days=200)).isoformat()
CHAMBER_DUE = (_TODAY + _dt.timedelta(days=90)).isoformat()
PLAN = "testplans/test_qualification.py"


class _Run:
    def __init__(self, rec: RunRecord, rule: str):
        self.rec, self.rule, self.t = rec, rule, 0.0
        self.fails: list[str] = []

    def start(self, name: str, reqs: list[str], doc: str = "") -> str:
        nodeid = f"{PLAN}::{name}"
        self.fails = []
        self.rec.append("test_start", nodeid=nodeid, name=name, doc=doc, requirements=reqs, t_rig=self.t)
        self.nodeid = nodeid
        return nodeid

    def measure(self, name, value, unit, limits, u=0.0, req=None, **cond) -> str:
        verdict, acc = judge(value, limits, u, self.rule)
        self.rec.append(
            "measurement", test=self.nodeid, name=name, value=value, unit=unit, limits=list(limits),
            uncertainty=u, acceptance=list(acc), decision_rule=self.rule, verdict=verdict,
            requirement=req, conditions=cond, t_rig=self.t,
        )
        self.t += 0.5
        if verdict != "pass":
            self.fails.append(name)
        return verdict

    def end(self, outcome=None, message="", duration=12.5):
        if outcome is None:
            outcome = "failed" if self.fails else "passed"
            if self.fails:
                message = f"{len(self.fails)} measurement(s) out of limits: " + ", ".join(self.fails)
        self.t += duration
        self.rec.append("test_end", nodeid=self.nodeid, outcome=outcome, message=message, duration_s=duration, t_rig=self.t)


def make_run(
    run_dir: Path,
    *,
    complete: bool = True,
    expired_calibration: bool = True,
    defects: tuple[str, ...] = ("adc_offset:cell=5,mv=8",),
    rule: str = "guarded",
    repeat_sampling: int = 1,
    balancing_samples: int = 2000,
    extra_captures: int = 0,
    seed: int = 7,
) -> Path:
    """Write a synthetic run into ``run_dir`` and return it. See the module docstring."""
    run_dir = Path(run_dir)
    profile = load_profile("reference-16s-lfp")
    rng = np.random.default_rng(seed)
    temps = (-10.0, 25.0, 45.0)
    planned = (
        [f"{PLAN}::test_sampling_accuracy[{t:g}C]" for t in temps]
        + [f"{PLAN}::{n}" for n in (
            "test_hvc_trip", "test_lvc_trip", "test_bleed_current", "test_balancing_convergence",
            "test_derating", "test_sampling_sweep_capture", "test_pack_current_profile",
            "test_temperature_compensation", "test_link_dropout", "test_balancing_pause",
        )]
    )
    if not complete:
        planned.append(f"{PLAN}::test_hvc_recovery")  # the run was killed before it
    instruments = [
        InstrumentInfo("cell_emulator", "Virtual CellSim-16", "CE-00042",
                       EXPIRED_DUE if expired_calibration else VALID_DUE),
        InstrumentInfo("reference_daq", "Virtual DAQ-970", "DAQ-1187", VALID_DUE, notes="k=2 U = 0.4 mV"),
        InstrumentInfo("pack_current_source", "Virtual PCS-100", "PCS-7", None),
        InstrumentInfo("thermal_chamber", "Virtual TC-64", "TC-3", CHAMBER_DUE),
    ]
    with RunRecord(run_dir) as rec:
        rec.append(
            "run_start", run_id=RUN_ID,
            context={
                "bmsrig_version": "0.1.0",
                "argv": ["bmsrig", "run", "--board", "reference-16s-lfp", "--seed", str(seed)]
                + [a for d in defects for a in ("--defect", d)],
                "seed": seed, "defects": list(defects),
                "board_profile": profile.model_dump(mode="json"),
                "profile_path": Path(profile.source),
                "rig": {"env": "rig/envs/sim.yaml", "kind": "bench", "instruments": instruments},
                "lab": {"name": "Example Battery Lab", "location": "Bench 3, Building B, Grenoble"},
                "requester": "ACME Energy Storage — QA (PO 4711)",
                "operator": "J. Doe",
                "plans": {"files": [{"path": PLAN, "sha256": "ab" * 32}], "git_commit": "3f9c2e1d" * 5},
                "decision_rule": rule,
                "planned_tests": planned,
            },
        )
        rec.append("dut_identity", **vars(DutIdentity("REF16-000123", "C", "2.3.1")))
        run = _Run(rec, rule)
        acc_mv = profile.sampling.accuracy_mv

        # --- sampling accuracy per channel at three chamber temperatures
        for temp in temps:
            run.start(f"test_sampling_accuracy[{temp:g}C]", ["ACC-001"],
                      "Each channel's reported voltage against the reference DAQ at a chamber temperature.")
            for rep in range(repeat_sampling):
                for cell in range(1, 17):
                    err_mv = rng.normal(0.0, 0.8) + 0.02 * (temp - 25.0)
                    if defects and cell == 5 and temp == 45.0:
                        err_mv = 8.1  # the injected ADC offset shows up hot
                    cond = {"cell": cell, "temp_c": temp, "set_v": 3.3}
                    if repeat_sampling > 1:
                        cond["repeat"] = rep + 1
                    run.measure(f"sampling_error_cell_{cell:02d}", err_mv * 1e-3, "V",
                                (-acc_mv * 1e-3, acc_mv * 1e-3), u=0.0012, req="ACC-001", **cond)
            run.end()

        # --- HVC
        run.start("test_hvc_trip", ["HVC-001", "HVC-002", "HVC-003"], "Ramp cell 7 through HVC; charge FET must open in time.")
        t = np.arange(0.0, 12.0, 0.01)
        v = 3.55 + 0.02 * t
        t_cross = float(t[np.argmax(v >= 3.65)])
        fet = (t < t_cross + 1.12).astype(int)
        flag = (t >= t_cross + 1.05).astype(int)
        rec.write_capture(run.nodeid, "hvc ramp cell 7", {"t_s": t, "cell_v": v, "threshold_v": np.full_like(t, 3.65),
                          "charge_fet": fet.astype(bool), "flag": flag}, units={"t_s": "s", "cell_v": "V", "threshold_v": "V"},
                          kind="hvc_timing", meta={"cell": 7})
        for k in range(extra_captures):  # more cells ramped through HVC (load for the benchmark)
            delay = 1.0 + 0.02 * k
            rec.write_capture(run.nodeid, f"hvc ramp cell {k + 1}", {
                "t_s": t, "cell_v": v + rng.normal(0, 2e-4, len(t)), "threshold_v": np.full_like(t, 3.65),
                "charge_fet": t < t_cross + delay + 0.07, "flag": t >= t_cross + delay}, units={"t_s": "s", "cell_v": "V"},
                kind="hvc_timing", meta={"cell": k + 1})
        run.measure("hvc_trip_v", 3.6512, "V", (3.64, 3.66), u=0.0008, req="HVC-001", cell=7)
        run.measure("hvc_latency_s", 1.12, "s", (0.0, 1.5), u=0.01, req="HVC-002", cell=7)
        run.measure("hvc_flag_agrees_with_fet", 1.0, "1", (1.0, 1.0), req="HVC-003")
        run.end()

        # --- LVC
        run.start("test_lvc_trip", ["LVC-001"], "Discharge cell 2 through LVC; discharge FET must open in time.")
        t = np.arange(0.0, 10.0, 0.01)
        v = 2.62 - 0.02 * t
        t_cross = float(t[np.argmax(v <= 2.50)])
        rec.write_capture(run.nodeid, "lvc ramp cell 2", {"t_s": t, "cell_v": v, "threshold_v": np.full_like(t, 2.50),
                          "discharge_fet": (t < t_cross + 0.9), "flag": (t >= t_cross + 0.85)},
                          units={"t_s": "s", "cell_v": "V"}, kind="lvc_timing")
        run.measure("lvc_trip_v", 2.4985, "V", (2.49, 2.51), u=0.0008, req="LVC-001", cell=2)
        run.measure("lvc_latency_s", 0.9, "s", (0.0, 1.5), u=0.01, req="LVC-001", cell=2)
        run.end()

        # --- bleed current per channel
        run.start("test_bleed_current", ["BAL-002"], "Bleed current on each channel while balancing alone.")
        for cell in range(1, 17):
            i_ma = 50.0 + rng.normal(0, 1.5)
            run.measure(f"bleed_current_cell_{cell:02d}", i_ma, "mA", (30.0, 60.0), u=0.5, req="BAL-002", cell=cell)
        run.end()

        # --- balancing convergence (long capture)
        run.start("test_balancing_convergence", ["BAL-001", "BAL-003", "BAL-007"],
                  "16 cells with a 60 mV spread converge under balancing.")
        n = balancing_samples
        t = np.linspace(0.0, 6 * 3600.0, n)
        offsets = np.linspace(0.0, 0.06, 16)
        cols = {"t_s": t}
        V = []
        for i, off in enumerate(offsets):
            vi = 3.45 + off * np.exp(-t / 7200.0)
            cols[f"v_cell_{i + 1:02d}"] = vi
            V.append(vi)
        cols["delta_v"] = np.ptp(np.vstack(V), axis=0)
        rec.write_capture(run.nodeid, "convergence", cols, units={k: ("s" if k == "t_s" else "V") for k in cols},
                          kind="balancing_convergence")
        run.measure("balancing_start_latency_s", 6.2, "s", (0.0, 15.0), u=0.1, req="BAL-001")
        run.measure("final_delta_mv", 3.2, "mV", (None, 10.0), u=0.6, req="BAL-003")
        run.measure("correction_rate_ratio", 0.97, "1", (0.8, 1.2), u=0.03, req="BAL-007")
        run.end(duration=21600.0)

        # --- derating
        run.start("test_derating", ["BAL-008"], "Balancing duty against bleed-resistor temperature.")
        temp_c = np.arange(50.0, 86.0, 2.5)
        expected = np.array([profile.balancing.derating.duty_at(x) for x in temp_c])
        duty = np.clip(expected + rng.normal(0, 0.03, len(temp_c)), 0, 1)
        rec.write_capture(run.nodeid, "duty vs temperature", {"temp_c": temp_c, "duty": duty, "expected_duty": expected},
                          units={"temp_c": "°C", "duty": "1", "expected_duty": "1"}, kind="derating")
        run.measure("max_duty_error", float(np.max(np.abs(duty - expected))), "1", (None, 0.10), u=0.01, req="BAL-008")
        run.end()

        # --- a sampling_error capture (the capture flavour of the accuracy plot)
        run.start("test_sampling_sweep_capture", ["ACC-002"], "Accuracy sweep with injected noise, as a capture.")
        cells = np.repeat(np.arange(1, 17), 2)
        temps_c = np.tile([25.0, 45.0], 16)
        err = rng.normal(0, 1.0e-3, len(cells))
        rec.write_capture(run.nodeid, "noise sweep", {"cell": cells, "temp_c": temps_c, "set_v": np.full(len(cells), 3.3),
                          "error_v": err, "u_v": np.full(len(cells), 0.0012)}, units={"error_v": "V", "u_v": "V"},
                          kind="sampling_error", meta={"accuracy_mv": acc_mv})
        run.measure("max_abs_error_mv", float(np.max(np.abs(err)) * 1e3), "mV", (None, acc_mv), u=1.2, req="ACC-002")
        run.end()

        # --- an unknown capture kind (generic plot)
        run.start("test_pack_current_profile", [], "Pack current during a charge step.")
        t = np.linspace(0, 60, 600)
        rec.write_capture(run.nodeid, "pack current", {"t_s": t, "pack_a": np.where(t > 10, 20.0, 0.0), "pack_v": 52.8 + 0.01 * t},
                          units={"t_s": "s", "pack_a": "A", "pack_v": "V"}, kind="pack_current")
        run.end(outcome="passed")

        # --- skipped: needs a chamber the plan wanted exclusively
        run.start("test_temperature_compensation", ["BAL-009"], "Balancing threshold against cell temperature.")
        rec.append("deviation", test=run.nodeid, kind="skipped", message="needs chamber: the rig's chamber is reserved by another place")
        run.end(outcome="skipped", message="needs chamber", duration=0.0)

        # --- rig fault
        run.start("test_link_dropout", ["HVC-004"], "HVC recovery after hysteresis and recovery time.")
        rec.append("deviation", test=run.nodeid, kind="rig_fault",
                   message="rig fault in can0: no frame within 2 s (LinkFault); the board was not judged")
        run.end(outcome="error", message="rig fault in can0: no frame within 2 s", duration=2.0)

        if complete:
            run.start("test_balancing_pause", ["BAL-006"], "Balancing pauses around each measurement.")
            run.measure("mute_before_sample_ms", 5.4, "ms", (5.0, None), u=0.1, req="BAL-006")
            run.end()
            rec.append("deviation", test=None, kind="note", message="Chamber door opened once at 10:42 for a visual check (2 min).")
            rec.append("run_end", exit_code=1, summary={"passed": 8, "failed": 1, "skipped": 1, "error": 1})
        else:
            run.start("test_balancing_pause", ["BAL-006"], "Balancing pauses around each measurement.")
            run.measure("mute_before_sample_ms", 5.4, "ms", (5.0, None), u=0.1, req="BAL-006")
            # killed here: no test_end, no run_end
    return run_dir
