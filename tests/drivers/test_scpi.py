"""SCPI cell emulator and pack supply through pyvisa's simulated backend (pyvisa-sim).

The drivers run their real pyvisa code path (ResourceManager, message-based session,
terminations, timeouts) against the devices of ``data/scpi-bench.yaml``, which answer the
drivers' default command templates: what a driver sets, the device stores, and the driver
reads it back. Each rig is built from a labgrid environment YAML, as a real rig is.
"""

from __future__ import annotations


import numpy as np
import pytest

from rig.errors import RigFault, SafetyLimitError
from rig.protocols import CellEmulator, PackCurrentSource

EMULATOR = "TCPIP::192.0.2.10::INSTR"
SUPPLY = "TCPIP::192.0.2.11::INSTR"
FAULTY_EMULATOR = "TCPIP::192.0.2.12::INSTR"
FAULTY_SUPPLY = "TCPIP::192.0.2.13::INSTR"


def _resources(lib, emulator=EMULATOR, supply=SUPPLY):
    return [
        {"ScpiInstrument": {"name": "emulator", "address": emulator, "visa_library": lib,
                            "model": "16-channel cell simulator", "serial": "CS16-00042",
                            "calibration_due": "2027-03-31"}},
        {"ScpiInstrument": {"name": "pack_supply", "address": supply, "visa_library": lib,
                            "model": "bidirectional DC supply", "serial": "BD80-1177"}},
    ]


def _drivers(emulator=None, supply=None):
    return [
        {"ScpiCellEmulatorDriver": {"name": "emulator", "bindings": {"res": "emulator"}, "channels": 16,
                                    "voltage_range_v": [0.0, 4.5], "max_current_a": 1.0, "safe_voltage_v": 3.3,
                                    **(emulator or {})}},
        {"ScpiPackSourceDriver": {"name": "pack_supply", "bindings": {"res": "pack_supply"},
                                  "current_range_a": [-50.0, 50.0], "max_voltage_limit_v": 60.0, **(supply or {})}},
    ]


@pytest.fixture
def bench(make_target, scpi_library):
    """(emulator, pack supply) of a rig built from a labgrid environment on the pyvisa-sim bench."""
    target = make_target(_resources(scpi_library), _drivers())
    return target.get_driver(CellEmulator), target.get_driver(PackCurrentSource)


@pytest.fixture
def faulty(make_target, scpi_library):
    """(emulator, pack supply) whose firmware answers wrong (see the YAML)."""
    target = make_target(_resources(scpi_library, FAULTY_EMULATOR, FAULTY_SUPPLY),
                         _drivers(supply={"timeout_s": 0.05}))
    return target.get_driver(CellEmulator), target.get_driver(PackCurrentSource)


def _record_writes(driver):
    """Wrap the live pyvisa session's write so the test sees every command sent."""
    sent = []
    real_write = driver.inst.write

    def write(cmd, *a, **kw):
        sent.append(cmd)
        return real_write(cmd, *a, **kw)

    driver.inst.write = write
    return sent


# ------------------------------------------------------------------ cell emulator


def test_emulator_opens_through_pyvisa_and_identifies(bench):
    emu, _ = bench
    info = emu.info()
    assert emu.n_channels == 16
    assert info.serial == "CS16-00042" and info.calibration_due == "2027-03-31"
    assert info.extra["idn"] == "BMSRIG-SIM,CS16,CS16-00042,1.0"
    assert type(emu.inst).__module__.startswith("pyvisa.resources")  # a real pyvisa resource


def test_emulator_voltages_round_trip_per_channel(bench):
    emu, _ = bench
    target_v = np.round(3.20 + 0.01 * np.arange(16), 5)
    emu.set_voltages(target_v)
    np.testing.assert_allclose(emu.read_voltages(), target_v, atol=1e-9)

    emu.set_voltage(4, 3.612)  # cell 5
    expected = target_v.copy()
    expected[4] = 3.612
    np.testing.assert_allclose(emu.read_voltages(), expected, atol=1e-9)

    emu.set_voltages(3.3)  # one value for every channel
    np.testing.assert_allclose(emu.read_voltages(), np.full(16, 3.3), atol=1e-9)


