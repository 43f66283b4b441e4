"""Hard limits refuse before anything is sent; signals leave the rig in its safe state."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rig.build import build_rig
from rig.errors import SafetyLimitError
from rig.profile import load_profile


@pytest.fixture(scope="module")
def bench():
    rig = build_rig(None, load_profile("reference-4s-lfp-uart"), seed=3)
    yield rig
    rig.close()


def world_of(rig):
    from rig.drivers.sim import SimBenchDriver

    return rig.target.get_driver(SimBenchDriver).world


def test_emulator_voltage_beyond_the_hard_limit_is_refused_and_nothing_is_sent(bench):
    before = np.array(world_of(bench).emulator_setpoints(), dtype=float)
    with pytest.raises(SafetyLimitError) as exc:
        bench.emulator.set_voltages([3.3, 3.3, 4.8, 3.3])  # sim.yaml: voltage_range_v [0.0, 4.5]
    assert "cell emulator" in str(exc.value) and "4.8" in str(exc.value) and "nothing was sent" in str(exc.value)
    assert np.array_equal(np.array(world_of(bench).emulator_setpoints(), dtype=float), before)


def test_one_channel_beyond_the_limit_is_refused(bench):
    with pytest.raises(SafetyLimitError):
        bench.emulator.set_voltage(2, -0.1)


def test_chamber_set_point_and_ramp_beyond_limits_are_refused(bench):
    before = world_of(bench).chamber_setpoint()
    with pytest.raises(SafetyLimitError, match="set point"):
        bench.chamber.set_temperature(150.0)
    with pytest.raises(SafetyLimitError, match="ramp rate"):
        bench.chamber.set_temperature(30.0, ramp_c_per_min=50.0)
    assert world_of(bench).chamber_setpoint() == before


def test_pack_current_beyond_limit_is_refused(bench):
    with pytest.raises(SafetyLimitError, match="current"):
        bench.pack_source.set_current(500.0)
    assert bench.pack_source.read_current() == 0.0


def test_noise_injection_beyond_limit_is_refused(bench):
    with pytest.raises(SafetyLimitError):
        bench.emulator.set_noise(1.0)


CHILD = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from rig.build import build_rig
    from rig.profile import load_profile
    from rig.safety import SafeStateGuard
    from rig.drivers.sim import SimBenchDriver

    rig = build_rig(None, load_profile("reference-4s-lfp-uart"), seed=1)
    world = rig.target.get_driver(SimBenchDriver).world
    guard = SafeStateGuard(rig.safe_state).install()
    rig.emulator.set_voltages([3.5, 3.5, 3.55, 3.5])
    rig.pack_source.set_current(20.0, voltage_limit_v=15.0)
    rig.chamber.set_temperature(55.0)
    try:
        print("ready", flush=True)
        while True:
            rig.clock.sleep(1.0)   # mid-plan: the rig is busy when the signal lands
    except KeyboardInterrupt as exc:
        state = {
            "signal": guard.last_signal,
            "setpoints": [float(x) for x in world.emulator_setpoints()],
            "charger_a": rig.pack_source.read_current(),
            "chamber_sp": world.chamber_setpoint(),
            "reached": guard.reached,
        }
        print(json.dumps(state), flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_plan_leaves_emulator_charger_and_chamber_safe(sig):
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert out.strip(), f"child printed no state; stderr: {err[-2000:]}"
    state = json.loads(out.strip().splitlines()[-1])
    assert state["signal"] == sig.name
    assert state["reached"] == 1
    assert state["setpoints"] == [3.3, 3.3, 3.3, 3.3]  # sim.yaml safe_voltage_v
    assert state["charger_a"] == 0.0
    assert state["chamber_sp"] == 25.0  # sim.yaml chamber ambient


# ---------------------------------------------------------------- limits fixed at build time

import copy  # noqa: E402

import yaml  # noqa: E402

from rig.build import DEFAULT_ENV  # noqa: E402
from rig.errors import ConfigError  # noqa: E402


def _rig_file(tmp_path, mutate=None, sort_keys=False, name="rig.yaml"):
    data = yaml.safe_load(DEFAULT_ENV.read_text())
    if mutate:
        mutate(data["targets"]["main"]["drivers"])
    path = tmp_path / name
    path.write_text(yaml.safe_dump(copy.deepcopy(data), sort_keys=sort_keys))
    return path


def test_a_key_sorted_rig_file_builds_the_same_rig(tmp_path):
    path = _rig_file(tmp_path, sort_keys=True)
    text = path.read_text()
    assert text.index("BenchPort") < text.index("SimBench:")  # really sorted: the link's port first
    rig = build_rig(path, load_profile("reference-16s-lfp"), seed=2)
    try:
        assert rig.kind == "bench" and rig.emulator.n_channels == 16
        assert len(rig.link.identity().serial) > 0  # the CAN link reached the bench's board
    finally:
        rig.close()


@pytest.mark.parametrize("driver, key, value, problem", [
    ("SimCellEmulatorDriver", "voltage_range_v", [-1000, 1000], "rated range [0, 6] V"),
    ("SimCellEmulatorDriver", "voltage_range_v", [0, float("nan")], "not a range"),
    ("SimCellEmulatorDriver", "safe_voltage_v", 9, "outside the hard limit"),
    ("SimCellEmulatorDriver", "safe_voltage_v", 4.2, "LFP cell absolute range"),  # inside 4.5, beyond LFP 4.0
    ("SimCellEmulatorDriver", "max_noise_v_rms", 5.0, "rated range"),
    ("SimPackSourceDriver", "current_range_a", [-5000, 5000], "rated range"),
    ("SimPackSourceDriver", "current_range_a", [5, 10], "must include 0 A"),
    ("SimChamberDriver", "ambient_c", 150, "outside the hard limit"),
    ("SimChamberDriver", "temperature_range_c", [-200, 90], "rated range"),
    ("SimChamberDriver", "default_ramp_c_per_min", 50, "outside the hard limit"),
    ("SimChamberDriver", "max_ramp_c_per_min", float("inf"), "finite"),
])
def test_impossible_limits_and_safe_values_are_refused_when_the_rig_is_built(tmp_path, driver, key, value, problem):
    path = _rig_file(tmp_path, lambda d: d[driver].update({key: value}))
    with pytest.raises(ConfigError) as exc:
        build_rig(path, load_profile("reference-4s-lfp-uart"))
    assert exc.value.file == str(path)
    assert exc.value.key == f"targets.main.drivers.{driver}.{key}"
    assert problem in exc.value.problem


def test_the_effective_emulator_limit_is_the_rig_file_narrowed_to_the_chemistry(bench):
    lim = bench.emulator.limits["voltage_range_v"]
    assert (lim.lo, lim.hi) == (2.0, 4.0)  # sim.yaml [0, 4.5] ∩ LFP absolute [2.0, 4.0]
    info = bench.emulator.info().extra["hard limits"]
    assert "channel voltage [2, 4] V" in info and "rig file [0, 4.5] V ∩ LFP" in info


def test_cell_model_set_up_beyond_the_limit_leaves_the_world_in_source_mode(bench):
    world = world_of(bench)
    before = world.emulator_setpoints().tolist()
    with pytest.raises(SafetyLimitError, match="predicted terminal voltage"):
        bench.emulator.set_cell_model("nmc", 100.0, 1.0)  # rests above 4.0 V
    with pytest.raises(SafetyLimitError, match="temperature"):
        bench.emulator.set_cell_model("lfp", 100.0, 0.5, temperature_c=500.0)
    assert world.mode == "source" and world.emulator_setpoints().tolist() == before
