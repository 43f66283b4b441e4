"""Public vendor DBCs nobody on the project wrote (``tests/links/public_dbc/``, sources and
licences in its README): the signal map and profile a lab would write for each, real frames
encoded by cantools through the vendor's DBC on a python-can virtual bus, decoded by the link
(compiled fast path and ``Message.decode``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import can
import numpy as np
import pytest

from rig.errors import ConfigError
from rig.links.can_link import CanBmsLink
from rig.links.dbc import DbcWarning, codec, load_dbc
from rig.links.signal_map import compile_signal_map

HERE = Path(__file__).parent / "public_dbc"
FOX2_DBC, FOX2_MAP, FOX2_N = HERE / "foxbms2-excerpt.dbc", HERE / "foxbms2-can.yaml", 16


def _db(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        return load_dbc(path)


class Board:
    """Sends frames encoded by cantools through the vendor DBC as shipped."""

    def __init__(self, sender, dbc):
        self.db, self.sender = _db(dbc), sender

    def frame(self, name: str, values: dict, t: float) -> None:
        m = self.db.get_message_by_name(name)
        full = {s.name: 0 for s in m.signals}
        full.update(values)
        data = codec(self.db, m).encode(m.gather_signals(full) if m.is_multiplexed() else full, strict=False)
        self.sender.send(can.Message(arbitration_id=m.frame_id, data=bytes(data),
                                     is_extended_id=bool(m.is_extended_frame), timestamp=t))


def _link(dbc, smap, n, can_bus, clock, fast_path=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        return CanBmsLink("pub", can_bus, dbc, smap, n, clock, timeout_s=2.0, fast_path=fast_path)


# ----------------------------------------------------------------------------- foxBMS 2


def test_foxbms2_identity_request_on_a_multiplexed_message_encodes_only_its_page():
    """foxBMS_Debug is multiplexed: the request selects page 0 (GetBmsSoftwareVersion); the
    other pages' signals are not part of that frame."""
    plan = compile_signal_map(FOX2_MAP, FOX2_DBC, FOX2_N, db=_db(FOX2_DBC))
    (req,) = plan.requests
    (data, _v), = req.frames
    msg = _db(FOX2_DBC).get_message_by_name("foxBMS_Debug")
    assert msg.decode(data) == {"foxBMS_Debug_Mux": 0, "foxBMS_GetMcuLotNumber": 0, "foxBMS_GetBmsSoftwareVersion": 1,
                                "foxBMS_GetMcuUniqueDieId": 0, "foxBMS_GetMcuWaferInformation": 0,
                                "foxBMS_GetCommitHash": 0}


def test_a_request_signal_on_another_page_than_the_one_selected_is_a_config_error(tmp_path):
    text = FOX2_MAP.read_text().replace("foxBMS_GetBmsSoftwareVersion: 1}", "foxBMS_GetBmsSoftwareVersion: 1, SetYear: 3}")
    p = tmp_path / "fox-map.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        compile_signal_map(p, FOX2_DBC, FOX2_N, db=_db(FOX2_DBC))
    msg = str(ei.value)
    assert "fox-map.yaml" in msg and "requests[0].signals" in msg and "SetYear" in msg, msg
    assert "on page foxBMS_Debug_Mux = [1]" in msg and "not on the page foxBMS_Debug_Mux = 0" in msg, msg


