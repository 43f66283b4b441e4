"""CanBmsLink: reference DBC through its signal map, a foreign DBC layout, faults, waits."""

from __future__ import annotations

import can
import cantools
import numpy as np
import pytest

from rig.errors import LinkFault, WaitTimeout
from rig.links.can_link import CanBmsLink
from rig.sim.can_tx import CanTransmitter

from .conftest import OBX_DBC, OBX_MAP, REF_DBC, REF_MAP, SimBoard, make_telemetry


def ref_link(can_bus, clock, n, **kw):
    return CanBmsLink("dut", can_bus, REF_DBC, REF_MAP, n, clock, **kw)


@pytest.mark.parametrize("n", [4, 16, 32, 64])
def test_reference_roundtrip_every_field(can_bus, channel, clock, n):
    link = ref_link(can_bus, clock, n)
    tx = CanTransmitter(REF_DBC, channel, n)
    rng = np.random.default_rng(n)
    tel = make_telemetry(
        n, cell_v=rng.uniform(2.5, 3.65, n), temps_c=rng.uniform(-20, 60, n + 1),
        balancing=rng.random(n) < 0.5, hvc=True, lvc=False, ot=True, ut=False,
        charge_fet=False, discharge_fet=True, pack_v=3.3 * n, pack_a=-42.17, state="float",
    )
    tx.send(1.5, tel)
    s = link.latest()
    assert s.t == 1.5
    np.testing.assert_allclose(s.cell_v, tel.cell_v, atol=0.051e-3)   # 0.1 mV LSB
    np.testing.assert_allclose(s.temps_c, tel.temps_c, atol=0.051)     # 0.1 degC LSB
    assert len(s.temps_c) == n + 1
    np.testing.assert_array_equal(s.balancing, tel.balancing)
    assert (s.flags.hvc, s.flags.lvc, s.flags.ot, s.flags.ut) == (True, False, True, False)
    assert (s.charge_fet, s.discharge_fet) == (False, True)
    assert s.pack_v == pytest.approx(3.3 * n, abs=0.005)
    assert s.pack_a == pytest.approx(-42.17, abs=0.005)
    assert s.state == "float"
    ident = link.identity()
    assert (ident.serial, ident.hw_revision, ident.fw_version) == ("REF16-000123", "C", "2.3.1")
    link.close()
    tx.close()


def test_multiplexed_frame_and_dbc_scaling_by_hand(can_bus, sender, clock):
    """A single hand-made CellVoltages frame: mux 5 carries cells 16..18, raw 0.1 mV."""
    link = ref_link(can_bus, clock, 18)
    db = cantools.database.load_file(str(REF_DBC))
    # everything else first, from the transmitter's encoding of a known telemetry
    tx = CanTransmitter(REF_DBC, "unused-" + str(id(link)), 18)
    frames = tx.encode(0.0, make_telemetry(18))
    tx.close()
    for fid, data in frames:
        if fid == 0x110 and data[0] == 5:
            continue  # leave out group 5; send it by hand below
        if fid == 0x100:
            continue
        sender.send(can.Message(arbitration_id=fid, data=data, is_extended_id=False, timestamp=0.0))
    raw = bytes([5]) + (33000).to_bytes(2, "little") + (36555).to_bytes(2, "little") + (25000).to_bytes(2, "little") + b"\0"
    assert db.decode_message(0x110, raw) == {"CellGroup": 5, "Cell16_Voltage": pytest.approx(3.3),
                                             "Cell17_Voltage": pytest.approx(3.6555), "Cell18_Voltage": pytest.approx(2.5)}
    sender.send(can.Message(arbitration_id=0x110, data=raw, is_extended_id=False, timestamp=0.1))
    status = [d for fid, d in frames if fid == 0x100][0]
    sender.send(can.Message(arbitration_id=0x100, data=status, is_extended_id=False, timestamp=0.2))
    s = link.latest()
    np.testing.assert_allclose(s.cell_v[15:18], [3.3, 3.6555, 2.5], atol=1e-9)
    np.testing.assert_allclose(s.cell_v[:15], make_telemetry(18).cell_v[:15], atol=1e-9)
    assert s.t == 0.2


