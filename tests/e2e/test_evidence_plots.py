"""End to end: a cut-off timing plot names the cell it shows and states the latency its
results table states for that cell (the plot once said 0.750 s for an unnamed cell while
the table said 1.18 s for cell 1, the trace plotted)."""

import re
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "rig.cli"]


@pytest.fixture(scope="module")
def cutoff_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cutoff") / "run"
    proc = subprocess.run([*CLI, "run", "--board", "reference-4s-lfp-uart", "--out", str(out),
                           "-k", "hvc_latency or lvc_threshold"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def test_each_timing_plot_names_its_cell_and_agrees_with_the_table(cutoff_run):
    html = (cutoff_run / "report.html").read_text(encoding="utf-8")
    titles = re.findall(r"(HVC|LVC) timing, cell (\d+) — latency ([0-9.]+) s", html)
    assert {k for k, _, _ in titles} == {"HVC", "LVC"}, titles
    for kind, cell, value in titles:
        name = f"cell{int(cell):02d}_{kind.lower()}_latency_s"
        link = re.search(rf"illustrates {name} — [^<]*rows — value in the table: <a class=\"pg m-link\" href=\"#(m-\d+)\">", html)
        assert link, f"the {kind} plot does not link to its table value"
        cell_text = re.search(rf'id="{link.group(1)}"[^>]*>([0-9.]+) ±', html)
        assert cell_text, f"no table value for {name}"
        assert cell_text.group(1) == value, f"{kind} cell {cell}: plot {value} s, table {cell_text.group(1)} s"


def test_a_title_without_the_measurement_still_names_the_cell():
    from reports.plots import cutoff_title

    profile = {"protection": {"hvc": {"latency_max_s": 1.5}}}
    assert cutoff_title("HVC", {"cell": 3}, profile) == "HVC timing, cell 3"
    assert cutoff_title("HVC", {"cell": 3, "latency_s": 1.18, "latency_u_s": 0.001}, profile) == \
        "HVC timing, cell 3 — latency 1.1800 s (limit ≤ 1.5 s)"
