"""A CAN board through a place: the virtual bench's board reaches the rig's CAN link over the
exporter's socketcand bridge (client -> bridge -> the exporter host's bus -> bridge -> client),
the bridge counting the frames it relayed."""

from __future__ import annotations

import re
import subprocess
import sys

import can
import pytest

import rig.labgrid  # noqa: F401  (the project resource classes)
from rig.build import ENV_DIR, build_rig
from rig.can_bridge import CanBridge, frame_text
from rig.clock import WallClock
from rig.errors import LinkFault
from rig.profile import load_profile

WAIT_S = 10.0  # wall-clock bound for a frame to cross the loopback bridge, s
BOARD = "reference-16s-lfp"  # a CAN board (DBC + signal map)


@pytest.fixture
def bridge():
    b = CanBridge.for_interface("virtual", f"vcan-place-{id(object()):x}", host="127.0.0.1").start()
    yield b
    b.stop()


def bench_on_port(tmp_path, port_line: str):
    """The virtual bench's rig file with its board's CAN link on ``port_line`` (a CANPort)."""
    text = (ENV_DIR / "sim.yaml").read_text()
    env = tmp_path / "bench-on-can-port.yaml"
    env.write_text(text.replace("BenchPort: {}", port_line).replace("BenchLinkDriver: {}", "LinkDriver: {}"))
    return env


def sample_times(env, seconds: float) -> tuple[list[float], object]:
    """Rig times (s) of the link's samples over the first ``seconds`` of a fresh bench, and
    the open link (closed since)."""
    rig = build_rig(env, load_profile(BOARD))
    try:
        rig.link.identity()
        rig.clock.sleep(seconds)
        return [s.t for s in rig.link.history(0.0, seconds, require_coverage=False)], rig.link.link
    finally:
        rig.close()


def test_a_stamp_whose_microseconds_round_up_carries_into_the_second():
    msg = can.Message(arbitration_id=0x100, data=b"\x01", is_extended_id=False, timestamp=12.9999996)
    assert frame_text(msg) == "< frame 100 13.000000 01 >"


def test_the_bridge_counts_the_frames_it_relays(bridge):
    """20 frames from one client to two listeners: 20 onto the bus, 40 out to clients."""
    def open_client():
        return can.Bus(interface="socketcand", host="127.0.0.1", port=bridge.port, channel=bridge.channel)

    sender, first, second = open_client(), open_client(), open_client()
    try:
        for k in range(20):
            sender.send(can.Message(arbitration_id=0x200 + k, data=bytes([k]), is_extended_id=False))
        got = {first: [], second: []}

        def all_back():
            for bus, frames in got.items():
                while (m := bus.recv(0.01)) is not None:
                    frames.append(m)
            return all(len(frames) >= 20 for frames in got.values())

        WallClock().wait_until(all_back, WAIT_S, "20 frames at both listeners", poll=0.01)
        assert [m.arbitration_id for m in got[first]] == [0x200 + k for k in range(20)]
        assert [m.arbitration_id for m in got[second]] == [0x200 + k for k in range(20)]
        assert bridge.frames_in == 20 and bridge.frames_out == 40
    finally:
        for bus in (sender, first, second):
            bus.shutdown()


def test_the_bench_board_on_a_served_can_port_reads_as_on_the_bench(tmp_path, bridge):
    """A rig with a SimBench whose CAN port is a socketcand bridge: the board's frames go over
    the bridge and back; the link's samples carry the same board times as on the local bench."""
    env = bench_on_port(tmp_path, f"CANPort: {{interface: socketcand, channel: {bridge.channel}, "
                                  f"host: 127.0.0.1, port: {bridge.port}}}")
    over_bridge, link = sample_times(env, 30.0)
    local, _ = sample_times(ENV_DIR / "sim.yaml", 30.0)
    assert len(over_bridge) > 10 and over_bridge == pytest.approx(local, abs=1e-6)
    # every frame the board put on the bridge came back (one client listens), and the link read them all
    assert bridge.frames_in > 0 and bridge.frames_out == bridge.frames_in
    assert link.frames_received == bridge.frames_in


