"""End to end: `bmsrig run --pdf-later` exits with the verdict before report.pdf is built;
the detached `bmsrig report` it starts then writes report.pdf and a manifest that covers it."""

import os
import re
import select
import subprocess
import sys

import pytest

from reports import verify_manifest

CLI = [sys.executable, "-m", "rig.cli"]


def _wait_for_exit(pid: int, timeout_s: float) -> bool:
    """Wait for a process that is not our child to end (Linux pidfd); False on timeout."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # already gone
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(timeout_s * 1000))
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux 5.3+) to wait for the build")
def test_pdf_later_exits_with_the_verdict_and_the_pdf_follows(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([*CLI, "run", "--out", str(out), "--no-index", "--pdf-later", "-k", "channel_mapping"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "report.html").is_file() and (out / "junit.xml").is_file() and (out / "summary.json").is_file()
    m = re.search(r"pdf +(\S+) \(being built by `bmsrig report`, process (\d+)\)", proc.stdout)
    assert m, proc.stdout[-2000:]
    assert m.group(1) == str(out / "report.pdf")
    assert "PASS (exit 0)" in proc.stdout
    assert _wait_for_exit(int(m.group(2)), 300), "the detached report build did not end"
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert verify_manifest(out) == []
    assert "report.pdf" in (out / "manifest.json").read_text()
