"""The "(p. N)" page references of report.pdf, written after one layout pass
(reports.pdf_pagerefs), give the target's page, as CSS target-counter did; the contents
list is split in two columns of about the same height."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from reports import pdf_pagerefs
from reports.html import halves
from reports.pdf import render_pdf
from rig.bench_run import pdf_pages

SECTIONS = 12  # pages 2..13: two-digit page numbers

_CSS = """<style>
@page { size: A6; margin: 10mm; }
a.pg::after { content: " (p. " target-counter(attr(href url), page) ")"; }
h2 { break-before: page; }
</style>"""


def _doc() -> tuple[str, list[int]]:
    """A document whose links point forward and backward at sections on known pages;
    returns the HTML and the page each link's reference must show, in text order."""
    body, expected = ["<h1>Front</h1>"], []
    for k in (12, 3, 7):  # forward from page 1
        body.append(f'<p>see <a class="pg" href="#s{k}">section {k}</a>, then more text.</p>')
        expected.append(k + 1)
    for k in range(1, SECTIONS + 1):
        body.append(f'<h2 id="s{k}">Section {k}</h2><p>Back to <a class="mono pg" href="#s1">the first</a>; '
                    f'ahead to <a class="pg m-link" href="#s{SECTIONS}">the last</a>.</p>')
        expected += [2, SECTIONS + 1]
    html = f"<!DOCTYPE html><html><head><meta charset='utf-8'>{_CSS}</head><body>{''.join(body)}</body></html>"
    return html, expected


def _refs(pdf) -> list[int]:
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    else:
        pypdf = pytest.importorskip("pypdf", reason="neither pdftotext nor pypdf installed")
        text = "\n".join(p.extract_text() or "" for p in pypdf.PdfReader(str(pdf)).pages)
    return [int(n) for n in re.findall(r"\(p\.\s+(\d+)\)", text)]


def test_placeholders_go_into_pg_links_only():
    html = ('<head></head><a class="pg" href="#x">a</a> <a href="#y">b</a> <a class="mono pg" href="#z">c</a>'
            ' <a class="page" href="#w">d</a>')
    out, n = pdf_pagerefs.with_placeholders(html, digits=3)
    assert n == 2
    assert out.count('<span class="pgn">000</span>') == 2
    assert 'data-pg="x"' in out and 'data-pg="z"' in out and 'data-pg="y"' not in out and 'data-pg="w"' not in out
    assert "a.pg::after { content: none; }" in out
    assert pdf_pagerefs.with_placeholders("<head></head><p>no links</p>") == ("<head></head><p>no links</p>", 0)


@pytest.mark.needs_pdf_renderer
def test_page_references_name_the_targets_page(tmp_path):
    html, expected = _doc()
    pages = render_pdf(html, tmp_path / "r.pdf")
    assert pages == SECTIONS + 1
    assert pdf_pages(tmp_path / "r.pdf") == pages  # the bench's page count (rig.bench_run)
    assert _refs(tmp_path / "r.pdf") == expected


@pytest.mark.needs_pdf_renderer
def test_installed_weasyprint_takes_the_one_pass_path():
    """A WeasyPrint whose laid-out boxes changed shape falls back to target-counter (slow):
    this fails then, so the fallback is not taken silently."""
    from weasyprint import HTML

    html, expected = _doc()
    marked, count = pdf_pagerefs.with_placeholders(html)
    document = HTML(string=marked).render()
    assert count == len(expected)
    assert pdf_pagerefs.fill(document) is True


@pytest.mark.needs_pdf_renderer
def test_same_page_numbers_when_the_placeholder_is_too_narrow_or_the_fill_fails(tmp_path, monkeypatch):
    html, expected = _doc()
    monkeypatch.setattr(pdf_pagerefs, "DIGITS", 1)  # 13 pages: rendered again with 2 digits
    render_pdf(html, tmp_path / "narrow.pdf")
    assert _refs(tmp_path / "narrow.pdf") == expected
    monkeypatch.setattr(pdf_pagerefs, "fill", lambda document, digits=2: False)  # CSS target-counter
    render_pdf(html, tmp_path / "css.pdf")
    assert _refs(tmp_path / "css.pdf") == expected


def test_contents_halves_keep_order_and_balance_heights():
    entries = [("", f"s{i}", str(i)) for i in range(7)] + [("sub", f"t{i}", str(i)) for i in range(22)] \
        + [("", f"e{i}", str(i)) for i in range(4)]
    left, right = halves(entries)
    assert left + right == entries
    height = lambda part: sum(0.9 if e[0] == "sub" else 1.0 for e in part)  # noqa: E731
    assert abs(height(left) - height(right)) <= 1.0
    assert halves([]) == ([], [])
    assert halves([("", "a", "A")]) in (([("", "a", "A")], []), ([], [("", "a", "A")]))
