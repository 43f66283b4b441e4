"""Requirement texts live in one place (testplans/requirements.yaml): every plan's IDs are
there, profiles carry none (an old profile that does gets a clear ConfigError), the run
record stores the texts and the report quotes them from it."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from rig.errors import ConfigError
from rig.profile import BoardProfile, list_profiles, load_profile
from testplans.requirements import REQUIREMENTS_FILE, load_requirements, record_requirements

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]


def _plan_ids() -> set[str]:
    ids = set()
    for plan in (ROOT / "testplans").glob("test_*.py"):
        for args in re.findall(r"mark\.requirement\(([^)]*)\)", plan.read_text()):
            ids |= set(re.findall(r'"([A-Z]+-\d{3})"', args))
    return ids


def test_every_requirement_a_plan_evidences_has_its_text_and_every_text_is_evidenced():
    texts = load_requirements()
    assert len(texts) == 20 and all(t.strip() for t in texts.values())
    assert _plan_ids() == set(texts)


def test_shipped_profiles_carry_no_requirement_texts():
    assert "requirements" not in BoardProfile.model_fields
    for path in list_profiles():
        raw = yaml.safe_load(Path(path).read_text())
        assert "requirements" not in raw, path
        load_profile(path)


def test_an_old_profile_with_requirements_names_the_file_and_where_texts_went(tmp_path):
    src = Path(load_profile("reference-16s-lfp").source)
    raw = yaml.safe_load(src.read_text())
    for k in ("dbc", "signal_map"):
        raw["link"][k] = str(src.parent / raw["link"][k])
    raw["requirements"] = {"HVC-001": "old copy"}
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as exc:
        load_profile(old)
    assert exc.value.file == str(old) and exc.value.key == "requirements"
    assert "testplans/requirements.yaml" in exc.value.problem
    proc = subprocess.run([sys.executable, "-m", "rig.cli", "check", "--board", str(old)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "testplans/requirements.yaml" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("text,key", [("hvc-1: text\n", "hvc-1"), ("HVC-001: ''\n", "HVC-001"),
                                      ("HVC-001: [a, b]\n", "HVC-001")])
def test_a_malformed_requirements_file_names_the_id(tmp_path, text, key):
    f = tmp_path / "requirements.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_requirements(f)
    assert exc.value.file == str(f) and exc.value.key == key


def test_record_requirements_prefers_the_record_then_an_old_profile_copy_then_the_file():
    assert record_requirements({"requirements": {"R-001": "stored"}, "board_profile": {"requirements": {"X": "y"}}}) \
        == {"R-001": "stored"}
    assert record_requirements({"board_profile": {"requirements": {"R-002": "old"}}}) == {"R-002": "old"}
    assert record_requirements({"board_profile": {}}) == load_requirements()


def test_the_requirements_file_ships_as_package_data():
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    line = next(ln for ln in section.splitlines() if ln.startswith('"testplans"'))
    assert '"requirements.yaml"' in line
    assert REQUIREMENTS_FILE.parent == ROOT / "testplans" and REQUIREMENTS_FILE.is_file()


def test_the_run_record_stores_the_texts_and_the_report_quotes_them(pytester, tmp_path):
    from reports.html import report_context
    from rig.summary import load_summary

    pytester.makepyfile(test_small=textwrap.dedent('''
        import pytest

        @pytest.mark.requirement("MAP-001")
        def test_mapped(measure):
            measure("channels", 16, "1", limits=(16, 16))
    '''))
    run_dir = tmp_path / "run"
    result = pytester.runpytest_subprocess("--run-dir", str(run_dir), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    start = json.loads((run_dir / "record.jsonl").read_text().splitlines()[0])
    assert start["event"] == "run_start" and start["context"]["requirements"] == load_requirements()
    ctx = report_context(load_summary(run_dir), with_plots=False)
    rows = {r["id"]: r for r in ctx["trace"]}
    assert rows["MAP-001"]["text"] == load_requirements()["MAP-001"]
    assert rows["HVC-001"]["verdict"] == "NOT TESTED"
