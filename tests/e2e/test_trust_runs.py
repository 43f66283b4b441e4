"""End to end: a run folder belongs to one run, a storage failure is a rig fault that keeps
the evidence, Ctrl-C while the report is built keeps the verdict, ``--board-model`` loads.

Storage failures are real kernel errors: the run is started with ``RLIMIT_FSIZE`` (and
SIGXFSZ ignored), so a write past the limit fails with EFBIG as on a full disk.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from rig.record import read_record, scan_record

CLI = [sys.executable, "-m", "rig.cli"]
SHORT = ("-k", "channel_mapping")  # one short plan, ~26 kB of record, ~56 kB of PDF


def _file_size_limit(limit_bytes: int):
    import resource  # POSIX only, like preexec_fn

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def _clean(text: str) -> bool:
    return "Traceback" not in text and "INTERNALERROR" not in text


def test_two_runs_on_one_folder_at_once_one_gets_exit_2_naming_the_other(tmp_path):
    out = tmp_path / "shared"
    procs = [subprocess.Popen([*CLI, "run", "--out", str(out), *SHORT], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    winner = json.loads((out / "run.claim").read_text())["run_id"]
    _, _, loser_err = next(r for r in results if r[0] == 2)
    assert winner in loser_err and str(out) in loser_err and _clean(loser_err), loser_err
    events = read_record(out)
    assert [e["event"] for e in events].count("run_start") == 1
    assert events[0]["run_id"] == winner


def test_a_full_disk_mid_run_is_a_rig_fault_that_keeps_every_fsynced_line(tmp_path):
    out = tmp_path / "full"
    limit = 12_000  # the record of this plan needs about twice that
    proc = subprocess.run([*CLI, "run", "--out", str(out), *SHORT], capture_output=True, text=True,
                          timeout=600, preexec_fn=_file_size_limit(limit))
    both = proc.stdout + proc.stderr
    assert proc.returncode == 3, both[-3000:]
    assert _clean(both), both[-3000:]
    assert str(out / "record.jsonl") in proc.stderr and "EFBIG" in proc.stderr
    assert "RIG FAULT" in proc.stdout
    raw = (out / "record.jsonl").read_bytes()
    assert 0 < len(raw) <= limit and raw.endswith(b"\n")  # the partial line was cut off again
    scan = scan_record(out)  # every line parses: nothing torn, nothing in the middle
    assert scan.torn_tail is None
    kinds = [e["event"] for e in scan.events]
    assert kinds[0] == "run_start" and "run_end" not in kinds
    assert [e["seq"] for e in scan.events] == list(range(len(scan.events)))
    assert "measurement" in kinds  # what was measured before the disk filled is kept


def test_a_report_that_does_not_fit_on_the_disk_is_a_rig_fault_not_a_pass(tmp_path):
    out = tmp_path / "nearly-full"
    limit = 40_000  # the record (~26 kB) and the HTML (~33 kB) fit, the PDF (~56 kB) does not
    proc = subprocess.run([*CLI, "run", "--out", str(out), *SHORT], capture_output=True, text=True,
                          timeout=600, preexec_fn=_file_size_limit(limit))
    both = proc.stdout + proc.stderr
    assert proc.returncode == 3, both[-3000:]
    assert _clean(both) and str(out / "report.pdf") in proc.stderr, both[-3000:]
    events = read_record(out)
    assert events[-1]["event"] == "run_end" and events[-1]["exit_code"] == 0  # the plans passed: evidence kept
    assert not (out / "report.pdf").exists()


def test_ctrl_c_while_the_report_is_built_keeps_the_verdict(tmp_path):
    out = tmp_path / "interrupted-report"
    proc = subprocess.Popen([*CLI, "run", "--out", str(out), *SHORT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = False
    for line in proc.stdout:  # blocking read: the CLI says when the plans are done
        if "building the report" in line:
            seen = True
            proc.send_signal(signal.SIGINT)
            break
    rest, err = proc.communicate(timeout=600)
    assert seen, "the CLI never announced the report build"
    assert proc.returncode == 0, err[-3000:]
    assert "report was not built" in err and "verdict stands" in err and _clean(err), err[-3000:]
    assert read_record(out)[-1]["event"] == "run_end"
    assert "PASS (exit 0)" in rest


def test_board_model_option_loads_the_named_class(tmp_path):
    out = tmp_path / "model"
    proc = subprocess.run([*CLI, "run", "--out", str(out), "--board-model",
                           "rig.sim.reference_board:ReferenceBoard", *SHORT],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    start = read_record(out)[0]
    assert "--board-model" in start["context"]["argv"]


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX")
def test_pytest_with_a_run_dir_owned_by_another_run_is_a_usage_error(tmp_path):
    from rig.runfolder import claim_run_dir

    out = claim_run_dir(tmp_path / "taken", "RUN-FIRST")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "--run-dir", str(out), "--run-id", "RUN-SECOND", "-k", "channel_mapping",
                           "--rootdir", "testplans", "-o", "testpaths=", "testplans"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "RUN-FIRST" in proc.stdout + proc.stderr
    assert not (out / "record.jsonl").exists()


def test_bmsrig_report_on_a_full_disk_is_a_rig_fault_naming_the_file(tmp_path):
    from rig.record import RunRecord

    run = tmp_path / "run"
    with RunRecord(run) as rec:
        rec.append("run_start", run_id="RUN-R", context={"planned_tests": ["t.py::a"]})
        rec.append("test_start", nodeid="t.py::a")
        rec.append("test_end", nodeid="t.py::a", outcome="passed")
        rec.append("run_end", exit_code=0, summary={"passed": 1})
    proc = subprocess.run([*CLI, "report", str(run)], capture_output=True, text=True, timeout=300,
                          preexec_fn=_file_size_limit(4_000))
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert _clean(proc.stderr) and "EFBIG" in proc.stderr and str(run / "report.") in proc.stderr, proc.stderr
    assert read_record(run)[-1]["event"] == "run_end"  # the record is untouched