class Fox2(Board):
    """A foxBMS 2 master on one string: cell pages of 4, temperature pages of 6 (big-endian)."""

    def cycle(self, t, cells_mv, temps_c=None, invalid=(), flags=None, pack_a=-12.5, skip_pages=()):
        temps_c = np.arange(-5, 13) if temps_c is None else temps_c
        for p in range(4):
            if p in skip_pages:
                continue
            v = {"foxBMS_CellVoltages_Mux": p}
            for k in range(4 * p, 4 * p + 4):
                v[f"cellVoltage_{k:03d}"] = int(cells_mv[k])
                v[f"cellVoltage_{k:03d}_invalidFlag"] = int(k in invalid)
            self.frame("foxBMS_CellVoltages", v, t)
        for p in range(3):
            v = {"foxBMS_CellTemperatures_Mux": p}
            for k in range(6 * p, 6 * p + 6):
                v[f"cellTemperature_{k:03d}"] = int(temps_c[k])
            self.frame("foxBMS_CellTemperatures", v, t)
        self.frame("foxBMS_StringState", dict(flags or {}), t)
        self.frame("foxBMS_PackValues", {"foxBMS_batteryVoltage": 52.8, "foxBMS_packCurrent": pack_a}, t)


@pytest.fixture
def fox2(sender):
    return Fox2(sender, FOX2_DBC)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "decode"])
def test_foxbms2_cells_temperatures_validity_pack_from_real_frames(fox2, can_bus, clock, fast):
    link = _link(FOX2_DBC, FOX2_MAP, FOX2_N, can_bus, clock, fast_path=fast)
    try:
        cells = 3300 + 11 * np.arange(FOX2_N)
        fox2.cycle(0.5, cells, temps_c=np.r_[np.arange(-5, 11), 90, 91], invalid={6})
        s = link.latest()
        want = cells / 1000.0
        assert np.isnan(s.cell_v[6]) and not s.cells_valid[6]   # cellVoltage_006_invalidFlag = 1
        keep = np.arange(FOX2_N) != 6
        np.testing.assert_allclose(s.cell_v[keep], want[keep])
        assert s.cells_valid[keep].all()
        np.testing.assert_allclose(s.temps_c, np.arange(-5, 11))   # signed, 16 sensors, one per cell
        assert s.pack_v == pytest.approx(52.8)
        assert s.pack_a == pytest.approx(12.5)                     # foxBMS + discharge -> rig + charge
        assert not (s.flags.hvc or s.flags.lvc or s.flags.ot or s.flags.ut)
        if fast:
            assert link.fast_frame_ids == set(link.plan.handlers)
    finally:
        link.close()


@pytest.mark.parametrize("bit, flag", [("String0_Err_Overvoltage", "hvc"), ("String0_Err_Undervoltage", "lvc"),
                                       ("String0_Err_overtemp_discharge", "ot"), ("String0_Err_undertemp_charge", "ut")])
def test_foxbms2_string_error_bits_are_the_flags(fox2, can_bus, clock, bit, flag):
    link = _link(FOX2_DBC, FOX2_MAP, FOX2_N, can_bus, clock)
    try:
        fox2.cycle(0.25, np.full(FOX2_N, 3300), flags={bit: 1})
        f = link.latest().flags
        assert {k: getattr(f, k) for k in ("hvc", "lvc", "ot", "ut")} == \
            {k: k == flag for k in ("hvc", "lvc", "ot", "ut")}
    finally:
        link.close()


def test_foxbms2_a_silent_voltage_page_makes_its_four_cells_invalid(fox2, can_bus, clock):
    link = _link(FOX2_DBC, FOX2_MAP, FOX2_N, can_bus, clock)
    try:
        t = 0.0
        while t < 3.0:
            fox2.cycle(t, np.full(FOX2_N, 3300), skip_pages=(2,) if t >= 0.5 else ())
            t += 0.25
        clock.sleep(2.75)
        s = link.latest()
        assert not s.cells_valid[8:12].any() and np.isnan(s.cell_v[8:12]).all()
        assert s.cells_valid[np.r_[0:8, 12:16]].all()
    finally:
        link.close()


# ----------------------------------------------------------------------------- every public board


