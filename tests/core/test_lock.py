"""One run per rig: the exclusive rig lock ``bmsrig run`` holds."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from rig.clock import StepClock
from rig.lock import RigBusy, holder, lock_name_for, rig_lock


@pytest.fixture(autouse=True)
def _private_lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BMSRIG_LOCK_DIR", str(tmp_path / "locks"))


def _hold_in_other_process(name: str, lock_dir) -> subprocess.Popen:
    """A second process that takes the lock, says so on stdout, and holds it until stdin closes."""
    code = textwrap.dedent(f"""
        import os, sys
        os.environ["BMSRIG_LOCK_DIR"] = {str(lock_dir)!r}
        from rig.lock import rig_lock
        with rig_lock({name!r}, run_id="RUN-A", rig="lab-rig-3.yaml"):
            print("held", flush=True)
            sys.stdin.read()
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_second_run_on_a_held_rig_is_refused_naming_the_holder(tmp_path):
    other = _hold_in_other_process("lab-rig-3", tmp_path / "locks")
    try:
        with pytest.raises(RigBusy) as exc:
            with rig_lock("lab-rig-3"):
                pass
        msg = str(exc.value)
        assert "lab-rig-3" in msg and "RUN-A" in msg and f"pid {other.pid}" in msg and "--lock-wait" in msg
        assert exc.value.exit_code == 3
    finally:
        other.stdin.close()
        other.wait(timeout=30)
    with rig_lock("lab-rig-3", run_id="RUN-B"):  # released when the holder ended
        assert holder("lab-rig-3")["run_id"] == "RUN-B"


def test_a_queued_run_waits_on_the_clock_then_gives_up(tmp_path):
    other = _hold_in_other_process("lab-rig-3", tmp_path / "locks")
    clock = StepClock()
    try:
        with pytest.raises(RigBusy):
            with rig_lock("lab-rig-3", wait_s=30.0, clock=clock):
                pass
        assert clock.now() == pytest.approx(30.0)  # it queued for the whole wait, then gave up
    finally:
        other.stdin.close()
        other.wait(timeout=30)


def test_different_rigs_do_not_block_each_other(tmp_path):
    other = _hold_in_other_process("lab-rig-3", tmp_path / "locks")
    try:
        with rig_lock("lab-rig-4"):
            pass
    finally:
        other.stdin.close()
        other.wait(timeout=30)


def test_default_lock_name_is_the_rig_description_stem():
    assert lock_name_for("/etc/bmsrig/lab rig #3.yaml") == "lab_rig_3"


def test_bmsrig_run_refuses_a_held_rig_with_exit_3(tmp_path):
    other = _hold_in_other_process("shared-bench", tmp_path / "locks")
    try:
        proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "--lock", "shared-bench",
                               "--out", str(tmp_path / "run"), "-k", "nothing"],
                              capture_output=True, text=True, timeout=120,
                              env={**__import__("os").environ, "BMSRIG_LOCK_DIR": str(tmp_path / "locks")})
    finally:
        other.stdin.close()
        other.wait(timeout=30)
    assert proc.returncode == 3, proc.stderr
    assert "shared-bench" in proc.stderr and "RUN-A" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing was started
