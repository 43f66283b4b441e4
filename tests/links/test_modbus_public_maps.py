"""Register maps of real battery boards, written from their public protocol documents
(tests/links/public_modbus/README.md): ``bmsrig check`` accepts each map and profile, and
real RTU frames (pymodbus) on a pty carrying the document's example words decode to the
values the document states, on the right cells, roles and flags."""

from __future__ import annotations

import numpy as np
import pytest

from rig.check import check_profile_links
from rig.errors import LinkFault
from rig.links.modbus_link import ModbusBmsLink
from rig.profile import load_profile
from rig.sim.modbus_slave import ModbusSlave

from .conftest import make_telemetry

HERE = __import__("pathlib").Path(__file__).parent / "public_modbus"
SEPLOS_MAP = HERE / "seplos-v3-modbus.yaml"
SEPLOS = HERE / "seplos-v3-16s-lfp.yaml"

# The document's section 5 worked examples (device 0x00), register words as printed.
SEPLOS_PIA = [0x14A1, 0x0000, 0x4E20, 0x4E20, 0x0000, 0x03E8, 0x03E8, 0x0000, 0x0CE4, 0x0B80, 0x0CE6,
              0x0CE4, 0x0B82, 0x0B7F, 0x0000, 0x00B4, 0x00B4, 0x03E8]
SEPLOS_PIB = [0x0CE6, 0x0CE4, 0x0CE5, 0x0CE4, 0x0CE4, 0x0CE5, 0x0CE5, 0x0CE4, 0x0CE4, 0x0CE4, 0x0CE5, 0x0CE5,
              0x0CE4, 0x0CE5, 0x0CE4, 0x0CE4, 0x0B81, 0x0B82, 0x0B7F, 0x0B7F, 0x0AAB, 0x0AAB, 0x0AAB, 0x0AAB,
              0x0B91, 0x0B83]
SEPLOS_PIC = [0x00] * 8 + [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00]  # 18 bytes = 144 coils


def coils(data: bytes | list[int]) -> list[int]:
    """Modbus coil bits of response bytes: the first coil is bit 0 of the first byte."""
    return [(b >> k) & 1 for b in data for k in range(8)]


def seplos_board(refuse_partial=None):
    profile = load_profile(SEPLOS)
    s = ModbusSlave(SEPLOS_MAP, 16, unit_id=0, temperature_roles=profile.temperatures,
                    refuse_partial=refuse_partial).start()
    return profile, s


def test_seplos_profile_and_map_pass_check():
    profile = load_profile(SEPLOS)
    assert check_profile_links(profile) == []
    assert profile.link.unit_id == 0 and profile.link.baudrate == 19200


def test_seplos_worked_example_decodes_as_the_document_states(clock):
    """The PIA/PIB/PIC replies of section 5, served raw at device 0, read whole as the document reads them."""
    _profile, board = seplos_board(refuse_partial=2)
    link = ModbusBmsLink("seplos", board.port, SEPLOS_MAP, 16, clock, unit_id=0, baudrate=19200,
                         response_timeout_s=0.3)
    try:
        board.set_raw(4, 0x1000, SEPLOS_PIA)
        board.set_raw(4, 0x1100, SEPLOS_PIB)
        board.set_raw(1, 0x1200, coils(SEPLOS_PIC))
        s = link.latest()
        mv = [3302, 3300, 3301, 3300, 3300, 3301, 3301, 3300, 3300, 3300, 3301, 3301, 3300, 3301, 3300, 3300]
        assert np.allclose(s.cell_v, np.array(mv) / 1000.0)
        # cell NTCs 21.4 21.5 21.2 21.2 degC, ambient 23.0, power 21.6 (2945 - 2731 = 21.4 ...)
        assert np.allclose(s.temps_c, [21.4, 21.5, 21.2, 21.2, 23.0, 21.6], atol=1e-6)
        assert s.pack_v == pytest.approx(52.81) and s.pack_a == pytest.approx(0.0)
        assert s.charge_fet and s.discharge_fet                        # FET event code 03
        assert not any((s.flags.hvc, s.flags.lvc, s.flags.ot, s.flags.ut)) and not s.balancing.any()
        assert s.state == "rest"                                       # system state code 0x10: standby
        # the three reads are the document's own: 0x12 input registers, 0x1A registers, 0x90 coils
        reads = sorted((r.function, r.start, r.count) for r in link.plan.sample_reads)
        assert reads == [(1, 0x1200, 0x90), (4, 0x1000, 0x12), (4, 0x1100, 0x1A)]
    finally:
        link.close()
        board.close()


