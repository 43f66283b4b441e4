"""reports.build: every artifact from the record alone; manifest; report content; PDF."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import reports
from reports import verify_manifest
from reports.manifest import MANIFEST_FILE
from reports_synthetic import EXPIRED_DUE, RUN_ID, VALID_DUE, make_run
from testplans.requirements import load_requirements

ARTIFACTS = ["junit.xml", "summary.json", "report.html", "report.pdf", "manifest.json", "manifest.sig"]


def _text(html: str) -> str:
    """Visible text of an HTML page, whitespace collapsed (style/script dropped)."""

    class P(HTMLParser):
        def __init__(self):
            super().__init__()
            self.out, self.skip = [], 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("style", "script")

        def handle_endtag(self, tag):
            self.skip -= tag in ("style", "script")

        def handle_data(self, data):
            if not self.skip:
                self.out.append(data)

    p = P()
    p.feed(html)
    return re.sub(r"\s+", " ", " ".join(p.out))


# --------------------------------------------------------------------------- artifacts, manifest


@pytest.mark.needs_pdf_renderer
def test_build_writes_every_artifact(built_run):
    run_dir, artifacts, _ = built_run
    assert sorted(artifacts) == sorted(ARTIFACTS)
    for name in ARTIFACTS:
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0
    assert not list(run_dir.glob("*.tmp"))


@pytest.mark.needs_pdf_renderer
def test_manifest_lists_every_file_and_verifies(built_run):
    run_dir, _, _ = built_run
    doc = json.loads((run_dir / MANIFEST_FILE).read_text())
    paths = {e["path"] for e in doc["files"]}
    captures = {f"captures/{p.name}" for p in (run_dir / "captures").iterdir()}
    assert len(captures) == 6
    assert {"record.jsonl", "junit.xml", "summary.json", "report.html", "report.pdf"} | captures == paths
    assert all(len(e["sha256"]) == 64 and e["size"] > 0 for e in doc["files"])
    assert doc["run_id"] == RUN_ID and doc["algorithm"] == "sha256"
    assert verify_manifest(run_dir) == []


def test_manifest_detects_tampering(built_run, tmp_path):
    src, _, _ = built_run
    run_dir = tmp_path / "copy"
    shutil.copytree(src, run_dir)
    assert verify_manifest(run_dir) == []
    capture = sorted((run_dir / "captures").iterdir())[0]
    data = capture.read_bytes()
    capture.write_bytes(data.replace(b"3", b"4", 1))  # same size, different content
    rec = run_dir / "record.jsonl"
    rec.write_text(rec.read_text().replace('"verdict":"fail"', '"verdict":"pass"', 1))
    (run_dir / "junit.xml").unlink()
    (run_dir / "extra.txt").write_text("slipped in later")
    problems = verify_manifest(run_dir)
    joined = "\n".join(problems)
    assert f"captures/{capture.name}: SHA-256" in joined
    assert "record.jsonl: SHA-256" in joined
    assert "junit.xml: missing" in joined
    assert "extra.txt: not in the manifest" in joined
    assert verify_manifest(run_dir, allow_extra=True) == [p for p in problems if "extra.txt" not in p]


def test_missing_manifest_is_reported(tmp_path):
    assert verify_manifest(tmp_path) == ["manifest.json: missing"]


def test_rebuild_is_reproducible_from_the_record_alone(built_run, tmp_path):
    src, _, _ = built_run
    run_dir = tmp_path / "only-record"
    (run_dir / "captures").mkdir(parents=True)
    shutil.copy2(src / "record.jsonl", run_dir)
    for p in (src / "captures").iterdir():
        shutil.copy2(p, run_dir / "captures")
    from conftest import ISSUED

    reports.build(run_dir, pdf=False, issued=ISSUED)
    assert (run_dir / "report.html").read_text() == (src / "report.html").read_text()
    assert (run_dir / "junit.xml").read_bytes() == (src / "junit.xml").read_bytes()


# --------------------------------------------------------------------------- HTML content


@pytest.fixture(scope="module")
def html(built_run):
    run_dir, _, _ = built_run
    return (run_dir / "report.html").read_text(encoding="utf-8")


def test_html_is_self_contained(html):
    assert not re.search(r'<(link|script)\b', html)
    assert not re.search(r'\b(src|href)="(?!data:|#)', html)
    assert html.count("<svg") >= 9  # 6 captures + 3 sampling-error plots from measurements


def test_html_states_identity_method_rig_and_conditions(html):
    text = _text(html)
    for needle in (
        RUN_ID, "Example Battery Lab", "Bench 3, Building B, Grenoble", "ACME Energy Storage — QA (PO 4711)",
        "REF16-000123", "2.3.1", "reference-16s-lfp", "read from the board",
        "testplans/test_qualification.py", "ab" * 32, "3f9c2e1d" * 5,
        "CE-00042", "Virtual DAQ-970", VALID_DUE,
        "-10, 25, 45 °C", "adc_offset:cell=5,mv=8", "Date of issue", "2025-03-15 09:00 UTC",
        "End of report",
    ):
        assert needle in text, needle
    assert f'content: "Run {RUN_ID}"' in html
    assert 'counter(page) " of " counter(pages)' in html


def test_html_front_page_verdict_failures_first_and_flags(html):
    front = html[: html.index('<nav class="toc"')]
    text = _text(front)
    assert re.search(r'id="overall-verdict">FAIL<', front)
    assert "Expired calibration" in text and "CE-00042" in text and EXPIRED_DUE in text
    assert text.count("Expired calibration") == 1  # only the emulator
    assert "Defects injected" in text and "adc_offset:cell=5,mv=8" in text
    assert "Failures" in text and "sampling_error_cell_05" in text
    # failed tests before errors, both before the first section
    assert text.index("test_sampling_accuracy[45C]") < text.index("test_link_dropout")


def test_html_decision_rule_and_conformity(html):
    text = _text(html)
    assert 'id="decision-rule-guarded"' in html
    assert "Guarded acceptance per ILAC-G8" in text and "acceptance limit = tolerance limit − U" in text
    assert "Statement of conformity. The item tested does not conform" in text


def test_html_results_have_unit_limits_uncertainty_acceptance_verdict(html):
    rows = re.findall(r'<tr id="m-\d+"><td>\d+</td><td>hvc_trip_v</td>.*?</tr>', html)
    assert len(rows) == 1
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0])
    assert cells[1:] == ["hvc_trip_v", "cell=7", "3.65120 V", "0.00080", "3.64 … 3.66", "3.6408 … 3.6592", "PASS"]


def test_html_traceability_matrix(html):
    table = html[html.index('id="traceability"'):]
    table = table[: table.index("</table>")]
    rows = {re.search(r'<td class="mono">([^<]+)</td>', r).group(1): _text(r)
            for r in re.findall(r'<tr class="trace-row">.*?</tr>', table, re.S)}
    assert len(rows) == len(load_requirements())  # every requirement of the profile
    assert "FAIL" in rows["ACC-001"] and "48" in rows["ACC-001"] and "1 fail" in rows["ACC-001"]
    assert "Each channel is reported on its own cell index." in rows["MAP-001"] and "NOT TESTED" in rows["MAP-001"]
    assert "PASS" in rows["HVC-001"] and "test_hvc_trip" in rows["HVC-001"]
    assert "NOT TESTED (skipped)" in rows["BAL-009"]
    assert "NOT JUDGED" in rows["HVC-004"]


def test_html_deviations(html):
    table = html[html.index('id="deviations"'):]
    text = _text(table[: table.index("</table>")])
    assert "needs chamber" in text and "rig fault in can0" in text
    assert "Chamber door opened" in text and f"calibration due {EXPIRED_DUE}" in text


def test_html_authorisation_block(html):
    text = _text(html)
    for needle in ("Prepared by", "Approved by", "Signature", "Date"):
        assert needle in text


def test_incomplete_run_report(incomplete_run):
    run_dir, artifacts = incomplete_run
    assert "report.pdf" not in artifacts and verify_manifest(run_dir) == []
    html = (run_dir / "report.html").read_text()
    front = _text(html[: html.index('<nav class="toc"')])
    assert "INCOMPLETE" in front and "Incomplete run" in front
    assert "Planned tests that never ended" in front
    unfinished = html[html.index('id="unfinished"'):]
    unfinished = _text(unfinished[: unfinished.index("</ul>")])
    assert "test_balancing_pause (incomplete)" in unfinished
    assert "test_hvc_recovery (not run)" in unfinished
    assert "test_hvc_trip" not in unfinished
    assert "Torn record" in front
    assert "No statement of conformity is made" in _text(html)
    assert "Expired calibration" not in front and "Defects injected" not in front


def test_a_broken_capture_does_not_lose_the_report(tmp_path):
    run_dir = make_run(tmp_path / "run", balancing_samples=50)
    victim = next(p for p in (run_dir / "captures").iterdir() if "derating" in p.name)
    victim.write_text("temp_c,duty\n")  # header only: nothing to plot against the curve... still fine
    hvc = next(p for p in (run_dir / "captures").iterdir() if "hvc" in p.name)
    hvc.unlink()
    reports.build(run_dir, pdf=False)
    html = (run_dir / "report.html").read_text()
    assert 'class="plot-error"' in html and "hvc_ramp_cell_7" in html
    assert "End of report" in html


# --------------------------------------------------------------------------- PDF


def _pdf_text(path: Path, extractor: str) -> str:
    """The PDF's text, pages separated by form feeds (as ``pdftotext`` writes them), from
    poppler's ``pdftotext`` or from pypdf; skips when that extractor is not installed."""
    if extractor == "pdftotext":
        if not shutil.which("pdftotext"):
            pytest.skip("pdftotext (poppler-utils) not installed; the pypdf case checks the same pages")
        return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    pypdf = pytest.importorskip("pypdf", reason="pypdf not installed (pip install -e .[test])")
    return "\f".join(page.extract_text() or "" for page in pypdf.PdfReader(str(path)).pages)