def obx_frames(db, tel, n=16, hw=7, serial=4711):
    """The OBX board's firmware: its own layout, encoded with cantools."""
    out = []
    for k in range(4):
        m = db.get_message_by_name(f"OBX_Cells{4 * k + 1}_{4 * k + 4}")
        out.append((m.frame_id, m.encode({f"Cell{4 * k + j + 1}_mV": round(tel.cell_v[4 * k + j] * 1000) for j in range(4)})))
    m = db.get_message_by_name("OBX_Temps")
    out.append((m.frame_id, m.encode({f"Ntc{j + 1}": round(tel.temps_c[j]) for j in range(8)})))
    m = db.get_message_by_name("OBX_Balance")
    out.append((m.frame_id, m.encode({f"Bal_{i + 1:02d}": int(tel.balancing[i]) for i in range(n)})))
    m = db.get_message_by_name("OBX_Info")
    out.append((m.frame_id, m.encode({"SerialNo": serial, "HwRev": hw, "FwMajor": 1, "FwMinor": 12, "FwPatch": 0})))
    m = db.get_message_by_name("OBX_Summary")
    flags = tel.hvc | tel.lvc << 1 | tel.ot << 2 | tel.ut << 3
    out.append((m.frame_id, m.encode({
        "ProtFlags": flags, "ChgFetOpen": int(not tel.charge_fet), "DsgFetOpen": int(not tel.discharge_fet),
        "PackVolt_dV": round(tel.pack_v * 10), "PackCurr": tel.pack_a, "HeatsinkTemp": round(tel.temps_c[-1]),
        "Mode": 2,
    })))
    return out


def test_foreign_layout_from_signal_map_alone(can_bus, sender, clock):
    """Extended IDs, Motorola signals, mV cells 4 per frame, bit-per-cell balancing,
    flags in a bitmask, inverted FETs, numeric identity with format strings."""
    db = cantools.database.load_file(str(OBX_DBC))
    link = CanBmsLink("obx", can_bus, OBX_DBC, OBX_MAP, 16, clock, timeout_s=None)
    assert link.timeout_s == 3.0  # from the map
    bal = np.zeros(16, bool)
    bal[[0, 5, 15]] = True
    tel = make_telemetry(16, cell_v=np.round(np.linspace(3.1, 3.6, 16), 3), temps_c=np.r_[np.arange(8) + 20.0, 67.0],
                         balancing=bal, hvc=False, lvc=True, ot=False, ut=True, charge_fet=False, discharge_fet=True,
                         pack_v=52.8, pack_a=-3.4)
    for fid, data in obx_frames(db, tel):
        sender.send(can.Message(arbitration_id=fid, data=data, is_extended_id=True, timestamp=5.0))
    s = link.latest()
    np.testing.assert_allclose(s.cell_v, tel.cell_v, atol=1e-9)
    np.testing.assert_allclose(s.temps_c, tel.temps_c, atol=1e-9)  # 8 NTCs + heatsink, 1 degC offset -40
    np.testing.assert_array_equal(s.balancing, bal)
    assert (s.flags.hvc, s.flags.lvc, s.flags.ot, s.flags.ut) == (False, True, False, True)
    assert (s.charge_fet, s.discharge_fet) == (False, True)  # inverted in the DBC, un-inverted by the map
    assert s.pack_v == pytest.approx(52.8)                   # map scale 0.1 on a raw DBC signal
    assert s.pack_a == pytest.approx(-3.4)
    assert s.state == "discharge"
    ident = link.identity()
    assert (ident.serial, ident.hw_revision, ident.fw_version) == ("OBX00004711", "rev7", "1.12.0")


def test_silence_is_a_link_fault_naming_what_was_expected(can_bus, clock):
    link = ref_link(can_bus, clock, 16, timeout_s=2.0, poll_s=0.5)
    with pytest.raises(LinkFault) as ei:
        link.latest()
    msg = str(ei.value)
    assert "dut" in msg and "no CAN frames" in msg and "BMS_Status" in msg and "BMS_CellVoltages" in msg
    assert clock.now() == pytest.approx(2.0)  # waited the timeout on the rig clock, not longer


def test_missing_message_is_named(can_bus, channel, clock):
    """Status arrives but the cell-voltage frames never do."""
    link = ref_link(can_bus, clock, 16, timeout_s=1.0)
    tx = CanTransmitter(REF_DBC, channel, 16)
    board = SimBoard(clock, tx)
    board.telemetry = make_telemetry(16)
    tx_send = tx.bus.send
    tx.bus.send = lambda m, timeout=None: None if m.arbitration_id == 0x110 else tx_send(m)
    with pytest.raises(LinkFault) as ei:
        link.latest()
    assert "never received: BMS_CellVoltages" in str(ei.value)
    assert "Cell1_Voltage" in str(ei.value)
    tx.close()


