"""Bench scenario ``run-16s``: the wall time of a whole ``bmsrig run`` of the full plan on
reference-16s-lfp (seed 1, virtual bench), split at the line that starts the report.

Reports ``run_wall_s`` (the command, start to exit, s), ``tests_wall_s`` (start to
"building the report", s: preflight and the plan run), ``report_wall_s`` (from that line
to exit, s: every artifact, report.pdf included), ``pdf_pages`` and the exit code. The
command runs in a subprocess with ``--no-index`` and a throw-away signing key; nothing of
it is timed in this process. ``simulated_s`` is 0 (no simulation timed here).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

PROFILE = "reference-16s-lfp"
REPORT_LINE = b"bmsrig: building the report of "


_PAGE = re.compile(rb"/Type\s*/Page(?![s\w])")
_OBJ_STREAM = re.compile(rb"<<[^<>]*/Type\s*/ObjStm[^<>]*>>\s*stream\r?\n")


def pdf_pages(path: Path) -> int:
    """Pages of a PDF written by WeasyPrint: its page objects (``/Type /Page``), also those
    packed in compressed object streams; 0 if the file is absent."""
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    n = len(_PAGE.findall(data))
    for m in _OBJ_STREAM.finditer(data):
        try:
            n += len(_PAGE.findall(zlib.decompressobj().decompress(data[m.end():data.index(b"endstream", m.end())])))
        except (ValueError, zlib.error):
            continue
    return n


def run_16s() -> dict:
    """Run ``bmsrig run --board reference-16s-lfp`` and time its phases, s."""
    with tempfile.TemporaryDirectory(prefix="bmsrig-bench-run-") as tmp:
        out = Path(tmp) / "run"
        env = dict(os.environ, BMSRIG_KEY_DIR=str(Path(tmp) / "key"))
        cmd = [sys.executable, "-m", "rig.cli", "run", "--board", PROFILE, "--seed", "1", "--out", str(out),
               "--no-index"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        t_report = None
        for line in proc.stdout:
            if t_report is None and line.startswith(REPORT_LINE):
                t_report = time.perf_counter()
        code = proc.wait()
        t_end = time.perf_counter()
        if t_report is None:
            from .errors import RigFault
            raise RigFault("bmsrig bench run-16s", f"`bmsrig run` exited {code} without building a report")
        wall = t_end - t0
        return {"scenario": "run-16s", "simulated_s": 0.0, "wall_s": round(wall, 4), "ratio": 0.0, "result": {
            "run_wall_s": round(wall, 3), "tests_wall_s": round(t_report - t0, 3),
            "report_wall_s": round(t_end - t_report, 3), "pdf_pages": pdf_pages(out / "report.pdf"),
            "exit_code": code}}