PROFILES = sorted(HERE.glob("*-[0-9]*s.yaml"))


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_fast_path_equals_message_decode_on_the_bench_transmitters_frames(path):
    """The bench transmitter encodes the board's telemetry through the vendor DBC and the
    lab's map (damaged copies mixed in); both decoders give the same samples."""
    from rig.profile import load_profile
    from tests.links.test_can_fastpath import _frames, _link as fp_link, _same

    prof = load_profile(path)
    frames = _frames(prof)
    fast, slow = fp_link(prof, True), fp_link(prof, False)
    try:
        assert fast.feed(frames) == slow.feed(frames) == len(frames)
        got, want = fast.history(require_coverage=False), slow.history(require_coverage=False)
        assert len(got) == len(want) > 0
        for g, w in zip(got, want):
            for name in w.__dataclass_fields__:
                assert _same(getattr(g, name), getattr(w, name)), (w.t, name)
        assert fast.decode_errors == slow.decode_errors > 0
        assert fast.fast_frame_ids == set(fast.plan.handlers)
    finally:
        fast.close()
        slow.close()


class _LogSink:
    """A python-can log writer as a board's bus: candump -L lines, channel can0."""

    def __init__(self, path, t0=1_700_000_000.0):
        self.log, self.t0 = can.Logger(str(path)), t0

    def send(self, msg):
        msg.timestamp += self.t0
        msg.channel = "can0"
        self.log.on_message_received(msg)


def _decode(path, board):
    import io
    import json
    from contextlib import redirect_stdout

    from rig.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf), warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        code = main(["decode", str(path), "--board", str(board)])
    return code, [json.loads(x) for x in buf.getvalue().splitlines()]


def test_foxbms2_candump_log_decodes_to_samples(tmp_path):
    path = tmp_path / "fox2.log"
    sink = _LogSink(path)
    board = Fox2(sink, FOX2_DBC)
    cells = 3300 + 11 * np.arange(FOX2_N)
    for k in range(5):
        board.cycle(0.25 * k, cells, flags={"String0_Err_Overvoltage": int(k >= 3)})
    sink.log.stop()
    assert "can0" in path.read_text().splitlines()[0]
    code, rows = _decode(path, HERE / "foxbms2-16s.yaml")
    assert code == 0 and len(rows) == 5, rows
    last = rows[-1]
    np.testing.assert_allclose(last["cells_v"], cells / 1000.0)
    assert last["cells_valid"] == [True] * FOX2_N
    assert last["flags"]["hvc"] is True and rows[0]["flags"]["hvc"] is False
    assert last["temperatures"]["cells"] == list(range(-5, 11))
    assert last["pack_v"] == pytest.approx(52.8) and last["pack_a"] == pytest.approx(12.5)


def test_decode_prints_null_for_what_the_map_does_not_report(tmp_path):
    """foxBMS 2 reports no per-cell balancing and no FET state: ``bmsrig decode`` must not
    print them as "not balancing" / "FET open" (a lab checking its map would read that as
    the board's answer)."""
    path = tmp_path / "fox2.log"
    sink = _LogSink(path)
    board = Fox2(sink, FOX2_DBC)
    for k in range(2):
        board.cycle(0.25 * k, np.full(FOX2_N, 3300))
    sink.log.stop()
    code, rows = _decode(path, HERE / "foxbms2-16s.yaml")
    assert code == 0 and rows
    assert rows[-1]["balancing"] is None
    assert rows[-1]["fets"] == {"charge": None, "discharge": None}
    assert rows[-1]["flags"] == {"hvc": False, "lvc": False, "ot": False, "ut": False}  # mapped: reported


# ----------------------------------------------------------------------------- foxBMS 1


FOX1_DBC, FOX1_MAP, FOX1_N = HERE / "foxbms1-excerpt.dbc", HERE / "foxbms1-can.yaml", 36


