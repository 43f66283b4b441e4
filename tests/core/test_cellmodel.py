"""Cell-model mode on a real rig: the control loop integrates measured currents on the clock."""

import numpy as np
import pytest

from rig.cellmodel import CellModelLoop
from rig.clock import VirtualClock
from rig.errors import SafetyLimitError
from rig.safety import HardLimits, Limit, LimitTrip
from rig.sim.ocv import ocv


class SourceEmulator:
    """A four-channel voltage source whose channel 2 sources a fixed 1 A (a stand-in for hardware)."""

    n_channels = 4
    limits = HardLimits("cell emulator", {"voltage_range_v": Limit("channel voltage", 2.0, 4.0, "V")})

    def __init__(self):
        self.setpoints = np.zeros(4)
        self.sets = 0
        self.safe_states = 0

    def set_voltages(self, volts):
        self.setpoints = np.asarray(volts, dtype=float).copy()
        self.sets += 1

    def safe_state(self):
        self.safe_states += 1

    def read_currents(self, aperture_s=None):
        return np.array([0.0, 1.0, 0.0, 0.0])


def test_loop_discharges_the_channel_that_sources_current_and_follows_ocv():
    t = {"now": 0.0}
    clock = VirtualClock(lambda dt: t.__setitem__("now", t["now"] + dt), lambda: t["now"])
    emu = SourceEmulator()
    loop = CellModelLoop(emu, clock, "lfp", 100.0, 0.5, period_s=0.5).start()
    assert emu.setpoints == pytest.approx(ocv("lfp", np.full(4, 0.5)), abs=2e-3)
    for _ in range(3600):
        clock.sleep(1.0)
    soc = loop.soc()
    # 1 A for 1 h out of a 100 Ah cell is 1 % SOC (self-discharge adds < 0.01 %)
    assert soc[1] == pytest.approx(0.49, abs=2e-4)
    assert soc[0] == pytest.approx(0.5, abs=2e-4)
    assert loop.ticks == 3600
    # the set point is the model's terminal voltage: OCV minus the IR/RC drop of 1 A
    assert emu.setpoints[1] < ocv("lfp", np.array([soc[1]]))[0]
    loop.stop()
    clock.sleep(10.0)
    assert loop.ticks == 3600


def _clock():
    t = {"now": 0.0}
    return VirtualClock(lambda dt: t.__setitem__("now", t["now"] + dt), lambda: t["now"])


@pytest.mark.parametrize("kwargs, what", [
    ({"soc": 1.5}, "SOC"),
    ({"soc": float("nan")}, "SOC"),
    ({"soc": [0.5, 0.5]}, "shape"),
    ({"capacity_ah": -1.0}, "capacity"),
    ({"temperature_c": 500.0}, "temperature"),
    ({"temperature_c": float("inf")}, "temperature"),
])
def test_set_up_beyond_a_limit_is_refused_before_anything_is_sent(kwargs, what):
    emu = SourceEmulator()
    args = {"capacity_ah": 100.0, "soc": 0.5, **kwargs}
    with pytest.raises((SafetyLimitError, ValueError), match=what):
        CellModelLoop(emu, _clock(), "lfp", args["capacity_ah"], args["soc"], temperature_c=kwargs.get("temperature_c"))
    assert emu.sets == 0


def test_initial_terminal_voltage_beyond_the_limit_is_refused_before_anything_is_sent():
    emu = SourceEmulator()
    emu.limits = HardLimits("cell emulator", {"voltage_range_v": Limit("channel voltage", 2.0, 3.25, "V")})
    with pytest.raises(SafetyLimitError, match="initial terminal voltage"):
        CellModelLoop(emu, _clock(), "lfp", 100.0, 0.99)  # a full LFP cell rests near 3.4 V
    assert emu.sets == 0


class ChargingEmulator(SourceEmulator):
    """Channel 1 sinks 50 A: the modelled cell charges until it would pass the limit."""

    def read_currents(self, aperture_s=None):
        return np.array([0.0, -50.0, 0.0, 0.0])


def test_a_tick_beyond_the_limit_is_not_sent_stops_the_loop_and_goes_safe():
    clock = _clock()
    emu = ChargingEmulator()
    emu.limits = HardLimits("cell emulator", {"voltage_range_v": Limit("channel voltage", 2.0, 3.65, "V")})
    loop = CellModelLoop(emu, clock, "lfp", 10.0, 0.9, period_s=1.0).start()
    highest = 0.0
    with pytest.raises(LimitTrip, match=r"channel 2 would be set to .* outside the hard limit \[2, 3.65\] V"):
        for _ in range(7200):
            clock.sleep(1.0)
            highest = max(highest, float(emu.setpoints.max()))
    assert highest <= 3.65  # nothing beyond the limit ever reached the emulator
    assert emu.safe_states == 1 and not loop.running
    sets = emu.sets
    clock.sleep(10.0)
    assert emu.sets == sets  # the loop no longer drives the channels
