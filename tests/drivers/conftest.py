"""Fixtures for the hardware-driver tests: labgrid environments built in tmp_path.

Each test writes a small rig description (``imports: [rig.labgrid]``, our resources and
drivers) and gets its target with the run context attached the way :func:`rig.build.build_rig`
attaches it (a ``RunContext`` resource holding a ``RigContext``). Instruments are stood in for by what
this machine can run for real: pyvisa-sim devices, a fake NI-DAQmx interpreter under the
real nidaqmx Task code, and a pymodbus TCP server on the loopback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rig.clock import StepClock
from rig.context import RigContext, attach_context

DATA = Path(__file__).parent / "data"
SCPI_BENCH = DATA / "scpi-bench.yaml"




@pytest.fixture(scope="session")
def board_profile():
    from rig.profile import load_profile

    return load_profile("reference-16s-lfp")


@pytest.fixture
def step_clock():
    return StepClock()


@pytest.fixture
def scpi_library(tmp_path):
    """The pyvisa-sim bench as a VISA library string; a private copy per test.

    pyvisa caches one simulated library (and so one state of every device) per file path,
    so a copy in tmp_path gives each test instruments fresh from power-on.
    """
    copy = tmp_path / "scpi-bench.yaml"
    shutil.copy(SCPI_BENCH, copy)
    return f"{copy}@sim"


@pytest.fixture
def make_target(tmp_path, board_profile, step_clock):
    """``make_target(resources, drivers, clock=None)`` -> the labgrid target 'main'.

    Writes the environment YAML to tmp_path, builds the target through labgrid and attaches
    the run context like rig.build does. Every target is cleaned up (drivers deactivated,
    sessions closed) at teardown.
    """
    from labgrid import Environment

    targets = []

    def make(resources, drivers, clock=None, name="rig.yaml"):
        env_path = tmp_path / name
        env_path.write_text(yaml.safe_dump(
            {"imports": ["rig.labgrid"], "targets": {"main": {"resources": resources, "drivers": drivers}}},
            sort_keys=False,
        ))
        target = Environment(str(env_path)).get_target("main")
        attach_context(target, RigContext(profile=board_profile, clock=clock or step_clock))
        targets.append(target)
        return target

    yield make
    for t in targets:
        t.cleanup()