@pytest.mark.needs_pdf_renderer
@pytest.mark.parametrize("extractor", ["pdftotext", "pypdf"])
def test_pdf_has_pages_run_id_on_every_page_and_end_of_report(built_run, extractor):
    run_dir, _, timings = built_run
    pages = timings["pdf_pages"]
    assert pages > 1
    text = _pdf_text(run_dir / "report.pdf", extractor)
    per_page = text.split("\f")
    per_page = [p for p in per_page if p.strip()]
    assert len(per_page) == pages
    for i, page in enumerate(per_page, 1):
        assert RUN_ID in page, f"run ID missing on page {i}"
        assert f"Page {i} of {pages}" in page
    assert "End of report" in per_page[-1]
    assert "FAIL" in per_page[0] and "Expired calibration" in per_page[0]


@pytest.mark.needs_pdf_renderer
@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="pdftoppm (poppler-utils) not installed")
def test_pdf_first_page_renders_to_png(built_run, tmp_path):
    run_dir, _, _ = built_run
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(run_dir / "report.pdf"), str(tmp_path / "p")],
                   check=True)
    png = next(tmp_path.glob("p*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- speed


@pytest.mark.needs_pdf_renderer
def test_bench_report_build_reports_the_wall_time_of_a_full_build(tmp_path):
    """The build's speed is a figure of ``bmsrig bench report-build``, not a pass/fail limit
    here (a wall-clock limit fails on a loaded machine): the scenario builds every artifact
    of a large run and reports its wall time and steps."""
    from rig.bench import SCENARIOS, report_build

    assert SCENARIOS["report-build"] is report_build
    run_dir = make_run(tmp_path / "run", repeat_sampling=6, extra_captures=4)
    r = report_build(run_dir)
    res = r["result"]
    assert r["scenario"] == "report-build" and r["wall_s"] > 0
    assert res["build_wall_s"] == pytest.approx(r["wall_s"], abs=1e-3) and res["build_cpu_s"] > 0
    assert res["measurements"] >= 300 and res["captures"] == 10
    assert res["pdf_pages"] > 1 and (run_dir / "report.pdf").stat().st_size > 0
    assert {"pdf", "html"} <= set(res["steps_s"]), res["steps_s"]
    assert verify_manifest(run_dir) == []


def test_a_pass_names_the_requirements_it_says_nothing_about():
    """A requirement wholly or partly not verified, or not tested at all, is listed; a
    judged one (PASS or FAIL) is not."""
    from reports.html import unverified_requirements

    trace = [{"id": "ACC-001", "verdict": "PASS"},
             {"id": "BAL-001", "verdict": "NOT VERIFIED: the board does not report its balancing mask"},
             {"id": "ACC-002", "verdict": "PASS (part NOT VERIFIED: the board does not report its balancing mask)"},
             {"id": "BAL-008", "verdict": "NOT TESTED"},
             {"id": "BAL-009", "verdict": "NOT TESTED (skipped)"},
             {"id": "HVC-001", "verdict": "FAIL"},
             {"id": "LVC-001", "verdict": "NOT JUDGED"}]
    assert unverified_requirements(trace) == ["BAL-001", "ACC-002", "BAL-008", "BAL-009"]