class Fox1(Board):
    """A foxBMS 1 master with modules 0 and 1: three cells a message, little-endian."""

    def cycle(self, t, cells_mv, temps_c=None, invalid=(), flags=None, pack_mv=118_800, pack_ma=2500,
              boot=False):
        temps_c = 20.0 + 0.25 * np.arange(24) if temps_c is None else temps_c
        for m in (0, 1):
            for p in range(6):
                v = {}
                for k in range(3):
                    c = 18 * m + 3 * p + k
                    v[f"CAN_SIG_Module_{m}_cell_voltage_{3 * p + k}"] = int(cells_mv[c])
                    v[f"CAN_SIG_{1 if m and p >= 4 else m}_{p}{k}_Cell_voltages_valid"] = int(c not in invalid)
                self.frame(f"CAN_Cell_voltage_M{m}_{p}", v, t)
            for p in range(4):
                v = {f"CAN_SIG_{m}_{p}{k}_Cell_temp_valid": 1 for k in range(3)}
                v.update({f"CAN_SIG_Module_{m}_cell_temp_{3 * p + k}": float(temps_c[12 * m + 3 * p + k])
                          for k in range(3)})
                self.frame(f"CAN_Cell_temperature_M{m}_{p}", v, t)
        self.frame("CAN_PackVoltage", {"CAN_SIG_PackVolt_Battery": pack_mv}, t)
        self.frame("CAN_IVT_Current", {"CAN_SIG_IVT_Current": pack_ma}, t)
        self.frame("CAN_MSG_SystemState_0", {k: v for k, v in (flags or {}).items() if "temp" in k}, t)
        if boot:
            self.frame("CAN_MSG_BOOT", {"CAN_SIG_VersionNumberMajor": 1, "CAN_SIG_VersionNumberMinor": 6,
                                        "CAN_SIG_VersionNumberBugfix": 5}, t)
        self.frame("CAN_MSG_SystemState_1", {k: v for k, v in (flags or {}).items() if "temp" not in k}, t)


@pytest.fixture
def fox1(sender):
    return Fox1(sender, FOX1_DBC)


def test_foxbms1_validity_names_reused_by_other_modules_must_name_their_message(tmp_path):
    """Upstream reuses CAN_SIG_1_40_Cell_voltages_valid .. in modules 1 and 5: the unqualified
    name is a ConfigError naming every message that has it."""
    text = FOX1_MAP.read_text().replace("CAN_Cell_voltage_M1_4.CAN_SIG_1_40", "CAN_SIG_1_40")
    p = tmp_path / "fox1-map.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        compile_signal_map(p, FOX1_DBC, FOX1_N, db=_db(FOX1_DBC))
    msg = str(ei.value)
    assert "fox1-map.yaml" in msg and "cells.valid" in msg, msg
    assert "CAN_Cell_voltage_M1_4.CAN_SIG_1_40_Cell_voltages_valid" in msg, msg
    assert "CAN_Cell_voltage_M5_4.CAN_SIG_1_40_Cell_voltages_valid" in msg, msg


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "decode"])
def test_foxbms1_36_cells_over_two_modules_from_real_frames(fox1, can_bus, clock, fast):
    link = _link(FOX1_DBC, FOX1_MAP, FOX1_N, can_bus, clock, fast_path=fast)
    try:
        cells = 3200 + 7 * np.arange(FOX1_N)
        fox1.cycle(0.1, cells, invalid={13, 31}, temps_c=np.r_[-10.5, 20.0 + 0.25 * np.arange(23)])
        s = link.latest()
        bad = [13, 31]                        # module 0 page 4; module 1 page 4 (the reused names)
        assert not s.cells_valid[bad].any() and np.isnan(s.cell_v[bad]).all()
        ok = np.setdiff1d(np.arange(FOX1_N), bad)
        np.testing.assert_allclose(s.cell_v[ok], cells[ok] / 1000.0)
        np.testing.assert_allclose(s.temps_c, np.r_[-10.5, 20.0 + 0.25 * np.arange(23)], atol=0.005)
        assert s.pack_v == pytest.approx(118.8) and s.pack_a == pytest.approx(2.5)
    finally:
        link.close()