def test_seplos_alarm_and_balancing_coils_land_on_their_flags_and_cells(clock):
    _profile, board = seplos_board()
    link = ModbusBmsLink("seplos", board.port, SEPLOS_MAP, 16, clock, unit_id=0, response_timeout_s=0.3)
    try:
        board.set_raw(4, 0x1000, SEPLOS_PIA)
        board.set_raw(4, 0x1100, SEPLOS_PIB)
        pic = list(SEPLOS_PIC)
        pic[6], pic[7] = 0x05, 0x80    # balancing: cells 1 and 3 (0x1230..), cell 16 (0x1238 bit 7)
        pic[9] = 0x02                  # voltage events bit 1: cell over-voltage protection
        pic[10] = 0x20                 # cell temperature events bit 5: discharge over-temperature protection
        pic[15] = 0x01                 # FET state: discharge on, charge off
        pic[8] = 0x01                  # system state bit 0: discharging
        board.set_raw(1, 0x1200, coils(pic))
        s = link.latest()
        assert list(np.flatnonzero(s.balancing) + 1) == [1, 3, 16]
        assert s.flags.hvc and s.flags.ot and not s.flags.lvc and not s.flags.ut
        assert s.discharge_fet and not s.charge_fet
        assert s.state == "discharge"
        pic[8] = 0x06                  # charging and float charge: float is listed first
        board.set_raw(1, 0x1200, coils(pic))
        assert link.latest().state == "float"
        pic[8] = 0x20                  # shut down: no state the map names
        board.set_raw(1, 0x1200, coils(pic))
        assert link.latest().state == "unknown"
    finally:
        link.close()
        board.close()


def test_seplos_bench_round_trip_places_temperatures_by_role(clock):
    """The bench slave serving the map from simulated telemetry: cells, roles and identity (the
    blocks marked ``read: whole`` served whole only, the version block any span of it)."""
    _profile, board = seplos_board()
    tel = make_telemetry(16, temps_c=np.r_[20.0 + np.arange(16), 41.5], balancing=np.arange(16) % 5 == 0,
                         serial="SP05B2312190075", hw_revision="10E", fw_version="17", pack_a=-12.34,
                         state="float")
    board.update(tel)
    link = ModbusBmsLink("seplos", board.port, SEPLOS_MAP, 16, clock, unit_id=0, response_timeout_s=0.3)
    try:
        s = link.latest()
        assert np.allclose(s.cell_v, tel.cell_v, atol=5e-4)
        # cell roles 1-4 take cells 1-4's NTCs; ambient and FET the cells' mean (the bench has no such sensor)
        assert np.allclose(s.temps_c, [20.0, 21.0, 22.0, 23.0, 27.5, 27.5], atol=0.051)
        assert np.array_equal(s.balancing, tel.balancing)
        assert s.pack_a == pytest.approx(-12.34) and s.state == "float"
        ident = link.identity()
        assert (ident.serial, ident.hw_revision, ident.fw_version) == ("SP05B2312190075", "10E", "17")
    finally:
        link.close()
        board.close()


def test_seplos_commands_are_fc16_and_fc15_writes(clock):
    _profile, board = seplos_board()
    board.update(make_telemetry(16))
    link = ModbusBmsLink("seplos", board.port, SEPLOS_MAP, 16, clock, unit_id=0, response_timeout_s=0.3)
    try:
        link.command("charge_fet_off")                                    # FC 0x10, one register 0x55AA
        assert board.commands_received["charge_fet_off"] == {"raw": [0x55AA]}
        link.command("cell_ovp", threshold_v=3.6)
        assert board.commands_received["cell_ovp"]["raw"] == [3600]
        link.command("balancing_switches", balancing=1, static_indication=0, static_timeout=1, temperature_limit=1)
        got = board.commands_received["balancing_switches"]               # FC 0x0F, 8 coils from 0x1438
        assert got["raw"] == [1, 0, 1, 1, 0, 0, 0, 0] and got["balancing"] == 1
    finally:
        link.close()
        board.close()


