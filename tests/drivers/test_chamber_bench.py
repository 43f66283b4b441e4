"""The chamber plans on the virtual bench through each vendor chamber driver and library.

The rig is the virtual bench (``rig/envs/sim.yaml``) with the bench's chamber driver replaced
by a vendor chamber driver talking to its simulated controller (tests/drivers/chamber_sims.py)
at the wire: the Watlow F4 through ``watlow-f4`` (minimalmodbus, Modbus RTU on a pty), the
EZ-Zone PM through ``watlow`` (Standard Bus on a pty), the Espec P-300 over TCP, the
Watlow F4T over Modbus TCP (float registers). The controller is coupled to the bench's world
(:meth:`Thermal.couple`): its process value is the world's chamber air temperature, and every set point (and F4 ramp register) it receives is a
``World.set_chamber`` call, so the bench's chamber model heats and cools the board's cells in
rig time while every command and reading passes the vendor library and the wire.

The controller must live in the rig's process (the world does), so ``bmsrig run`` runs in a
subprocess of this module: ``python -m tests.drivers.test_chamber_bench KIND RUN_DIR [ARGS]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from .chamber_sims import EspecSim, EZZoneSim, F4Sim, F4TSim

ENVS = Path(__file__).resolve().parents[2] / "rig" / "envs"
KINDS = {"watlow-f4": "watlow_f4", "ezzone": "watlow", "espec": "socket", "watlow-f4t": "pymodbus"}  # -> library
MODEL = {"watlow-f4": "Watlow F4 (simulated)", "ezzone": "Watlow EZ-Zone PM (simulated)", "espec": "Espec P300",
         "watlow-f4t": "Watlow F4T (simulated)"}
#: the chamber plans of the shipped plan set (every test marked ``needs("chamber")``) each
#: controller path can carry: the EZ-Zone's library reads 0..250 °C only, so the sampling
#: accuracy at the profile's cold point (-10 °C on reference-16s-lfp) is refused by the hard
#: limit before anything is sent (a SafetyLimitError, the test fails): not a plan it allows
CHAMBER_PLANS = {"watlow-f4": ("temperature_compensation", "derating", "sampling_accuracy_over_temperature"),
                 "ezzone": ("temperature_compensation", "derating"),
                 "espec": ("temperature_compensation", "derating", "sampling_accuracy_over_temperature"),
                 "watlow-f4t": ("temperature_compensation", "derating", "sampling_accuracy_over_temperature")}
# the bench chamber's own limits (rig/envs/sim.yaml), inside what each controller path carries
LIMITS = {"watlow-f4": {"temperature_range_c": [-40.0, 90.0], "max_ramp_c_per_min": 5.0, "ambient_c": 25.0,
                        "ramp_register": 301},
          "ezzone": {"temperature_range_c": [0.0, 90.0], "max_ramp_c_per_min": 5.0, "ambient_c": 25.0},
          "espec": {"temperature_range_c": [-40.0, 90.0], "max_ramp_c_per_min": 5.0, "ambient_c": 25.0},
          "watlow-f4t": {"temperature_range_c": [-40.0, 90.0], "max_ramp_c_per_min": 5.0, "ambient_c": 25.0}}


def start_sim(kind):
    """(simulated controller, resource entry, driver entry) of a vendor chamber, started."""
    if kind == "watlow-f4":
        sim = F4Sim(ramp_register=301).start()
        return sim, {"WatlowF4Port": {"port": sim.port, "model": MODEL[kind]}}, {"WatlowF4ChamberDriver": LIMITS[kind]}
    if kind == "ezzone":
        sim = EZZoneSim().start()
        return sim, {"EZZonePort": {"port": sim.port, "model": MODEL[kind]}}, {"EZZoneChamberDriver": LIMITS[kind]}
    if kind == "watlow-f4t":
        sim = F4TSim().start()
        return (sim, {"WatlowF4TPort": {"host": "127.0.0.1", "port": sim.port, "model": MODEL[kind]}},
                {"WatlowF4TChamberDriver": LIMITS[kind]})
    sim = EspecSim().start()
    return sim, {"EspecPort": {"host": "127.0.0.1", "port": sim.port}}, {"EspecChamberDriver": LIMITS[kind]}


def bench_env(path: Path, resource: dict, driver: dict) -> Path:
    """The virtual bench's rig description with its chamber driver replaced by ``driver``."""
    env = yaml.safe_load((ENVS / "sim.yaml").read_text())
    main = env["targets"]["main"]
    main["resources"].update(resource)
    del main["drivers"]["SimChamberDriver"]
    main["drivers"].update(driver)
    path.write_text(yaml.safe_dump(env, sort_keys=False))
    return path


