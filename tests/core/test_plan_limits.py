"""Plans cannot widen or cross the rig's hard limits (through the fixtures, as plans run)."""

import json
import re
import shutil
from pathlib import Path

HERE = Path(__file__).parent
pytest_plugins = ["pytester"]


def _events(run_dir):
    return [json.loads(line) for line in (run_dir / "record.jsonl").read_text().splitlines()]


def test_a_plan_that_widens_and_crosses_limits_is_refused_every_time(pytester, tmp_path):
    shutil.copy(HERE / "plan_widen_limits.py", pytester.path / "test_careless_plan.py")
    run_dir = tmp_path / "run"
    result = pytester.runpytest_subprocess("--run-dir", str(run_dir), "--board", "reference-4s-lfp-uart",
                                           "-p", "no:cacheprovider", "-p", "no:randomly")
    assert result.parseoutcomes() == {"passed": 5}, result.stdout.str()[-3000:]
    assert result.ret == 0


def test_cell_model_beyond_the_limit_trips_to_safe_state_as_a_rig_fault(pytester, tmp_path):
    shutil.copy(HERE / "plan_cell_model_ovp.py", pytester.path / "test_charge_plan.py")
    run_dir = tmp_path / "run"
    result = pytester.runpytest_subprocess("--run-dir", str(run_dir), "--board", "reference-4s-lfp-uart",
                                           "--defect", "hvc_threshold:mv=2000", "-s", "-p", "no:cacheprovider")
    out = result.stdout.str()
    events = _events(run_dir)
    end = [e for e in events if e["event"] == "run_end"][-1]
    assert end["exit_code"] == 3, out[-3000:]  # a rig fault (bmsrig run exits 3): the board was not judged
    assert [e["rig_fault"] for e in events if e["event"] == "test_end"] == [True]
    highest = [float(v) for v in re.findall(r"highest terminal voltage ([0-9.]+) V", out)]
    assert highest and max(highest) <= 4.0  # sim.yaml 4.5 V ∩ LFP absolute 4.0 V
    faults = [e for e in events if e["event"] == "deviation" and e["kind"] == "rig_fault"]
    assert faults and "emulator protection tripped" in faults[0]["message"]
    assert "safe state" in faults[0]["message"]
