"""The beyond-limit walk of ``test_limits_walk`` on the vendor drivers, each against its
simulated instrument at the wire.

- Bloomy BS1200 (``bs1200`` library) — simulated units on a python-can virtual bus: every
  frame the units received is counted after a bus sync;
- Pickering 41-752A (``pilxi``) — the fake ClientBridge native layer: every native call;
- Watlow F4 (``watlow-f4``, Modbus RTU on a pty) and Watlow EZ-Zone (``watlow``, Standard
  Bus on a pty) — every request frame the simulated controller received;
- Espec P-300 (ASCII over TCP) — every command line the simulated controller received;
- Watlow F4T (Modbus TCP, float registers) — every request the simulated controller received.

Every command is tried beyond both ends of every limit, with NaN, ±inf and wrong shapes
(the same cases as the main walk: the emulators on an LFP board, whose cell range narrows
the rig file's). Each must be refused and the instrument must have received nothing. Then
every limit attribute is assigned a wider value: refused, and the old limit still holds.
``VENDOR_WALK_COUNT`` is the number of beyond-limit commands and assignments tried
(``python -m tests.drivers.test_limits_walk_vendors``).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import yaml

from rig.protocols import CellEmulator, ThermalChamber

from .test_limits_walk import NO_VALUE, _assign_walk_family, _ids, _walk, chamber_cases, emulator_cases

N_CELLS = 16
BS1200_EMULATOR = emulator_cases(N_CELLS, 0.3, float("inf"))     # rig file: max_current_a 0.3 A, no noise injection
PICKERING_EMULATOR = emulator_cases(N_CELLS, 0.3, float("inf"))
F4_CHAMBER = chamber_cases(-40.0, 85.0, 3.0)
EZZONE_CHAMBER = chamber_cases(5.0, 120.0, 3.0)
ESPEC_CHAMBER = chamber_cases(-40.0, 85.0, 3.0)
F4T_CHAMBER = chamber_cases(-40.0, 85.0, 3.0)

EMULATOR_ATTRS = ["voltage_range_v", "max_current_a", "safe_voltage_v"]
CHAMBER_ATTRS = ["temperature_range_c", "max_ramp_c_per_min", "ambient_c"]
ASSIGNMENTS = {  # driver family -> (limit attributes, a command beyond the old limit)
    "bs1200": (EMULATOR_ATTRS + ["settle_s", "current_sign"], ("set_voltages", (4.5,))),
    "pickering": (EMULATOR_ATTRS + ["readback"], ("set_voltages", (4.5,))),
    "watlow f4": (CHAMBER_ATTRS + ["ramp_register"], ("set_temperature", (150.0,))),
    "ezzone": (CHAMBER_ATTRS, ("set_temperature", (150.0,))),
    "espec": (CHAMBER_ATTRS, ("set_temperature", (150.0,))),
    "watlow f4t": (CHAMBER_ATTRS, ("set_temperature", (150.0,))),
}
WIDEN = {"settle_s": 0.0, "current_sign": -1, "readback": "setpoint", "ramp_register": 999}
N_ASSIGNMENTS = sum(len(a) + 4 for a, _ in ASSIGNMENTS.values())  # + limits, its mapping, a Limit's field, the command
VENDOR_WALK_COUNT = (len(BS1200_EMULATOR) + len(PICKERING_EMULATOR) + len(F4_CHAMBER) + len(EZZONE_CHAMBER)
                     + len(ESPEC_CHAMBER) + len(F4T_CHAMBER) + N_ASSIGNMENTS)


@pytest.fixture(scope="module")
def build(tmp_path_factory, board_profile):
    """``build(resources, drivers, clock)`` -> a target with the run context (module lifetime)."""
    from labgrid import Environment

    import rig.labgrid  # noqa: F401
    from rig.context import RigContext, attach_context

    targets = []

    def make(resources, drivers, clock):
        env = tmp_path_factory.mktemp("vendor") / "rig.yaml"
        env.write_text(yaml.safe_dump({"imports": ["rig.labgrid"],
                                       "targets": {"main": {"resources": resources, "drivers": drivers}}},
                                      sort_keys=False))
        target = Environment(str(env)).get_target("main")
        attach_context(target, RigContext(profile=board_profile, clock=clock))
        targets.append(target)
        return target

    yield make
    for t in targets:
        t.cleanup()


@pytest.fixture(scope="module")
def clock():
    from rig.clock import StepClock

    return StepClock()


def _requests(sim):
    """Count every request frame a pty-served simulated controller handles."""
    handle, seen = sim.handle, []

    def counting(buf):
        seen.append(bytes(buf))
        return handle(buf)

    sim.handle = counting
    return seen


# ---------------------------------------------------------------- BS1200 on a virtual CAN bus


@pytest.fixture(scope="module")
def bs1200(build, clock):
    pytest.importorskip("bs1200")
    from .bs1200_sim import SimBS1200Bus
    from .test_bs1200 import _units

    with SimBS1200Bus(box_ids=(1, 2)) as sim:
        target = build({"BS1200Bus": {"interface": "virtual", "channel": sim.channel, "units": _units()}},
                       {"BS1200CellEmulatorDriver": {"voltage_range_v": [0.0, 4.5], "max_current_a": 0.3}}, clock)
        emu = target.get_driver(CellEmulator)
        emu.set_voltages(3.3)
        yield emu, sim
        target.cleanup()


def _bus_state(sim):
    sim.sync()
    return len(sim.received), {b: (u.set_v.tolist(), u.enabled.tolist()) for b, u in sim.units.items()}


@pytest.mark.parametrize("method, args", BS1200_EMULATOR, ids=_ids(BS1200_EMULATOR))
def test_bs1200_refuses_and_puts_nothing_on_the_bus(bs1200, method, args):
    emu, sim = bs1200
    _walk(emu, method, args, lambda: _bus_state(sim))


def test_bs1200_limits_cannot_be_widened(bs1200):
    emu, sim = bs1200
    _assign_walk_family(emu, ASSIGNMENTS["bs1200"], WIDEN, lambda: _bus_state(sim))
    assert emu.limits["voltage_range_v"].hi == 4.0  # the rig file's 4.5 V narrowed to the LFP cell


# ---------------------------------------------------------------- Pickering over the fake ClientBridge


@pytest.fixture(scope="module")
def pickering(build, clock):
    pytest.importorskip("pilxi")
    from .fake_clientbridge import FakeClientBridge, FakeModule
    from .test_pickering import MODULES

    bridge = FakeClientBridge({(4, 13): FakeModule(), (4, 14): FakeModule(), (5, 9): FakeModule()})
    mp = pytest.MonkeyPatch()
    mp.setattr(ctypes.cdll, "LoadLibrary", bridge.load_library)
    try:
        target = build({"PickeringLxi": {"address": "192.0.2.80", "modules": MODULES}},
                       {"PickeringCellEmulatorDriver": {"voltage_range_v": [0.0, 4.5], "max_current_a": 0.3}}, clock)
        emu = target.get_driver(CellEmulator)
        emu.set_voltages(3.3)
        yield emu, bridge
        target.cleanup()
    finally:
        mp.undo()


@pytest.mark.parametrize("method, args", PICKERING_EMULATOR, ids=_ids(PICKERING_EMULATOR))
def test_pickering_refuses_without_a_native_call(pickering, method, args):
    emu, bridge = pickering
    _walk(emu, method, args, lambda: len(bridge.calls))


def test_pickering_limits_cannot_be_widened(pickering):
    emu, bridge = pickering
    _assign_walk_family(emu, ASSIGNMENTS["pickering"], WIDEN, lambda: len(bridge.calls))


# ---------------------------------------------------------------- chamber controllers


@pytest.fixture(scope="module")
def f4(build, clock):
    pytest.importorskip("watlow_f4")
    from .chamber_sims import F4Sim
    from .test_watlow_f4 import RAMP_REG, _env

    sim = F4Sim(pv_c=25.0, sp_c=25.0, ramp_register=RAMP_REG).start()
    try:
        chamber = build(*_env(sim.port, ramp_register=RAMP_REG), clock).get_driver(ThermalChamber)
        chamber.set_temperature(30.0, 1.0)
        yield chamber, sim, _requests(sim)
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def ezzone(build, clock):
    pytest.importorskip("watlow")
    from .chamber_sims import EZZoneSim
    from .test_watlow_ezzone import _env

    sim = EZZoneSim(pv_c=25.0, sp_c=25.0).start()
    try:
        chamber = build(*_env(sim.port), clock).get_driver(ThermalChamber)
        chamber.set_temperature(30.0)
        yield chamber, sim, _requests(sim)
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def espec(build, clock):
    from .chamber_sims import EspecSim
    from .test_espec import _env

    sim = EspecSim(pv_c=25.0, sp_c=25.0).start()
    try:
        chamber = build(*_env(sim.port), clock).get_driver(ThermalChamber)
        chamber.set_temperature(30.0)
        yield chamber, sim, sim.received
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def f4t(build, clock):
    from .chamber_sims import F4TSim
    from .test_watlow_f4t import _env

    sim = F4TSim(pv_c=25.0, sp_c=25.0).start()
    try:
        chamber = build(*_env(sim.port), clock).get_driver(ThermalChamber)
        chamber.set_temperature(30.0)
        yield chamber, sim, sim.received
    finally:
        sim.stop()


def _wire(sim, requests):
    return len(requests), list(sim.writes), sim.sp, sim.ramp


@pytest.mark.parametrize("method, args", F4_CHAMBER, ids=_ids(F4_CHAMBER))
def test_watlow_f4_refuses_without_a_request(f4, method, args):
    chamber, sim, requests = f4
    _walk(chamber, method, args, lambda: _wire(sim, requests))


@pytest.mark.parametrize("method, args", EZZONE_CHAMBER, ids=_ids(EZZONE_CHAMBER))
def test_ezzone_refuses_without_a_request(ezzone, method, args):
    chamber, sim, requests = ezzone
    _walk(chamber, method, args, lambda: _wire(sim, requests))


@pytest.mark.parametrize("method, args", ESPEC_CHAMBER, ids=_ids(ESPEC_CHAMBER))
def test_espec_refuses_without_a_command(espec, method, args):
    chamber, sim, requests = espec
    _walk(chamber, method, args, lambda: _wire(sim, requests))


@pytest.mark.parametrize("method, args", F4T_CHAMBER, ids=_ids(F4T_CHAMBER))
def test_watlow_f4t_refuses_without_a_request(f4t, method, args):
    chamber, sim, requests = f4t
    _walk(chamber, method, args, lambda: _wire(sim, requests))


FIXTURE = {"watlow f4": "f4", "ezzone": "ezzone", "espec": "espec", "watlow f4t": "f4t"}


@pytest.mark.parametrize("family", list(FIXTURE))
def test_chamber_limits_cannot_be_widened(request, family):
    chamber, sim, requests = request.getfixturevalue(FIXTURE[family])
    _assign_walk_family(chamber, ASSIGNMENTS[family], WIDEN, lambda: _wire(sim, requests))
    assert sim.sp == 30.0


@pytest.mark.parametrize("family", list(FIXTURE))
def test_chamber_safe_state_sends_the_checked_ambient(request, family):
    chamber, sim, _ = request.getfixturevalue(FIXTURE[family])
    with pytest.raises(AttributeError):
        chamber.ambient_c = 150.0  # "chamber ambient 150 °C, sent on SIGTERM"
    chamber.safe_state()
    assert sim.sp == pytest.approx(chamber.ambient_c, abs=0.06)
    chamber.set_temperature(30.0)


def test_emulator_safe_state_sends_the_checked_safe_level(bs1200, pickering):
    emu, sim = bs1200
    emu.set_voltages(3.6)
    emu.safe_state()
    sim.sync()
    np.testing.assert_allclose(sim.units[1].set_v, 3.3, atol=1e-9)
    emu, bridge = pickering
    emu.set_voltages(3.6)
    emu.safe_state()
    assert all(np.allclose(m.set_v[:4], 3.3) for m in bridge.modules.values())


@pytest.mark.parametrize("cls_path, cases", [
    ("rig.drivers.bs1200:BS1200CellEmulatorDriver", BS1200_EMULATOR),
    ("rig.drivers.pickering:PickeringCellEmulatorDriver", PICKERING_EMULATOR),
    ("rig.drivers.watlow_f4:WatlowF4ChamberDriver", F4_CHAMBER),
    ("rig.drivers.watlow_ezzone:EZZoneChamberDriver", EZZONE_CHAMBER),
    ("rig.drivers.espec:EspecChamberDriver", ESPEC_CHAMBER),
    ("rig.drivers.watlow_f4t:WatlowF4TChamberDriver", F4T_CHAMBER),
])
def test_the_vendor_walk_covers_every_public_method(cls_path, cases):
    import importlib

    from labgrid.driver.common import Driver

    mod, name = cls_path.split(":")
    cls = getattr(importlib.import_module(mod), name)
    base = set(dir(Driver))
    public = {m for m in dir(cls) if not m.startswith("_") and m not in base and m.islower()
              and (callable(getattr(cls, m)) or isinstance(getattr(cls, m), property))}
    public -= {f.name for f in getattr(cls, "__attrs_attrs__", ())}
    assert public - {m for m, _ in cases} - NO_VALUE == set(), "public methods with arguments the walk does not try"


if __name__ == "__main__":  # pragma: no cover
    print(f"{VENDOR_WALK_COUNT} beyond-limit commands and assignments on the vendor drivers")
