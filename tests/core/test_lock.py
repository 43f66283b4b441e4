"""One run per rig: the exclusive rig lock ``bmsrig run`` holds."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

from rig.clock import StepClock
from rig.errors import ConfigError
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


# --------------------------------------------------------------------------- names, users, platforms


@pytest.mark.parametrize("name", ["a/b", "../../etc/shadow", "..", ".hidden", "x\\y", "", "a" * 101])
def test_a_lock_name_that_is_not_a_plain_name_is_a_config_error(name):
    with pytest.raises(ConfigError) as exc:
        with rig_lock(name):
            pass
    assert exc.value.exit_code == 2 and "--lock" in str(exc.value)


def test_the_lock_file_is_shared_by_every_user_whatever_the_umask(tmp_path):
    code = textwrap.dedent(f"""
        import os
        os.umask(0o077)
        os.environ["BMSRIG_LOCK_DIR"] = {str(tmp_path / "locks")!r}
        from rig.lock import rig_lock
        with rig_lock("lab-rig-5"):
            pass
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    mode = (tmp_path / "locks" / "lab-rig-5.lock").stat().st_mode
    assert stat.S_IMODE(mode) & 0o666 == 0o666
    assert stat.S_IMODE((tmp_path / "locks").stat().st_mode) == 0o1777


def test_a_lock_file_another_user_left_read_only_still_locks(tmp_path):
    """A lock file owned by another user, mode 0644 (as an older bmsrig or a strict umask
    leaves it): the next user takes the lock on a read-only descriptor, and it excludes."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act without permission override")
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o1777)
    locks.chmod(0o1777)
    f = locks / "lab-rig-6.lock"
    f.write_text("")
    os.chown(f, 65534, 65534)
    f.chmod(0o644)
    tmp_path.chmod(0o755)
    code = textwrap.dedent(f"""
        import os, sys
        os.environ["BMSRIG_LOCK_DIR"] = {str(locks)!r}
        from rig.lock import rig_lock
        with rig_lock("lab-rig-6", run_id="RUN-RO"):
            print("held", flush=True)
            sys.stdin.read()
    """)
    drop = "-dac_override,-dac_read_search,-fowner"
    p = subprocess.Popen(["setpriv", "--bounding-set", drop, "--inh-caps", drop, sys.executable, "-c", code],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().strip()
        assert line == "held", p.stderr.read() if p.poll() is not None else "no answer"
        with pytest.raises(RigBusy):
            with rig_lock("lab-rig-6"):
                pass
    finally:
        p.stdin.close()
        p.wait(timeout=30)
    assert p.returncode == 0 and "Traceback" not in p.stderr.read()

