"""Every public method of every instrument driver, with values beyond each hard limit.

For each driver family — the virtual bench (``rig.drivers.sim``), SCPI over pyvisa-sim,
the Modbus chamber against the loopback pymodbus server and NI-DAQmx over the fake
interpreter — every command is tried beyond both ends of every limit, with NaN, ±inf and
wrong shapes. Each must be refused, and the instrument must show that nothing reached it:
the simulated world's state is unchanged, no SCPI command was written, neither Modbus
register changed, no DAQmx task was created. Then every limit attribute is assigned a
wider value: refused, and the old limit still holds.

A guard test checks that every public method of each driver appears in its walk (or is
declared to take no value), so a new method cannot slip past. ``WALK_COUNT`` is the number
of beyond-limit commands tried (printed by ``python -m tests.drivers.test_limits_walk``).
The vendor drivers (BS1200, Pickering, Watlow F4, EZ-Zone, Espec) have the same walk in
``test_limits_walk_vendors``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from rig.errors import RigFault, SafetyLimitError
from rig.protocols import CellEmulator, PackCurrentSource, ReferenceDAQ, ThermalChamber
from rig.safety import APERTURE, CELL_CAPACITY, CELL_SOC

from .chamber_server import ChamberServer, PV_REG, RAMP_REG, SP_REG  # noqa: F401
from .test_chamber_modbus import _env as _chamber_env
from .test_nidaq import LINES, _daq_env
from .test_scpi import _drivers as _scpi_drivers
from .test_scpi import _record_writes
from .test_scpi import _resources as _scpi_resources

REFUSED = (SafetyLimitError, ValueError, IndexError, TypeError)
N_SIM, N_SCPI = 4, 16
LFP = (2.0, 4.0)  # every emulator's voltage limit on an LFP profile (rig files allow wider)


def beyond(lo: float, hi: float) -> list[float]:
    """Just beyond each end, well beyond each end, NaN and both infinities."""
    out = [np.nextafter(lo, -math.inf), lo - 1.0, math.nan, math.inf, -math.inf]
    if math.isfinite(hi):
        out[1:1] = [np.nextafter(hi, math.inf), hi + 1.0]
    return [float(x) for x in out]


def _one_bad_channel(n, bad, ok=3.3, at=None):
    v = np.full(n, ok)
    v[(n - 1) if at is None else at] = bad
    return v


BAD_SHAPES = lambda n: [np.full(n - 1, 3.3), np.full(n + 1, 3.3), np.full((2, n), 3.3), [], "3.3V", None]  # noqa: E731


def emulator_cases(n, current_hi, noise_hi, cell_model=True):
    cases = []
    for v in beyond(*LFP):
        cases += [("set_voltages", (v,)), ("set_voltages", (_one_bad_channel(n, v),)),
                  ("set_voltage", (0, v))]
    cases += [("set_voltages", (s,)) for s in BAD_SHAPES(n)]
    cases += [("set_voltage", (ch, 3.3)) for ch in (-1, n, 1.5, "0", None)]
    for a in beyond(0.0, current_hi):
        cases += [("set_current_limits", (a, 0.1)), ("set_current_limits", (0.1, a))]
    cases += [("set_noise", (x,)) for x in beyond(0.0, noise_hi)]
    cases += [("read_currents", (x,)) for x in beyond(APERTURE.lo, APERTURE.hi)]
    if cell_model:
        cases += [("set_cell_model", ("lfp", 100.0, s)) for s in beyond(CELL_SOC.lo, CELL_SOC.hi)]
        cases += [("set_cell_model", ("lfp", c, 0.5)) for c in beyond(CELL_CAPACITY.lo, CELL_CAPACITY.hi)]
        cases += [("set_cell_model", ("lfp", 100.0, 0.5, t)) for t in beyond(-40.0, 85.0)]
        cases += [("set_cell_model", ("lfp", 100.0, np.full(n - 1, 0.5))),
                  ("set_cell_model", ("nmc", 100.0, 1.0))]  # a full NMC cell rests above 4.0 V
    return cases


def pack_cases(lo, hi, vmax):
    return ([("set_current", (a,)) for a in beyond(lo, hi)]
            + [("set_current", (1.0, v)) for v in beyond(0.0, vmax)])


def chamber_cases(lo, hi, ramp_max):
    return ([("set_temperature", (c,)) for c in beyond(lo, hi)]
            + [("set_temperature", (30.0, r)) for r in beyond(0.0, ramp_max)]
            + [("wait_stable", (math.nan,)), ("wait_stable", (0.5, 60.0, math.inf)), ("wait_stable", (-1.0,))])


# sim.yaml: current_limit 5 A, noise 0.02 V rms, pack ±150 A / 250 V, chamber -40..90 °C / 5 °C/min
SIM_EMULATOR = emulator_cases(N_SIM, 5.0, 0.02)
SIM_PACK = pack_cases(-150.0, 150.0, 250.0)
SIM_CHAMBER = chamber_cases(-40.0, 90.0, 5.0)
# tests/drivers rig files: SCPI emulator 1 A, no noise injection; supply ±50 A / 60 V; chamber -40..85 / 3
SCPI_EMULATOR = emulator_cases(N_SCPI, 1.0, math.inf)
SCPI_PACK = pack_cases(-50.0, 50.0, 60.0)
MODBUS_CHAMBER = chamber_cases(-40.0, 85.0, 3.0)
DAQ = [("read_cell_voltages", (s,)) for s in (0, -1, 1_000_001, math.nan, math.inf, "64")] + [
    ("read_digital", (name,)) for name in ("no_such_line", "", None)]

WIDEN = {
    "voltage_range_v": (-1000.0, 1000.0), "max_current_a": 1e6, "max_noise_v_rms": 10.0, "safe_voltage_v": 9.0,
    "current_range_a": (-1e6, 1e6), "max_voltage_limit_v": 1e6, "temperature_range_c": (-1000.0, 1000.0),
    "max_ramp_c_per_min": 1e3, "default_ramp_c_per_min": 1e3, "ambient_c": 150.0, "channels": 64,
}
ASSIGNMENTS = {  # driver family -> (limit attributes, a command beyond the old limit)
    "sim emulator": (["voltage_range_v", "max_current_a", "max_noise_v_rms", "safe_voltage_v"], ("set_voltages", (9.0,))),
    "sim pack": (["current_range_a", "max_voltage_limit_v"], ("set_current", (500.0,))),
    "sim chamber": (["temperature_range_c", "max_ramp_c_per_min", "default_ramp_c_per_min", "ambient_c"],
                    ("set_temperature", (30.0, 50.0))),
    "scpi emulator": (["voltage_range_v", "max_current_a", "safe_voltage_v", "channels"], ("set_voltages", (9.0,))),
    "scpi pack": (["current_range_a", "max_voltage_limit_v"], ("set_current", (500.0,))),
    "modbus chamber": (["temperature_range_c", "max_ramp_c_per_min", "ambient_c"], ("set_temperature", (150.0,))),
}
N_ASSIGNMENTS = sum(len(a) + 3 for a, _ in ASSIGNMENTS.values())  # + limits, its mapping, a Limit's field
WALK_COUNT = (len(SIM_EMULATOR) + len(SIM_PACK) + len(SIM_CHAMBER) + len(SCPI_EMULATOR) + len(SCPI_PACK)
              + len(MODBUS_CHAMBER) + len(DAQ) + N_ASSIGNMENTS + 1)  # + the safe state of a widened chamber

NO_VALUE = {"info", "read_voltages", "enable", "read_soc", "set_source_mode", "safe_state", "read_current",
            "read_voltage", "off", "read_temperature", "read_setpoint", "voltage_uncertainty_v", "edges",
            "read_thermocouples", "poll_digital", "n_channels", "limits"}


def _ids(cases):
    return [f"{m}{tuple(a)!r}"[:70] for m, a in cases]


# ---------------------------------------------------------------- the virtual bench


@pytest.fixture(scope="module")
def sim_rig():
    from rig.build import build_rig
    from rig.profile import load_profile

    rig = build_rig(None, load_profile("reference-4s-lfp-uart"), seed=5)
    rig.chamber.set_temperature(30.0, 1.0)
    rig.pack_source.set_current(0.0)
    yield rig
    rig.close()


def _world(rig):
    from rig.drivers.sim import SimBenchDriver

    return rig.target.get_driver(SimBenchDriver).world


def _world_state(rig):
    w = _world(rig)
    return {"setpoints": w.emulator_setpoints().tolist(), "mode": w.mode, "enabled": w.emulator.enabled,
            "noise": w.emulator.noise_rms, "charger": (w.power.i_set, w.power.v_limit), "chamber": (w.chamber_setpoint(),),
            "chamber_model": repr(sorted(vars(w.chamber).items()))[:2000], "t": w.t,
            "cells_rng": w.rngs["cells"].bit_generator.state["state"]}


def _walk(drv, method, args, state):
    before = state()
    with pytest.raises(REFUSED + (RigFault,)) as exc:
        getattr(drv, method)(*args)
    if isinstance(exc.value, RigFault):  # only a capability refusal (no noise injection) may be a RigFault
        assert "no noise injection" in str(exc.value)
    assert state() == before, f"{method}{args!r} changed the instrument"


@pytest.mark.parametrize("method, args", SIM_EMULATOR, ids=_ids(SIM_EMULATOR))
def test_sim_emulator_refuses(sim_rig, method, args):
    _walk(sim_rig.emulator, method, args, lambda: _world_state(sim_rig))


@pytest.mark.parametrize("method, args", SIM_PACK, ids=_ids(SIM_PACK))
def test_sim_pack_source_refuses(sim_rig, method, args):
    _walk(sim_rig.pack_source, method, args, lambda: _world_state(sim_rig))


@pytest.mark.parametrize("method, args", SIM_CHAMBER, ids=_ids(SIM_CHAMBER))
def test_sim_chamber_refuses(sim_rig, method, args):
    _walk(sim_rig.chamber, method, args, lambda: _world_state(sim_rig))


def _assign_all(drv, family, assignments=None, widen=None):
    attrs, (method, args) = (assignments or ASSIGNMENTS)[family]
    for name in attrs:
        old = getattr(drv, name)
        with pytest.raises(AttributeError, match="hard limit"):
            setattr(drv, name, {**WIDEN, **(widen or {})}[name])
        assert getattr(drv, name) == old
    with pytest.raises(AttributeError):
        drv.limits = None
    key = next(iter(drv.limits.limits))
    with pytest.raises(TypeError):
        drv.limits.limits[key] = None  # a read-only mapping
    with pytest.raises(dataclasses.FrozenInstanceError):
        drv.limits[key].hi = 1e9
    return method, args


def _assign_walk_family(drv, family_entry, widen, state):
    """Every limit attribute of ``family_entry`` refused a wider value, then the command
    beyond the old limit refused with ``state()`` unchanged (used by the vendor walk too)."""
    method, args = _assign_all(drv, "x", {"x": family_entry}, widen)
    _walk(drv, method, args, state)


def test_sim_limits_cannot_be_widened(sim_rig):
    for drv, family in ((sim_rig.emulator, "sim emulator"), (sim_rig.pack_source, "sim pack"),
                        (sim_rig.chamber, "sim chamber")):
        method, args = _assign_all(drv, family)
        _walk(drv, method, args, lambda: _world_state(sim_rig))


def test_sim_safe_state_never_sends_a_value_beyond_the_limit(sim_rig):
    with pytest.raises(AttributeError):
        sim_rig.chamber.ambient_c = 150.0  # "chamber ambient 150 °C, sent on SIGTERM"
    sim_rig.safe_state()
    assert _world(sim_rig).chamber_setpoint() == 25.0
    assert _world(sim_rig).emulator_setpoints().tolist() == [3.3] * N_SIM


# ---------------------------------------------------------------- SCPI over pyvisa-sim


@pytest.fixture
def scpi(make_target, scpi_library):
    target = make_target(_scpi_resources(scpi_library), _scpi_drivers())
    emu, sup = target.get_driver(CellEmulator), target.get_driver(PackCurrentSource)
    return emu, sup, (_record_writes(emu), _record_writes(sup))


def _sent(writes):
    return [list(w) for w in writes]


@pytest.mark.parametrize("method, args", SCPI_EMULATOR, ids=_ids(SCPI_EMULATOR))
def test_scpi_emulator_refuses(scpi, method, args):
    emu, _, writes = scpi
    _walk(emu, method, args, lambda: _sent(writes))
    assert writes[0] == []


@pytest.mark.parametrize("method, args", SCPI_PACK, ids=_ids(SCPI_PACK))
def test_scpi_pack_source_refuses(scpi, method, args):
    _, sup, writes = scpi
    _walk(sup, method, args, lambda: _sent(writes))
    assert writes[1] == []


def test_scpi_limits_cannot_be_widened(scpi):
    emu, sup, writes = scpi
    for drv, family in ((emu, "scpi emulator"), (sup, "scpi pack")):
        method, args = _assign_all(drv, family)
        _walk(drv, method, args, lambda: _sent(writes))
    assert writes == ([], [])


# ---------------------------------------------------------------- Modbus chamber (pymodbus loopback)


@pytest.fixture
def modbus(make_target):
    from rig.clock import StepClock

    srv = ChamberServer(pv_c=25.0, sp_c=25.0).start()
    try:
        chamber = make_target(*_chamber_env(srv.port, ramp_register=RAMP_REG), clock=StepClock()).get_driver(ThermalChamber)
        chamber.set_temperature(31.5, ramp_c_per_min=1.5)
        yield chamber, srv
    finally:
        srv.stop()


@pytest.mark.parametrize("method, args", MODBUS_CHAMBER, ids=_ids(MODBUS_CHAMBER))
def test_modbus_chamber_refuses(modbus, method, args):
    chamber, srv = modbus
    _walk(chamber, method, args, lambda: (srv.sp, srv.ramp))


def test_modbus_limits_cannot_be_widened(modbus):
    chamber, srv = modbus
    method, args = _assign_all(chamber, "modbus chamber")
    _walk(chamber, method, args, lambda: (srv.sp, srv.ramp))
    assert (srv.sp, srv.ramp) == (31.5, 1.5)


# ---------------------------------------------------------------- NI-DAQmx (fake interpreter)


@pytest.fixture
def daq(monkeypatch, make_target):
    import nidaqmx.utils

    from .fake_daqmx import FakeDaqmx

    dev = FakeDaqmx()
    dev.lines = {p: False for p in LINES.values()}
    monkeypatch.setattr(nidaqmx.utils, "_select_interpreter", lambda *a, **k: dev)
    return make_target(*_daq_env()).get_driver(ReferenceDAQ), dev


@pytest.mark.parametrize("method, args", DAQ, ids=_ids(DAQ))
def test_daq_refuses_before_any_task(daq, method, args):
    drv, dev = daq
    before = (len(dev.calls), len(dev.tasks))
    with pytest.raises(REFUSED + (RigFault,)):
        getattr(drv, method)(*args)
    assert (len(dev.calls), len(dev.tasks)) == before


def test_daq_limits_cannot_be_widened(daq):
    drv, _ = daq
    with pytest.raises(AttributeError, match="hard limit"):
        drv.voltage_range_v = (-1000.0, 1000.0)
    assert drv.limits["samples"].hi == 1_000_000


# ---------------------------------------------------------------- the walk covers every method


@pytest.mark.parametrize("cls_path, cases", [
    ("rig.drivers.sim:SimCellEmulatorDriver", SIM_EMULATOR), ("rig.drivers.sim:SimPackSourceDriver", SIM_PACK),
    ("rig.drivers.sim:SimChamberDriver", SIM_CHAMBER), ("rig.drivers.scpi:ScpiCellEmulatorDriver", SCPI_EMULATOR),
    ("rig.drivers.scpi:ScpiPackSourceDriver", SCPI_PACK),
    ("rig.drivers.chamber_modbus:ModbusChamberDriver", MODBUS_CHAMBER), ("rig.drivers.nidaq:NiDaqDriver", DAQ),
])
def test_the_walk_covers_every_public_method(cls_path, cases):
    import importlib

    from labgrid.driver.common import Driver

    mod, name = cls_path.split(":")
    cls = getattr(importlib.import_module(mod), name)
    base = set(dir(Driver))
    public = {m for m in dir(cls) if not m.startswith("_") and m not in base and m.islower()
              and (callable(getattr(cls, m)) or isinstance(getattr(cls, m), property))
              and not isinstance(getattr(cls, m), (str, int, float, dict))}
    public -= {f.name for f in getattr(cls, "__attrs_attrs__", ())}
    walked = {m for m, _ in cases}
    assert public - walked - NO_VALUE == set(), "public methods with arguments the walk does not try"


if __name__ == "__main__":  # pragma: no cover
    print(f"{WALK_COUNT} beyond-limit commands")
