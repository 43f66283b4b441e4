"""Plans and the bench on boards described by public vendor DBCs (``tests/links/public_dbc/``):
what a board does not report (FET state, balancing mask) is never read as "off"."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rig.links.dbc import DbcWarning

from .test_public_dbc import FS_DBC, FS_MAP, FS_N, HERE, _db


def test_baseline_settles_on_a_board_that_reports_no_fet_state():
    """foxBMS 2 sends no FET/contactor state: "FETs closed" is no evidence either way, so the
    between-tests baseline must not wait for it (it waited 49 s and failed every test)."""
    from rig.build import build_rig
    from rig.profile import load_profile

    prof = load_profile(HERE / "foxbms2-16s.yaml")
    rig = build_rig(None, prof)
    try:
        assert not rig.link.reports.has("charge_fet")
        t0 = rig.clock.now()
        rig.baseline()
        s = rig.link.latest()
        assert not (s.flags.hvc or s.flags.lvc) and not s.balancing.any()
        assert rig.clock.now() - t0 < 30.0            # recoveries + a few periods, not the timeout
    finally:
        rig.close()


@pytest.mark.slow
def test_cutoff_plans_on_a_board_without_fet_state_do_not_judge_the_fet(tmp_path):
    """foxBMS 2 reports HVC/LVC flags but no FET state: HVC-003 (flag agrees with the charge
    FET) is not verified, LVC-001 judges its trip on the DAQ line without the FET comparisons,
    and nothing fails for a FET that reads "open" only because it is not reported."""
    import os
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XDIST_"))}
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "--board", str(HERE / "foxbms2-16s.yaml"),
                           "--out", str(out), "--no-index", "--no-progress", "test_hvc.py", "test_lvc.py"],
                          capture_output=True, text=True, timeout=900, env=env)
    assert (out / "junit.xml").is_file(), (proc.stdout + proc.stderr)[-3000:]
    cases = {c.get("name"): c for c in ET.parse(out / "junit.xml").iter("testcase")}
    flag = cases["test_hvc_flag"]
    skip = flag.find("skipped")
    assert skip is not None and "charge FET" in (skip.get("message") or ""), ET.tostring(flag)[:400]
    lvc = cases["test_lvc_threshold"]
    assert lvc.find("failure") is None and lvc.find("error") is None, ET.tostring(lvc)[:600]
    section = (out / "junit.xml").read_text().split('name="test_lvc_threshold"', 1)[1].split("</testcase>", 1)[0]
    assert "fet_vs_daq_mismatches" not in section and "flag_vs_fet_mismatches" not in section
    assert "does not report its discharge FET state" in section      # said so in the conditions


@pytest.mark.slow
def test_balancing_convergence_on_a_board_without_a_balancing_mask_watches_the_channel_currents(tmp_path):
    """foxBMS 2 reports no per-cell balancing: BAL-007 must not read "not bleeding" from an
    absent mask (it judged the board released at once, 198 mV above the others); the rig's
    own observation, the high cell's channel current, says when the board lets go."""
    import os
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XDIST_"))}
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "run", "--board", str(HERE / "foxbms2-16s.yaml"),
                           "--out", str(out), "--no-index", "--no-progress", "-k", "test_balancing_convergence"],
                          capture_output=True, text=True, timeout=900, env=env)
    assert (out / "junit.xml").is_file(), (proc.stdout + proc.stderr)[-3000:]
    (case,) = [c for c in ET.parse(out / "junit.xml").iter("testcase") if c.get("name") == "test_balancing_convergence"]
    assert case.find("failure") is None and case.find("error") is None, (proc.stdout + proc.stderr)[-3000:]
    text = ET.tostring(case).decode()
    assert "rig observation: emulator channel currents" in text


@pytest.mark.parametrize("chg, dsg", [(True, False), (False, True), (True, True), (False, False)])
def test_bench_board_with_one_power_stage_signal_reports_it_open_when_either_fet_is(chg, dsg):
    """The 218e BMS has one "power stage closed" bit for both directions: the bench transmitter
    (a model with two FETs) sends it closed only while both are closed, so an LVC that opens
    the discharge FET reads as open on the link (it read closed: the charge FET's state won)."""
    import uuid
    from types import SimpleNamespace

    from rig.sim.can_tx import CanTransmitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        tx = CanTransmitter(FS_DBC, f"fs-{uuid.uuid4().hex[:8]}", FS_N, signal_map_path=FS_MAP)
    try:
        tel = SimpleNamespace(cell_v=np.full(FS_N, 3.3), temps_c=np.full(FS_N + 1, 25.0), balancing=np.zeros(FS_N, bool),
                              hvc=False, lvc=not dsg, ot=False, ut=False, charge_fet=chg, discharge_fet=dsg,
                              pack_v=198.0, pack_a=0.0, serial="", hw_revision="", fw_version="2.1.7", state="idle")
        db = _db(FS_DBC)
        vitals = db.get_message_by_name("BMS_Vitals")
        (data,) = [d for fid, d in tx.encode(0.0, tel) if fid == vitals.frame_id]
        assert vitals.decode(bytes(data))["BMS_PowerStageClosed"] == int(chg and dsg)
    finally:
        tx.close()


def test_the_virtual_bench_can_charge_the_60_cell_board_to_its_balancing_level():
    """BAL-007 charges the pack with a CV limit of cells x (balancing minimum + 0.1 V): 210 V for
    the 60-cell 218e board. The virtual bench's pack source refused it (140 V hard limit) and the
    test ended in a SafetyLimitError on a board nothing was wrong with."""
    from rig.build import build_rig
    from rig.profile import load_profile

    prof = load_profile(HERE / "fs218e-60s.yaml")
    v_limit = prof.cells * (prof.balancing.min_cell_v + 0.100)
    assert v_limit > 140.0
    rig = build_rig(None, prof)
    try:
        rig.pack_source.set_current(1.0, voltage_limit_v=v_limit)   # raised SafetyLimitError at 140 V
        rig.pack_source.set_current(0.0)
    finally:
        rig.close()
