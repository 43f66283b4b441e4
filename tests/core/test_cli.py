"""The CLI: bad input exits 2 with one message naming file and key, never a traceback."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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


# --------------------------------------------------------------------------- a user's mistakes: exit 2, no traceback


def _no_traceback(err: str) -> bool:
    return "Traceback" not in err and "INTERNALERROR" not in err


def test_out_under_a_file_exits_2_naming_it(tmp_path):
    code, out, err = run_cli("run", "--out", "/dev/null/x", "-k", "nothing")
    assert code == 2 and "/dev/null" in err and "--out" in err and _no_traceback(err), err


def test_out_naming_a_file_exits_2_and_leaves_it_alone(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    code, out, err = run_cli("run", "--out", str(target), "-k", "nothing")
    assert code == 2 and str(target) in err and "not a run folder" in err and _no_traceback(err), err
    assert target.read_text() == "mine"


def test_out_in_a_folder_that_is_not_empty_exits_2(tmp_path):
    (tmp_path / "old.txt").write_text("a previous run")
    code, out, err = run_cli("run", "--out", str(tmp_path), "-k", "nothing")
    assert code == 2 and "not empty" in err and _no_traceback(err), err


@pytest.mark.parametrize("name", ["a/b", "../../etc/passwd", "..", "x\\y", ""])
def test_a_lock_name_with_a_path_exits_2(tmp_path, name):
    code, out, err = run_cli("run", "--lock", name, "--out", str(tmp_path / "run"), "-k", "nothing")
    assert code == 2 and "--lock" in err and "plain name" in err and _no_traceback(err), err
    assert not (tmp_path / "run").exists()


def test_report_on_a_record_corrupt_in_the_middle_exits_2_naming_file_and_line(tmp_path):
    from rig.record import RunRecord

    with RunRecord(tmp_path) as rec:
        rec.append("run_start", run_id="r", context={})
        rec.append("test_start", nodeid="t::a")
        rec.append("test_end", nodeid="t::a", outcome="passed")
    lines = (tmp_path / "record.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1][:20] + "\n"  # damaged in the middle, not a torn tail
    (tmp_path / "record.jsonl").write_text("".join(lines))
    code, out, err = run_cli("report", str(tmp_path))
    assert code == 2 and _no_traceback(err), err
    assert f"{tmp_path / 'record.jsonl'}: line 2" in err
    assert not (tmp_path / "report.html").exists()


def test_report_into_a_folder_the_user_cannot_write_exits_2_naming_it(tmp_path):
    from rig.record import RunRecord

    run = tmp_path / "run"
    with RunRecord(run) as rec:
        rec.append("run_start", run_id="r", context={})
    run.chmod(0o555)
    code, out, err = run_cli_as_nobody("report", str(run))
    assert code == 2 and str(run) in err and "Permission denied" in err and _no_traceback(err), err


def test_out_the_user_cannot_write_exits_2_naming_it(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    code, out, err = run_cli_as_nobody("run", "--out", str(locked / "run"), "-k", "nothing")
    assert code == 2 and str(locked / "run") in err and "Permission denied" in err and _no_traceback(err), err


def test_unknown_board_model_exits_2_naming_it(tmp_path):
    code, out, err = run_cli("run", "--board-model", "no_such_pkg.boards:Mine", "--out", str(tmp_path / "r"))
    assert code == 2 and "--board-model" in err and "no_such_pkg.boards" in err and _no_traceback(err), err
    assert not (tmp_path / "r").exists()


def test_check_with_a_missing_rig_file_exits_2(tmp_path):
    code, out, err = run_cli("check", "--rig", str(tmp_path / "absent.yaml"))
    assert code == 2 and "absent.yaml" in err and _no_traceback(err), err


def test_bmsrig_starts_without_fcntl_as_on_windows():
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import rig.lock, rig.cli\n"
            "sys.exit(rig.cli.main(['boards']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "reference-16s-lfp" in proc.stdout, proc.stderr


def test_run_exit_code_is_worked_out_in_one_function():
    from rig.errors import run_exit_code

    assert run_exit_code(0) == 0
    assert run_exit_code(1, any_failed=True) == 1
    assert run_exit_code(1, any_failed=True, rig_fault=True) == 3
    assert run_exit_code(0, disk_fault=True) == 3  # evidence not on disk: never a pass
    assert run_exit_code(2, any_failed=True) == 1 and run_exit_code(2) == 3
    assert run_exit_code(5) == 2 and run_exit_code(3) == 3
    import inspect

    import rig.cli
    assert not hasattr(rig.cli, "_exit_code")  # no second copy of the rule in the CLI
    # the CLI asks the session for its code: it calls no exit-code rule itself
    assert "run_exit_code" not in inspect.getsource(rig.cli).split('"""', 2)[2]


SETPRIV = shutil.which("setpriv")
_NO_OVERRIDE = "-dac_override,-dac_read_search,-fowner"


def as_plain_user(argv: list[str]) -> list[str]:
    """``argv`` run as root stripped of the capabilities that bypass file permissions, so
    the kernel checks permissions as for any user (needs root and util-linux's setpriv)."""
    if os.geteuid() != 0 or SETPRIV is None:
        pytest.skip("needs root and setpriv to run without permission override")
    return [SETPRIV, "--bounding-set", _NO_OVERRIDE, "--inh-caps", _NO_OVERRIDE, *argv]


def run_cli_as_nobody(*args):
    """The CLI, with file permissions enforced as for an ordinary user."""
    proc = subprocess.run(as_plain_user([sys.executable, "-m", "rig.cli", *args]), capture_output=True,
                          text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr
