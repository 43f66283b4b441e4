"""Boards of several strings: per-string messages whose signals carry the same names, real
frames encoded by cantools on a python-can virtual bus, decoded by the link.

The board is the shipped example ``example-two-string`` (2 x 8S): String1_Cells and
String2_Cells both carry Cell_1..Cell_4 on CellMux pages 0/1, String*_Temps and
String*_Status repeat their signal names per string; Master_Status completes a sample.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import can
import numpy as np
import pytest
import yaml

from rig.clock import VirtualClock
from rig.errors import ConfigError
from rig.links.can_link import CanBmsLink
from rig.links.dbc import load_dbc
from rig.links.signal_map import compile_signal_map
from rig.profile import PROFILE_DIR

DBC = PROFILE_DIR / "example-two-string.dbc"
MAP = PROFILE_DIR / "example-two-string-can.yaml"
N = 16


class TwoStringBoard:
    """Sends the TS216 frames encoded by cantools (the DBC as shipped) on the test bus."""

    def __init__(self, sender):
        self.db = load_dbc(DBC)
        self.sender = sender

    def frame(self, name: str, values: dict, t: float) -> None:
        m = self.db.get_message_by_name(name)
        values = {**{s.name: s.offset for s in m.signals}, **values}   # unlisted signals: raw 0
        self.sender.send(can.Message(arbitration_id=m.frame_id, data=m.encode(values, strict=False),
                                     is_extended_id=False, timestamp=t))

    def cycle(self, t: float, cells_mv, skip=(), bal=(0, 0), valid=(0xFF, 0xFF), ov=(0, 0), temps=None) -> None:
        """One cycle; ``skip``: (string, page) pairs not sent; per string (1, 2): balancing
        mask, validity mask, OV bit; ``temps``: 10 values (4 NTCs per string, then T_Balance 1, 2)."""
        temps = np.r_[20.0 + np.arange(8), 40.0, 41.0] if temps is None else temps
        for s in (1, 2):
            for p in (0, 1):
                if (s, p) in skip:
                    continue
                base = 8 * (s - 1) + 4 * p
                self.frame(f"String{s}_Cells", {"CellMux": p, **{f"Cell_{k + 1}": int(cells_mv[base + k])
                                                                  for k in range(4)}}, t)
            self.frame(f"String{s}_Temps", {**{f"T_Cell_{k + 1}": float(temps[4 * (s - 1) + k]) for k in range(4)},
                                            "T_Balance": float(temps[8 + s - 1])}, t)
            self.frame(f"String{s}_Status", {"BalanceBits": bal[s - 1], "CellValid": valid[s - 1],
                                             "OV": ov[s - 1], "StringVoltage": 26.4}, t)
        self.frame("Master_Status", {"ChargeFET": 1, "DischargeFET": 1, "State": 1, "PackVoltage": 52.8,
                                     "PackCurrent": 4.5}, t)


@pytest.fixture
def board(sender):
    return TwoStringBoard(sender)


@pytest.fixture
def link(can_bus, clock):
    lk = CanBmsLink("ts216", can_bus, DBC, MAP, N, clock, timeout_s=2.0)
    yield lk
    lk.close()


def mv():
    return 3300 + 3 * np.arange(N)


def test_identical_signal_names_of_both_strings_land_on_their_own_cells(board, link):
    board.cycle(1.0, mv())
    s = link.latest()
    np.testing.assert_allclose(s.cell_v, mv() / 1000.0)   # string 2's Cell_1 of page 0 is cell 9
    assert s.cells_valid.all()
    np.testing.assert_allclose(s.temps_c, np.r_[20.0 + np.arange(8), 40.0, 41.0])
    assert s.pack_v == pytest.approx(52.8) and s.state == "charge"
    assert link.plan.strings == [("String1", 0, 8), ("String2", 8, 8)]
    assert [link.plan.cell_string(c) for c in (1, 8, 9, 16)] == ["String1", "String1", "String2", "String2"]


def test_balancing_validity_and_flags_per_string(board, link, clock):
    board.cycle(1.0, mv(), bal=(0b1, 0b100), valid=(0xFF, 0xFF & ~0b10), ov=(0, 1))
    s = link.latest()
    assert list(np.flatnonzero(s.balancing)) == [0, 10]   # string 1 cell 1, string 2 cell 3 = cell 11
    assert list(np.flatnonzero(~s.cells_valid)) == [9]    # string 2 cell 2 = cell 10
    assert np.isnan(s.cell_v[9])
    assert s.flags.hvc                                    # string 2's OV alone sets the board's flag
    board.cycle(1.25, mv())
    clock.sleep(1.25)
    assert not link.latest().flags.hvc


def test_a_stale_page_of_string_2_invalidates_only_its_cells(board, link, clock):
    for k in range(4):
        board.cycle(0.25 * k, mv())
    t = 0.75
    while t < 2.5:                                        # String2_Cells page 1 (cells 13..16) goes silent
        t += 0.25
        board.cycle(t, mv() + 1, skip=((2, 1),))
    clock.sleep(2.5)
    s = link.latest()
    assert s.t == pytest.approx(2.5)
    stale = [12, 13, 14, 15]
    assert not s.cells_valid[stale].any() and np.isnan(s.cell_v[stale]).all()
    others = np.setdiff1d(np.arange(N), stale)            # string 1's page 1 (cells 5..8) is not touched
    assert s.cells_valid[others].all()
    np.testing.assert_allclose(s.cell_v[others], (mv() + 1)[others] / 1000.0)


def test_fast_path_and_message_decode_agree_on_every_string_frame(board, clock, channel):
    """Both paths read the same frames (the map's pages on a DBC multiplexer)."""
    links = []
    for fast in (True, False):
        bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
        links.append(CanBmsLink(f"ts{fast}", bus, DBC, MAP, N, clock, timeout_s=2.0, own_bus=True, fast_path=fast))
    try:
        assert links[0].fast_frame_ids == set(links[0].plan.handlers)
        for k in range(3):
            board.cycle(0.25 * k, mv() + k, bal=(k, 255 - k), ov=(k % 2, 0))
        clock.sleep(0.5)
        a, b = (lk.history(require_coverage=False) for lk in links)
        assert len(a) == len(b) == 3
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.cell_v, y.cell_v)
            np.testing.assert_array_equal(x.balancing, y.balancing)
            assert x.flags == y.flags
    finally:
        for lk in links:
            lk.close()


