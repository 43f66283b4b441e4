"""``bmsrig``: run the qualification plans, check a rig, list defects and boards, rebuild reports.

Exit codes of ``bmsrig run``: 0 all passed, 1 a test failed, 2 bad usage or configuration,
3 rig fault (an instrument or the link failed: the board was not judged).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import uuid
from pathlib import Path

from .errors import BmsrigError, ConfigError
from .lock import lock_name_for, rig_lock

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_RIG_FAULT = 0, 1, 2, 3
PLANS_DIR = Path(__file__).resolve().parent.parent / "testplans"


def _new_run_id(profile_name: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{profile_name}-{uuid.uuid4().hex[:6]}"


def _preflight(args):
    """Validate everything a user typed before any instrument moves. Raises ConfigError."""
    from .build import find_env
    from .check import check_env
    from .profile import load_profile

    profile = load_profile(args.board)
    env_path = find_env(args.rig)
    kind = check_env(env_path)
    if args.defect:
        if kind != "bench":
            raise ConfigError(env_path, "--defect", "defects can only be injected on the virtual bench")
        from .sim.defects import parse_defects

        parse_defects(list(args.defect), n_cells=profile.cells)
    if args.board_model:
        from .sim.harness import load_board_class

        load_board_class(args.board_model, source="--board-model")
    return profile, env_path, kind


def cmd_run(args) -> int:
    profile, env_path, kind = _preflight(args)
    run_id = _new_run_id(profile.name)
    run_dir = Path(args.out) if args.out else Path("runs") / run_id
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(run_dir, "--out", "the run folder exists and is not empty; a run never overwrites another")
    if args.lock_wait < 0:
        raise ConfigError("bmsrig run", "--lock-wait", f"must be >= 0 s, got {args.lock_wait}")
    lock_name = args.lock or (None if kind == "bench" else lock_name_for(env_path))
    if lock_name is None:
        return _run_plans(args, profile, env_path, run_id, run_dir)
    with rig_lock(lock_name, wait_s=args.lock_wait, run_id=run_id, rig=env_path):
        return _run_plans(args, profile, env_path, run_id, run_dir)


def _run_plans(args, profile, env_path, run_id: str, run_dir: Path) -> int:
    import pytest

    run_dir.mkdir(parents=True, exist_ok=True)
    plans = [str(PLANS_DIR / p) for p in args.plans] if args.plans else [str(PLANS_DIR)]
    pytest_args = [
        *plans,
        "-p", "no:cacheprovider",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
        "--rootdir", str(PLANS_DIR),
        "-o", "testpaths=",
        "--rig", str(env_path),
        "--board", str(profile.source),
        "--seed", str(args.seed),
        "--run-dir", str(run_dir),
        "--run-id", run_id,
        "--decision-rule", args.decision_rule,
        "--lab", args.lab, "--location", args.location,
        "--requester", args.requester, "--operator", args.operator,
    ]
    for d in args.defect:
        pytest_args += ["--defect", d]
    if args.board_model:
        pytest_args += ["--board-model", args.board_model]
    if args.k:
        pytest_args += ["-k", args.k]
    pytest_args += ["-q"] if not args.verbose else ["-v"]
    pytest_args += ["-x"] if args.exitfirst else []
    code = int(pytest.main(pytest_args, plugins=[]))
    exit_code = _exit_code(code, run_dir)
    try:
        from reports import build

        artifacts = build(run_dir)
        print(f"\nrun {run_dir.name}: report {artifacts.get('report.html', run_dir / 'report.html')}")
        if "report.pdf" in artifacts:
            print(f"  pdf    {artifacts['report.pdf']}")
        print(f"  junit  {artifacts.get('junit.xml', run_dir / 'junit.xml')}")
    except Exception as exc:  # the record is intact; the report can be rebuilt
        print(f"bmsrig: report not built ({type(exc).__name__}: {exc}); "
              f"the run record is intact: rebuild with `bmsrig report {run_dir}`", file=sys.stderr)
    verdict = {0: "PASS", 1: "FAIL", 2: "USAGE/CONFIG ERROR", 3: "RIG FAULT (board not judged)"}[exit_code]
    print(f"bmsrig: {verdict} (exit {exit_code}) — {run_dir}")
    return exit_code


def _exit_code(pytest_code: int, run_dir: Path) -> int:
    """Map pytest's exit status to bmsrig's, using the run record (read once)."""
    try:
        from .record import read_record

        events = read_record(run_dir)
    except Exception:
        events = []
    rig_fault = any((ev.get("event") == "run_end" and ev.get("rig_faults"))
                    or (ev.get("event") == "deviation" and ev.get("kind") == "rig_fault") for ev in events)
    any_failed = any(ev.get("event") == "test_end" and ev.get("outcome") == "failed" for ev in events)
    if pytest_code == 0:
        return EXIT_PASS
    if pytest_code == 1:
        return EXIT_RIG_FAULT if rig_fault else EXIT_FAIL
    if pytest_code in (4, 5):  # usage error, nothing collected (e.g. -k matched nothing)
        return EXIT_USAGE
    if pytest_code == 2:  # interrupted: a failure already seen is a verdict; else not judged
        return EXIT_FAIL if any_failed else EXIT_RIG_FAULT
    return EXIT_RIG_FAULT


def cmd_check(args) -> int:
    from .build import find_env
    from .check import check_env, check_profile_links
    from .profile import load_profile

    profile = load_profile(args.board)
    env_path = find_env(args.rig)
    kind = check_env(env_path)
    check_profile_links(profile)
    print(f"rig description {env_path}: OK ({kind})")
    print(f"board profile {profile.source}: OK ({profile.name}: {profile.cells}S {profile.chemistry.upper()}, "
          f"{profile.capacity_ah:g} Ah, link {profile.link.kind})")
    return EXIT_PASS


def cmd_defects(args) -> int:
    from .sim.defects import catalog

    rows = catalog()
    if args.json:
        print(json.dumps([r.to_dict() if hasattr(r, "to_dict") else r.__dict__ for r in rows], indent=2, default=str))
        return EXIT_PASS
    for r in rows:
        print(f"{r.usage:<36} {r.layer:<9} caught by {r.caught_by}")
        print(f"{'':<36} {r.description}")
    return EXIT_PASS


def cmd_boards(args) -> int:
    from .profile import list_profiles, load_profile

    for path in list_profiles():
        try:
            p = load_profile(path)
            print(f"{p.name:<26} {p.cells:>2}S {p.chemistry.upper():<4} {p.capacity_ah:>6g} Ah  link {p.link.kind:<6}  {p.description}")
        except ConfigError as exc:
            print(f"{path.stem:<26} INVALID: {exc}")
    return EXIT_PASS


def cmd_report(args) -> int:
    from reports import build

    run_dir = Path(args.run_dir)
    if not (run_dir / "record.jsonl").is_file():
        raise ConfigError(run_dir, "record.jsonl", "no run record in this folder")
    artifacts = build(run_dir)
    for name, path in sorted(artifacts.items()):
        print(f"{name:<14} {path}")
    return EXIT_PASS


def cmd_bench(args) -> int:
    from .bench import run_benchmarks

    results = run_benchmarks(args.names or None)
    if args.json:
        print(json.dumps(results, indent=2, default=float))
    else:
        for r in results:
            print(f"{r['scenario']:<18} simulated {r.get('simulated_s', 0):>12.0f} s  wall {r['wall_s']:>7.2f} s  "
                  f"ratio {r.get('ratio', 0):>10.0f}")
            for key, value in r.get("result", {}).items():
                if isinstance(value, (list, dict)):
                    continue  # series and nested figures: --json
                print(f"    {key:<40} {value}")
        print("(per-day series, per-cell figures and world counters: bmsrig bench --json)")
    return EXIT_PASS


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bmsrig", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the qualification plans and write the run folder")
    run.add_argument("--rig", default=None, help="rig description (labgrid env YAML); default: the virtual bench")
    run.add_argument("--board", default="reference-16s-lfp", help="board profile name or YAML path")
    run.add_argument("--defect", action="append", default=[], metavar="SPEC", help="inject a defect (bench only, repeatable)")
    run.add_argument("--seed", type=int, default=1, help="virtual bench seed")
    run.add_argument("--out", default=None, help="run folder (default runs/<run-id>)")
    run.add_argument("-k", default=None, help="only tests matching this pytest -k expression")
    run.add_argument("--board-model", default=None, help="bench: board model module:Class")
    run.add_argument("--decision-rule", default="guarded", choices=["guarded", "simple"])
    run.add_argument("--lab", default="bmsrig virtual lab")
    run.add_argument("--location", default="virtual bench")
    run.add_argument("--requester", default="not stated")
    run.add_argument("--operator", default=os.environ.get("USER", "not stated"))
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failing test")
    run.add_argument("--lock", default=None, metavar="NAME",
                     help="exclusive rig lock name (default: the rig description's file stem; none on the bench)")
    run.add_argument("--lock-wait", type=float, default=0.0, metavar="S",
                     help="queue up to S seconds for a rig another run holds (default 0: exit 3 at once)")
    run.add_argument("plans", nargs="*", help="plan files under testplans/ (default: all)")
    run.set_defaults(func=cmd_run)

    chk = sub.add_parser("check", help="validate a rig description and a board profile")
    chk.add_argument("--rig", default=None)
    chk.add_argument("--board", default="reference-16s-lfp")
    chk.set_defaults(func=cmd_check)

    dfx = sub.add_parser("defects", help="list the virtual bench's defect catalog")
    dfx.add_argument("--json", action="store_true")
    dfx.set_defaults(func=cmd_defects)

    brd = sub.add_parser("boards", help="list the shipped board profiles")
    brd.set_defaults(func=cmd_boards)

    rep = sub.add_parser("report", help="rebuild every artifact of a run folder from its record")
    rep.add_argument("run_dir")
    rep.set_defaults(func=cmd_report)

    ben = sub.add_parser("bench", help="benchmarks: simulator speed and CAN decode rate")
    ben.add_argument("--json", action="store_true")
    ben.add_argument("names", nargs="*", help="scenario names (default: all)")
    ben.set_defaults(func=cmd_bench)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return int(args.func(args))
    except BmsrigError as exc:
        print(f"bmsrig: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bmsrig: interrupted; the rig was put in its safe state", file=sys.stderr)
        return EXIT_RIG_FAULT


if __name__ == "__main__":
    sys.exit(main())
