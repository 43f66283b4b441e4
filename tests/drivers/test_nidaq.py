"""NI-DAQmx reference DAQ: the real nidaqmx Task code over a fake interpreter layer.

NI's runtime is not on this machine (nor in CI), so ``nidaqmx.utils._select_interpreter``
is patched to return :class:`~tests.drivers.fake_daqmx.FakeDaqmx`; everything above it —
``Task``, channel collections, timing, ``Task.read`` shaping the samples — is nidaqmx's own.
The rig is built from a labgrid environment YAML with the run's clock in its ``RunContext`` resource.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

from rig.errors import RigFault
from rig.protocols import DigitalEdge, ReferenceDAQ

from .fake_daqmx import MODELLED, FakeDaqmx

LINES = {"charge_enable": "Dev1/port0/line0", "discharge_enable": "Dev1/port0/line1", "hvc_out": "Dev1/port0/line2"}
TCS = {"bleed_resistors": "Dev1/ai16", "cells_mid": "Dev1/ai17", "ambient": "Dev1/ai18"}


def _daq_env(voltage_channels="Dev1/ai0:15", channels=16, device="Dev1", **driver):
    resources = [{"NiDaqDevice": {"device": device, "model": "NI PXIe-4300 reference DAQ", "serial": "1F2E3D4C",
                                  "calibration_due": "2026-12-01", "voltage_channels": voltage_channels,
                                  "digital_lines": dict(LINES), "thermocouples": dict(TCS)}}]
    drivers = [{"NiDaqDriver": {"channels": channels, "uncertainty_v": 0.0005, "sample_rate_hz": 1000.0, **driver}}]
    return resources, drivers


@pytest.fixture
def fake(monkeypatch):
    import nidaqmx.utils

    dev = FakeDaqmx()
    dev.lines = {p: False for p in LINES.values()}
    monkeypatch.setattr(nidaqmx.utils, "_select_interpreter", lambda *a, **k: dev)
    yield dev
    assert dev.unmodelled == [], f"the driver called DAQmx functions the fake does not model: {dev.unmodelled}"
    assert dev.open_tasks() == [], "a DAQmx task was left open"


@pytest.fixture
def daq(fake, make_target):
    target = make_target(*_daq_env())
    return target.get_driver(ReferenceDAQ)


def test_fake_interpreter_matches_nidaqmx_base_interpreter():
    from nidaqmx._base_interpreter import BaseInterpreter

    for name in MODELLED:
        real = inspect.signature(getattr(BaseInterpreter, name))
        ours = inspect.signature(getattr(FakeDaqmx, name))
        assert list(ours.parameters) == list(real.parameters), name


def test_activation_reads_the_device_and_reports_it(daq, fake):
    info = daq.info()
    assert info.extra["product_type"] == "PXIe-4300" and info.serial == "1F2E3D4C"
    assert ("get_device_attribute_string", "Dev1", 0x631) in fake.calls
    assert daq.n_channels == 16


def test_read_cell_voltages_averages_samples_per_channel(daq, fake):
    fake.volts = 3.30 + 0.001 * np.arange(16)
    fake.noise_v = 0.004  # +4 mV, -4 mV, ... on every channel: averages out over an even count

    single = daq.read_cell_voltages()
    np.testing.assert_allclose(single, fake.volts + 0.004)  # one sample: the noise shows

    averaged = daq.read_cell_voltages(samples=64)
    np.testing.assert_allclose(averaged, fake.volts, atol=1e-12)
    assert ("cfg_samp_clk_timing", 1000.0, 10178, 64) in fake.calls  # finite acquisition at the set rate
    assert daq.voltage_uncertainty_v() == 0.0005

    from nidaqmx.constants import TerminalConfiguration

    created = [c for c in fake.calls if c[0] == "create_ai_voltage_chan"]
    assert created[-1] == ("create_ai_voltage_chan", "Dev1/ai0:15", TerminalConfiguration.DIFF.value, 0.0, 5.0)


def test_voltage_channels_that_disagree_with_channels_are_a_rig_fault(fake, make_target):
    daq = make_target(*_daq_env(voltage_channels="Dev1/ai0:14")).get_driver(ReferenceDAQ)  # 15, not 16
    with pytest.raises(RigFault, match=r"NI-DAQmx Dev1.*shape \(15, 4\), expected \(16, 4\)"):
        daq.read_cell_voltages(samples=4)


def test_thermocouples_by_name(daq, fake):
    from nidaqmx.constants import CJCSource, ThermocoupleType

    fake.temps = {"Dev1/ai16": 48.5, "Dev1/ai17": 27.25, "Dev1/ai18": 24.0}
    assert daq.read_thermocouples() == {"bleed_resistors": 48.5, "cells_mid": 27.25, "ambient": 24.0}
    tc = [c for c in fake.calls if c[0] == "create_ai_thrmcpl_chan"]
    assert [c[1] for c in tc] == list(TCS.values())
    assert all(c[3] == ThermocoupleType.K.value and c[4] == CJCSource.BUILT_IN.value for c in tc)


def test_open_thermocouple_is_a_rig_fault(daq, fake):
    fake.temps = {"Dev1/ai16": 48.5, "Dev1/ai18": 24.0}  # cells_mid reads NaN: open junction
    with pytest.raises(RigFault, match=r"NI-DAQmx Dev1.*cells_mid \(Dev1/ai17\) is open"):
        daq.read_thermocouples()


def test_digital_levels_and_edges_on_the_rig_clock(daq, fake, step_clock):
    line = LINES["hvc_out"]
    schedule = {12.5: (line, True), 30.0: (line, False), 31.0: (LINES["charge_enable"], True)}

    def board(t0, t1):  # the board flips its outputs at these rig times
        for t, (phys, level) in schedule.items():
            if t0 < t <= t1:
                fake.lines[phys] = level

    step_clock.on_step.append(board)
    assert daq.read_digital("hvc_out") is False
    step_clock.sleep(10.0)
    assert daq.edges() == []
    for _ in range(8):
        step_clock.sleep(2.5)  # each sleep polls every line (one task, one sample)
    assert daq.edges(line="hvc_out") == [DigitalEdge(12.5, "hvc_out", True), DigitalEdge(30.0, "hvc_out", False)]
    assert daq.edges(since=30.0) == [DigitalEdge(30.0, "hvc_out", False)]
    step_clock.sleep(2.5)
    assert daq.edges(since=31.0) == [DigitalEdge(32.5, "charge_enable", True)]  # stamped at the poll that saw it
    assert daq.read_digital("charge_enable") is True


def test_unknown_digital_line_is_a_rig_fault(daq):
    with pytest.raises(RigFault, match=r"NI-DAQmx Dev1.*no digital line named 'fet_out'.*charge_enable"):
        daq.read_digital("fet_out")


def test_daqmx_errors_are_rig_faults_naming_the_device(daq, fake):
    fake.fail_next = (-200279, "The application is not able to keep up with the hardware acquisition.")
    with pytest.raises(RigFault, match=r"rig fault in NI-DAQmx Dev1: voltage read of 'Dev1/ai0:15' failed: DaqError"):
        daq.read_cell_voltages(samples=8)
    fake.fail_next = (-201003, "Device cannot be accessed.")
    with pytest.raises(RigFault, match=r"NI-DAQmx Dev1: digital read of hvc_out failed: DaqError.*-201003"):
        daq.read_digital("hvc_out")
    fake.fail_next = (-200220, "Device identifier is invalid.")
    with pytest.raises(RigFault, match=r"NI-DAQmx Dev1: thermocouple read failed"):
        daq.read_thermocouples()
    np.testing.assert_allclose(daq.read_cell_voltages(), np.zeros(16))  # and it recovers


def test_wrong_device_fails_activation_naming_it(fake, make_target):
    target = make_target(*_daq_env(device="Dev7"))
    with pytest.raises(RigFault, match=r"NI-DAQmx Dev7: device not reachable.*Device identifier is invalid"):
        target.get_driver(ReferenceDAQ)


def test_missing_ni_runtime_is_a_rig_fault_at_activation(make_target):
    """No patch: nidaqmx's real interpreter looks for NI's runtime, which is not here."""
    target = make_target(*_daq_env())
    with pytest.raises(RigFault, match=r"NI-DAQmx Dev1: device not reachable"):
        target.get_driver(ReferenceDAQ)


def test_importing_the_rig_does_not_import_nidaqmx():
    code = (
        "import sys, rig.labgrid, rig.drivers.nidaq, rig.build, rig.check\n"
        "bad = sorted(m for m in sys.modules if m == 'nidaqmx' or m.startswith('nidaqmx.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
