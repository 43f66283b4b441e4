"""The defect zoo: the plans pass the reference boards and catch every catalog defect.

(a) the full plan passes each reference profile on ten seeds;
(b) every defect in ``catalog_expectations.CAUGHT`` × every profile: the intended test fails
    and its failure message names the cause;
(c) defects well inside spec pass;
(d) every catalog defect has an entry (a new defect without a catching test fails the zoo);
(e) the full plan (no -k) on 16S exits 1 for every defect, with the intended test failing;
(f) a defect that silences the board's link is never a pass: its test ends in a rig fault,
    "board not judged", exit 3 (``NOT_JUDGED``).

Runs are subprocesses (one simulated world each), so ``pytest -n 2`` parallelises them.
"""

from __future__ import annotations

import pytest

from rig.sim.defects import catalog

from .catalog_expectations import CAUGHT, IDENTITY, PROFILES, VENDOR_CAUGHT, VENDOR_PROFILES, WITHIN_SPEC, defect_name

SEEDS = range(1, 11)

# spec -> (plan file, test function): defects that take the board's link away. The plan
# cannot judge the board, so the test must end in a rig fault (exit 3), never pass or fail.
NOT_JUDGED: dict[str, tuple[str, str]] = {
    "silent_while_balancing": ("test_bleed_timing.py", "test_balancing_start"),
    "telemetry_gap:t=2,s=30": ("test_bleed_timing.py", "test_balancing_start"),
}


def test_every_catalog_defect_has_a_catching_test():
    names = {d.name for d in catalog()}
    covered = {defect_name(s) for s in CAUGHT} | {defect_name(s) for s in NOT_JUDGED} | {defect_name(s) for s in IDENTITY}
    covered |= {defect_name(row[1]) for row in VENDOR_CAUGHT}
    missing = sorted(names - covered)
    assert not missing, f"catalog defects without a catching plan test in tests/zoo/catalog_expectations.py: {missing}"
    unknown = sorted(covered - names)
    assert not unknown, f"zoo table names defects the catalog does not have: {unknown}"


@pytest.mark.slow
@pytest.mark.parametrize("board", PROFILES)
def test_reference_board_passes_via_cli(plan_runner, board):
    """``bmsrig run`` on the reference board: exit 0, every test passed."""
    run = plan_runner(board, seed=1, cli=True)
    failed = {k: v for k, v in run.outcomes().items() if v != "passed"}
    assert run.returncode == 0 and not failed, f"bmsrig run exit {run.returncode}; not passed: {failed}\n{run.stdout}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [s for s in SEEDS if s != 1])
@pytest.mark.parametrize("board", PROFILES)
def test_reference_board_passes(plan_runner, board, seed):
    run = plan_runner(board, seed=seed)
    failed = {k: v for k, v in run.outcomes().items() if v != "passed"}
    assert run.returncode == 0 and not failed, f"seed {seed}: exit {run.returncode}; not passed: {failed}\n{run.stdout}"


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted(CAUGHT))
@pytest.mark.parametrize("board", PROFILES)
def test_defect_is_caught(plan_runner, board, spec):
    plan, test, cause = CAUGHT[spec]
    run = plan_runner(board, defects=[spec], plan=plan, test=test)
    end = run.test_end(test)
    assert end is not None, f"{spec}: {test} did not run\n{run.stdout}"
    assert run.returncode == 1 and end["outcome"] == "failed", (
        f"{spec} on {board}: {test} {end['outcome']} (exit {run.returncode}); the defect was not caught")
    assert cause in end["message"], f"{spec} on {board}: {test} failed without naming {cause!r}: {end['message'][:1500]}"


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted(WITHIN_SPEC))
@pytest.mark.parametrize("board", PROFILES)
def test_defect_within_spec_passes(plan_runner, board, spec):
    plan, test = WITHIN_SPEC[spec]
    run = plan_runner(board, defects=[spec], plan=plan, test=test)
    end = run.test_end(test)
    assert end is not None and end["outcome"] == "passed" and run.returncode == 0, (
        f"{spec} (within spec) on {board}: {test} {end and end['outcome']}: {end and end['message'][:1500]}")


