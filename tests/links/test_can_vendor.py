"""Vendor DBCs as shipped, pages, per-cell validity, staleness per page, flag/FET conditions,
event frames: real frames encoded by cantools on a python-can virtual bus, decoded by the link.

The board is the shipped example ``example-vendor-mux`` (18S): cell pages carry their page
number in data byte 0, temperatures are paged by a DBC multiplexer with one signal name
reused on every page, 0xFFFF means "cell not measured", the contactor is an enum and the
alarm frame is sent only while an alarm is active.
"""

from __future__ import annotations

import warnings

import can
import numpy as np
import pytest

from rig.errors import ConfigError, LinkFault
from rig.links.can_link import CanBmsLink
from rig.links.dbc import DbcWarning, codec, load_dbc
from rig.profile import PROFILE_DIR

DBC = PROFILE_DIR / "example-vendor-mux.dbc"
MAP = PROFILE_DIR / "example-vendor-mux-can.yaml"
N = 18


class VendorBoard:
    """Sends XBMS frames encoded by cantools (the DBC as shipped) on the test bus."""

    def __init__(self, sender):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DbcWarning)
            self.db = load_dbc(DBC)
        self.sender = sender

    def frame(self, name: str, values: dict, t: float, page: int | None = None) -> None:
        m = self.db.get_message_by_name(name)
        data = bytearray(codec(self.db, m).encode(values, strict=False))
        if page is not None:
            data[0] = page  # the page number: data byte 0, no signal in the DBC
        self.sender.send(can.Message(arbitration_id=m.frame_id, data=bytes(data), is_extended_id=False, timestamp=t))

    def cycle(self, t: float, cells_mv, skip_pages=(), contactor="CLOSED", alarms: dict | None = None,
              temps_c=None) -> None:
        temps_c = np.full(N, 25.0) if temps_c is None else temps_c
        for p in range(6):
            if p in skip_pages:
                continue
            v = {f"CellV_{k + 1}": int(cells_mv[3 * p + k]) for k in range(3)}
            self.frame("XB_CellPage", {**v, "PageCounter": p}, t, page=p)
            self.frame("XB_TempPage", {"TPage": p, **{f"Tcell_{'abc'[k]}": float(temps_c[3 * p + k]) for k in range(3)}}, t)
        self.frame("XB_Balance", {"BalMask": 0b101}, t)
        if alarms:
            bits = {"OV_Cell": 0, "OV_Pack": 0, "UV_Cell": 0, "UV_Pack": 0, "OT_Chg": 0, "OT_Dsg": 0, "UT_Chg": 0}
            self.frame("XB_Alarm", {**bits, **alarms}, t)
        code = {"OPEN": 0, "PRECHARGE": 1, "CLOSED": 2, "WELDED": 3, "FAULT": 4}[contactor]
        self.frame("XB_Status", {"Contactor": code, "DsgEnable": 1, "StatusByte": code | 8, "BoardTemp": 31,
                                 "PackV": 59.4, "PackI": -2.5, "Heartbeat": int(t) & 0xFF}, t)


@pytest.fixture
def board(sender):
    return VendorBoard(sender)


@pytest.fixture
def link(can_bus, clock):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        lk = CanBmsLink("xbms", can_bus, DBC, MAP, N, clock, timeout_s=2.0)
    yield lk
    lk.close()


def mv(n=N):
    return 3300 + 7 * np.arange(n)


# ----------------------------------------------------------------------------- the DBC as shipped


def test_vendor_dbc_loads_with_a_warning_naming_every_overlap():
    with pytest.warns(DbcWarning) as rec:
        db = load_dbc(DBC)
    text = " ".join(str(w.message) for w in rec)
    assert "Contactor and StatusByte are overlapping in message XB_Status" in text
    assert "StatusByte and DsgEnable are overlapping in message XB_Status" in text
    # °C read as UTF-8 (not cp1252 mojibake)
    assert db.get_message_by_name("XB_TempPage").signals[1].unit == "°C"


def test_cp1252_dbc_reads_the_same_degree_sign(tmp_path):
    p = tmp_path / "cp1252.dbc"
    p.write_bytes(DBC.read_text(encoding="utf-8").encode("cp1252"))
    with pytest.warns(DbcWarning):
        db = load_dbc(p)
    assert db.get_message_by_name("XB_TempPage").signals[1].unit == "°C"


def test_a_frame_id_defined_three_times_names_every_definition(tmp_path):
    text = DBC.read_text(encoding="utf-8")
    text = text.replace("BO_ 529 XB_Balance", "BO_ 528 XB_Balance").replace("BO_ 544 XB_Ident", "BO_ 528 XB_Ident")
    p = tmp_path / "dup.dbc"
    p.write_text(text, encoding="utf-8")
    lines = [i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("BO_ 528 ")]
    with pytest.raises(ConfigError) as ei, warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        load_dbc(p)
    msg = str(ei.value)
    assert str(p) in msg and "BO_ 528" in msg and "defined 3 times" in msg
    assert "XB_Status, XB_Balance, XB_Ident at lines " + ", ".join(map(str, lines)) in msg


# ----------------------------------------------------------------------------- pages and validity