def test_foxbms1_module_5_frames_do_not_touch_module_1_cells(fox1, can_bus, clock):
    """Module 5 (not on this board) sends the same validity names: its frames are not module 1's."""
    link = _link(FOX1_DBC, FOX1_MAP, FOX1_N, can_bus, clock)
    try:
        fox1.cycle(0.1, np.full(FOX1_N, 3300))
        fox1.frame("CAN_Cell_voltage_M5_4", {"CAN_SIG_1_40_Cell_voltages_valid": 0,
                                             "CAN_SIG_Module_5_cell_voltage_12": 1}, 0.15)
        fox1.cycle(0.2, np.full(FOX1_N, 3300))
        clock.sleep(0.2)
        s = link.latest()
        assert s.cells_valid.all() and np.allclose(s.cell_v, 3.3)
    finally:
        link.close()


@pytest.mark.parametrize("bit, flag", [("CAN_SIG_Overvoltage_MSL", "hvc"), ("CAN_SIG_Undervoltage_MSL", "lvc"),
                                       ("CAN_SIG_Overtemp_charge_MSL", "ot"), ("CAN_SIG_Undertemp_dischrg_MSL", "ut")])
def test_foxbms1_msl_bits_are_the_flags(fox1, can_bus, clock, bit, flag):
    link = _link(FOX1_DBC, FOX1_MAP, FOX1_N, can_bus, clock)
    try:
        fox1.cycle(0.1, np.full(FOX1_N, 3300), flags={bit: 1})
        f = link.latest().flags
        assert {k: getattr(f, k) for k in ("hvc", "lvc", "ot", "ut")} == {k: k == flag for k in ("hvc", "lvc", "ot", "ut")}
    finally:
        link.close()


def test_foxbms1_identity_from_the_boot_message_after_a_zero_length_request(fox1, can_bus, clock):
    link = _link(FOX1_DBC, FOX1_MAP, FOX1_N, can_bus, clock)
    try:
        (req,) = link.plan.requests
        assert [d for d, _ in req.frames] == [b""]            # CAN_GetReleaseVersion: DLC 0
        fox1.cycle(0.1, np.full(FOX1_N, 3300), boot=True)
        clock.sleep(0.1)
        link.latest()
        assert link.identity_if_known().fw_version == "1.6.5"
    finally:
        link.close()


# ----------------------------------------------------------------------------- 218e BMS (CANdb++ export)


FS_DBC, FS_MAP, FS_N = HERE / "fs218e-bms.dbc", HERE / "fs218e-can.yaml", 60


class Fs218e(Board):
    """The 218e BMS: one cell per multiplexer page in three broadcast messages."""

    def cycle(self, t, cells_v, temps_c=None, balancing=(), closed=True, pack_a=-20.5):
        temps_c = np.linspace(-20, 60, FS_N).round() if temps_c is None else temps_c
        for i in range(FS_N):
            self.frame("BMS_CellBroadCast1", {"BMS_CellBroadcast1MUX": i, f"BMS_CellVoltage{i:02d}": cells_v[i]}, t)
            self.frame("BMS_CellBroadCast2", {"BMS_CellBroadcast2MUX": i, f"BMS_CellTemperature{i:02d}": temps_c[i]}, t)
            self.frame("BMS_CellBroadCast3", {"BMS_CellBroadcast3MUX": i, f"BMS_CellBalancingActive{i:02d}": int(i in balancing)}, t)
        self.frame("BMS_PackStats", {"BMS_PackVoltage": 198.0, "BMS_PackCurrent": pack_a}, t)
        self.frame("BMS_Version", {"BMS_VersionMajor": 2, "BMS_VersionMinor": 1, "BMS_VersionMaintenance": 7}, t)
        self.frame("BMS_Vitals", {"BMS_PowerStageClosed": int(closed)}, t)


