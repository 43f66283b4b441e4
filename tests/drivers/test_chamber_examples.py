"""The vendor-chamber example rig descriptions pass ``bmsrig check``; a bad limit in one is a
clear configuration error; and ``bmsrig run`` drives each vendor chamber driver on its
simulated controller with the virtual bench's cells, board and pack source.

In the run, the simulated controller lives in this process and the rig in the ``bmsrig``
subprocess, so the controller cannot follow the run's virtual clock: it advances a fixed
60 s of its own time per request instead. The bench's thermal world is not coupled to that
controller: the chamber driver is activated, read, reported and put in its safe state
through the vendor library, while the board's temperatures stay the bench's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rig.record import read_record

from .chamber_sims import EspecSim, EZZoneSim, F4Sim

ENVS = Path(__file__).resolve().parents[2] / "rig" / "envs"
CLI = [sys.executable, "-m", "rig.cli"]
EXAMPLES = ["example-watlow-f4.yaml", "example-ezzone.yaml", "example-espec.yaml", "example-watlow-f4t.yaml"]


def _cli(*args, timeout=600):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_passes_check_as_hardware(name):
    proc = _cli("check", "--rig", str(ENVS / name))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"rig description {ENVS / name}: OK (hardware)" in proc.stdout


def test_a_range_the_library_cannot_carry_is_a_config_error(tmp_path):
    env = yaml.safe_load((ENVS / "example-ezzone.yaml").read_text())
    for drv in env["targets"]["main"]["drivers"]:
        if "EZZoneChamberDriver" in drv:
            drv["EZZoneChamberDriver"]["temperature_range_c"] = [-20.0, 85.0]
    bad = tmp_path / "bad-ezzone.yaml"
    bad.write_text(yaml.safe_dump(env, sort_keys=False))
    proc = _cli("check", "--rig", str(bad))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (f"{bad}: targets.main.drivers.EZZoneChamberDriver.temperature_range_c: set point [-20, 85] °C is "
            "outside the rated range [0, 250] °C") in proc.stderr
    assert "Traceback" not in proc.stderr


def _bench_with(chamber_resource: dict, chamber_driver: dict) -> dict:
    env = yaml.safe_load((ENVS / "sim.yaml").read_text())
    main = env["targets"]["main"]
    main["resources"].update(chamber_resource)
    del main["drivers"]["SimChamberDriver"]
    main["drivers"].update(chamber_driver)
    return env


LIMITS = {"temperature_range_c": [5.0, 85.0], "max_ramp_c_per_min": 3.0, "ambient_c": 25.0}


def _sim(kind):
    if kind == "watlow-f4":
        sim = F4Sim(pv_c=40.0, sp_c=40.0).start()
        return sim, {"WatlowF4Port": {"port": sim.port, "model": "Watlow F4 (simulated)"}}, {"WatlowF4ChamberDriver": LIMITS}
    if kind == "ezzone":
        sim = EZZoneSim(pv_c=40.0, sp_c=40.0).start()
        return sim, {"EZZonePort": {"port": sim.port, "model": "Watlow EZ-Zone PM (simulated)"}}, {"EZZoneChamberDriver": LIMITS}
    sim = EspecSim(pv_c=40.0, sp_c=40.0).start()
    return sim, {"EspecPort": {"host": "127.0.0.1", "port": sim.port}}, {"EspecChamberDriver": LIMITS}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["watlow-f4", "ezzone", "espec"])
def test_bmsrig_run_with_the_vendor_chamber_on_its_simulated_controller(kind, tmp_path):
    pytest.importorskip({"watlow-f4": "watlow_f4", "ezzone": "watlow", "espec": "socket"}[kind])
    sim, res, drv = _sim(kind)
    sim.auto_advance_s = 60.0
    try:
        env = tmp_path / f"bench-{kind}.yaml"
        env.write_text(yaml.safe_dump(_bench_with(res, drv), sort_keys=False))
        out = tmp_path / "run"
        proc = _cli("run", "--rig", str(env), "--out", str(out), "-k", "channel_mapping")
    finally:
        sim.stop()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the rig went to baseline (chamber 40 °C -> ambient 25 °C through the vendor library)
    # and to its safe state at the end: both set points reached the simulated controller
    assert sim.sp == pytest.approx(25.0) and len(sim.writes) >= 2
    start = json.dumps([e for e in read_record(out) if e["event"] == "run_start"][0])
    model = {"watlow-f4": "Watlow F4 (simulated)", "ezzone": "Watlow EZ-Zone PM (simulated)", "espec": "Espec P300"}[kind]
    assert f'"role": "thermal chamber", "model": "{model}"' in start  # the equipment list of the record
    assert model in (out / "report.html").read_text()