def test_catalog_names_the_same_catching_test_as_the_zoo_table():
    """`bmsrig defects` tells a user which test catches a defect: it must agree with the zoo."""
    by_name = {d.name: d.caught_by for d in catalog()}
    wrong = {spec: (by_name[defect_name(spec)], test) for spec, (_, test, _) in CAUGHT.items()
             if by_name.get(defect_name(spec)) != test}
    wrong.update({spec: (by_name[defect_name(spec)], test) for spec, (_, test) in NOT_JUDGED.items()
                  if by_name.get(defect_name(spec)) != test})
    wrong.update({spec: (by_name[defect_name(spec)], test) for _, spec, _, test, _ in VENDOR_CAUGHT
                  if by_name.get(defect_name(spec)) != test and defect_name(spec) != "balance_any_state"})
    assert not wrong, f"catalog caught_by disagrees with the zoo table (catalog, zoo): {wrong}"


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted(NOT_JUDGED))
@pytest.mark.parametrize("board", PROFILES)
def test_silenced_board_is_not_judged(plan_runner, board, spec):
    plan, test = NOT_JUDGED[spec]
    run = plan_runner(board, defects=[spec], plan=plan, test=test, cli=True)  # exit 3 is the CLI's mapping
    end = run.test_end(test)
    assert end is not None, f"{spec}: {test} did not run\n{run.stdout}"
    assert run.returncode == 3 and end["outcome"] != "passed" and end.get("rig_fault"), (
        f"{spec} on {board}: {test} {end['outcome']} (exit {run.returncode}); a silent link must be a rig fault")
    faults = [e for e in run.events if e.get("event") == "deviation" and e.get("kind") == "rig_fault"]
    assert faults, f"{spec} on {board}: no rig_fault deviation in the record"


FULL_PLAN_PROFILE = "reference-16s-lfp"
# The whole plan per catalog defect, as a user runs `bmsrig run --defect SPEC`: the exit
# code, and the intended test among the failures (other tests may fail too).
FULL_PLAN_DEFECTS = list(CAUGHT)


@pytest.mark.slow
@pytest.mark.parametrize("spec", FULL_PLAN_DEFECTS)
def test_full_plan_fails_each_defect_in_its_intended_test(plan_runner, spec):
    """exit 1 and the intended test among the failures (others may fail too)."""
    plan, test, cause = CAUGHT[spec]
    run = plan_runner(FULL_PLAN_PROFILE, defects=[spec])
    failed = {k.split("::")[-1] for k, v in run.outcomes().items() if v == "failed"}
    assert run.returncode == 1, f"{spec}: exit {run.returncode}\n{run.stdout}"
    assert test in failed, f"{spec}: {test} did not fail; failed: {sorted(failed)}"
    assert cause in run.test_end(test)["message"]


# --------------------------------------------------------------------------- vendor boards
# The plan (without convergence, which runs at rest: testplans/test_balancing_convergence.py
# is being rewritten to enter a balancing state with procedures.enter_balancing_state) on
# each vendor board's own profile, and each vendor board breaking its own declared behaviour.
VENDOR_PLAN = "not test_balancing_convergence"


@pytest.mark.slow
@pytest.mark.parametrize("board", VENDOR_PROFILES)
def test_vendor_board_passes_its_own_profile(plan_runner, board):
    """A board from another vendor that meets its own profile passes the plans."""
    run = plan_runner(board, seed=1, test=VENDOR_PLAN)
    bad = {k: v for k, v in run.outcomes().items() if v not in ("passed", "skipped")}
    assert run.returncode == 0 and not bad, f"{board}: exit {run.returncode}; not passed: {bad}\n{run.stdout}"


@pytest.mark.slow
@pytest.mark.parametrize("board,spec,plan,test,cause", VENDOR_CAUGHT,
                         ids=[f"{row[0]}-{row[1]}" for row in VENDOR_CAUGHT])
def test_vendor_faulty_variant_is_caught(plan_runner, board, spec, plan, test, cause):
    """The vendor board breaking its own declared behaviour fails the test of that
    requirement, and the failure names the measurement."""
    run = plan_runner(board, defects=[spec], plan=plan, test=test)
    end = run.test_end(test)
    assert end is not None, f"{spec}: {test} did not run\n{run.stdout}"
    assert run.returncode == 1 and end["outcome"] == "failed", (
        f"{spec} on {board}: {test} {end['outcome']} (exit {run.returncode}); the faulty variant was not caught")
    assert cause in end["message"], f"{spec} on {board}: {test} failed without naming {cause!r}: {end['message'][:1500]}"


@pytest.mark.slow
@pytest.mark.parametrize("board,spec,plan,test,cause", VENDOR_CAUGHT[:1] + VENDOR_CAUGHT[3:4],
                         ids=["northwind-nw16c-balance_any_state", "kestrel-ks8-lockout_short"])
def test_vendor_faulty_variant_passes_without_the_fault(plan_runner, board, spec, plan, test, cause):
    """The same test on the same vendor board without the fault passes: the catch is the
    fault's, not the vendor's choice."""
    run = plan_runner(board, plan=plan, test=test)
    end = run.test_end(test)
    assert end is not None and end["outcome"] == "passed" and run.returncode == 0, (
        f"{board}: {test} {end and end['outcome']}: {end and end['message'][:1500]}")
