"""Malformed link files and profile keys found by mutating the shipped examples.

Each row copies the shipped profiles folder, changes one file (a profile, its signal map,
register map or DBC) the way a user's mistake would, runs ``bmsrig check`` in-process and
asserts: exit 2, a message naming the file, the key and the problem, no traceback, no "OK".
The rows are the defects a mutation run over the newer input surfaces (CAN ``strings:``,
``commands:``, polled ``requests:``, Modbus identity, JBD/Daly link settings) turned up.
"""

from __future__ import annotations

import io
import shutil
import traceback
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml

from rig.cli import main

PROFILES = Path(__file__).resolve().parents[2] / "testplans" / "profiles"


def _edit_yaml(change: Callable[[dict], None]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        data = yaml.safe_load(text)
        change(data)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return apply


def _set(dotted: str, value) -> Callable[[str], str]:
    """Set (or with ``value`` None under ``_DEL``, delete) one dotted key; list indices are numbers."""
    def change(data):
        *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
        for p in parents:
            data = data[p]
        if value is _DEL:
            del data[last]
        else:
            data[last] = value
    return _edit_yaml(change)


_DEL = object()


@dataclass
class Case:
    id: str
    board: str          # the shipped profile checked
    file: str           # the shipped file changed (and named by the error)
    change: Callable[[str], str]
    key: str
    problem: str


CASES = [
    # a Modbus identity value with 'count' but no 'type: ascii' escaped as a pydantic traceback
    Case("regmap-identity-count-without-ascii", "example-4s-lfp-modbus-coils.yaml", "example-bms-modbus-coils.yaml",
         _set("identity.serial.type", _DEL), "identity.serial", "'count' only applies to type ascii"),
    Case("regmap-identity-count-on-uint16", "reference-4s-lfp-uart.yaml", "reference-bms-modbus.yaml",
         _edit_yaml(lambda d: d["identity"].__setitem__("hw_revision", {"address": 300, "type": "uint16", "count": 2})),
         "identity.hw_revision", "'count' only applies to type ascii"),
    # an identity format that uses no field read: every board reported the same made-up identity
    Case("can-j1939-serial-format-without-value", "example-j1939.yaml", "example-j1939-can.yaml",
         _set("identity.serial.format", "SN-0001"), "identity.serial.format", "uses none of the signals"),
    Case("can-polled-fw-format-without-fields", "example-polled-commands.yaml", "example-polled-commands-can.yaml",
         _set("identity.fw_version.format", "1.0.0"), "identity.fw_version.format", "uses none of the signals"),
    Case("regmap-serial-format-without-value", "example-4s-lfp-modbus-coils.yaml", "example-bms-modbus-coils.yaml",
         _edit_yaml(lambda d: d["identity"].__setitem__("hw_revision", {"address": 308, "format": "rev A"})),
         "identity.hw_revision.format", "must use {value}"),
    Case("regmap-fw-format-without-fields", "example-4s-lfp-modbus-coils.yaml", "example-bms-modbus-coils.yaml",
         _set("identity.fw_version.format", "v1"), "identity.fw_version.format", "uses none of the fields"),
    # a YAML boolean where a number is declared loaded as 1 or 0 (pydantic's lax bool -> int)
    Case("profile-accuracy-yes", "reference-16s-lfp.yaml", "reference-16s-lfp.yaml",
         _set("sampling.accuracy_mv", True), "sampling.accuracy_mv", "got a YAML boolean"),
    Case("profile-max-channels-true", "example-two-string.yaml", "example-two-string.yaml",
         _set("balancing.max_channels", True), "balancing.max_channels", "got a YAML boolean"),
    Case("link-bitrate-on", "example-polled.yaml", "example-polled.yaml",
         _set("link.bitrate", True), "link.bitrate", "got a YAML boolean"),
    Case("daly-temperature-count-true", "daly-8s-lfp.yaml", "daly-8s-lfp.yaml",
         _set("link.temperature_count", True), "link.temperature_count", "got a YAML boolean"),
    Case("sigmap-j1939-source-address-true", "example-j1939.yaml", "example-j1939-can.yaml",
         _set("j1939.source_addresses.0", True), "j1939.source_addresses.0", "got a YAML boolean"),
    Case("sigmap-flag-bit-true", "example-polled.yaml", "example-polled-can.yaml",
         _set("flags.lvc.bit", True), "flags.lvc.bit", "got a YAML boolean"),
    Case("regmap-balancing-coil-address-true", "example-4s-lfp-modbus-coils.yaml", "example-bms-modbus-coils.yaml",
         _set("cells.balancing.address", True), "cells.balancing.address", "got a YAML boolean"),
    # a time of 1e30 s loaded, and `bmsrig plan` / a run then waited it out on the bench clock
    Case("profile-start-latency-1e30", "example-j1939.yaml", "example-j1939.yaml",
         _set("balancing.start_latency_max_s", 1e30), "balancing.start_latency_max_s", "less than or equal to 86400"),
    Case("profile-hvc-recovery-two-days", "example-polled-commands.yaml", "example-polled-commands.yaml",
         _set("protection.hvc.recovery_s", 172_800), "protection.hvc.recovery_s", "less than or equal to 86400"),
    # a J1939 source address is one byte: 1e30 and -5 were kept (and matched no frame)
    Case("sigmap-j1939-source-address-huge", "example-j1939.yaml", "example-j1939-can.yaml",
         _set("j1939.source_addresses.1", 10**30), "j1939.source_addresses.1", "less than or equal to 255"),
    Case("sigmap-j1939-source-address-negative", "example-j1939.yaml", "example-j1939-can.yaml",
         _set("j1939.source_addresses.0", -5), "j1939.source_addresses.0", "greater than or equal to 0"),
    # a DBC message longer than any CAN frame (cantools accepts it; no frame could ever match)
    Case("dbc-message-length-99", "reference-16s-lfp.yaml", "reference-bms.dbc",
         lambda text: text.replace("BMS_Status: 8 ", "BMS_Status: 99 "), "BO_ BMS_Status", "length 99 bytes"),
    Case("dbc-polled-response-length-65", "example-polled-commands.yaml", "example-polled.dbc",
         lambda text: text.replace("POLL_CellPage: 8 ", "POLL_CellPage: 65 "), "BO_ POLL_CellPage", "at most 64"),
    # a temperature position the CAN / JBD / Daly link never reports passed check (Modbus was checked)
    Case("can-two-string-temperature-position-not-reported", "example-two-string.yaml", "example-two-string.yaml",
         _set("temperatures.cells.1", 99), "temperatures.cells", "position 99, but the board reports 10"),
    Case("can-reference-bleed-position-not-reported", "reference-16s-lfp.yaml", "reference-16s-lfp.yaml",
         _edit_yaml(lambda d: d.__setitem__("temperatures", {"bleed_resistor": [400]})),
         "temperatures.bleed_resistor", "position 400"),
    Case("daly-temperature-position-beyond-count", "daly-8s-lfp.yaml", "daly-8s-lfp.yaml",
         _set("link.temperature_count", 0), "temperatures.", "but the board reports 0 temperatures"),
    Case("jbd-temperature-position-beyond-ntc-count", "jbd-4s-lfp.yaml", "jbd-4s-lfp.yaml",
         _set("link.ntc_count", 0), "temperatures.", "but the board reports 0 temperatures"),
    # link times of 1e30 s loaded: a board never called silent, a request never resent, an
    # acknowledgement waited for indefinitely
    Case("link-timeout-1e30", "example-polled.yaml", "example-polled.yaml",
         _set("link.timeout_s", 1e30), "link.timeout_s", "less than or equal to 3600"),
    Case("link-poll-two-hours", "jbd-4s-lfp.yaml", "jbd-4s-lfp.yaml",
         _set("link.poll_s", 7200), "link.poll_s", "less than or equal to 3600"),
    Case("sigmap-request-every-1e30", "example-polled.yaml", "example-polled-can.yaml",
         _set("requests.1.every_s", 1e30), "requests.1.every_s", "less than or equal to 3600"),
    Case("sigmap-request-timeout-1e30", "example-polled.yaml", "example-polled-can.yaml",
         _set("requests.2.timeout_s", 1e30), "requests.2.timeout_s", "less than or equal to 3600"),
    Case("sigmap-command-ack-timeout-1e30", "example-polled-commands.yaml", "example-polled-commands-can.yaml",
         _set("commands.balancing_on.ack.timeout_s", 1e30), "commands.balancing_on.ack.timeout_s",
         "less than or equal to 3600"),
    Case("sigmap-event-hold-1e30", "example-vendor-mux.yaml", "example-vendor-mux-can.yaml",
         _set("events.XB_Alarm.hold_s", 1e30), "events.XB_Alarm", "at most 3600 s"),
    # a request listing no page value sent no frame at all, and the board was then never asked
    Case("sigmap-request-empty-page-list", "example-polled.yaml", "example-polled-can.yaml",
         _set("requests.0.signals.ReqPage", []), "requests.0", "ReqPage lists no value"),
]


def _check(board: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(["check", "--board", str(board)])
        except SystemExit as exc:  # argparse
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - an escaped exception is the traceback we look for
            err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc)))
            code = 1
    return code, out.getvalue(), err.getvalue()