def test_emulator_output_on_off_is_what_the_instrument_holds(bench):
    emu, _ = bench
    assert emu.inst.query("OUTP? (@1:16)").strip() == "OFF"
    emu.enable(True)
    assert emu.inst.query("OUTP? (@1:16)").strip() == "ON"
    emu.enable(False)
    assert emu.inst.query("OUTP? (@1:16)").strip() == "OFF"


def test_emulator_current_limits_and_current_reads(bench):
    emu, _ = bench
    emu.set_current_limits(source_a=0.5, sink_a=0.25)
    assert float(emu.inst.query("SOUR:CURR:LIM? (@1:16)")) == pytest.approx(0.5)
    assert float(emu.inst.query("SOUR:CURR:LIM:NEG? (@1:16)")) == pytest.approx(-0.25)  # sink sent negative

    currents = emu.read_currents(aperture_s=0.2)
    assert currents.shape == (16,) and np.all(currents == 0.0)
    assert float(emu.inst.query("SENS:CURR:APER? (@1:16)")) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "command",
    [
        lambda emu: emu.set_voltages(np.r_[np.full(15, 3.4), 4.6]),  # last channel over: nothing at all is sent
        lambda emu: emu.set_voltages(np.r_[-0.1, np.full(15, 3.4)]),
        lambda emu: emu.set_voltage(3, 4.51),
        lambda emu: emu.set_voltage(3, float("nan")),
        lambda emu: emu.set_current_limits(1.5, 0.1),
        lambda emu: emu.set_current_limits(0.1, 1.01),
    ],
    ids=["array-one-over", "array-one-under", "single-over", "nan", "source-limit", "sink-limit"],
)
def test_emulator_hard_limits_refused_before_anything_is_written(bench, command):
    emu, _ = bench
    emu.set_voltages(3.25)
    emu.set_current_limits(0.3, 0.3)
    sent = _record_writes(emu)

    with pytest.raises(SafetyLimitError) as err:
        command(emu)

    assert sent == []  # nothing reached the session
    assert "emulator" in str(err.value) and "nothing was sent" in str(err.value)
    np.testing.assert_allclose(emu.read_voltages(), np.full(16, 3.25))  # and the instrument holds what it held
    assert float(emu.inst.query("SOUR:CURR:LIM? (@1:16)")) == pytest.approx(0.3)
    assert float(emu.inst.query("SOUR:CURR:LIM:NEG? (@1:16)")) == pytest.approx(-0.3)


def test_emulator_safe_state_goes_to_safe_voltage(bench):
    emu, _ = bench
    emu.set_voltages(3.9)  # inside the LFP absolute range the limit is narrowed to
    emu.safe_state()
    np.testing.assert_allclose(emu.read_voltages(), np.full(16, 3.3))


def test_an_unsafe_safe_voltage_is_a_config_error(make_target, scpi_library):
    with pytest.raises(Exception, match="safe_voltage_v"):
        make_target(_resources(scpi_library), _drivers(emulator={"safe_voltage_v": 4.8}))


# ------------------------------------------------------------------ pack supply


def test_pack_supply_current_voltage_limit_and_output(bench):
    _, pack = bench
    assert pack.info().extra["idn"].startswith("BMSRIG-SIM,BD80")
    pack.set_current(10.0, voltage_limit_v=58.4)
    assert pack.read_current() == pytest.approx(10.0)
    assert float(pack.inst.query("SOUR:VOLT?")) == pytest.approx(58.4)
    assert pack.inst.query("OUTP?").strip() == "ON"
    assert pack.read_voltage() == pytest.approx(52.8)

    pack.set_current(-20.0)  # discharge
    assert pack.read_current() == pytest.approx(-20.0)

    pack.off()
    assert pack.read_current() == 0.0
    assert pack.inst.query("OUTP?").strip() == "OFF"


