"""The run folder and its storage: one run per folder, and a write that fails is a rig
fault naming the file, never a torn record. ``/dev/full`` gives the kernel's real ENOSPC."""

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rig.errors import ConfigError, DiskFault, RigFault
from rig.record import RunRecord, read_record
from rig.runfolder import CLAIM_FILE, claim_run_dir

DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full on this system")


def test_a_folder_claimed_by_one_run_is_refused_to_another_naming_it(tmp_path):
    run = claim_run_dir(tmp_path / "runs" / "a", "RUN-1")
    assert (run / CLAIM_FILE).is_file()
    assert claim_run_dir(run, "RUN-1") == run  # the same run confirming its claim
    with pytest.raises(ConfigError) as exc:
        claim_run_dir(run, "RUN-2")
    assert "RUN-1" in str(exc.value) and exc.value.exit_code == 2


def test_an_existing_empty_folder_can_be_claimed_but_not_a_used_one(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert claim_run_dir(empty, "RUN-1") == empty
    used = tmp_path / "used"
    used.mkdir()
    (used / "record.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match="not empty"):
        claim_run_dir(used, "RUN-2")
    assert not (used / CLAIM_FILE).exists()


@needs_dev_full
def test_a_record_on_a_full_disk_raises_a_disk_fault_naming_the_file(tmp_path):
    rec = RunRecord(tmp_path)
    rec.append("run_start", run_id="r")
    full = os.open(DEV_FULL, os.O_WRONLY)
    os.dup2(full, rec._fd)  # the disk fills under the open record: the kernel answers ENOSPC
    os.close(full)
    with pytest.raises(DiskFault) as exc:
        rec.append("test_start", nodeid="t")
    fault = exc.value
    assert isinstance(fault, RigFault) and fault.exit_code == 3 and fault.errno == errno.ENOSPC
    assert str(tmp_path / "record.jsonl") in str(fault) and "ENOSPC" in str(fault)
    assert rec.fault is fault
    with pytest.raises(DiskFault):  # no line is written after a failed one
        rec.append("test_end", nodeid="t")
    assert rec.next_seq == 1
    rec.close()
    assert [e["event"] for e in read_record(tmp_path)] == ["run_start"]


def test_a_capture_that_does_not_fit_names_the_capture_and_keeps_the_record(tmp_path):
    """RLIMIT_FSIZE in a child process: the kernel refuses the capture past 4 kB (EFBIG)."""
    code = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from rig.errors import DiskFault
        from rig.record import RunRecord
        rec = RunRecord({str(tmp_path)!r})
        rec.append("run_start", run_id="r")
        try:
            rec.write_capture("testplans/test_x.py::t", "volts", {{"t": list(range(5000))}})
        except DiskFault as exc:
            print("FAULT", exc)
        rec.append("deviation", kind="rig_fault", message="capture lost")
        rec.close()
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("FAULT") and "captures/test_x__t__volts.csv" in proc.stdout and "EFBIG" in proc.stdout
    assert list((tmp_path / "captures").iterdir()) == []  # no half capture left under its name
    assert [e["event"] for e in read_record(tmp_path)] == ["run_start", "deviation"]
