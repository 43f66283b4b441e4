"""A real labgrid coordinator and exporters on loopback (random free ports), as labgrid's own
tests start them: subprocesses, waited on by polling with a deadline (no sleeps)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_S = 30.0  # wall-clock deadline for a coordinator or exporter to come up


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("LG_COORDINATOR", None)
    env.pop("LG_PLACE", None)
    return env


def _stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def coordinator(tmp_path):
    """``host:port`` of a fresh labgrid-coordinator (its state in tmp_path)."""
    exe = shutil.which("labgrid-coordinator")
    if exe is None:
        pytest.skip("labgrid-coordinator is not installed")
    port = _free_port()
    log = open(tmp_path / "coordinator.log", "w")
    proc = subprocess.Popen([exe, "-l", f"127.0.0.1:{port}"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                            env=_env())
    deadline = time.monotonic() + START_S
    try:
        while True:
            assert proc.poll() is None, (tmp_path / "coordinator.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "coordinator did not listen in time"
                proc_wait(proc, 0.1)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)
        log.close()


def proc_wait(proc: subprocess.Popen, timeout_s: float):
    """Block up to ``timeout_s`` on the process ending (a bounded wait that also notices a crash)."""
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass


@pytest.fixture
def exporter(coordinator, tmp_path):
    """Start ``python -m rig.exporter`` (bmsrig-exporter) with a resource config text; returns the process."""
    procs = []

    def start(name: str, config: str) -> subprocess.Popen:
        cfg = tmp_path / f"exporter-{name}.yaml"
        cfg.write_text(config)
        log = tmp_path / f"exporter-{name}.log"
        proc = subprocess.Popen([sys.executable, "-m", "rig.exporter", "-c", coordinator, "-n", name,
                                 "--hostname", "127.0.0.1", str(cfg)], cwd=tmp_path, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, env=_env())
        proc.log = log
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        _stop(p)


@pytest.fixture
def session(coordinator):
    """A labgrid ClientSession on the coordinator; ``session.wait_resources(exporter, n)``."""
    from labgrid.remote.client import start_session

    s = start_session(coordinator)

    def wait_resources(exporter_name: str, count: int, proc=None) -> dict:
        deadline = time.monotonic() + START_S
        while True:
            s.loop.run_until_complete(s.sync_with_coordinator())  # a round trip: a blocking poll
            groups = s.resources.get(exporter_name, {})
            found = {(g, n): r for g, rs in groups.items() for n, r in rs.items()}
            if len(found) >= count:
                return found
            if proc is not None:
                assert proc.poll() is None, f"exporter ended:\n{proc.log.read_text()}"
                proc_wait(proc, 0.05)
            assert time.monotonic() < deadline, f"exporter {exporter_name} showed {len(found)}/{count} resources"

    s.wait_resources = wait_resources
    yield s
    s.loop.run_until_complete(s.stop())
    s.loop.run_until_complete(s.close())