# ----------------------------------------------------------------------------- map errors


def _map(tmp_path, edit) -> object:
    d = yaml.safe_load(MAP.read_text())
    edit(d)
    p = tmp_path / "two-string-can.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def _error(p, n=N) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        compile_signal_map(p, DBC, n)
    return ei.value


def test_an_unqualified_name_in_several_messages_is_an_error_naming_them(tmp_path):
    p = _map(tmp_path, lambda d: d["flags"].update(hvc="OV"))
    e = _error(p)
    assert e.file == str(p) and e.key == "flags.hvc"
    assert "String1_Status.OV" in e.problem and "String2_Status.OV" in e.problem


def test_an_unqualified_name_without_strings_is_ambiguous_too(tmp_path):
    def edit(d):
        del d["strings"]
        d["cells"] = {"voltage": {"pages": dict(d["cells"]["voltage"]["pages"], message="String1_Cells")}}
        d["temperatures"] = {"cells": {"signals": ["T_Cell_1"]}}
        d["flags"] = {}
    e = _error(_map(tmp_path, edit), n=8)
    assert e.key == "temperatures.cells" and "String1_Temps.T_Cell_1, String2_Temps.T_Cell_1" in e.problem


def test_a_placeholder_without_strings_is_an_error(tmp_path):
    e = _error(_map(tmp_path, lambda d: d.pop("strings")))
    assert e.key == "cells.voltage" and "{Cells}" in e.problem and "strings:" in e.problem

    def edit(d):
        del d["strings"]
        d["cells"] = {"voltage": {"pages": dict(d["cells"]["voltage"]["pages"], message="String1_Cells")}}
        d["temperatures"] = {}
    e = _error(_map(tmp_path, edit), n=8)
    assert e.key == "flags.hvc" and "{Status}" in e.problem and "strings:" in e.problem


