"""The JBD and Daly links polling their bench counterparts over a real pty.

The host link opens the pty with pyserial as it would a USB-UART adapter; the bench board
answers from a telemetry snapshot through the protocol modules. Bad checksums and silence are
counted link errors; a board silent for longer than the link timeout is a LinkFault.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from rig.errors import ConfigError, LinkFault
from rig.links.daly_link import DalyBmsLink
from rig.links.jbd_link import JbdBmsLink
from rig.profile import PROFILE_DIR, load_profile
from rig.sim.daly_slave import DalySlave
from rig.sim.jbd_slave import JbdSlave

from .conftest import make_telemetry

JBD_PROFILE = PROFILE_DIR / "jbd-4s-lfp.yaml"
DALY_PROFILE = PROFILE_DIR / "daly-8s-lfp.yaml"


def board(n: int, **kw):
    tel = make_telemetry(n, **kw)
    tel.balancing = np.zeros(n, bool)
    tel.balancing[[0, n - 1]] = True
    return tel


@pytest.fixture
def jbd_board():
    with JbdSlave(4, ntc_count=2, capacity_ah=100.0) as s:
        s.hold(board(4, hvc=True, ut=True, discharge_fet=False, pack_a=-1.25, fw_version="2.3"))
        yield s


@pytest.fixture
def daly_board():
    with DalySlave(8, temperature_count=2) as s:
        s.hold(board(8, lvc=True, ot=True, charge_fet=False, pack_a=3.4, state="charge"))
        yield s


def jbd_link(slave, clock, **kw):
    kw = {"ntc_count": 2, "timeout_s": 2.0, "poll_s": 0.25, "response_timeout_s": 0.1, **kw}
    return JbdBmsLink("JBD test", slave.address, 4, clock, **kw)


def daly_link(slave, clock, **kw):
    kw = {"temperature_count": 2, "timeout_s": 2.0, "poll_s": 0.25, "response_timeout_s": 0.1, **kw}
    return DalyBmsLink("Daly test", slave.address, 8, clock, **kw)


# ---------------------------------------------------------------------------- JBD


def test_jbd_poll_reads_cells_ntcs_balance_protection_and_fets(jbd_board, clock):
    with jbd_link(jbd_board, clock) as link:
        s = link.latest()
    assert s.cell_v == pytest.approx([3.300, 3.301, 3.302, 3.303])       # mV resolution
    assert s.temps_c == pytest.approx([25.0, 25.1])                      # the first two cell NTCs, 0.1 K
    assert s.balancing.tolist() == [True, False, False, True]
    assert (s.flags.hvc, s.flags.lvc, s.flags.ot, s.flags.ut) == (True, False, False, True)
    assert (s.charge_fet, s.discharge_fet) == (True, False)
    assert s.pack_v == pytest.approx(13.2) and s.pack_a == pytest.approx(-1.25) and s.state is None
    assert link.transactions == 2 and link.errors == 0


def test_jbd_identity_reads_hardware_version_firmware_and_barcode_in_factory_mode(jbd_board, clock):
    with jbd_link(jbd_board, clock, serial="barcode") as link:
        ident = link.identity()
    assert (ident.serial, ident.hw_revision, ident.fw_version) == ("REF16-000123", "C", "2.3")
    assert not jbd_board.factory_mode                                    # left factory mode again
    with jbd_link(jbd_board, clock, serial="serial_num") as link:
        assert link.identity().serial == "123"                           # EEPROM 0x16, U16
    with jbd_link(jbd_board, clock) as link:                             # serial: none -> not read
        assert link.identity().serial == "" and "serial" not in link.reports.identity


def test_jbd_bad_checksum_is_a_counted_error_and_the_next_poll_recovers(jbd_board, clock):
    with jbd_link(jbd_board, clock) as link:
        jbd_board.inject_corruption(1, "flip")
        assert link.poll() is None
        assert link.errors == 1 and link.error_counts["checksum"] == 1 and "checksum" in link.last_error
        assert link.poll() is not None and link.sample_count == 1


def test_jbd_short_reply_and_silence_are_counted_timeouts(jbd_board, clock):
    with jbd_link(jbd_board, clock) as link:
        jbd_board.inject_corruption(1, "short")
        assert link.poll() is None
        jbd_board.inject_corruption(1, "silent")
        assert link.poll() is None
        assert link.error_counts["timeout"] == 2
        assert link.latest() is not None                                  # retried: the board answers again


def test_jbd_silent_board_is_a_link_fault_naming_the_errors(jbd_board, clock):
    with jbd_link(jbd_board, clock, retries=1) as link:
        link.latest()
        jbd_board.muted = True
        with pytest.raises(LinkFault) as ei:
            link.latest()
        assert "no valid reply in 2 polls" in str(ei.value) and "timeout 2" in str(ei.value)
        with pytest.raises(LinkFault) as ei:
            link.wait_for(lambda s: False, timeout=5.0, what="a flag that never comes")
        assert "link timeout 2 s" in str(ei.value) and "link errors" in str(ei.value)
        with pytest.raises(LinkFault, match="board not judged"):
            link.history(since=0.0)


def test_jbd_listener_polls_on_the_rig_clock_and_wait_for_sees_a_change(jbd_board, clock):
    with jbd_link(jbd_board, clock, poll_s=0.5) as link:
        clock.sleep(0.5)
        clock.sleep(0.2)   # < poll_s since the last poll: no request
        clock.sleep(0.3)
        assert [s.t for s in link.history()] == pytest.approx([0.5, 1.0]) and link.transactions == 4

        def step(t0, t1):
            if t1 >= 2.0:
                jbd_board.update(board(4, lvc=True, charge_fet=False))

        clock.on_step.append(step)
        s = link.wait_for(lambda s: s.flags.lvc and not s.charge_fet, timeout=5.0, what="LVC")
        assert s.t == pytest.approx(2.0)


def test_jbd_cell_count_other_than_the_profile_is_a_content_error(clock):
    with JbdSlave(5, ntc_count=2) as s:
        s.hold(board(5))
        with jbd_link(s, clock) as link:
            assert link.poll() is None
            assert link.error_counts["content"] == 1 and "reports 5 cells, the profile 4" in link.last_error


# ---------------------------------------------------------------------------- Daly


def test_daly_poll_reads_every_data_id_in_one_sample(daly_board, clock):
    with daly_link(daly_board, clock) as link:
        s = link.latest()
        assert link.transactions == 6                                    # 0x90 0x93 0x95 0x96 0x97 0x98
    assert s.cell_v == pytest.approx(3.300 + 0.001 * np.arange(8))      # 3 frames of 3 cells
    assert s.temps_c == pytest.approx([25.0, 25.0])                      # 1 °C resolution (25.1 -> 25)
    assert np.flatnonzero(s.balancing).tolist() == [0, 7]
    assert (s.flags.hvc, s.flags.lvc, s.flags.ot, s.flags.ut) == (False, True, True, False)
    assert (s.charge_fet, s.discharge_fet, s.state) == (False, True, "charge")
    assert s.pack_v == pytest.approx(26.4) and s.pack_a == pytest.approx(3.4)


def test_daly_current_sign_follows_the_profile(clock):
    with DalySlave(8, 2, current_positive="discharge") as s:
        s.hold(board(8, pack_a=-2.0))
        with daly_link(s, clock, current_positive="discharge") as link:
            assert link.latest().pack_a == pytest.approx(-2.0)
        with daly_link(s, clock) as link:                                # read with the other convention
            assert link.latest().pack_a == pytest.approx(2.0)


def test_daly_identity_is_blank_never_invented(daly_board, clock):
    from rig.identity import identity_problems

    with daly_link(daly_board, clock) as link:
        ident = link.identity()
    assert (ident.serial, ident.hw_revision, ident.fw_version) == ("", "", "")
    assert identity_problems(vars(ident)) == ["serial number not read", "firmware version not read"]


def test_daly_unpolled_balance_is_not_verified_with_the_reason(daly_board, clock):
    with daly_link(daly_board, clock, data_ids=(0x90, 0x93, 0x95, 0x96, 0x98)) as link:
        assert not link.latest().balancing.any()
        reason = link.reports.reason("balancing")
    assert reason == ("not verified: the board does not report its balancing mask "
                      "(Daly protocol: link.data_ids does not ask 0x97)")


def test_what_a_protocol_lacks_or_a_profile_leaves_out_is_named_in_the_reason(jbd_board, clock):
    jbd_board.update(board(4, hvc=True, ot=True))
    with jbd_link(jbd_board, clock, flags={"ot": ()}, unreported=("balancing",)) as link:
        caps = link.reports
        assert caps.has("hvc") and caps.has("pack_a") and caps.n_temperatures == 2
        assert caps.reason("state") == ("not verified: the board does not report its state "
                                        "(JBD protocol: the JBD protocol has no field for it)")
        assert caps.reason("ot", "balancing").endswith("(JBD protocol: link.flags.ot names no bit; "
                                                       "link.unreported lists it)")
        assert caps.reason("hvc", "cell_voltages") is None
        s = link.latest()                       # the bench board sends balance bits: not taken as evidence
        assert not s.balancing.any() and s.flags.hvc and not s.flags.ot


def test_daly_bad_checksum_counted_and_counts_checked(daly_board, clock):
    with daly_link(daly_board, clock) as link:
        daly_board.inject_corruption(1, "flip")
        assert link.poll() is None and link.error_counts["checksum"] == 1
        assert link.poll() is not None
    with daly_link(daly_board, clock, temperature_count=3, data_ids=(0x94, 0x95)) as link:
        assert link.poll() is None and link.error_counts["content"] == 1
        assert "2 temperature sensors" in link.last_error and "temperature_count 3" in link.last_error


def test_daly_silent_board_is_a_link_fault(daly_board, clock):
    with daly_link(daly_board, clock, retries=0) as link:
        daly_board.muted = True
        with pytest.raises(LinkFault, match="no valid reply in 1 polls"):
            link.latest()


# ---------------------------------------------------------------------------- profiles


@pytest.mark.parametrize("profile, change, key, problem", [
    (JBD_PROFILE, {"flags": {"hvc": [16]}}, "link.flags.hvc", "outside the 16-bit protection status"),
    (JBD_PROFILE, {"flags": {"hot": [4]}}, "link.flags.hot", "unknown flag 'hot'"),
    (JBD_PROFILE, {"ntc_count": None}, "link.ntc_count", ""),
    (JBD_PROFILE, {"serial": "eeprom"}, "link.serial", "'none', 'barcode' or 'serial_num'"),
    (JBD_PROFILE, {"unreported": ["soc"]}, "link.unreported", "unknown quantity 'soc'"),
    (DALY_PROFILE, {"data_ids": [0x90, 0x96]}, "link.data_ids", "must include 0x95"),
    (DALY_PROFILE, {"data_ids": [0x95, 0x62]}, "link.data_ids", "0x62 is not a data id the link polls"),
    (DALY_PROFILE, {"current_positive": "in"}, "link.current_positive", "'charge' or 'discharge'"),
])
def test_profile_errors_name_file_key_and_problem(tmp_path, profile, change, key, problem):
    raw = yaml.safe_load(profile.read_text())
    link = {k: v for k, v in {**raw["link"], **change}.items() if v is not None}
    path = tmp_path / profile.name
    path.write_text(yaml.safe_dump({**raw, "link": link}))
    with pytest.raises(ConfigError) as ei:
        load_profile(path)
    assert (ei.value.file, ei.value.key) == (str(path), key)
    assert problem in ei.value.problem


def test_shipped_profiles_load_and_open_on_their_bench_counterparts(clock):
    from rig.links.registry import Endpoint, kind_of

    for path, n_temps in ((JBD_PROFILE, 2), (DALY_PROFILE, 2)):
        profile = load_profile(path)
        kind = kind_of(profile)
        port = kind.bench(profile, "t")
        try:
            port.hold(board(profile.cells))
            with kind.open(profile, Endpoint(port.address, bench=True), clock) as link:
                s = link.latest()
                assert len(s.cell_v) == profile.cells and len(s.temps_c) == n_temps
                assert link.reports.n_temperatures == n_temps
        finally:
            port.close()


# ---------------------------------------------------------------------------- a plan end to end


def _run_plan(board, out, *plans):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "rig.cli", "run", "--board", str(board), "--out", str(out), *plans],
                          capture_output=True, text=True, cwd=root, env=env, timeout=900)


@pytest.mark.slow
def test_jbd_board_runs_a_plan_and_is_identified_by_its_barcode(tmp_path):
    proc = _run_plan(JBD_PROFILE, tmp_path / "run", "test_channel_mapping.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = (tmp_path / "run" / "record.jsonl").read_text().replace(" ", "")
    assert '"serial":"JBD4S-000411"' in record and '"hw_revision":"JBD-SP04S020-4S"' in record
    assert '"fw_version":"2.3"' in record


@pytest.mark.slow
def test_daly_board_is_judged_but_unidentified(tmp_path):
    """Every test of the plan judged; no serial in the protocol: UNIDENTIFIED (exit 4), not invented."""
    proc = _run_plan(DALY_PROFILE, tmp_path / "run", "test_channel_mapping.py")
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "passed" in proc.stdout and "failed" not in proc.stdout and "UNIDENTIFIED" in proc.stdout + proc.stderr
    assert '"serial":""' in (tmp_path / "run" / "record.jsonl").read_text().replace(" ", "")


@pytest.mark.slow
def test_daly_board_identified_by_the_labs_item_record_passes(tmp_path):
    """The lab writes the serial from the board's label into its item record (lab.yaml
    ``item:``): the Daly board, which cannot report one, is then identified (exit 0) and the
    record says where the identity came from."""
    lab = tmp_path / "lab.yaml"
    lab.write_text("customer: bench check\nitem: {serial: DALY8S-2026-0042, hw_revision: R1, fw_version: '1.0'}\n")
    proc = _run_plan(DALY_PROFILE, tmp_path / "run", "--lab-config", str(lab), "test_channel_mapping.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = (tmp_path / "run" / "record.jsonl").read_text().replace(" ", "")
    assert '"serial":"DALY8S-2026-0042"' in record and "item" in record.split('"identity_source"')[1][:80]


def test_identity_survives_a_board_waking_from_sleep(jbd_board, clock):
    """The JBD protocol: "the first data packet cannot be responded to in sleep mode"."""
    with jbd_link(jbd_board, clock, serial="barcode", retries=1) as link:
        jbd_board.inject_corruption(1, "silent")
        assert link.identity().serial == "REF16-000123" and link.error_counts["timeout"] == 1
        jbd_board.muted = True
        with pytest.raises(LinkFault, match="identity not read: timeout"):
            link.identity()


@pytest.mark.parametrize("profile, cells, limit", [(JBD_PROFILE, 33, 32), (DALY_PROFILE, 49, 48)])
def test_more_cells_than_the_protocol_carries_is_a_profile_error(tmp_path, profile, cells, limit):
    from rig.links.registry import kind_of

    raw = yaml.safe_load(profile.read_text())
    raw["cells"] = cells
    path = tmp_path / profile.name
    path.write_text(yaml.safe_dump(raw))
    p = load_profile(path)
    with pytest.raises(ConfigError) as ei:
        kind_of(p).check_maps(p)
    assert (ei.value.file, ei.value.key) == (str(path), "cells") and f"at most {limit}" in ei.value.problem


def test_the_bench_cannot_play_more_sensors_than_its_board_model_measures(tmp_path):
    from rig.links.registry import kind_of

    raw = yaml.safe_load(JBD_PROFILE.read_text())
    raw["link"]["ntc_count"] = 6                       # 4 cells + the bleed resistor = 5 temperatures
    path = tmp_path / JBD_PROFILE.name
    path.write_text(yaml.safe_dump(raw))
    p = load_profile(path)
    with pytest.raises(ConfigError) as ei:
        kind_of(p).bench(p, "t")
    assert ei.value.key == "link.ntc_count" and "measures 5 temperatures" in ei.value.problem
    raw["link"]["ntc_count"] = 5                       # the fifth NTC is the bleed resistor's
    path.write_text(yaml.safe_dump(raw))
    p = load_profile(path)
    port = kind_of(p).bench(p, "t")
    try:
        port.hold(board(4))
        from rig.clock import StepClock

        with JbdBmsLink("JBD 5 NTCs", port.address, 4, StepClock(), ntc_count=5, response_timeout_s=0.1) as link:
            assert link.latest().temps_c == pytest.approx([25.0, 25.1, 25.2, 25.3, 41.5])
    finally:
        port.close()


# ---------------------------------------------------------------------------- board commands

@pytest.mark.parametrize("base", [JBD_PROFILE, DALY_PROFILE], ids=["jbd", "daly"])
@pytest.mark.parametrize("declaration", [
    ("balancing", "enabled_by_command", {"command": "balancing_on"}),
    ("setpoints_by_command", None, {"protection.hvc.threshold_v": {"command": "hvc_setpoint", "value": "threshold_v",
                                                                    "factory_default": 3.75}}),
], ids=["balancing gate", "set-point"])
def test_a_serial_profile_declaring_board_commands_is_refused_at_load(tmp_path, base, declaration):
    """The JBD and Daly protocols carry no board commands: a profile saying its board needs one
    (to balance, or to take a set-point) could never be configured by the rig, so it is refused
    when loaded, naming the key, instead of failing every balancing or HVC test later."""
    raw = yaml.safe_load(base.read_text(encoding="utf-8"))
    section, key, value = declaration
    if key is None:
        raw[section] = value
        where = "setpoints_by_command.protection.hvc.threshold_v.command"
    else:
        raw[section][key] = value
        where = "balancing.enabled_by_command.command"
    path = tmp_path / base.name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert err.value.key == where
    assert "carries no board commands" in str(err.value) and "declares no command" in str(err.value)
