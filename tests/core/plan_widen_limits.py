"""A careless plan: it tries to widen the rig's hard limits and then cross them.

Run by tests/core/test_plan_limits.py through the bmsrig fixtures, exactly as a plan in
testplans/ runs. Every attempt must be refused and nothing may reach the instruments (read
back through the same protocols a plan has).
"""

import pytest

from rig.errors import SafetyLimitError


def test_emulator_voltage_limit_cannot_be_widened(emulator):
    with pytest.raises(AttributeError):
        emulator.voltage_range_v = (0.0, 10.0)
    with pytest.raises(SafetyLimitError):
        emulator.set_voltages(9.0)
    with pytest.raises(SafetyLimitError):
        emulator.set_voltage(0, 4.3)  # inside the rig file's 4.5 V, beyond an LFP cell's 4.0 V
    assert emulator.read_voltages().max() < 4.0


def test_pack_current_limit_cannot_be_widened(pack_source, clock):
    with pytest.raises(AttributeError):
        pack_source.current_range_a = (-1000.0, 1000.0)
    with pytest.raises(SafetyLimitError):
        pack_source.set_current(500.0)
    clock.sleep(1.0)
    assert pack_source.read_current() == 0.0


def test_chamber_ramp_cannot_be_widened(chamber, clock):
    start = chamber.read_temperature()
    with pytest.raises(AttributeError):
        chamber.max_ramp_c_per_min = 100.0
    with pytest.raises(SafetyLimitError):
        chamber.set_temperature(80.0, ramp_c_per_min=50.0)
    clock.sleep(60.0)
    assert abs(chamber.read_temperature() - start) < 0.5


def test_safe_state_values_cannot_be_changed(chamber, emulator):
    with pytest.raises(AttributeError):
        chamber.ambient_c = 150.0
    with pytest.raises(AttributeError):
        emulator.safe_voltage_v = 9.0


def test_cell_model_beyond_limits_is_refused_before_switching(emulator):
    before = emulator.read_voltages()
    with pytest.raises(SafetyLimitError):
        emulator.set_cell_model("lfp", 100.0, 0.5, temperature_c=500.0)
    with pytest.raises(SafetyLimitError):
        emulator.set_cell_model("nmc", 100.0, 1.0)  # a full NMC cell rests above the 4.0 V limit
    with pytest.raises(RuntimeError):
        emulator.read_soc()  # still in source mode: the world was never switched
    assert emulator.read_voltages().tolist() == before.tolist()
