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
