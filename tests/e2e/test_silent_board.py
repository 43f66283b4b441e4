"""End to end: a defective board whose link goes quiet while it balances is never passed.

``bmsrig run`` with a defect the "must not balance" window exists to catch, plus
``silent_while_balancing`` (the board transmits nothing while a bleed switch is on): the
run ends "RIG FAULT (board not judged)", exit 3, the record carries a rig_fault deviation
naming the link's silence, and the judging test did not pass.
"""

import subprocess
import sys

import pytest

from rig.record import read_record

CLI = [sys.executable, "-m", "rig.cli"]


def run_cli(*args, timeout=600):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def events(out, kind):
    return [e for e in read_record(out / "record.jsonl") if e.get("event") == kind]


# the "must not balance" window of test_balancing_start on the 16S board, seed 1, runs over
# rig time 5.65 .. 30.65 s: this dropout covers it exactly and ends before the plan waits for
# balancing to start (so a plan that reads "no sample" as "no balancing" passes the board)
GAP_OVER_THE_WINDOW = "telemetry_gap:t=5.7,s=25"


@pytest.mark.parametrize("board, defect, silence, test, judged, says", [
    ("reference-16s-lfp", "balance_start_delta:mv=15", GAP_OVER_THE_WINDOW, "test_balancing_start",
     "channels_balancing_below_start_delta", "no sample at all in 25.000 s"),
    ("reference-16s-lfp", "balance_start_delta:mv=15", "silent_while_balancing", "test_balancing_start",
     "channels_balancing_below_start_delta", "board not judged"),
    ("reference-16s-lfp", "balance_mid_soc", "silent_while_balancing", "test_no_balancing_on_plateau",
     "channels_balancing_on_plateau", "board not judged"),
    ("reference-4s-lfp-uart", "balance_start_delta:mv=15", "silent_while_balancing", "test_balancing_start",
     "channels_balancing_below_start_delta", "no reply"),
])
def test_silent_defective_board_is_a_rig_fault_never_a_pass(tmp_path, board, defect, silence, test, judged, says):
    out = tmp_path / "run"
    proc = run_cli("run", "--board", board, "--out", str(out), "--defect", defect, "--defect", silence, "-k", test)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 3, text[-3000:]
    assert "RIG FAULT (board not judged)" in proc.stdout
    faults = [d for d in events(out, "deviation") if d["kind"] == "rig_fault"]
    assert faults and all(d["test"].endswith(test) for d in faults), faults
    assert says in faults[0]["message"], faults[0]["message"]
    ends = {e["nodeid"].split("::")[-1]: e for e in events(out, "test_end")}
    assert ends[test]["outcome"] != "passed" and ends[test]["rig_fault"] is True, ends[test]
    # nothing was concluded from the silent window
    assert not [m for m in events(out, "measurement") if m["name"] == judged], "judged without evidence"
    run_end = events(out, "run_end")[-1]
    assert run_end["exit_code"] == 3 and run_end["summary"]["passed"] == 0, run_end


def test_the_same_defect_on_a_talking_board_is_caught(tmp_path):
    """Control: without the silence the plan judges the board, and fails it (exit 1)."""
    out = tmp_path / "run"
    proc = run_cli("run", "--out", str(out), "--defect", "balance_start_delta:mv=15", "-k", "test_balancing_start")
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-3000:]
    assert not [d for d in events(out, "deviation") if d["kind"] == "rig_fault"]
    end = events(out, "test_end")[-1]
    assert end["outcome"] == "failed" and "channels_balancing_below_start_delta" in end["message"]