@pytest.mark.parametrize(
    "amps, vlimit",
    [(50.5, None), (-51.0, None), (5.0, 60.5), (5.0, -1.0), (float("inf"), None)],
    ids=["charge-over", "discharge-over", "cv-limit-over", "cv-limit-negative", "inf"],
)
def test_pack_supply_hard_limits_refused_before_anything_is_written(bench, amps, vlimit):
    _, pack = bench
    pack.set_current(2.0, voltage_limit_v=55.0)
    sent = _record_writes(pack)

    with pytest.raises(SafetyLimitError):
        pack.set_current(amps, voltage_limit_v=vlimit)

    assert sent == []
    assert pack.read_current() == pytest.approx(2.0)
    assert float(pack.inst.query("SOUR:VOLT?")) == pytest.approx(55.0)


def test_pack_supply_safe_state_zeroes_current(bench):
    _, pack = bench
    pack.set_current(25.0)
    pack.safe_state()
    assert pack.read_current() == 0.0 and pack.inst.query("OUTP?").strip() == "OFF"


# ------------------------------------------------------------------ faults


def test_garbled_reading_is_a_rig_fault_naming_the_instrument(faulty):
    emu, _ = faulty
    with pytest.raises(RigFault) as err:
        emu.read_voltages()
    msg = str(err.value)
    assert "'emulator'" in msg and FAULTY_EMULATOR in msg and "'3.30000V'" in msg


def test_overload_reading_is_a_rig_fault(faulty):
    emu, _ = faulty
    with pytest.raises(RigFault, match=r"overload or invalid reading '\+9.91E\+37'"):
        emu.read_currents()


def test_short_channel_list_reply_is_a_rig_fault(make_target, scpi_library):
    target = make_target(_resources(scpi_library, FAULTY_EMULATOR, SUPPLY),
                         _drivers(emulator={"cmd_meas_voltage": "MEAS:VOLT? (@{chlist})"}))
    emu = target.get_driver(CellEmulator)
    with pytest.raises(RigFault, match=r"expected 16 values to 'MEAS:VOLT\? \(@1:16\)', got 15") as err:
        emu.read_voltages()
    assert "cell emulator 'emulator'" in str(err.value)


def test_command_the_instrument_rejects_is_a_rig_fault(faulty):
    emu, _ = faulty
    with pytest.raises(RigFault, match=r"rejected 'OUTP ON,\(@1:16\)': -113,\"Undefined header\""):
        emu.enable(True)


def test_empty_and_missing_replies_are_rig_faults(faulty):
    _, pack = faulty
    with pytest.raises(RigFault, match=r"pack current source 'pack_supply'.*unparseable reply '' to 'MEAS:CURR\?'"):
        pack.read_current()
    with pytest.raises(RigFault, match=r"query 'MEAS:VOLT\?' failed: VisaIOError"):
        pack.read_voltage()  # never answered: the VISA timeout (50 ms here) ends the wait
    assert pack.inst.timeout == 50  # ms: the session waits the configured timeout_s, not the 2 s default


@pytest.mark.filterwarnings("ignore:read string doesn.t end with termination characters")
def test_unknown_address_fails_activation_naming_it(make_target, scpi_library):
    target = make_target(_resources(scpi_library, emulator="TCPIP::192.0.2.99::INSTR"), _drivers())
    with pytest.raises(RigFault, match=r"cell emulator 'emulator'.*TCPIP::192.0.2.99::INSTR"):
        target.get_driver(CellEmulator)


def test_safe_state_never_raises(bench, faulty):
    emu, pack = bench
    bad_emu, bad_pack = faulty
    bad_emu.safe_state()  # its OUTP fallback is not even understood
    bad_pack.safe_state()

    emu.inst.close()  # the session dies under the driver (cable pulled)
    pack.inst.close()
    emu.safe_state()
    pack.safe_state()
    with pytest.raises(RigFault, match="'emulator'"):
        emu.set_voltages(3.3)  # normal commands do report the dead session

    emu.on_deactivate()  # not connected at all
    pack.on_deactivate()
    emu.safe_state()
    pack.safe_state()
