"""CAN as a network CAN port: the simulated board's bus served in the socketcand protocol by
rig.can_bridge, reached by python-can's own ``socketcand`` interface — in-process, and
through bmsrig-exporter when a place with a CANPort is acquired."""

from __future__ import annotations

import types

import can
import numpy as np
import pytest

import rig.labgrid  # noqa: F401  (the project resource classes)
from rig.can_bridge import CanBridge, frame_text, parse_send
from rig.clock import WallClock
from rig.links.kinds.can import open_link
from rig.links.registry import Endpoint
from rig.profile import load_profile
from rig.sim.can_tx import CanTransmitter

WAIT_S = 10.0  # wall-clock bound for frames to cross the loopback TCP bridge, s


def telemetry(n: int, volts: float):
    return types.SimpleNamespace(
        cell_v=np.full(n, volts), temps_c=np.full(n + 1, 25.0), balancing=np.zeros(n, bool), hvc=False, lvc=False,
        ot=False, ut=False, charge_fet=True, discharge_fet=True, pack_v=volts * n, pack_a=0.0,
        serial="BENCH-000042", hw_revision="C", fw_version="2.3.1", state="idle")


@pytest.fixture
def bridge():
    channel = f"bench-bridge-{id(object()):x}"
    b = CanBridge.for_interface("virtual", channel, host="127.0.0.1").start()
    yield b
    b.stop()


def test_frames_in_the_socketcand_wire_format():
    msg = can.Message(arbitration_id=0x1AB, data=b"\x01\x02\xff", is_extended_id=False, timestamp=12.5)
    assert frame_text(msg) == "< frame 1AB 12.500000 0102FF >"
    ext = can.Message(arbitration_id=0x18FF50E5, data=b"", is_extended_id=True, timestamp=1.0)
    assert frame_text(ext) == "< frame 18FF50E5 1.000000  >"
    sent = parse_send(["18FF50E5", "3", "1", "a", "ff"], fd=False)
    assert sent.is_extended_id and sent.arbitration_id == 0x18FF50E5 and bytes(sent.data) == b"\x01\x0a\xff"
    with pytest.raises(ValueError, match="classic CAN"):
        parse_send(["123", "C"] + ["0"] * 12, fd=False)
    assert parse_send(["123", "C"] + ["1"] * 12, fd=True).is_fd


def test_a_link_reaches_the_simulated_board_through_the_bridge(bridge):
    """The reference board transmits on the bench's (virtual) bus behind the bridge; the rig's
    CAN link, opened on a ``socketcand`` endpoint, decodes its cells and identity."""
    profile = load_profile("reference-16s-lfp")
    board = CanTransmitter(profile.resolve(profile.link.dbc), bridge.channel, profile.cells,
                           signal_map_path=profile.resolve(profile.link.signal_map))
    endpoint = Endpoint(address=bridge.channel, interface="socketcand",
                        options=(("host", "127.0.0.1"), ("port", bridge.port)))
    clock = WallClock()
    link = open_link(profile, endpoint, clock)
    try:
        assert link.name == f"CAN socketcand:{bridge.channel}"
        clock.wait_until(lambda: (board.send(clock.now(), telemetry(profile.cells, 3.301)) >= 0
                                  and link.pump() >= 0 and link.sample_count > 0), WAIT_S,
                         "a decoded sample through the bridge", poll=0.05)
        sample = link.latest()
        assert sample.cell_v.shape == (profile.cells,) and np.allclose(sample.cell_v, 3.301, atol=0.002)
    finally:
        link.close()
        board.close()


def test_frames_from_the_client_reach_the_bus_and_a_wrong_channel_is_refused(bridge):
    listener = can.Bus(interface="virtual", channel=bridge.channel)
    client = can.Bus(interface="socketcand", host="127.0.0.1", port=bridge.port, channel=bridge.channel)
    try:
        client.send(can.Message(arbitration_id=0x321, data=b"\x11\x22", is_extended_id=False))
        got = []
        WallClock().wait_until(lambda: bool(got.append(listener.recv(0.05)) or [m for m in got if m]), WAIT_S,
                               "the client's frame on the bus", poll=0.05)
        frame = next(m for m in got if m)
        assert frame.arbitration_id == 0x321 and bytes(frame.data) == b"\x11\x22"
    finally:
        client.shutdown()
        listener.shutdown()
    with pytest.raises(can.CanError, match="serves"):
        can.Bus(interface="socketcand", host="127.0.0.1", port=bridge.port, channel="can7")


def test_canport_gains_fd_and_socketcand_settings():
    from labgrid.factory import target_factory

    cls = target_factory.resources["CANPort"]
    fd = cls(target=None, name=None, interface="pcan", channel="PCAN_USBBUS1", bitrate=500000, fd="true",
             data_bitrate=2000000)
    assert fd.bus_options() == {"fd": True, "data_bitrate": 2000000}
    remote = cls(target=None, name=None, interface="socketcand", channel="can0", host="rig-a.lab", port="29536")
    assert remote.bus_options() == {"host": "rig-a.lab", "port": 29536}
    with pytest.raises(ValueError, match="needs the bridge's host and port"):
        cls(target=None, name=None, interface="socketcand", channel="can0")
    with pytest.raises(ValueError, match="set fd: true"):
        cls(target=None, name=None, interface="pcan", channel="x", data_bitrate=2000000)


def test_exporter_starts_the_bridge_when_the_place_is_acquired(coordinator, exporter, session, tmp_path):
    """bmsrig-exporter serves its CANPort as a socketcand bridge while the place is held:
    two clients on it see each other's frames over the exporter host's bus."""
    from rig.places import hold_places

    from .test_places import client

    proc = exporter("rig-c", "bench-c:\n  can:\n    cls: CANPort\n    interface: virtual\n    channel: vcan-rig-c\n")
    session.wait_resources("rig-c", 1, proc)
    client(coordinator, "-p", "bench-c", "create")
    client(coordinator, "-p", "bench-c", "add-match", "rig-c/bench-c/*")
    env = tmp_path / "rig.yaml"
    env.write_text(f"options:\n  coordinator_address: {coordinator}\ntargets:\n  main:\n    resources:\n"
                   f"      RemotePlace:\n        name: bench-c\n")
    with hold_places(env):
        def served():
            session.loop.run_until_complete(session.sync_with_coordinator())
            return session.resources["rig-c"]["bench-c"]["can"].args.get("interface") == "socketcand"

        WallClock().wait_until(served, WAIT_S, "the exporter's bridge", poll=0.05)
        args = session.resources["rig-c"]["bench-c"]["can"].args
        a, b = (can.Bus(interface="socketcand", host="127.0.0.1", port=args["port"], channel="vcan-rig-c")
                for _ in range(2))
        try:
            a.send(can.Message(arbitration_id=0x7E0, data=b"\x02\x10\x03", is_extended_id=False))
            got = []
            WallClock().wait_until(lambda: bool(got.append(b.recv(0.05)) or [m for m in got if m]), WAIT_S,
                                   "a frame across the exporter's bus", poll=0.05)
            frame = next(m for m in got if m)
            assert frame.arbitration_id == 0x7E0 and bytes(frame.data) == b"\x02\x10\x03"
        finally:
            a.shutdown()
            b.shutdown()
    WallClock().wait_until(lambda: not served(), WAIT_S, "the bridge stopped on release", poll=0.05)