def test_qualified_name_with_an_unknown_message_or_signal_is_an_error(tmp_path):
    e = _error(_map(tmp_path, lambda d: d["fets"].update(charge="Master_Stat.ChargeFET")))
    assert e.key == "fets.charge" and "message 'Master_Stat' not found" in e.problem and "Master_Status" in e.problem
    e = _error(_map(tmp_path, lambda d: d["fets"].update(charge={"message": "Master_Status", "signal": "OV"})))
    assert e.key == "fets.charge" and "signal 'OV' not found in message Master_Status" in e.problem


def test_message_key_qualifies_an_entry(tmp_path):
    def edit(d):
        d["fets"]["charge"] = {"message": "Master_Status", "signal": "ChargeFET"}
        d["temperatures"]["bleed_resistor"] = {"message": "String2_Temps", "signal": "T_Balance"}
    plan = compile_signal_map(_map(tmp_path, edit), DBC, N)
    assert plan.slot_names[plan.temps.slots[-1]] == ("String2_Temps", "T_Balance")
    assert len(plan.temps.slots) == 9 and plan.n_bleed == 1


def test_strings_must_add_up_and_name_their_messages(tmp_path):
    e = _error(MAP, n=18)
    assert e.key == "strings" and "16 cells (8 + 8)" in e.problem and "18" in e.problem
    e = _error(_map(tmp_path, lambda d: d["strings"][1]["messages"].pop("Temps")))
    assert e.key == "strings[1].messages" and "{Temps}" in e.problem and "String2" in e.problem
    e = _error(_map(tmp_path, lambda d: d["strings"][1]["messages"].update(Temps="String3_Temps")))
    assert e.key == "strings[1].messages.Temps" and "String3_Temps" in e.problem
    e = _error(_map(tmp_path, lambda d: d["strings"][1].update(name="String1")))
    assert e.key == "strings[1].name"


def test_numbering_board_continues_pages_and_mask_bits(tmp_path):
    """Frames that number a string's cells as the board does (string 2 on pages 2..3)."""
    text = DBC.read_text()
    a = text.index("BO_ 784 String2_Cells")
    b = text.index("BO_ 785 ")
    block = text[a:b].replace(" m1 ", " m3 ").replace(" m0 ", " m2 ")   # string 2 on pages 2 and 3
    text = text[:a] + block + text[b:]
    dbc = tmp_path / "board-numbered.dbc"
    dbc.write_text(text)
    masks = ["String1_Status.BalanceBits", "String2_Status.BalanceBits"]   # one 16-bit board mask

    def edit(d):
        d["strings"][1]["numbering"] = "board"
        d["cells"]["balancing"] = {"mask": masks}
        d["cells"].pop("valid")
    plan = compile_signal_map(_map(tmp_path, edit), dbc, N)
    pages = [plan.slot_page[s] for s in plan.cell_v.slots]
    assert pages == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    names = [plan.slot_names[s][0] for s, _b in plan.balancing_at]
    assert names == ["String1_Status"] * 8 + ["String2_Status"] * 8
    assert [b for _s, b in plan.balancing_at] == list(range(8)) * 2   # string 2 from bit 8 of the board mask