def test_the_rows_are_distinct():
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_link_input_is_rejected(case: Case, tmp_path):
    ws = tmp_path / "profiles"
    shutil.copytree(PROFILES, ws)
    target = ws / case.file
    target.write_text(case.change(target.read_text()))
    code, out, err = _check(ws / case.board)
    assert "Traceback" not in out + err, err
    assert code == 2, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert ": OK" not in out, out
    for part in (case.file, case.key, case.problem):
        assert part.lower() in err.lower(), f"{part!r} not in the message: {err}"


@pytest.mark.parametrize("board", ["example-two-string.yaml", "daly-8s-lfp.yaml", "jbd-4s-lfp.yaml",
                                   "example-4s-lfp-modbus-coils.yaml"])
def test_the_shipped_profiles_still_pass(board, tmp_path):
    code, out, err = _check(PROFILES / board)
    assert code == 0, err
    assert "OK" in out


# ---------------------------------------------------------------------- rig descriptions

ENVS = PROFILES.parents[1] / "rig" / "envs"
ENV_CASES = [
    # both escaped as a TypeError / AttributeError traceback
    ("imports-not-a-list", "example-real-rig.yaml", _set("imports", 7), "imports", "must list 'rig.labgrid'"),
    ("imports-a-number-on-the-bench", "sim.yaml", _set("imports", 0.5), "imports", "must list 'rig.labgrid'"),
    ("main-target-empty", "example-shared-bench-can.yaml", _set("targets.main", {}), "targets.main",
     "no resources and no drivers"),
]


