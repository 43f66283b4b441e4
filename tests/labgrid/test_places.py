"""A run holds its rig's labgrid places through a real coordinator (rig.places.hold_places)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from rig.clock import StepClock, WallClock
from rig.errors import ConfigError
from rig.lock import RigBusy
from rig.places import coordinator_address, hold_places, remote_places

EXPORTED = """
bench-a:
  bench:
    cls: SimBench
    ambient_c: 25.0
  port:
    cls: BenchPort
"""


def client(coordinator, *args, user=None):
    env = dict(os.environ)
    if user:
        env["LG_USERNAME"] = user
    proc = subprocess.run([shutil.which("labgrid-client"), "-x", coordinator, *args], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def export_bench(coordinator, exporter, session, rig: str, place: str, tags: str = ""):
    """Exporter ``rig`` serving a virtual bench, and a place ``place`` (with ``tags``) matching it."""
    proc = exporter(rig, EXPORTED.replace("bench-a:", f"{place}:"))
    session.wait_resources(rig, 2, proc)
    client(coordinator, "-p", place, "create")
    client(coordinator, "-p", place, "add-match", f"{rig}/{place}/*")
    if tags:
        client(coordinator, "-p", place, "set-tags", *tags.split(","))


@pytest.fixture
def place(coordinator, exporter, session, tmp_path):
    """Place ``bench-a`` matching exporter rig-a's resources; returns the rig file naming it."""
    export_bench(coordinator, exporter, session, "rig-a", "bench-a", "rig=bench4s")
    env = tmp_path / "shared-rig.yaml"
    env.write_text(f"options:\n  coordinator_address: {coordinator}\ntargets:\n  main:\n    resources:\n"
                   f"      RemotePlace:\n        name: bench-a\n")
    return env


def holder(session, name="bench-a"):
    session.loop.run_until_complete(session.sync_with_coordinator())
    return session.places[name].acquired


def test_rig_file_names_its_places_and_coordinator(tmp_path, monkeypatch):
    env = tmp_path / "rig.yaml"
    env.write_text("targets:\n  main:\n    resources:\n      RemotePlace: {name: bench-b}\n")
    monkeypatch.setenv("LG_COORDINATOR", "192.0.2.1:20408")
    assert remote_places(env) == ["bench-b"]
    assert coordinator_address(env) == "192.0.2.1:20408"
    assert coordinator_address(env, "127.0.0.1:1") == "127.0.0.1:1"
    env.write_text("targets:\n  main:\n    resources:\n      RemotePlace: {}\n")
    with pytest.raises(ConfigError) as ei:
        remote_places(env)
    assert ei.value.key == "targets.main.resources.RemotePlace.name"


def test_a_rig_without_places_contacts_nothing(tmp_path):
    env = tmp_path / "rig.yaml"
    env.write_text("targets:\n  main:\n    resources:\n      BenchPort: {}\n")
    with hold_places(env, coordinator="127.0.0.1:9") as info:
        assert info.coordinator is None and info.places == {} and info.lost() is None


def test_run_acquires_and_releases_its_place(place, session, coordinator):
    assert holder(session) is None
    with hold_places(place) as info:
        assert info.coordinator == coordinator and info.places == {"bench-a": "bench-a"}
        assert info.how == {"bench-a": "acquired"}
        assert holder(session) == f"{session.gethostname()}/{session.getuser()}"
    assert holder(session) is None


def test_place_released_when_the_run_fails(place, session):
    with pytest.raises(RuntimeError, match="plan crashed"):
        with hold_places(place):
            assert holder(session)
            raise RuntimeError("plan crashed")
    assert holder(session) is None


def test_place_held_by_another_is_rig_busy_naming_the_holder(place, session, coordinator):
    client(coordinator, "-p", "bench-a", "acquire", user="ci-job-2")
    with pytest.raises(RigBusy) as ei:
        with hold_places(place):
            pytest.fail("ran on a place another job holds")
    assert ei.value.exit_code == 3 and "ci-job-2" in str(ei.value) and "bench-a" in str(ei.value)
    assert holder(session).endswith("/ci-job-2")  # left with its holder


def test_place_acquired_by_hand_is_used_and_left_acquired(place, session, coordinator):
    client(coordinator, "-p", "bench-a", "acquire", user=session.getuser())
    with hold_places(place) as info:
        assert info.how == {"bench-a": "already held"}
    assert holder(session) == f"{session.gethostname()}/{session.getuser()}"


