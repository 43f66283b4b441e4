"""A run holds its rig's labgrid places through a real coordinator (rig.places.hold_places)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

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


@pytest.fixture
def place(coordinator, exporter, session, tmp_path):
    """Place ``bench-a`` matching exporter rig-a's resources; returns the rig file naming it."""
    proc = exporter("rig-a", EXPORTED)
    session.wait_resources("rig-a", 2, proc)
    client(coordinator, "-p", "bench-a", "create")
    client(coordinator, "-p", "bench-a", "add-match", "rig-a/bench-a/*")
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
        assert info == {"coordinator": None, "places": {}}


def test_run_acquires_and_releases_its_place(place, session, coordinator):
    assert holder(session) is None
    with hold_places(place) as info:
        assert info == {"coordinator": coordinator, "places": {"bench-a": "acquired"}}
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
        assert info["places"] == {"bench-a": "already held"}
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


@pytest.mark.slow
def test_bmsrig_run_holds_the_place_for_the_run(place, session, tmp_path):
    """``bmsrig run`` on the virtual bench served through a place: acquired, the plan passes, released."""
    env = _shared_bench(place, tmp_path)
    proc = _bmsrig_run(env, tmp_path / "run", "test_channel_mapping.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert holder(session) is None


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
    with hold_places(place):
        assert holder(session)
        first = opened[0]
        first.loop.run_until_complete(first.stop())  # the stream ends
        first.stopping.set()
    assert len(opened) == 2 and holder(session) is None
