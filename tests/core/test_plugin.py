"""The pytest plugin: measurements as data, all failures listed, markers, the run record."""

import json
import textwrap

import pytest

from rig.build import DEFAULT_ENV
from rig.record import read_record

pytest_plugins = ["pytester"]

PLAN = textwrap.dedent(
    '''
    import pytest

    @pytest.mark.requirement("ACC-001")
    def test_two_channels_out_of_limits(measure, link, clock):
        """Every channel is measured even after one fails."""
        sample = link.latest()
        for i, v in enumerate(sample.cell_v):
            err = 0.0 if i not in (2, 9) else 0.020
            measure(f"cell{i + 1:02d}_error_mv", err * 1e3, "mV", limits=(-5, 5), uncertainty=0.5)
        clock.sleep(1.0)

    @pytest.mark.requirement("ACC-001")
    def test_guard_band_rejects_a_value_inside_tolerance(measure):
        assert measure("edge", 4.8, "mV", limits=(-5, 5), uncertainty=0.5) is False

    @pytest.mark.requirement("BAL-001")
    def test_all_in_limits(measure, emulator):
        assert measure("n_channels", emulator.n_channels, "1", limits=(16, 16)) is True

    @pytest.mark.needs("thermal_camera")
    def test_skipped_without_instrument(rig):
        pass
    '''
)


def test_plugin_end_to_end(pytester, tmp_path):
    pytester.makepyfile(test_plan=PLAN)
    run_dir = tmp_path / "run"
    result = pytester.runpytest_subprocess("--run-dir", str(run_dir), "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 2 and outcomes.get("passed") == 1 and outcomes.get("skipped") == 1
    text = result.stdout.str()
    # one failed channel does not hide the other: both are listed, with their values
    assert "2 of 16 measurements out of limits" in text
    assert "cell03_error_mv = 20 mV" in text and "cell10_error_mv = 20 mV" in text
    events = [json.loads(line) for line in (run_dir / "record.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    meas = [e for e in events if e["event"] == "measurement"]
    assert len(meas) == 16 + 1 + 1
    edge = next(m for m in meas if m["name"] == "edge")
    assert edge["verdict"] == "fail" and edge["acceptance"] == [-4.5, 4.5] and edge["decision_rule"] == "guarded"
    assert all(m["requirement"] in ("ACC-001", "BAL-001") for m in meas)
    ends = {e["nodeid"].split("::")[-1]: e["outcome"] for e in events if e["event"] == "test_end"}
    assert ends == {
        "test_two_channels_out_of_limits": "failed",
        "test_guard_band_rejects_a_value_inside_tolerance": "failed",
        "test_all_in_limits": "passed",
        "test_skipped_without_instrument": "skipped",
    }
    assert any(e["event"] == "deviation" and e["kind"] == "skipped" for e in events)


def test_simple_acceptance_is_selectable(pytester, tmp_path):
    pytester.makepyfile(test_plan=PLAN)
    result = pytester.runpytest_subprocess("--decision-rule", "simple", "-k", "guard_band", "-p", "no:cacheprovider")
    # under simple acceptance 4.8 mV is inside ±5 mV, so the plan's `is False` assertion fails
    result.assert_outcomes(failed=1)


SMALL_PLAN = textwrap.dedent(
    '''
    def test_passes():
        assert True

    def test_fails():
        assert 1 == 2
    '''
)


def test_session_state_lives_in_the_stash_and_reaches_the_caller(pytester):
    """No module-level state: the caller of pytest.main gets the session's state and exit
    code back through a SessionResult plugin, two sessions in one process stay apart."""
    import fixtures.plugin as plugin
    from fixtures.state import SessionResult

    assert not hasattr(plugin, "_CURRENT") and not hasattr(plugin, "take_state")
    assert not any(isinstance(v, (dict, list)) and not k.isupper() and not k.startswith("__")
                   for k, v in vars(plugin).items()), "module-level mutable state in fixtures.plugin"
    pytester.makepyfile(test_small=SMALL_PLAN)
    first, second = SessionResult(), SessionResult()
    r1 = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:labgrid", plugins=[first])
    r2 = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:labgrid", "-k", "passes", plugins=[second])
    assert first.state is not None and second.state is not None and first.state is not second.state
    assert first.state.counts == {"passed": 1, "failed": 1, "skipped": 0, "error": 0}
    assert second.state.counts == {"passed": 1, "failed": 0, "skipped": 0, "error": 0}
    assert first.exit_code(r1.ret) == 1 and first.state.exit_status == 1
    assert second.exit_code(r2.ret) == 0 and second.state.exit_status == 0


RIG_PLAN = """
    def test_reads_the_board(link):
        assert link.latest().cell_v.size > 0
"""


def test_lg_env_names_the_rig_it_is_never_ignored(pytester, tmp_path):
    """``pytest --lg-env hardware.yaml``: the session drives that rig (here it cannot be
    reached, so the test errors with a rig fault) and never falls back to the virtual bench."""
    env = tmp_path / "hardware.yaml"
    env.write_text((DEFAULT_ENV.parent / "example-real-rig.yaml").read_text())
    pytester.makepyfile(test_plan=RIG_PLAN)
    run_dir = tmp_path / "run"
    result = pytester.runpytest_subprocess("--lg-env", str(env), "--run-dir", str(run_dir), "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0 and outcomes.get("errors", 0) == 1, result.stdout.str()[-2000:]
    start = next(e for e in read_record(run_dir) if e["event"] == "run_start")
    assert str(env) in json.dumps(start)


def test_lg_env_and_a_different_rig_is_a_usage_error(pytester, tmp_path):
    pytester.makepyfile(test_plan=RIG_PLAN)
    result = pytester.runpytest_subprocess("--lg-env", str(DEFAULT_ENV.parent / "example-real-rig.yaml"),
                                           "--rig", str(DEFAULT_ENV), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "two different rig descriptions" in result.stderr.str()


def test_lg_env_naming_the_bench_runs_the_bench(pytester, tmp_path):
    pytester.makepyfile(test_plan=RIG_PLAN)
    result = pytester.runpytest_subprocess("--lg-env", str(DEFAULT_ENV), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