def test_unknown_place_and_absent_coordinator_are_config_errors(place, tmp_path):
    bad = tmp_path / "other.yaml"
    bad.write_text(place.read_text().replace("name: bench-a", "name: no-such-place"))
    with pytest.raises(ConfigError, match="no-such-place"):
        with hold_places(bad):
            pass


def _shared_bench(place, tmp_path):
    """The virtual bench's rig file with its resources served by place bench-a."""
    from rig.build import ENV_DIR

    coordinator_line = place.read_text().splitlines()[1]
    text = (ENV_DIR / "sim.yaml").read_text()
    head, drivers = text.split("    resources:\n", 1)
    drivers = drivers[drivers.index("    drivers:"):]
    env = tmp_path / "shared-bench.yaml"
    env.write_text(f"options:\n{coordinator_line}\n" + head + "    resources:\n      RemotePlace:\n"
                   "        name: bench-a\n" + drivers)
    return env


def _bmsrig_run(env, out, *plans):
    import sys

    from .conftest import ROOT, _env

    return subprocess.run([sys.executable, "-m", "rig.cli", "run", "--rig", str(env), "--board", "reference-4s-lfp-uart",
                           "--out", str(out), *plans], capture_output=True, text=True, cwd=ROOT, env=_env(),
                          timeout=600)


