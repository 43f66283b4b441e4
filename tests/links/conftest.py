"""Fixtures for the DUT-link tests: a virtual clock, a virtual CAN channel, telemetry."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rig.clock import StepClock
from rig.profile import PROFILE_DIR

DATA = Path(__file__).parent / "data"
REF_DBC = PROFILE_DIR / "reference-bms.dbc"
REF_MAP = PROFILE_DIR / "reference-bms-can.yaml"
REF_REGS = PROFILE_DIR / "reference-bms-modbus.yaml"
OBX_DBC = DATA / "other-bms.dbc"
OBX_MAP = DATA / "other-bms-can.yaml"




def make_telemetry(n: int, **kw) -> SimpleNamespace:
    base = dict(
        cell_v=np.round(3.30 + 0.001 * np.arange(n), 4), temps_c=np.r_[25.0 + 0.1 * np.arange(n), 41.5],
        balancing=np.zeros(n, bool), hvc=False, lvc=False, ot=False, ut=False,
        charge_fet=True, discharge_fet=True, pack_v=3.3 * n, pack_a=1.25,
        serial="REF16-000123", hw_revision="C", fw_version="2.3.1", state="charge",
    )
    base.update(kw)
    return SimpleNamespace(**base)


class SimBoard:
    """A board that publishes ``telemetry`` through a CanTransmitter every ``period`` of the clock."""

    def __init__(self, clock: StepClock, tx, period: float = 0.25):
        self.clock, self.tx, self.period = clock, tx, period
        self.telemetry = None
        self.silent = False
        self.next_t = 0.0
        self.schedule = []  # [(t, {field: value})] applied when the board time passes t
        clock.on_step.append(self._step)

    def _step(self, t0: float, t1: float) -> None:
        while self.next_t <= t1:
            t = self.next_t
            for when, change in list(self.schedule):
                if when <= t:
                    for k, v in change.items():
                        setattr(self.telemetry, k, v)
                    self.schedule.remove((when, change))
            if not self.silent and self.telemetry is not None:
                self.tx.send(t, self.telemetry)
            self.next_t += self.period


@pytest.fixture
def clock():
    return StepClock()


@pytest.fixture
def channel():
    return f"test-links-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def can_bus(channel):
    import can

    bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    yield bus
    bus.shutdown()


@pytest.fixture
def sender(channel):
    """A raw sender on the same virtual channel (for hand-made frames)."""
    import can

    bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    yield bus
    bus.shutdown()
