"""No conformity without identity: a board whose serial or firmware is not read (or reads as
a placeholder) gets no statement of conformity, a deviation, the verdict UNIDENTIFIED and
exit 4; the UART reference board reports its identity over Modbus from power-on."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rig.identity import EXIT_UNIDENTIFIED, gate_exit_code, identity_problems, is_placeholder
from rig.record import RunRecord, load_summary

CLI = [sys.executable, "-m", "rig.cli"]


@pytest.mark.parametrize("text", ["", None, "0.0.0", "0", "unknown", "\x00\x00", "FFFF", "not read", " 0.0 "])
def test_placeholders_are_not_an_identity(text):
    assert is_placeholder(text)


@pytest.mark.parametrize("text", ["REF4U-000777", "2.3.1", "0.0.1", "A"])
def test_real_identity_strings_are_accepted(text):
    assert not is_placeholder(text)


def test_identity_problems_name_what_is_missing():
    assert identity_problems({"serial": "REF-1", "hw_revision": "", "fw_version": "2.3.1"}) == []
    assert identity_problems({"serial": "", "hw_revision": "C", "fw_version": "0.0.0"}) == [
        "serial number not read", "firmware version '0.0.0'"]
    assert identity_problems(None) == ["the DUT identity was not read"]


def test_gate_turns_judged_runs_of_unidentified_boards_into_exit_4_and_keeps_faults():
    anon = {"serial": "", "fw_version": "0.0.0"}
    ok = {"serial": "S1", "fw_version": "1.0.0"}
    assert [gate_exit_code(c, anon) for c in (0, 1, 2, 3)] == [EXIT_UNIDENTIFIED, EXIT_UNIDENTIFIED, 2, 3]
    assert [gate_exit_code(c, ok) for c in (0, 1, 2, 3)] == [0, 1, 2, 3]


def _record(run_dir, dut):
    with RunRecord(run_dir) as rec:
        rec.append("run_start", run_id="r-anon", context={"board_profile": {"name": "p"}, "planned_tests": ["t.py::a"],
                                                          "decision_rule": "guarded"})
        if dut is not None:
            rec.append("dut_identity", **dut)
        rec.append("test_start", nodeid="t.py::a", name="a", doc="", requirements=["R-1"], t_rig=0.0)
        rec.append("measurement", test="t.py::a", name="x_mv", value=1.0, unit="mV", limits=[-5, 5],
                   uncertainty=0.5, acceptance=[-4.5, 4.5], decision_rule="guarded", verdict="pass",
                   requirement="R-1", conditions={}, t_rig=0.1)
        rec.append("test_end", nodeid="t.py::a", outcome="passed", message="", duration_s=1.0, t_rig=1.0)
        rec.append("run_end", exit_code=0, summary={"passed": 1, "failed": 0, "skipped": 0, "error": 0})
    return run_dir


@pytest.mark.parametrize("dut", [None, {"serial": "", "hw_revision": "", "fw_version": "0.0.0"},
                                 {"serial": "S-1", "hw_revision": "C", "fw_version": ""}])
def test_report_of_an_unidentified_board_makes_no_statement_of_conformity(tmp_path, dut):
    from reports.html import report_context

    ctx = report_context(load_summary(_record(tmp_path / "run", dut)), with_plots=False)
    assert ctx["verdict"] == "UNIDENTIFIED" and ctx["exit_code"] == EXIT_UNIDENTIFIED
    assert ctx["conformity"].startswith("No statement of conformity is made: the item tested is not identified")
    assert [d for d in ctx["deviations"] if d["kind"] == "identity"]


def test_report_of_an_identified_board_keeps_its_statement(tmp_path):
    from reports.html import report_context

    ctx = report_context(load_summary(_record(tmp_path / "run", {"serial": "S-1", "hw_revision": "C",
                                                                  "fw_version": "2.3.1"})), with_plots=False)
    assert ctx["verdict"] == "PASS" and ctx["exit_code"] == 0 and "conforms" in ctx["conformity"]
    assert not [d for d in ctx["deviations"] if d["kind"] == "identity"]


def _dut(run_dir):
    for line in (run_dir / "record.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "dut_identity":
            return e
    return None


@pytest.mark.slow
def test_uart_reference_board_reports_its_identity_and_passes(tmp_path):
    out = tmp_path / "run"
    p = subprocess.run([*CLI, "run", "--board", "reference-4s-lfp-uart", "--out", str(out), "-k", "test_cell_mapping"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    dut = _dut(out)
    assert (dut["serial"], dut["hw_revision"], dut["fw_version"]) == ("REF4U-000777", "C", "2.3.1")


@pytest.mark.slow
@pytest.mark.parametrize("board", ["reference-4s-lfp-uart", "reference-16s-lfp"])  # Modbus and CAN
def test_no_identity_defect_gives_the_identity_verdict(tmp_path, board):
    from tests.zoo.catalog_expectations import IDENTITY

    (spec, (plan, test, verdict)), = IDENTITY.items()
    out = tmp_path / "run"
    p = subprocess.run([*CLI, "run", "--board", board, "--defect", spec, "--out", str(out), "-k", test, plan],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == EXIT_UNIDENTIFIED, p.stdout[-2000:] + p.stderr[-2000:]
    assert f"bmsrig: {verdict}" in p.stdout
    assert identity_problems(_dut(out))
    html = (out / "report.html").read_text()
    assert f'id="overall-verdict">{verdict}<' in html and "conforms to the requirements" not in html
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["verdict"], summary["exit_code"], summary["board"]["identified"]) == (verdict, 4, False)