def test_stale_message_stops_samples(can_bus, channel, clock):
    """Temperatures stop while status keeps coming: samples stop and the fault says why."""
    link = ref_link(can_bus, clock, 8, timeout_s=1.0, poll_s=0.25)
    tx = CanTransmitter(REF_DBC, channel, 8)
    board = SimBoard(clock, tx)
    board.telemetry = make_telemetry(8)
    clock.sleep(1.0)
    assert link.latest().t == pytest.approx(1.0)
    tx_send = tx.bus.send
    tx.bus.send = lambda m, timeout=None: None if m.arbitration_id == 0x120 else tx_send(m)
    clock.sleep(3.0)
    with pytest.raises(LinkFault) as ei:
        link.latest()
    assert "BMS_Temperatures page 0 is older than" in str(ei.value)  # staleness per page
    tx.close()


def test_listener_history_and_wait_for_catches_a_pulse(can_bus, channel, clock):
    link = ref_link(can_bus, clock, 16, poll_s=1.0)
    tx = CanTransmitter(REF_DBC, channel, 16)
    board = SimBoard(clock, tx, period=0.25)
    board.telemetry = make_telemetry(16)
    clock.sleep(1.0)                       # the clock listener pumps: no explicit call
    assert len(link.history()) == 5        # t = 0, .25, .5, .75, 1.0
    # an HVC pulse 0.25 s long between two 1 s polls
    board.schedule += [(2.25, {"hvc": True}), (2.5, {"hvc": False})]
    s = link.wait_for(lambda s: s.flags.hvc, timeout=5.0, what="HVC flag")
    assert s.t == pytest.approx(2.25)
    assert [x.t for x in link.history(since=2.0)][:3] == pytest.approx([2.0, 2.25, 2.5])
    with pytest.raises(WaitTimeout) as ei:
        link.wait_for(lambda s: s.flags.lvc, timeout=2.0, what="LVC flag")
    assert "LVC flag" in str(ei.value) and "last sample" in str(ei.value)
    # the board goes silent mid-wait: a rig fault, not a board failure
    board.silent = True
    with pytest.raises(LinkFault):
        link.wait_for(lambda s: s.flags.lvc, timeout=30.0, what="LVC flag")
    tx.close()


def test_history_is_bounded_and_frame_time_applies(can_bus, channel, clock):
    link = CanBmsLink("dut", can_bus, REF_DBC, REF_MAP, 4, clock, history_len=10, frame_time=lambda ts: ts - 100.0)
    tx = CanTransmitter(REF_DBC, channel, 4)
    for k in range(25):
        tx.send(100.0 + k, make_telemetry(4))
    link.pump()
    h = link.history(since=-1e9, require_coverage=False)  # what is held, not evidence
    assert len(h) == 10 and link.sample_count == 25
    assert h[-1].t == 24.0 and h[0].t == 15.0
    tx.close()


def test_bus_error_is_a_link_fault(clock):
    class BrokenBus:
        channel_info = "broken0"

        def recv(self, timeout=None):
            raise can.CanOperationError("controller is bus-off")

    link = CanBmsLink("dut", BrokenBus(), REF_DBC, REF_MAP, 4, clock)
    with pytest.raises(LinkFault, match="bus-off"):
        link.pump()
    with pytest.raises(LinkFault, match="broken0"):
        clock.sleep(0.1)  # the listener pumps too


def test_garbled_frame_is_counted_not_fatal(can_bus, sender, channel, clock):
    link = ref_link(can_bus, clock, 4)
    sender.send(can.Message(arbitration_id=0x110, data=b"\x05\x01", is_extended_id=False, timestamp=0.0))
    tx = CanTransmitter(REF_DBC, channel, 4)
    tx.send(0.1, make_telemetry(4))
    assert link.latest().t == 0.1
    assert link.decode_errors == 1
    tx.close()


def test_identity_missing_is_a_link_fault(can_bus, channel, clock):
    link = ref_link(can_bus, clock, 4, timeout_s=1.0)
    tx = CanTransmitter(REF_DBC, channel, 4)
    tx_send = tx.bus.send
    tx.bus.send = lambda m, timeout=None: None if m.arbitration_id == 0x130 else tx_send(m)
    tx.send(0.0, make_telemetry(4))
    assert link.latest()
    with pytest.raises(LinkFault, match="identity not received.*Serial_Part0"):
        link.identity()
    tx.close()


def test_close_unregisters_listener_and_can_own_the_bus(channel, clock):
    bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    link = CanBmsLink("dut", bus, REF_DBC, REF_MAP, 4, clock, own_bus=True)
    assert link._on_clock in clock._listeners
    link.close()
    assert link._on_clock not in clock._listeners
    with pytest.raises(can.CanOperationError):
        bus.recv(0)