def test_the_bench_board_cannot_reach_an_absent_bridge_is_a_rig_fault(tmp_path):
    env = bench_on_port(tmp_path, "CANPort: {interface: socketcand, channel: vcan-x, host: 127.0.0.1, port: 9}")
    rig = build_rig(env, load_profile(BOARD))
    try:
        with pytest.raises(LinkFault, match="socketcand:vcan-x.*cannot reach the network CAN bus"):
            rig.link.latest()
    finally:
        rig.close()


EXPORTED_CAN_BENCH = """
{place}:
  bench:
    cls: SimBench
    ambient_c: 25.0
  can:
    cls: CANPort
    interface: virtual
    channel: vcan-{place}
"""


def measurements(record) -> list[tuple]:
    """(name, value, verdict, rig time) of every measurement of a record."""
    return [(e["name"], e["value"], e["verdict"], e["t_rig"]) for e in record if e["event"] == "measurement"]


def bridge_counts(exporter_log) -> list[tuple[int, int]]:
    """(frames from clients, frames to clients) of every bridge the exporter stopped (its log)."""
    return [(int(a), int(b)) for a, b in
            re.findall(r"CAN bridge \S+ on port \d+: (\d+) frames from clients onto the bus, (\d+) frames to clients",
                       exporter_log.read_text())]


@pytest.mark.slow
def test_bmsrig_run_reaches_the_can_board_through_the_exporters_bridge(coordinator, exporter, session, tmp_path):
    """``bmsrig run`` on a place serving a SimBench and a CANPort: the run acquires the place,
    the exporter starts its socketcand bridge, the bench board's frames cross it both ways,
    the plan passes on those samples, and the bridge counted them."""
    from .conftest import ROOT, _env
    from .test_places import client, holder, read_record

    proc = exporter("rig-c", EXPORTED_CAN_BENCH.format(place="bench-can"))
    session.wait_resources("rig-c", 2, proc)
    client(coordinator, "-p", "bench-can", "create")
    client(coordinator, "-p", "bench-can", "add-match", "rig-c/bench-can/*")
    env = tmp_path / "shared-can-bench.yaml"
    env.write_text((ENV_DIR / "example-shared-bench-can.yaml").read_text()
                   .replace("coordinator_address: 127.0.0.1:20408", f"coordinator_address: {coordinator}"))
    run = subprocess.run([sys.executable, "-m", "rig.cli", "run", "--rig", str(env), "--board", BOARD,
                          "--out", str(tmp_path / "run"), "test_channel_mapping.py"], capture_output=True, text=True,
                         cwd=ROOT, env=_env(), timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert holder(session, "bench-can") is None  # released: the exporter stopped its bridge

    start = next(e for e in read_record(tmp_path / "run") if e["event"] == "run_start")
    assert start["context"]["rig"]["labgrid"]["places"][0]["name"] == "bench-can"
    identity = next(e for e in read_record(tmp_path / "run") if e["event"] == "dut_identity")
    assert identity["serial"] == load_profile(BOARD).bench.serial and identity["identity_source"]["serial"] == "board"
    through_place = measurements(read_record(tmp_path / "run"))
    assert through_place and {m[2] for m in through_place} == {"pass"}
    local = subprocess.run([sys.executable, "-m", "rig.cli", "run", "--board", BOARD, "--out", str(tmp_path / "local"),
                            "test_channel_mapping.py"], capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=600)
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    assert through_place == measurements(read_record(tmp_path / "local"))  # the same samples as on the local bench
    WallClock().wait_until(lambda: bool(bridge_counts(proc.log)), WAIT_S, "the bridge's counts in the exporter log",
                           poll=0.05)
    (frames_in, frames_out), = bridge_counts(proc.log)
    # every frame the board put on the bridge came back out of it to the run
    assert frames_in > 0 and frames_out == frames_in
