"""A rig built by ``build_rig`` whose cell emulator is the Pickering driver on ``pilxi`` over
the fake ClientBridge native layer (tests/drivers/fake_clientbridge.py), its three simulated
modules (6 + 6 + 4 channels) wired to the virtual bench's board: before every step of the
bench's world, the modules' output voltages and enables (per the rig's channel mapping)
become the world's emulator set points, and the world's channel currents the modules' load.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import yaml

from rig.build import DEFAULT_ENV, build_rig
from rig.errors import SafetyLimitError

from .fake_clientbridge import FakeClientBridge, FakeModule
from .test_pickering import MODULES

pytest.importorskip("pilxi")


def _env(tmp_path):
    raw = yaml.safe_load(DEFAULT_ENV.read_text())
    main = raw["targets"]["main"]
    main["resources"]["PickeringLxi"] = {"address": "192.0.2.80", "modules": MODULES}
    del main["drivers"]["SimCellEmulatorDriver"]
    main["drivers"]["PickeringCellEmulatorDriver"] = {"voltage_range_v": [0.0, 4.5], "max_current_a": 0.3}
    path = tmp_path / "bench-pickering.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def rig(tmp_path, board_profile, monkeypatch):
    from rig.drivers.sim import SimBenchDriver

    bridge = FakeClientBridge({(m["bus"], m["device"]): FakeModule() for m in MODULES})
    monkeypatch.setattr(ctypes.cdll, "LoadLibrary", bridge.load_library)
    rig = build_rig(_env(tmp_path), board_profile, seed=4)
    try:
        world = rig.target.get_driver(SimBenchDriver).world
        mods = [bridge.modules[(m["bus"], m["device"])] for m in MODULES]
        cells = rig.emulator.cells  # per board cell: (module index, channel 1..6)
        advance = world.advance

        def wired(dt):
            world.set_emulator_voltages([mods[k].set_v[ch - 1] for k, ch in cells])
            world.set_emulator_enabled(all(mods[k].enabled[ch - 1] for k, ch in cells))
            advance(dt)
            amps = world.channel_currents()
            for i, (k, ch) in enumerate(cells):
                mods[k].load_a[ch - 1] = amps[i]

        world.advance = wired
        yield rig, bridge, mods
    finally:
        rig.close()


def test_the_board_measures_what_the_modules_output(rig, board_profile):
    rig, bridge, mods = rig
    assert type(rig.emulator).__name__ == "PickeringCellEmulatorDriver" and rig.emulator.n_channels == 16
    rig.baseline()
    np.testing.assert_allclose(rig.link.latest().cell_v, rig.baseline_cell_v, atol=0.01)
    volts = np.full(16, rig.baseline_cell_v)
    volts[12] = 3.15  # cell 13 = the third module's channel 1
    rig.emulator.set_voltages(volts)
    sample = rig.link.wait_for(lambda s: abs(s.cell_v[12] - 3.15) < 0.01, timeout=10.0, what="cell 13 at 3.15 V")
    np.testing.assert_allclose(np.delete(sample.cell_v, 12), rig.baseline_cell_v, atol=0.01)
    assert mods[2].set_v[0] == pytest.approx(3.15)

    mark = len(bridge.calls)
    with pytest.raises(SafetyLimitError):
        rig.emulator.set_voltage(12, 4.2)  # beyond the LFP cell's 4.0 V: no native call
    assert bridge.calls[mark:] == []
    rig.safe_state()
    np.testing.assert_allclose([mods[k].set_v[ch - 1] for k, ch in rig.emulator.cells], 3.3)


def test_a_safe_level_beyond_the_boards_cell_is_refused_at_build(tmp_path, board_profile, monkeypatch):
    """4.2 V lies inside the rig file's [0, 4.5] V but not inside an LFP cell's 4.0 V: the
    rig is not built for this board (checked before any driver activates)."""
    from rig.errors import ConfigError

    bridge = FakeClientBridge({(m["bus"], m["device"]): FakeModule() for m in MODULES})
    monkeypatch.setattr(ctypes.cdll, "LoadLibrary", bridge.load_library)
    env = _env(tmp_path)
    raw = yaml.safe_load(env.read_text())
    raw["targets"]["main"]["drivers"]["PickeringCellEmulatorDriver"]["safe_voltage_v"] = 4.2
    env.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match=r"drivers\.PickeringCellEmulatorDriver\.safe_voltage_v: safe-state value 4\.2 V "
                                          r"is outside the hard limit voltage_range_v \[2, 4\] V"):
        build_rig(env, board_profile)
    assert bridge.calls == []  # refused before any driver activated: the chassis was not even contacted