def test_data_byte_pages_give_cell_page_times_n_plus_k(board, link, clock):
    board.cycle(1.0, mv(), temps_c=20.0 + np.arange(N))
    s = link.latest()
    np.testing.assert_allclose(s.cell_v, mv() / 1000.0)     # every page on its own cells
    np.testing.assert_allclose(s.temps_c, np.r_[20.0 + np.arange(N), 31.0])  # mux pages, reused names
    assert s.cells_valid.all()
    assert list(np.flatnonzero(s.balancing)) == [0, 2]
    assert s.pack_v == pytest.approx(59.4) and s.pack_a == pytest.approx(-2.5)


def test_not_measured_cell_is_invalid_never_zero_volts(board, link):
    cells = mv()
    cells[4] = 0xFFFF
    board.cycle(1.0, cells)
    s = link.latest()
    assert not s.cells_valid[4] and np.isnan(s.cell_v[4])
    assert s.cells_valid.sum() == N - 1
    assert s.delta_v == pytest.approx((cells[17] - cells[0]) / 1000.0)  # the invalid cell is no reading


def test_a_silent_page_makes_its_cells_invalid_not_old_values_stamped_now(board, link, clock):
    for k in range(4):                       # 4 cycles, all pages
        board.cycle(0.25 * k, mv())
    clock.sleep(0.75)
    first = link.latest()
    assert first.cells_valid.all()
    t = 0.75
    while t < 2.5:                           # page 2 (cells 7..9) goes silent
        t += 0.25
        board.cycle(t, mv() + 1, skip_pages=(2,))
    clock.sleep(2.5 - clock.now())
    s = link.latest()
    assert s.t == pytest.approx(2.5)
    stale = [6, 7, 8]
    assert not s.cells_valid[stale].any() and np.isnan(s.cell_v[stale]).all()
    others = np.setdiff1d(np.arange(N), stale)
    assert s.cells_valid[others].all()
    np.testing.assert_allclose(s.cell_v[others], (mv() + 1)[others] / 1000.0)
    # within its 1 s page timeout the page still counted: the sample at t=1.5 had it valid
    at_15 = [x for x in link.history(1.5, 1.5, require_coverage=False)]
    assert at_15 and at_15[0].cells_valid[stale].all()


def test_every_cell_page_silent_is_no_sample(board, link, clock):
    board.cycle(0.0, mv())
    board.cycle(1.5, mv(), skip_pages=range(6))
    clock.sleep(1.5)
    assert link.latest().t == 0.0            # no sample stamped 1.5 from 1.5 s old cells
    clock.sleep(1.0)
    with pytest.raises(LinkFault) as ei:
        link.latest()
    assert "every cell source is older than its timeout" in str(ei.value)


# ----------------------------------------------------------------------------- conditions, events


@pytest.mark.parametrize("state, closed", [("CLOSED", True), ("WELDED", False), ("PRECHARGE", False), ("OPEN", False)])
def test_contactor_enum_closed_only_when_the_map_says_so(board, link, state, closed):
    board.cycle(1.0, mv(), contactor=state)
    assert link.latest().charge_fet is closed


def test_event_alarm_frame_absent_is_not_set_and_its_bits_are_ored(board, link, clock):
    board.cycle(0.25, mv())                  # healthy: XB_Alarm never sent
    s = link.latest()
    assert not (s.flags.hvc or s.flags.lvc or s.flags.ot or s.flags.ut)
    board.cycle(0.5, mv(), alarms={"OV_Pack": 1, "OT_Dsg": 1})   # one bit of each OR
    clock.sleep(0.5)
    s = link.latest()
    assert (s.flags.hvc, s.flags.lvc, s.flags.ot, s.flags.ut) == (True, False, True, False)
    for k in range(3, 12):                   # the alarm clears: no more XB_Alarm frames
        board.cycle(0.25 * k, mv())
    clock.sleep(3.0 - clock.now())
    s = link.latest()
    assert s.t == pytest.approx(2.75) and not s.flags.hvc and not s.flags.ot
    # hold_s: cycle -- the first cycle without the frame already reads "not set"
    after = link.history(0.75, 0.75, require_coverage=False)
    assert after and not after[0].flags.hvc


# ----------------------------------------------------------------------------- map errors


@pytest.mark.parametrize("edit, key, problem", [
    (("index: {byte: 0}", "index: {byte: 9}"), "cells.voltage.pages.index.byte", "beyond message XB_CellPage"),
    (("signals: [CellV_1, CellV_2, CellV_3]", "signals: [CellV_1, CellV_X]"), "cells.voltage.pages.signals",
     "'CellV_X' is not in message XB_CellPage"),
    (("values: [CLOSED]", "values: [SHUT]"), "fets.charge.values", "'SHUT' is not a value name of signal Contactor"),
    (("XB_Alarm: {hold_s: cycle}", "XB_Alarms: {hold_s: cycle}"), "events.XB_Alarms", "not found in DBC"),
    (("index: TPage", "index: TPg"), "temperatures.cells.pages.index.signal", "'TPg' is not in message XB_TempPage"),
    (("invalid_values: [0xFFFF]", "invalid_values: [0x1FFFF]"), "cells.voltage.invalid_values", "does not fit"),
    (("index: {byte: 0}", "index: {byte: 0, bit: 6, length: 1}"), "cells.voltage.pages.index",
     "index up to 5"),
])
def test_map_errors_name_file_key_and_problem(tmp_path, can_bus, clock, edit, key, problem):
    text = MAP.read_text().replace(*edit)
    assert text != MAP.read_text()
    p = tmp_path / "bad-map.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei, warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        CanBmsLink("x", can_bus, DBC, p, N, clock)
    msg = str(ei.value)
    assert "bad-map.yaml" in msg and key in msg and problem in msg, msg