@pytest.mark.parametrize("env,change,key,problem", [c[1:] for c in ENV_CASES], ids=[c[0] for c in ENV_CASES])
def test_malformed_rig_description_is_rejected(env, change, key, problem, tmp_path):
    path = tmp_path / env
    path.write_text(change((ENVS / env).read_text()))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(["check", "--rig", str(path), "--board", str(PROFILES / "reference-16s-lfp.yaml")])
        except Exception as exc:  # noqa: BLE001 - an escaped exception is the traceback we look for
            err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc)))
            code = 1
    assert code == 2, err.getvalue()
    assert ": OK" not in out.getvalue()
    for part in (env, key, problem):
        assert part in err.getvalue(), f"{part!r} not in the message: {err.getvalue()}"


# ---------------------------------------------------------------------- lab configuration

@pytest.mark.parametrize("value", ["0", "86400", "'1732924800'"])
def test_a_number_for_item_received_is_not_a_unix_time(value, tmp_path):
    """``item_received: 0`` loaded as 1970-01-01 (pydantic reads a number as a Unix time)."""
    lab = tmp_path / "lab.yaml"
    lab.write_text(f"customer: ACME\nitem_received: {value}\n")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["run", "--lab-config", str(lab), "--board", str(tmp_path / "no-such-board.yaml"),
                     "--out", str(tmp_path / "out"), "--no-index"])
    assert code == 2
    assert f"{lab}: item_received: " in err.getvalue() and "YYYY-MM-DD" in err.getvalue(), err.getvalue()
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- bmsrig run reads the link files first