def read_record(run_dir) -> list[dict]:
    import json

    return [json.loads(line) for line in (run_dir / "record.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_bmsrig_run_holds_the_place_for_the_run(place, session, coordinator, tmp_path):
    """``bmsrig run`` on the virtual bench served through a place: acquired, the plan passes,
    released; the record and the report name the coordinator, place, exporter and resources."""
    env = _shared_bench(place, tmp_path)
    proc = _bmsrig_run(env, tmp_path / "run", "test_channel_mapping.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert holder(session) is None
    start = next(e for e in read_record(tmp_path / "run") if e["event"] == "run_start")
    held = start["context"]["rig"]["labgrid"]
    assert held["coordinator"] == coordinator and held["holder"] == me(session)
    assert held["places"][0]["name"] == "bench-a" and held["places"][0]["exporters"] == ["rig-a"]
    assert {r["path"] for r in held["places"][0]["resources"]} == {"rig-a/bench-a/SimBench/bench",
                                                                    "rig-a/bench-a/BenchPort/port"}
    report = (tmp_path / "run" / "report.html").read_text()
    assert f"Held through labgrid coordinator {coordinator}: place bench-a (acquired by {me(session)}" in report
    assert "SimBench rig-a/bench-a/SimBench/bench" in report


@pytest.mark.slow
def test_bmsrig_run_whose_place_is_stolen_mid_run_is_exit_3(place, session, coordinator, tmp_path):
    """Another job kicks the run off its place while the plans run: exit 3, a rig-fault
    deviation naming the place in the record, never a pass; the thief keeps the place."""
    import sys

    from .conftest import ROOT, _env, proc_wait

    env = _shared_bench(place, tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "run", "--rig", str(env), "--board",
                             "reference-4s-lfp-uart", "--out", str(tmp_path / "run"), "test_channel_mapping.py",
                             "test_hvc.py"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env=_env())
    try:
        while holder(session) != me(session):
            assert proc.poll() is None, proc.stdout.read()
            proc_wait(proc, 0.05)
        client(coordinator, "-p", "bench-a", "release", "--kick", user="ci-job-3")
        client(coordinator, "-p", "bench-a", "acquire", user="ci-job-3")
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, out[-3000:]
    faults = [e for e in read_record(tmp_path / "run") if e["event"] == "deviation" and e["kind"] == "rig_fault"]
    assert faults and "labgrid place bench-a" in faults[0]["message"]
    run_end = [e for e in read_record(tmp_path / "run") if e["event"] == "run_end"]
    assert run_end and run_end[0]["exit_code"] == 3
    assert holder(session).endswith("/ci-job-3")


def test_bmsrig_run_on_a_place_held_by_another_is_exit_3(place, session, coordinator, tmp_path):
    client(coordinator, "-p", "bench-a", "acquire", user="ci-job-2")
    proc = _bmsrig_run(_shared_bench(place, tmp_path), tmp_path / "run", "test_channel_mapping.py")
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ci-job-2" in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_place_released_when_the_session_stream_ended_during_the_run(place, session, monkeypatch):
    """A long run's coordinator stream can end (keepalive, coordinator restart): the release
    reconnects instead of hanging or leaving the place held."""
    import rig.places as places

    opened = []
    connect = places.connect_session

    def recording(address, env_path):
        opened.append(connect(address, env_path))
        return opened[-1]

    monkeypatch.setattr(places, "connect_session", recording)
    with hold_places(place, watch=False):
        assert holder(session)
        first = opened[0]
        first.loop.run_until_complete(first.stop())  # the stream ends
        first.stopping.set()
    assert len(opened) == 2 and holder(session) is None


# --------------------------------------------------------------------------- which place, queueing


@pytest.fixture
def two_places(place, coordinator, exporter, session):
    """A second bench, place ``bench-b`` tagged like ``bench-a`` (rig=bench4s)."""
    export_bench(coordinator, exporter, session, "rig-b", "bench-b", "rig=bench4s")
    return place


def me(session):
    return f"{session.gethostname()}/{session.getuser()}"


def test_place_option_and_lg_place_select_the_place(two_places, session, monkeypatch):
    """``--place`` (and LG_PLACE) pick the place like ``labgrid-client -p``: the rig file's
    RemotePlace is pointed at it; a unique substring is enough."""
    with hold_places(two_places, place="bench-b") as hold:
        assert hold.places == {"bench-a": "bench-b"} and holder(session, "bench-b") == me(session)
        assert holder(session, "bench-a") is None
        config = {"resources": {"RemotePlace": {"name": "bench-a"}}}
        from rig.places import rename_remote_places

        rename_remote_places(config)
        assert config["resources"]["RemotePlace"]["name"] == "bench-b"
        record = hold.record()
        assert record["places"][0]["name"] == "bench-b" and record["places"][0]["exporters"] == ["rig-b"]
        assert {r["cls"] for r in record["places"][0]["resources"]} == {"SimBench", "BenchPort"}
        assert record["places"][0]["exporter_hosts"] == [socket.getfqdn()]  # labgrid: the exporter host
    monkeypatch.setenv("LG_PLACE", "ch-b")
    with hold_places(two_places) as hold:
        assert hold.places == {"bench-a": "bench-b"}
    assert holder(session, "bench-b") is None


def test_bad_place_selections_are_config_errors(two_places, monkeypatch):
    with pytest.raises(ConfigError, match="matches multiple places"):
        with hold_places(two_places, place="bench"):
            pass
    with pytest.raises(ConfigError, match="not key=value"):
        with hold_places(two_places, place="Rig=x"):
            pass
    monkeypatch.delenv("LG_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="LG_TOKEN"):
        with hold_places(two_places, place="+"):
            pass
    local = two_places.parent / "local.yaml"
    local.write_text("targets:\n  main:\n    resources:\n      BenchPort: {}\n")
    with pytest.raises(ConfigError, match="names 0 RemotePlace resources") as ei:
        with hold_places(local, place="bench-a"):
            pass
    assert ei.value.key == "--place"
    monkeypatch.setenv("LG_PLACE", "bench-a")  # labgrid's variable, set for other tools: ignored here
    with hold_places(local) as hold:
        assert hold.places == {}


def test_tags_pick_a_free_place_and_a_third_job_is_busy(two_places, session, coordinator):
    """Three jobs asking for any ``rig=bench4s`` place: two get one each, the third is exit 3
    naming both holders, and its reservation is cancelled."""
    with hold_places(two_places, place="rig=bench4s", wait_s=1) as first:
        with hold_places(two_places, place="rig=bench4s", wait_s=1, clock=StepClock()) as second:
            assert {first.places["bench-a"], second.places["bench-a"]} == {"bench-a", "bench-b"}
            assert first.reservations and second.reservations
            with pytest.raises(RigBusy) as ei:
                with hold_places(two_places, place="rig=bench4s", wait_s=5, clock=StepClock()):
                    pytest.fail("a third job ran on a held place")
            assert "bench-a (acquired by" in str(ei.value) and "bench-b (acquired by" in str(ei.value)
            assert ei.value.exit_code == 3
    assert holder(session, "bench-a") is None and holder(session, "bench-b") is None
    assert "Reservation" not in client(coordinator, "reservations")  # every reservation cancelled


def test_lock_wait_queues_through_a_reservation_until_the_holder_releases(place, session, coordinator):
    """Another job holds the place; a run with --lock-wait reserves it, and acquires it once
    the holder releases (here after the run's clock moved 3 s)."""
    client(coordinator, "-p", "bench-a", "acquire", user="ci-job-2")
    clock = StepClock()
    reservations = []

    def other_job_finishes(t0, t1):
        if t1 >= 3.0 and holder(session):
            reservations.append(client(coordinator, "reservations"))
            client(coordinator, "-p", "bench-a", "release", user="ci-job-2")

    clock.on_step.append(other_job_finishes)
    with hold_places(place, wait_s=30, clock=clock) as hold:
        assert hold.how == {"bench-a": "acquired"} and holder(session) == me(session)
        assert 3.0 <= clock.now() < 30
    assert "state: waiting" in reservations[0] and "name: bench-a" in reservations[0].replace("=", ": ")
    assert holder(session) is None and "Reservation" not in client(coordinator, "reservations")


def test_lock_wait_expires_with_exit_3_naming_the_holder(place, session, coordinator):
    client(coordinator, "-p", "bench-a", "acquire", user="ci-job-2")
    clock = StepClock()
    with pytest.raises(RigBusy, match="ci-job-2") as ei:
        with hold_places(place, wait_s=4, clock=clock):
            pytest.fail("ran on a place another job holds")
    assert ei.value.exit_code == 3 and clock.now() == pytest.approx(4.0)
    assert holder(session).endswith("/ci-job-2") and "Reservation" not in client(coordinator, "reservations")


def test_two_runs_of_one_host_and_user_are_kept_apart(place, session):
    """labgrid sees one holder (host/user) for both; the host lock keeps the second out."""
    with hold_places(place) as first:
        assert first.how == {"bench-a": "acquired"}
        with pytest.raises(RigBusy, match=f"pid {os.getpid()}"):
            with hold_places(place):
                pytest.fail("a second run of this host and user shared the place")
        assert first.lost() is None
    assert holder(session) is None


def test_a_place_lost_mid_run_is_noticed_and_not_released(place, session, coordinator):
    """Another job kicks the run off its place and takes it: the hold says so; the end of the
    run leaves the place with its new holder."""
    with hold_places(place) as hold:
        assert hold.lost() is None
        client(coordinator, "-p", "bench-a", "release", "--kick", user="ci-job-3")
        client(coordinator, "-p", "bench-a", "acquire", user="ci-job-3")
        WallClock().wait_until(lambda: hold.lost() is not None, 10, "the place watch noticing", poll=0.05)
        assert "bench-a" in hold.lost() and "ci-job-3" in hold.lost()
    assert holder(session).endswith("/ci-job-3")


def test_a_place_released_and_reacquired_by_the_same_user_is_lost(place, session, coordinator):
    """A second job of the same user releasing the place and acquiring it again looks like the
    same holder to labgrid; the watch saw the release."""
    with hold_places(place) as hold:
        client(coordinator, "-p", "bench-a", "release", user=session.getuser())
        client(coordinator, "-p", "bench-a", "acquire", user=session.getuser())
        WallClock().wait_until(lambda: hold.lost() is not None, 10, "the place watch noticing", poll=0.05)
        assert "released" in hold.lost()


def test_place_of_a_reservation_token_made_by_the_ci_script(two_places, session, coordinator, monkeypatch):
    """``labgrid-client reserve --shell`` in the CI script, then ``--place +`` (LG_TOKEN): the
    run acquires the place allocated to that reservation and leaves the reservation to the script."""
    out = client(coordinator, "reserve", "--shell", "name=bench-b", user=session.getuser())
    token = out.strip().split("LG_TOKEN=")[1]
    monkeypatch.setenv("LG_TOKEN", token)
    with hold_places(two_places, place="+", wait_s=5, clock=StepClock()) as hold:
        assert hold.places == {"bench-a": "bench-b"} and hold.reservations == {}
        assert holder(session, "bench-b") == me(session)
    assert holder(session, "bench-b") is None and token in client(coordinator, "reservations")


def test_a_reservation_token_still_waiting_after_the_wait_is_exit_3(place, session, coordinator, monkeypatch):
    client(coordinator, "-p", "bench-a", "acquire", user="ci-job-2")
    out = client(coordinator, "reserve", "--shell", "name=bench-a", user=session.getuser())
    token = out.strip().split("LG_TOKEN=")[1]
    with pytest.raises(RigBusy, match=f"reservation {token}.*still waiting.*name=bench-a"):
        with hold_places(place, place=f"+{token}", wait_s=3, clock=StepClock()):
            pytest.fail("ran without the reservation's place")
    assert token in client(coordinator, "reservations")  # the CI script's reservation is left to it