@pytest.fixture
def fs(sender):
    return Fs218e(sender, FS_DBC)


def test_fs218e_dbc_as_exported_by_candb_loads():
    """CRLF lines, a multi-line comment, the CANdb++ pseudo-message of unused signals (id
    0xC0000000, not a frame on the bus), J1939-style 29-bit charger frames, a 6-byte message."""
    assert b"\r\n" in FS_DBC.read_bytes()
    db = _db(FS_DBC)
    names = {m.name for m in db.messages}
    assert "VECTOR__INDEPENDENT_SIG_MSG" not in names and len(names) == 19
    assert db.get_message_by_name("CHARGER_Status").is_extended_frame
    assert db.get_message_by_name("BMS_CellBroadCast2").length == 6


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "decode"])
def test_fs218e_sixty_one_cell_pages_land_on_their_cells(fs, can_bus, clock, fast):
    link = _link(FS_DBC, FS_MAP, FS_N, can_bus, clock, fast_path=fast)
    try:
        cells = np.round(3.1 + 0.0123 * np.arange(FS_N), 4)
        temps = np.round(np.linspace(-20, 60, FS_N))
        fs.cycle(0.2, cells, temps_c=temps, balancing={0, 17, 59})
        s = link.latest()
        np.testing.assert_allclose(s.cell_v, cells, atol=1e-4)
        np.testing.assert_allclose(s.temps_c, temps)               # unit "C", signed 8-bit
        assert list(np.flatnonzero(s.balancing)) == [0, 17, 59]
        assert s.charge_fet and s.discharge_fet
        assert s.pack_v == pytest.approx(198.0) and s.pack_a == pytest.approx(-20.5)
        assert link.identity_if_known().fw_version == "2.1.7"
    finally:
        link.close()


def test_fs218e_flag_in_the_pseudo_message_of_unused_signals_is_a_config_error(tmp_path):
    """BMS_CellOvervoltage0 exists only in VECTOR__INDEPENDENT_SIG_MSG: the board never sends
    it, so mapping it must be refused, naming why."""
    p = tmp_path / "fs-map.yaml"
    p.write_text(FS_MAP.read_text() + "flags:\n  hvc: BMS_CellOvervoltage0\n")
    with pytest.raises(ConfigError) as ei:
        compile_signal_map(p, FS_DBC, FS_N, db=_db(FS_DBC))
    msg = str(ei.value)
    assert "fs-map.yaml" in msg and "flags.hvc" in msg and "BMS_CellOvervoltage0" in msg, msg
    assert "only in VECTOR__INDEPENDENT_SIG_MSG" in msg and "does not transmit it" in msg, msg
    assert "did you mean" not in msg, msg


@pytest.mark.parametrize("board_cls, dbc, profile, n, cells", [
    (Fox1, FOX1_DBC, "foxbms1-36s.yaml", FOX1_N, lambda n: 3200 + 7 * np.arange(n)),
    (Fs218e, FS_DBC, "fs218e-60s.yaml", FS_N, lambda n: np.round(3.1 + 0.0123 * np.arange(n), 4)),
], ids=["foxbms1", "fs218e"])
def test_candump_log_of_each_public_board_decodes(tmp_path, board_cls, dbc, profile, n, cells):
    path = tmp_path / "cap.log"
    sink = _LogSink(path)
    board = board_cls(sink, dbc)
    for k in range(3):
        board.cycle(0.25 * k, cells(n))
    sink.log.stop()
    code, rows = _decode(path, HERE / profile)
    assert code == 0 and len(rows) == 3, rows
    scale = 1000.0 if board_cls is Fox1 else 1.0
    np.testing.assert_allclose(rows[-1]["cells_v"], cells(n) / scale, atol=1e-4)
    assert all(rows[-1]["cells_valid"]) and len(rows[-1]["temperatures"]["cells"]) in (24, 60)
