"""The CLI: bad input exits 2 with one message naming file and key, never a traceback."""

import subprocess
import sys
from pathlib import Path

import yaml

from rig.cli import main
from rig.profile import load_profile


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "rig.cli", *args], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_unknown_board_exits_2_naming_it():
    code, out, err = run_cli("run", "--board", "no-such-board", "--out", "/tmp/bmsrig-never")
    assert code == 2
    assert "no-such-board" in err and "Traceback" not in err
    assert not Path("/tmp/bmsrig-never").exists()


def test_bad_defect_spec_exits_2_naming_the_spec():
    code, out, err = run_cli("run", "--defect", "adc_offset:cell=5,volts=3")
    assert code == 2 and "adc_offset" in err and "volts" in err and "Traceback" not in err


def test_unknown_defect_exits_2():
    code, out, err = run_cli("run", "--defect", "flux_capacitor")
    assert code == 2 and "flux_capacitor" in err and "Traceback" not in err


def test_malformed_rig_description_exits_2(tmp_path):
    env = tmp_path / "rig.yaml"
    env.write_text("imports: [rig.labgrid]\ntargets:\n  main:\n    resources:\n      NoSuchResource: {}\n")
    code, out, err = run_cli("check", "--rig", str(env))
    assert code == 2 and str(env) in err and "Traceback" not in err


def test_profile_with_inconsistent_thresholds_exits_2(tmp_path):
    src = Path(load_profile("reference-16s-lfp").source)
    raw = yaml.safe_load(src.read_text())
    raw["balancing"]["stop_delta_mv"] = 50
    for k in ("dbc", "signal_map"):
        raw["link"][k] = str(src.parent / raw["link"][k])
    bad = tmp_path / "board.yaml"
    bad.write_text(yaml.safe_dump(raw))
    code, out, err = run_cli("check", "--board", str(bad))
    assert code == 2 and str(bad) in err and "stop_delta_mv" in err and "Traceback" not in err


def test_check_accepts_the_shipped_rig_and_boards(capsys):
    for board in ("reference-16s-lfp", "reference-4s-lfp-uart", "reference-32s-lfp"):
        assert main(["check", "--board", board]) == 0
    out = capsys.readouterr().out
    assert "OK (bench)" in out


def test_boards_and_defects_list(capsys):
    assert main(["boards"]) == 0
    assert main(["defects"]) == 0
    out = capsys.readouterr().out
    assert "reference-4s-lfp-uart" in out and "hvc_delay" in out and "balance_chatter" in out


def test_report_on_a_folder_without_record_exits_2(tmp_path):
    assert main(["report", str(tmp_path)]) == 2


def test_bench_json_gives_the_figures_of_each_scenario():
    import json
    code, out, err = run_cli("bench", "--json", "balance-40h")
    assert code == 0, err
    (r,) = json.loads(out)
    assert r["scenario"] == "balance-40h"
    assert r["simulated_s"] > 40 * 3600 and r["wall_s"] > 0 and r["ratio"] == r["ratio"]  # not NaN
    assert abs(r["result"]["agreement"]) < 0.10  # within 10 % of bleed current x duty


def test_bench_unknown_scenario_exits_2_naming_the_known_ones():
    code, out, err = run_cli("bench", "daily-6d")
    assert code == 2 and "daily-6d" in err and "daily-60d" in err and "Traceback" not in err
