"""The lab configuration file: customer, item received, method document, preparer, approver
and authorisation, read strictly, recorded in run_start and shown in the report."""

from __future__ import annotations

import json

import pytest

from rig.errors import ConfigError
from rig.labconfig import NOT_STATED, lab_facts, load_lab_config
from rig.record import load_summary

from reports.html import report_context, render_html

GOOD = """\
customer: ACME Batteries GmbH
item_received: 2026-11-30
method: {id: LAB-BMS-TP-001, revision: C}
preparer: {name: A. Tester, function: test engineer}
approver: {name: B. Approver, function: head of laboratory}
authorisation: Authorised for issue by the head of laboratory.
"""


def _write(tmp_path, text, name="lab.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_a_lab_file_loads_with_every_field(tmp_path):
    cfg = load_lab_config(str(_write(tmp_path, GOOD)))
    facts = lab_facts(cfg)
    assert facts["customer"] == "ACME Batteries GmbH"
    assert facts["item_received"] == "2026-11-30"
    assert facts["method"] == "LAB-BMS-TP-001 rev. C"
    assert facts["approver"] == "B. Approver, head of laboratory"
    assert facts["authorised"] is True
    json.dumps(cfg)  # it goes into the record as it is


def test_the_environment_names_the_file_when_the_option_does_not(tmp_path, monkeypatch):
    monkeypatch.setenv("BMSRIG_LAB", str(_write(tmp_path, GOOD)))
    assert load_lab_config(None)["customer"] == "ACME Batteries GmbH"
    monkeypatch.delenv("BMSRIG_LAB")
    assert load_lab_config(None) is None


@pytest.mark.parametrize("text, key, problem", [
    (GOOD + "aprover: {name: X}\n", "aprover", "unknown key"),
    (GOOD.replace("2026-11-30", "30.11.2026"), "item_received", "date"),
    (GOOD.replace("{name: B. Approver, function: head of laboratory}", "{function: head}"), "approver.name", "required"),
    (GOOD.replace("customer: ACME Batteries GmbH", "customer: ''"), "customer", "non-empty"),
    ("- a list\n", None, "mapping"),
])
def test_a_wrong_lab_file_is_a_config_error_naming_file_key_and_problem(tmp_path, text, key, problem):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_lab_config(str(path))
    assert str(path) in str(exc.value)
    if key:
        assert exc.value.key == key
    assert problem.lower() in exc.value.problem.lower()


def test_a_missing_lab_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_lab_config(str(tmp_path / "nope.yaml"))


def _with_lab(run_dir, cfg):
    lines = (run_dir / "record.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["context"]["lab_config"] = cfg
    lines[0] = json.dumps(first)
    (run_dir / "record.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_report_states_the_lab_file_from_the_record(tmp_path, built_run):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(built_run[0], run_dir)
    _with_lab(run_dir, load_lab_config(str(_write(tmp_path, GOOD))))
    summary = load_summary(run_dir)
    ctx = report_context(summary, with_plots=False)
    assert ctx["labcfg"]["authorised"] and ctx["requester"] == "ACME Batteries GmbH"
    assert not any(head == "Not authorised" for _, head, _ in ctx["banners"])
    html = render_html(summary, with_plots=False)
    for text in ("ACME Batteries GmbH", "2026-11-30", "LAB-BMS-TP-001 rev. C", "A. Tester, test engineer",
                 "B. Approver, head of laboratory", "Authorised for issue by the head of laboratory."):
        assert text in html, text


def test_without_a_lab_file_each_field_is_not_stated_and_the_report_not_authorised(built_run):
    summary = load_summary(built_run[0])
    ctx = report_context(summary, with_plots=False)
    assert ctx["labcfg"]["customer"] == summary.context["requester"]  # --requester stands in for the customer
    for key in ("item_received", "method", "preparer", "approver", "authorisation"):
        assert ctx["labcfg"][key] == NOT_STATED, key
    assert not ctx["labcfg"]["authorised"]
    assert any(head == "Not authorised" for _, head, _ in ctx["banners"])
    html = render_html(summary, with_plots=False)
    assert 'id="lab-approver">not stated<' in html and "Not authorised</span>" in html


def test_a_u_of_0_shows_its_reason_or_is_flagged(built_run):
    from reports.html import _measurement_row, u_notes

    rows = [_measurement_row(1, {"name": "n", "value": 3, "unit": "1", "limits": [0, 5], "uncertainty": 0,
                                 "verdict": "pass", "u_reason": "a count: exact"}, "guarded"),
            _measurement_row(2, {"name": "v", "value": 3.2, "unit": "mV", "limits": [0, 5], "uncertainty": 0,
                                 "verdict": "pass"}, "guarded"),
            _measurement_row(3, {"name": "w", "value": 3.2, "unit": "mV", "limits": [0, 5], "uncertainty": 0.4,
                                 "verdict": "pass", "u_reason": "unused"}, "guarded")]
    assert u_notes(rows) == ["a count: exact"]
    assert [r["u_note"] for r in rows] == [1, 0, 0]
    assert [r["u_zero"] for r in rows] == [True, True, False]


def test_the_annex_lists_only_the_u_reasons_its_tables_use(built_run):
    summary = load_summary(built_run[0])
    ctx = report_context(summary, with_plots=False)
    for t in ctx["tests"]:
        used = {v["u_note"] for sr in t["series"] for row in sr["cells"] for v in row["vals"] if v and v["u_note"]}
        assert {k for k, _ in t["annex_notes"]} == used
        for k, text in t["annex_notes"]:
            assert t["u_notes"][k - 1] == text