def couple(rig, sim) -> None:
    """Make the bench world the simulated controller's chamber (see the module docstring)."""
    from rig.drivers.sim import SimBenchDriver

    bench = rig.target.get_driver(SimBenchDriver)
    sim.couple(lambda: bench.world)


def run_on_the_bench(kind: str, argv: list[str]) -> int:
    """``bmsrig run`` on the bench with the vendor chamber ``kind``; ``argv``: run dir, then run args."""
    import rig.build
    from rig.cli import main

    built = rig.build.build_rig
    sim, res, drv = start_sim(kind)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            def build_and_couple(*args, **kwargs):
                r = built(*args, **kwargs)
                couple(r, sim)
                return r

            rig.build.build_rig = build_and_couple
            env = bench_env(Path(tmp) / f"bench-{kind}.yaml", res, drv)
            code = main(["run", "--rig", str(env), "--out", argv[0], *argv[1:]])
            sys.stdout.flush()
            print(f"controller writes: {len(sim.writes)}: {sim.writes[:12]}")
            return code
    finally:
        sim.stop()


# ----------------------------------------------------------------------------- in-process


@pytest.fixture(params=list(KINDS))
def coupled(request, tmp_path, board_profile):
    pytest.importorskip(KINDS[request.param])
    from rig.build import build_rig

    sim, res, drv = start_sim(request.param)
    try:
        rig = build_rig(bench_env(tmp_path / "bench.yaml", res, drv), board_profile, seed=3)
        try:
            couple(rig, sim)
            yield request.param, rig, sim
        finally:
            rig.close()
    finally:
        sim.stop()


def test_the_vendor_chamber_heats_the_bench_world(coupled):
    """A set point through the library reaches the world's chamber; the process value read
    through the library is the world's; the board's cells follow the chamber."""
    from rig.drivers.sim import SimBenchDriver

    kind, rig, sim = coupled
    world = rig.target.get_driver(SimBenchDriver).world
    assert type(rig.chamber).__name__.endswith("ChamberDriver") and not type(rig.chamber).__name__.startswith("Sim")
    rig.chamber.set_temperature(45.0, ramp_c_per_min=3.0)
    assert world.chamber_setpoint() == pytest.approx(45.0)
    assert sim.writes  # it went over the wire
    rig.chamber.wait_stable(tolerance_c=1.0, dwell_s=120.0, timeout_s=3600.0)
    assert rig.clock.now() > 300.0  # the bench's chamber model took rig time to get there (3 °C/min max)
    assert world.chamber_temperature() == pytest.approx(45.0, abs=1.0)
    assert rig.chamber.read_temperature() == pytest.approx(world.chamber_temperature(), abs=0.3)  # sensor noise, 0.1 °C steps
    assert float(world.cell_temperatures().mean()) > 35.0  # the cells warmed with the chamber air
    rig.safe_state()
    assert world.chamber_setpoint() == pytest.approx(25.0)


def test_a_beyond_limit_set_point_reaches_neither_controller_nor_world(coupled):
    from rig.drivers.sim import SimBenchDriver
    from rig.errors import SafetyLimitError

    kind, rig, sim = coupled
    world = rig.target.get_driver(SimBenchDriver).world
    before, sp = list(sim.writes), world.chamber_setpoint()
    with pytest.raises(SafetyLimitError):
        rig.chamber.set_temperature(95.0)
    with pytest.raises(SafetyLimitError):
        rig.chamber.set_temperature(40.0, ramp_c_per_min=6.0)
    assert sim.writes == before and world.chamber_setpoint() == sp


# ----------------------------------------------------------------------------- bmsrig run


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_bmsrig_run_chamber_plans_through_the_vendor_chamber(kind, tmp_path):
    """``bmsrig run`` passes every chamber plan with the vendor chamber driving the bench's
    thermal world; the record lists the vendor chamber."""
    pytest.importorskip(KINDS[kind])
    from rig.record import read_record

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "tests.drivers.test_chamber_bench", kind, str(out),
                           "--board", "reference-16s-lfp", "-k", " or ".join(CHAMBER_PLANS[kind])],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    events = read_record(out)
    start = json.dumps([e for e in events if e["event"] == "run_start"][0])
    assert f'"role": "thermal chamber", "model": "{MODEL[kind]}"' in start
    outcomes = {e["nodeid"].split("::")[-1]: e["outcome"] for e in events if e["event"] == "test_end"}
    assert outcomes == {f"test_{name}": "passed" for name in CHAMBER_PLANS[kind]}


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(run_on_the_bench(sys.argv[1], sys.argv[2:]))