def test_paged_plain_index_fast_path_equals_message_decode():
    """A page index that is a plain signal (no DBC multiplexer): the compiled store."""
    from rig.links.can_fastpath import compile_store

    import cantools

    db = cantools.database.load_string(
        'VERSION ""\nNS_ :\nBS_:\nBU_: B\n'
        'BO_ 256 Pg: 8 B\n SG_ Page : 0|8@1+ (1,0) [0|3] "" B\n SG_ V_a : 8|16@1+ (0.001,0) [0|65] "V" B\n'
        ' SG_ V_b : 24|16@1+ (0.001,0) [0|65] "V" B\n SG_ Other : 40|8@1+ (1,0) [0|255] "" B\n', database_format="dbc")
    m = db.get_message_by_name("Pg")
    raw, seen = [None] * 5, {}
    pages = {0: {"V_a": 0, "V_b": 1}, 1: {"V_a": 2, "V_b": 3}}
    store = compile_store(m, {"Other": 4}, 256, raw, seen, "Page", pages)
    assert store is not None
    for page, (a, b) in ((0, (3.301, 3.302)), (1, (3.303, 3.304)), (2, (3.9, 3.9))):
        data = m.encode({"Page": page, "V_a": a, "V_b": b, "Other": 7})
        assert store(data, 1.0 + page)
        want = m.decode(data, decode_choices=False)
        for name, slot in pages.get(page, {}).items():
            assert raw[slot] == want[name]
        assert seen[(256, page)] == 1.0 + page
    np.testing.assert_allclose(raw[:4], [3.301, 3.302, 3.303, 3.304])   # page 2 is in no map page: not stored
    assert raw[4] == 7
    assert not store(b"\x00\x01", 9.0)                                # short: the general path's decode error


def test_bench_transmitter_sends_both_strings():
    from rig.sim.can_tx import CanTransmitter

    tx = CanTransmitter(DBC, f"ts-{uuid.uuid4().hex[:8]}", N, signal_map_path=MAP)
    try:
        bal = np.zeros(N, bool)
        bal[[2, 12]] = True
        tel = SimpleNamespace(cell_v=3.3 + 0.001 * np.arange(N), temps_c=np.r_[25.0 + np.arange(N), 47.0],
                              balancing=bal, hvc=True, lvc=False, ot=False, ut=False, charge_fet=True,
                              discharge_fet=False, pack_v=52.8, pack_a=1.0, serial="TS-00004711",
                              hw_revision="C", fw_version="1.4.0", state="rest")
        frames = tx.encode(0.0, tel)
        t = [0.0]
        clock = VirtualClock(lambda dt: t.__setitem__(0, t[0] + dt), lambda: t[0])
        bus = can.Bus(interface="virtual", channel=f"ts-{uuid.uuid4().hex[:8]}")
        lk = CanBmsLink("ts", bus, DBC, MAP, N, clock, timeout_s=1e9, own_bus=True)
        try:
            lk.feed(can.Message(arbitration_id=fid, data=d, timestamp=0.0) for fid, d in frames)
            s = lk.latest_held()
        finally:
            lk.close()
        np.testing.assert_allclose(s.cell_v, tel.cell_v, atol=1e-3)
        assert s.cells_valid.all() and list(np.flatnonzero(s.balancing)) == [2, 12]
        assert s.temps_c[-2:].tolist() == [47.0, 47.0]    # both strings' T_Balance: the board's one NTC
        # each string's 4 NTCs report cells 1, 3, 5, 7 of that string (board cells 1, 3, .., 15)
        assert s.temps_c[:8].tolist() == [25.0 + c for c in (0, 2, 4, 6, 8, 10, 12, 14)]
        assert s.flags.hvc and not s.discharge_fet
        assert frames[-1][0] == 800                       # Master_Status last
    finally:
        tx.close()


@pytest.mark.slow
def test_the_two_string_example_passes_the_full_plan_on_the_bench(tmp_path):
    """The shipped example, every test of the plan, on the virtual bench: all requirements judged."""
    import json
    import subprocess
    import sys

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "--board", str(PROFILE_DIR / "example-two-string.yaml"),
                           "--out", str(out), "--no-index"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    doc = json.loads((out / "summary.json").read_text())
    assert doc["verdict"] == "PASS" and doc["counts"]["failed"] == 0 and doc["counts"]["skipped"] == 0
    assert doc["counts"]["passed"] > 0
    assert {v["verdict"] for v in doc["requirements"].values()} == {"PASS"}
