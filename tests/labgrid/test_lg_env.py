"""``pytest --lg-env HARDWARE.yaml testplans/`` (and ``LG_ENV``), as labgrid users run the
project's plans: a hardware rig whose instruments cannot be reached fails loudly as a rig
fault naming the instrument — never a silent fall back to the virtual bench."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rig.build import ENV_DIR

from .conftest import ROOT, _env

HARDWARE = ENV_DIR / "example-real-rig.yaml"  # instruments on TEST-NET addresses (RFC 5737): nothing answers
UNREACHABLE = "TCPIP::192.0.2.10::INSTR"  # its cell emulator


@pytest.mark.parametrize("named_by", ["--lg-env", "LG_ENV"])
def test_project_plans_on_an_unreachable_hardware_rig_fail_as_a_rig_fault(tmp_path, named_by):
    env = _env()
    args = [sys.executable, "-m", "pytest", "testplans/test_channel_mapping.py", "--run-dir", str(tmp_path / "run"),
            "-p", "no:cacheprovider", "-q"]
    if named_by == "--lg-env":
        args[3:3] = ["--lg-env", str(HARDWARE)]
    else:
        env["LG_ENV"] = str(HARDWARE)
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and " passed" not in out, out[-3000:]
    assert "RigFault" in out and UNREACHABLE in out
    events = [json.loads(line) for line in (tmp_path / "run" / "record.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "run_start")
    assert start["context"]["rig"]["env"] == str(HARDWARE)
    assert "virtual bench" not in json.dumps(start["context"]["rig"]["instruments"])
    end = next(e for e in events if e["event"] == "run_end")
    assert end["exit_code"] == 3 and end["summary"]["passed"] == 0 and end["rig_faults"]
    assert any(e["event"] == "deviation" and e["kind"] == "rig_fault" and UNREACHABLE in e["message"] for e in events)
