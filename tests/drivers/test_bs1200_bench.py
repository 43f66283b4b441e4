"""A rig built by ``build_rig`` whose cell emulator is the BS1200 driver on Bloomy's ``bs1200``
library, its simulated units (tests/drivers/bs1200_sim.py, python-can virtual bus) wired to
the virtual bench's board: the board's cell inputs follow what the simulated units output.

The coupling, the test's stand-in for the wires between emulator and board: before every
step of the bench's world, the units' received frames are synced and their output voltages
and enables (per the rig's channel mapping) become the world's emulator set points; the
world's channel currents become the units' load, read back through the library. The board
(reference firmware), its CAN link, the pack source and the chamber are the bench's.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml

from rig.build import DEFAULT_ENV, build_rig
from rig.errors import SafetyLimitError

from .bs1200_sim import SimBS1200Bus
from .test_bs1200 import _units

pytest.importorskip("bs1200")


def _env(tmp_path, channel):
    raw = yaml.safe_load(DEFAULT_ENV.read_text())
    main = raw["targets"]["main"]
    main["resources"]["BS1200Bus"] = {"interface": "virtual", "channel": channel, "model": "Bloomy BS1200 (simulated)",
                                      "units": _units()}
    del main["drivers"]["SimCellEmulatorDriver"]
    main["drivers"]["BS1200CellEmulatorDriver"] = {"voltage_range_v": [0.0, 4.5], "max_current_a": 0.5,
                                                   "safe_voltage_v": 3.3}
    path = tmp_path / "bench-bs1200.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


#: the pack source's current flows through the units' channels in series (+ charge: they sink it)
THROUGH_STRING = True
#: the last piece of every advance, s: its mean current is what a short-aperture read sees
TAIL_S = 1e-4


def _wire(rig, sim):
    """Couple the simulated units' outputs to the bench's cell inputs (see the module docstring).

    Readbacks follow the bench's rig time: each advance of the world runs in two pieces (all
    but the last ``TAIL_S``, then that tail), and after each piece the units publish the
    world's mean channel currents over it at once, and the step waits until the driver has
    handled them. So the driver stamps every readback with the rig time it stands for, its
    rig-time averages are the world's, and a short aperture sees the current at the end
    of the step. The units' periodic publishing is paused while the world moves.
    """
    from rig.drivers.sim import SimBenchDriver

    world = rig.target.get_driver(SimBenchDriver).world
    cells = rig.emulator.cells  # per board cell: (box ID, unit channel 1..12)
    advance = world.advance
    for unit in sim.units.values():  # the units' current limits as a lab sets them up: the full 0.5 A
        unit.source_a[:] = unit.sink_a[:] = 0.5

    def load(amps):
        for i, (b, ch) in enumerate(cells):
            sim.units[b].load_a[ch - 1] = amps[i]

    def wired(dt):
        sim.sync()  # every command sent so far has reached the units
        with sim.paused():
            sim.flush_receivers()  # the driver has stamped what the units sent before the world moves
            world.set_emulator_voltages([sim.units[b].set_v[ch - 1] for b, ch in cells])
            world.set_emulator_enabled(all(sim.units[b].enabled[ch - 1] for b, ch in cells))
            tail = min(TAIL_S, dt / 2)
            for piece in (dt - tail, tail):
                if piece <= 0:
                    continue
                advance(piece)
                load(world.channel_currents(piece) - (world.pack_current() if THROUGH_STRING else 0.0))
                sim.publish()
                sim.flush_receivers()

    world.advance = wired


@pytest.fixture
def rig(tmp_path, board_profile):
    with SimBS1200Bus(box_ids=(1, 2)) as sim:
        rig = build_rig(_env(tmp_path, sim.channel), board_profile, seed=3)
        try:
            _wire(rig, sim)
            yield rig, sim
        finally:
            rig.close()


def test_the_board_measures_what_the_bs1200_outputs(rig, board_profile):
    rig, sim = rig
    assert rig.kind == "bench" and type(rig.emulator).__name__ == "BS1200CellEmulatorDriver"
    assert rig.emulator.limits["voltage_range_v"].hi == 4.0  # the rig file's 4.5 V narrowed to LFP
    rig.baseline()  # through the library: set points, enable; the board settles on them
    sample = rig.link.latest()
    np.testing.assert_allclose(sample.cell_v, rig.baseline_cell_v, atol=0.01)

    # channel mapping: cell 14 is box 2 channel 2; the board reports it where the unit put it
    volts = np.full(16, rig.baseline_cell_v)
    volts[13] = 3.20
    rig.emulator.set_voltages(volts)
    sample = rig.link.wait_for(lambda s: abs(s.cell_v[13] - 3.20) < 0.01, timeout=10.0, what="cell 14 at 3.20 V")
    np.testing.assert_allclose(np.delete(sample.cell_v, 13), rig.baseline_cell_v, atol=0.01)
    assert sim.units[2].set_v[1] == pytest.approx(3.20, abs=1e-9)


def test_over_voltage_protection_through_the_bs1200(rig, board_profile):
    rig, sim = rig
    rig.baseline()
    hvc = board_profile.protection.hvc
    rig.emulator.set_voltage(4, hvc.threshold_v + 0.05)  # cell 5 = box 1 channel 5, inside the 4.0 V limit
    rig.link.wait_for(lambda s: s.flags.hvc and not s.charge_fet, timeout=hvc.delay_s + 30.0,
                      what="the board's over-voltage cut-off")
    with pytest.raises(SafetyLimitError):
        rig.emulator.set_voltage(4, 4.05)  # beyond the LFP cell's 4.0 V: refused, nothing on the bus
    rig.emulator.set_voltage(4, rig.baseline_cell_v)
    rig.link.wait_for(lambda s: not s.flags.hvc and s.charge_fet, timeout=hvc.recovery_s + 30.0,
                      what="recovery from the cut-off")
    rig.safe_state()
    sim.sync()
    np.testing.assert_allclose(sim.units[1].set_v, 3.3, atol=1e-9)



def run_on_the_bench(argv: list[str]) -> int:
    """``bmsrig run`` with the simulated units in this process, wired to the bench's board.

    ``argv``: the run-dir first, then further ``bmsrig run`` arguments. Used as
    ``python -m tests.drivers.test_bs1200_bench RUN_DIR [ARGS]`` (the units' virtual CAN bus
    exists only inside one process, so the run cannot be a separate ``bmsrig`` process)."""
    import tempfile
    from pathlib import Path

    import rig.build
    from rig.cli import main

    built = rig.build.build_rig
    with SimBS1200Bus(box_ids=(1, 2)) as sim, tempfile.TemporaryDirectory() as tmp:
        def build_and_wire(*args, **kwargs):
            r = built(*args, **kwargs)
            _wire(r, sim)
            return r

        rig.build.build_rig = build_and_wire
        return main(["run", "--rig", str(_env(Path(tmp), sim.channel)), "--out", argv[0], *argv[1:]])


@pytest.mark.slow
def test_bmsrig_run_with_the_bs1200_on_the_bench(tmp_path):
    """``bmsrig run`` passes the channel-mapping test of the plan through the BS1200 driver
    and library and skips the noise tests with the reason (no noise injection on a BS1200);
    the record lists the BS1200 units as the cell emulator."""
    import json
    import subprocess
    import sys

    from rig.record import read_record

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "tests.drivers.test_bs1200_bench", str(out), "--board",
                           "reference-16s-lfp", "-k", "channel_mapping or noise"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    events = read_record(out)
    ends = {e["nodeid"].split("::")[-1]: e for e in events if e["event"] == "test_end"}
    assert ends["test_cell_mapping"]["outcome"] == "passed"
    for name in ("test_sampling_noise", "test_balancing_noise_immunity"):  # the BS1200 cannot inject noise
        assert ends[name]["outcome"] == "skipped", ends[name]
        assert "no noise injection (cell emulator BS1200CellEmulatorDriver)" in ends[name]["message"]
    start = json.dumps([e for e in events if e["event"] == "run_start"][0])
    assert '"role": "cell emulator", "model": "Bloomy BS1200 (simulated) x2"' in start
    assert "cells 1-12 = box 1 ch 1-12; cells 13-16 = box 2 ch 1-4" in start


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(run_on_the_bench(sys.argv[1:]))