def test_seplos_whole_block_board_refuses_a_used_span_read(clock, tmp_path):
    """The same map with ``read: used`` reads only cells+NTCs of PIB: a board that answers only
    whole blocks refuses it (exception 02), and the fault names the range."""
    used = tmp_path / "seplos-used.yaml"
    used.write_text(SEPLOS_MAP.read_text().replace(", read: whole}", "}"))
    _profile, board = seplos_board(refuse_partial=2)
    board.update(make_telemetry(16))
    link = ModbusBmsLink("seplos", board.port, used, 16, clock, unit_id=0, response_timeout_s=0.3)
    try:
        with pytest.raises(LinkFault, match=r"exception 2 \(illegal data address\)"):
            link.latest()
    finally:
        link.close()
        board.close()


DALY_MAP = HERE / "daly-hkms-modbus.yaml"
DALY = HERE / "daly-hkms-8s-lfp.yaml"


def daly_words() -> dict[int, list[int]]:
    """Holding registers of an 8S pack, raw as the source decodes them: mV, T + 40, 0.1 V,
    30000 + 0.1 A, state code, balancing mask, MOS on > 0."""
    return {0x00: [3312, 3305, 3299, 3320, 3310, 3301, 3297, 3318],
            0x30: [65, 66, 64, 63],              # 25, 26, 24, 23 degC
            0x38: [265, 29875],                  # 26.5 V, (29875 - 30000) * 0.1 = -12.5 A
            0x48: [2],                           # discharging
            0x4F: [0b1000_0001, 0, 0],           # cells 1 and 8 balancing
            0x52: [1, 0],                        # charge MOS on, discharge MOS off
            0x5A: [75, 70]}                      # MOS 35 degC, board 30 degC


def test_daly_profile_and_map_pass_check():
    profile = load_profile(DALY)
    assert check_profile_links(profile) == []
    assert (profile.link.unit_id, profile.link.reply_unit_id) == (0x81, 0x51)


def test_daly_board_answering_from_another_device_id_decodes(clock):
    """Asked at 0x81, the board answers as 0x51: the link takes the reply, and every value lands
    where the source puts it."""
    profile = load_profile(DALY)
    board = ModbusSlave(DALY_MAP, 8, unit_id=0x81, reply_unit_id=0x51).start()
    link = ModbusBmsLink.from_profile(profile, board.port, clock, response_timeout_s=0.3)
    try:
        for a, words in daly_words().items():
            board.set_raw(3, a, words)
        s = link.latest()
        assert np.allclose(s.cell_v, [3.312, 3.305, 3.299, 3.320, 3.310, 3.301, 3.297, 3.318])
        assert np.allclose(s.temps_c, [25, 26, 24, 23, 35, 30])
        assert s.pack_v == pytest.approx(26.5) and s.pack_a == pytest.approx(-12.5)
        assert s.state == "discharge"
        assert list(np.flatnonzero(s.balancing) + 1) == [1, 8]
        assert s.charge_fet and not s.discharge_fet
    finally:
        link.close()
        board.close()


def test_daly_reply_from_another_id_without_the_setting_is_a_clear_fault(clock):
    board = ModbusSlave(DALY_MAP, 8, unit_id=0x81, reply_unit_id=0x51).start()
    link = ModbusBmsLink("daly", board.port, DALY_MAP, 8, clock, unit_id=0x81, response_timeout_s=0.3)
    try:
        with pytest.raises(LinkFault, match="device id 81 instead of 129"):
            link.latest()
    finally:
        link.close()
        board.close()


def test_daly_bench_counterpart_serves_the_profile_end_to_end(clock):
    """The link kind's bench slave for the profile answers from 0x51 as the profile says."""
    from rig.links.kinds.modbus import bench

    profile = load_profile(DALY)
    board = bench(profile, "dut")
    tel = make_telemetry(8, state="discharge", pack_a=-3.2, balancing=np.arange(8) == 2)
    board.update(tel)
    link = ModbusBmsLink.from_profile(profile, board.port, clock, response_timeout_s=0.3)
    try:
        s = link.latest()
        assert np.allclose(s.cell_v, tel.cell_v, atol=5e-4)
        assert s.state == "discharge" and s.pack_a == pytest.approx(-3.2)
        assert list(np.flatnonzero(s.balancing) + 1) == [3]
    finally:
        link.close()
        board.close()
