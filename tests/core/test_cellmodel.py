"""Cell-model mode on a real rig: the control loop integrates measured currents on the clock."""

import numpy as np
import pytest

from rig.cellmodel import CellModelLoop
from rig.clock import VirtualClock
from rig.sim.ocv import ocv


class SourceEmulator:
    """A four-channel voltage source whose channel 2 sources a fixed 1 A (a stand-in for hardware)."""

    n_channels = 4

    def __init__(self):
        self.setpoints = np.zeros(4)
        self.sets = 0

    def set_voltages(self, volts):
        self.setpoints = np.asarray(volts, dtype=float).copy()
        self.sets += 1

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
