"""A lab of two exported virtual benches and three CI jobs queueing through labgrid
reservations: every job passes, and no two ran on one place at once (from the records)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT, _env
from .test_places import EXPORTED, client, export_bench, me

RIG_FILE_HEAD = "options:\n  coordinator_address: {coordinator}\n"


def shared_bench_rig(coordinator, tmp_path):
    """The virtual bench's rig file with its resources from a place named ``bench``
    (any place chosen by ``--place`` replaces it)."""
    from rig.build import ENV_DIR

    text = (ENV_DIR / "sim.yaml").read_text()
    head, drivers = text.split("    resources:\n", 1)
    drivers = drivers[drivers.index("    drivers:"):]
    env = tmp_path / "shared-bench.yaml"
    env.write_text(RIG_FILE_HEAD.format(coordinator=coordinator) + head + "    resources:\n      RemotePlace:\n"
                   "        name: bench\n" + drivers)
    return env


def run_window(run_dir) -> tuple[str, str, str]:
    """(place, first record time, last record time) of a run folder."""
    events = [json.loads(line) for line in (run_dir / "record.jsonl").read_text().splitlines() if line.strip()]
    start = next(e for e in events if e["event"] == "run_start")
    place = start["context"]["rig"]["labgrid"]["places"][0]["name"]
    return place, events[0]["t_wall"], events[-1]["t_wall"]


@pytest.mark.slow
def test_three_ci_jobs_on_two_benches_through_reservations(coordinator, exporter, session, tmp_path):
    assert EXPORTED  # the same exported virtual bench as the place tests
    export_bench(coordinator, exporter, session, "rig-a", "bench-a", "rig=bench4s")
    export_bench(coordinator, exporter, session, "rig-b", "bench-b", "rig=bench4s")
    env = shared_bench_rig(coordinator, tmp_path)
    jobs = []
    for n in (1, 2, 3):
        out = tmp_path / f"job{n}"
        jobs.append((out, subprocess.Popen(
            [sys.executable, "-m", "rig.cli", "run", "--rig", str(env), "--board", "reference-4s-lfp-uart",
             "--place", "rig=bench4s", "--lock-wait", "600", "--out", str(out), "test_channel_mapping.py"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=_env())))
    for out, proc in jobs:
        text, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, text[-3000:]
    windows = [run_window(out) for out, _ in jobs]
    assert {w[0] for w in windows} == {"bench-a", "bench-b"}  # both benches worked
    for i, (place_i, start_i, end_i) in enumerate(windows):
        for place_j, start_j, end_j in windows[i + 1:]:
            if place_i == place_j:  # one after the other on one place (ISO UTC strings sort as times)
                assert end_i < start_j or end_j < start_i, windows
    session.loop.run_until_complete(session.sync_with_coordinator())
    assert session.places["bench-a"].acquired is None and session.places["bench-b"].acquired is None
    assert "Reservation" not in client(coordinator, "reservations")
    assert me(session)