@pytest.mark.parametrize("board,file,change,key", [
    ("example-4s-lfp-modbus-coils.yaml", "example-bms-modbus-coils.yaml", _set("blocks.4.function", 0), "blocks.4.function"),
    ("example-two-string.yaml", "example-two-string-can.yaml", _set("fets.charge", "NoSuchFet"), "fets.charge"),
], ids=["register-map", "signal-map"])
def test_run_refuses_a_broken_link_file_before_the_plans(board, file, change, key, tmp_path):
    """A broken map passed the run's checks: the plans started, each errored on the map, the run
    folder was written and the exit was 4 (unidentified) instead of 2."""
    ws = tmp_path / "profiles"
    shutil.copytree(PROFILES, ws)
    (ws / file).write_text(change((ws / file).read_text()))
    out_dir = tmp_path / "out"
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["run", "--board", str(ws / board), "--out", str(out_dir), "--no-index", "--no-progress",
                     "-k", "mapping"])
    assert code == 2, out.getvalue() + err.getvalue()
    assert f"{file}: {key}: " in err.getvalue(), err.getvalue()
    assert not out_dir.exists()


def test_plan_refuses_a_broken_link_file(tmp_path, monkeypatch):
    """``bmsrig plan`` printed an estimate (exit 0) for a profile whose register map is broken:
    every test of its dry run had errored on the map."""
    monkeypatch.setenv("BMSRIG_CACHE", str(tmp_path / "cache"))
    ws = tmp_path / "profiles"
    shutil.copytree(PROFILES, ws)
    regmap = ws / "example-bms-modbus-coils.yaml"
    regmap.write_text(_set("blocks.4.function", 0)(regmap.read_text()))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["plan", "--board", str(ws / "example-4s-lfp-modbus-coils.yaml"), "--tier", "regression"])
    assert code == 2, out.getvalue()
    assert "example-bms-modbus-coils.yaml: blocks.4.function: " in err.getvalue(), err.getvalue()
    assert "total" not in out.getvalue()


@pytest.mark.parametrize("given, key, what", [
    ("example-polled-can.yaml", "format", "this is a CAN signal map"),
    ("reference-bms-modbus.yaml", "format", "this is a Modbus register map"),
    ("signal-map-without-format", "sample_on", "this looks like a CAN signal map"),
])
def test_a_link_map_given_as_the_board_profile_is_named_as_such(tmp_path, given, key, what):
    """The commonest mix-up, the board's map passed as ``--board``, said only "format: unknown
    key" (the first of many unknown keys): the error now says what the file is and what to pass."""
    if given == "signal-map-without-format":
        raw = yaml.safe_load((PROFILES / "reference-bms-can.yaml").read_text(encoding="utf-8"))
        raw.pop("format", None)
        board = tmp_path / "my-map.yaml"
        board.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    else:
        board = PROFILES / given
    code, out, err = _check(board)
    assert code == 2 and "Traceback" not in err
    assert f"{board.name}: {key}: {what}" in err and "not a board profile" in err and "names this file" in err
