"""The reference firmware's set-points taken from host commands (profile ``setpoints_by_command``):
the factory default until the declared command arrives, then the commanded value (decoded as
the bench hands it over through ``harness.commands()``); defects still shift it."""

from __future__ import annotations

import pytest

from rig.profile import load_profile
from rig.sim.defects import parse_defects
from rig.sim.reference.firmware import ReferenceBoard


class Harness:
    """The part of :class:`rig.sim.harness.BoardHarness` the firmware's set-up and set-points use."""

    n_cells = 8

    def __init__(self):
        self.got = {}

    def commands(self):
        return dict(self.got)

    def set_bleed(self, mask):
        pass

    def set_fets(self, c, d):
        pass

    def set_output(self, line, level):
        pass


def board(*defects):
    h = Harness()
    return h, ReferenceBoard(h, load_profile("example-polled-commands"), parse_defects(list(defects), n_cells=8))


def test_factory_defaults_until_the_commands_arrive_then_the_commanded_values():
    h, b = board()
    b.refresh_setpoints()
    assert (b.hvc_thr, b.lvc_thr, b.start_v) == pytest.approx((3.75, 2.80, 0.050))
    assert b.hvc_rec_v == pytest.approx(3.75 - 0.150) and b.lvc_rec_v == pytest.approx(2.80 + 0.200)
    h.got = {"hvc_setpoint": {"CmdType": 2.0, "threshold_v": 3.65}, "lvc_setpoint": {"CmdType": 3.0, "threshold_v": 2.5},
             "bal_delta_at_start": {"CmdType": 4.0, "BalStartDelta": 30.0}}
    b.refresh_setpoints()
    assert (b.hvc_thr, b.lvc_thr, b.start_v) == pytest.approx((3.65, 2.50, 0.030))
    assert b.hvc_rec_v == pytest.approx(3.50) and b.lvc_rec_v == pytest.approx(2.70)
    assert b.stop_v == pytest.approx(0.010)   # not declared: the promised value
    h.got["hvc_setpoint"] = {"CmdType": 2.0, "threshold_v": 3.60}   # a later command on demand
    b.refresh_setpoints()
    assert b.hvc_thr == pytest.approx(3.60)


def test_a_threshold_defect_shifts_the_commanded_threshold():
    h, b = board("hvc_threshold:mv=20")
    h.got = {"hvc_setpoint": {"threshold_v": 3.65}}
    b.refresh_setpoints()
    assert b.hvc_thr == pytest.approx(3.67)


def test_a_profile_without_declarations_never_asks_for_commands():
    h = Harness()
    h.commands = None   # would raise if called
    b = ReferenceBoard(h, load_profile("example-polled"), parse_defects([], n_cells=8))
    b.refresh_setpoints()
    assert b.hvc_thr == pytest.approx(load_profile("example-polled").protection.hvc.threshold_v)


def test_on_the_bench_without_the_command_the_board_cuts_at_its_factory_default():
    from rig.sim.world import World

    w = World(load_profile("example-polled-commands"), seed=1)   # no link opened: no command arrived
    v = [3.40] * 8
    v[3] = 3.70                    # above the promised 3.65 V, below the factory 3.75 V
    w.set_emulator_voltages(v)
    w.advance(5.0)
    assert w.charge_fet
    v[3] = 3.77
    w.set_emulator_voltages(v)
    w.advance(5.0)
    assert not w.charge_fet and w.telemetry.hvc
