"""``bmsrig``: run the qualification plans, check a rig, list defects and boards, rebuild reports.

Exit codes of ``bmsrig run``: 0 all passed, 1 a test failed, 2 bad usage or configuration,
3 rig fault (an instrument, the link or the storage failed: the board was not judged),
4 board not identified (serial or firmware not read: no statement of conformity, rig.identity).

One handler (:func:`main`) maps every error to its exit code; a user's mistake never shows
a traceback. The run's own code is worked out once, by the plugin's session state (from
:func:`rig.errors.run_exit_code`); the run options and their defaults are declared once, in
:mod:`rig.options`, for this CLI and the pytest plugin alike.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import uuid
from pathlib import Path

from .errors import (EXIT_FAIL, EXIT_PASS, EXIT_RIG_FAULT, EXIT_USAGE, BmsrigError, ConfigError, DiskFault,
                     is_disk_error)
from .cli_decode import add_subcommands as add_decode_subcommands
from .cli_results import add_subcommands
from .identity import EXIT_UNIDENTIFIED, gate_run
from .lock import check_lock_name, lock_name_for, rig_lock
from .places import hold_places
from .options import CHECK_OPTIONS, PLAN_SESSION_ARGS, RUN_OPTIONS, add_argparse, forward_argv

__all__ = ["main", "build_parser", "EXIT_PASS", "EXIT_FAIL", "EXIT_USAGE", "EXIT_RIG_FAULT"]
PLANS_DIR = Path(__file__).resolve().parent.parent / "testplans"


def _new_run_id(profile_name: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{profile_name}-{uuid.uuid4().hex[:6]}"


def _preflight(args):
    """Validate everything a user typed before any instrument moves. Raises ConfigError."""
    from .build import find_env
    from .check import check_env, check_profile_links
    from .labconfig import load_lab_config
    from .profile import load_profile

    load_lab_config(args.lab_config)
    profile = load_profile(args.board)
    check_profile_links(profile)  # its DBC / signal map / register map, as `bmsrig check` reads them
    env_path = find_env(args.rig)
    kind = check_env(env_path)
    if args.defect:
        if kind != "bench":
            raise ConfigError(env_path, "--defect", "defects can only be injected on the virtual bench")
        from .sim.defects import parse_defects

        parse_defects(list(args.defect), n_cells=profile.cells)
    if args.board_model:
        if kind != "bench":
            raise ConfigError(env_path, "--board-model", "a board model can only be loaded on the virtual bench")
        from .sim.boards import load_board

        load_board(args.board_model, source="bmsrig run", key="--board-model")
    return profile, env_path, kind


def cmd_run(args) -> int:
    if args.lock_wait < 0:
        raise ConfigError("bmsrig run", "--lock-wait", f"must be >= 0 s, got {args.lock_wait}")
    if args.lock is not None:
        check_lock_name(args.lock)
    from .build import find_env

    # a rig served by labgrid places: held for the whole run (rig/places.py), queued by --lock-wait
    with hold_places(find_env(args.rig), place=args.place, wait_s=args.lock_wait):
        return _run_locked(args)


def _run_locked(args) -> int:
    profile, env_path, kind = _preflight(args)
    run_id = _new_run_id(profile.name)
    run_dir = Path(args.out) if args.out else Path("runs") / run_id
    from .places import active_hold

    held = active_hold() is not None and bool(active_hold().places)  # labgrid places: their own host locks
    lock_name = args.lock or (None if kind == "bench" or held else lock_name_for(env_path))
    if lock_name is None:
        return _claim_and_run(args, profile, env_path, run_id, run_dir)
    with rig_lock(lock_name, wait_s=args.lock_wait, run_id=run_id, rig=env_path):
        return _claim_and_run(args, profile, env_path, run_id, run_dir)


def _claim_and_run(args, profile, env_path, run_id: str, run_dir: Path) -> int:
    from .runfolder import claim_run_dir

    claim_run_dir(run_dir, run_id, key="--out")
    _announce_estimate(args, profile, env_path)
    verdict = gate_run(run_dir, _run_plans(args, profile, env_path, run_id, run_dir))
    return _report(run_dir, verdict, db=args.db, index=not args.no_index, pdf_later=args.pdf_later)


def _announce_estimate(args, profile, env_path) -> None:
    """On a real rig: the tier's estimated rig time before anything moves (a dry run on the
    bench when none is cached; the progress line reads it). On the bench: the cached one, if any."""
    from .check import check_env
    from .estimate import cached, estimate_plan
    from .progress import hms

    est = cached(profile, args.tier, args.board_model)
    if est is None and check_env(env_path) != "bench" and not args.no_progress:
        print(f"bmsrig: estimating the rig time of the {args.tier} tier (dry run on the virtual bench) ...", flush=True)
        est = estimate_plan(profile, args.tier, args.board_model)
    if est is not None:
        print(f"bmsrig: {args.tier} tier, {len(est.tests)} tests, estimated rig time {hms(est.total_s)} "
              f"(bmsrig plan --tier {args.tier} lists each test)", flush=True)


def _run_plans(args, profile, env_path, run_id: str, run_dir: Path) -> int:
    """Run the plans under pytest; bmsrig's exit code for them (before the report)."""
    import pytest

    from fixtures.state import SessionResult

    plans = [str(PLANS_DIR / p) for p in args.plans] if args.plans else [str(PLANS_DIR)]
    pytest_args = [
        *plans,
        *PLAN_SESSION_ARGS,
        "--rootdir", str(PLANS_DIR),
        "-o", "testpaths=",
        *forward_argv(args, {"rig": str(env_path), "board": str(profile.source)}),
        "--run-dir", str(run_dir),
        "--run-id", run_id,
    ]
    if args.k:
        pytest_args += ["-k", args.k]
    # the operator reads failures from the rig's own summary (reports.console), not from
    # pytest's tracebacks: -v gives pytest's full report back
    pytest_args += ["-q", "--tb=no", "-rN", "--disable-warnings"] if not args.verbose else ["-v"]
    pytest_args += ["-x"] if args.exitfirst else []
    pytest_args += ["--no-progress"] if args.no_progress else []
    from fixtures.place_guard import PlaceGuard
    from .places import active_hold

    result = SessionResult()
    code = int(pytest.main(pytest_args, plugins=[result, PlaceGuard(active_hold())]))
    if result.state is not None and result.state.disk_fault is not None:
        print(f"bmsrig: {result.state.disk_fault}", file=sys.stderr)
    return result.exit_code(code)


VERDICTS = {EXIT_PASS: "PASS", EXIT_FAIL: "FAIL", EXIT_USAGE: "USAGE/CONFIG ERROR",
            EXIT_RIG_FAULT: "RIG FAULT (board not judged)", EXIT_UNIDENTIFIED: "UNIDENTIFIED (no statement of conformity)"}


def _trend(db: str | None, run_dir: Path) -> dict | None:
    """Earlier runs' key measurements from the results database, if there is one; a database
    that cannot be read is a warning (the report is built without a trend)."""
    from .results_db import load_trend

    try:
        return load_trend(db, run_dir)
    except Exception as exc:  # noqa: BLE001 - the trend is an extra, never the run's verdict
        print(f"bmsrig: warning: no trend in the report: {exc}", file=sys.stderr)
        return None


def _index(db: str | None, run_dir: Path) -> None:
    """Index the finished run in the results database; a failure is a warning."""
    from .results_db import ResultsDB, db_url

    try:
        rdb = ResultsDB.open(db_url(db, run_dir))
        try:
            row = rdb.index_run(run_dir)
        finally:
            rdb.close()
        print(f"  index  {rdb.url} ({row['n_measurements']} measurements)")
    except Exception as exc:  # noqa: BLE001 - the run stands without its index entry
        print(f"bmsrig: warning: run not indexed in the results database: {exc}; "
              f"index it later with `bmsrig index {run_dir}`", file=sys.stderr)


def _report(run_dir: Path, verdict: int, db: str | None = None, index: bool = False,
            pdf_later: bool = False) -> int:
    """Build the report of a finished run and return the run's exit code.

    A report that cannot be written is a rig fault (exit 3): a run never exits 0 without
    its report. Ctrl-C while the report is built keeps the verdict's code (the record is
    complete) and says the report was not built. ``pdf_later`` (``--pdf-later``): every
    artifact but report.pdf here, then a detached ``bmsrig report RUN_DIR`` rebuilds them
    all with the PDF (and the manifest and its signature over it) after this exits; a
    failure of that build is not this run's exit code (rerun ``bmsrig report``).
    """
    code = verdict
    rebuild = f"the run record is intact: rebuild with `bmsrig report {run_dir}`"
    try:
        print(f"bmsrig: building the report of {run_dir} ...", flush=True)
        from reports import build

        artifacts = build(run_dir, trend=_trend(db, run_dir), pdf=not pdf_later)
        print(f"\nrun {run_dir.name}: report {artifacts.get('report.html', run_dir / 'report.html')}")
        if "report.pdf" in artifacts:
            print(f"  pdf    {artifacts['report.pdf']}")
        elif pdf_later:
            print(f"  pdf    {run_dir / 'report.pdf'} (being built by `bmsrig report`, process {_report_later(run_dir, db)})")
        print(f"  junit  {artifacts.get('junit.xml', run_dir / 'junit.xml')}")
        if index:
            _index(db, run_dir)
        if verdict != EXIT_PASS:
            from reports.console import print_failures

            print_failures(run_dir, sys.stdout)
    except KeyboardInterrupt:
        print(f"bmsrig: interrupted while building the report: the report was not built; the verdict stands; "
              f"{rebuild}", file=sys.stderr)
    except DiskFault as exc:
        print(f"bmsrig: report not built: {exc}", file=sys.stderr)
        code = EXIT_RIG_FAULT
    except Exception as exc:  # noqa: BLE001 - any failure to deliver the report is a rig fault
        where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
        print(f"bmsrig: report not built{where}: {type(exc).__name__}: {exc}; {rebuild}", file=sys.stderr)
        code = EXIT_RIG_FAULT
    print(f"bmsrig: {VERDICTS[code]} (exit {code}) — {run_dir}")
    return code


def _report_later(run_dir: Path, db: str | None) -> int:
    """Start ``bmsrig report RUN_DIR`` detached from this terminal (own session, no output);
    return its process id."""
    import subprocess

    cmd = [sys.executable, "-m", "rig.cli", "report", str(run_dir)] + (["--db", db] if db else [])
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True).pid


def cmd_check(args) -> int:
    from .build import find_env
    from .check import check_calibration, check_env, check_profile_links
    from .profile import load_profile

    profile = load_profile(args.board)
    env_path = find_env(args.rig)
    kind = check_env(env_path)
    warnings = check_calibration(env_path) + check_profile_links(profile)  # expired calibration: ConfigError, exit 2
    print(f"rig description {env_path}: OK ({kind})")
    for w in warnings:
        print(f"bmsrig: warning: {w}", file=sys.stderr)
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
    artifacts = build(run_dir, trend=_trend(args.db, run_dir))
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


def cmd_plan(args) -> int:
    """``bmsrig plan``: each test of the tier with its estimated rig time, and the total."""
    from .check import check_profile_links
    from .estimate import estimate_plan, format_plan
    from .profile import load_profile

    profile = load_profile(args.board)
    check_profile_links(profile)  # a broken map would make every test of the dry run error: no estimate
    est = estimate_plan(profile, args.tier, args.board_model, use_cache=not args.fresh)
    print(json.dumps(est.to_dict(), indent=2) if args.json else format_plan(est))
    return EXIT_PASS


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bmsrig", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the qualification plans and write the run folder")
    add_argparse(run, RUN_OPTIONS)
    run.add_argument("--out", default=None, help="run folder (default runs/<run-id>)")
    run.add_argument("-k", default=None, help="only tests matching this pytest -k expression")
    run.add_argument("-v", "--verbose", action="store_true")
    run.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failing test")
    run.add_argument("--lock", default=None, metavar="NAME",
                     help="exclusive rig lock name (default: the rig description's file stem; none on the bench)")
    run.add_argument("--lock-wait", type=float, default=0.0, metavar="S",
                     help="queue up to S seconds for a rig another run holds (default 0: exit 3 at once)")
    run.add_argument("--place", default=None, metavar="NAME|+TOKEN|TAG=V,..",
                     help="labgrid place for a rig file with one RemotePlace, as labgrid-client -p "
                          "(default: $LG_PLACE, else the rig file's); TAG=V: any place with those tags")
    run.add_argument("--db", default=None, metavar="PATH|URL",
                     help="results database to index the run in and to draw the report's trend from "
                          "(default: $BMSRIG_DB, else results.sqlite beside the run folder)")
    run.add_argument("--no-index", action="store_true", help="do not index the run in the results database")
    run.add_argument("--no-progress", action="store_true", help="no live progress line and no rig-time estimate")
    run.add_argument("--pdf-later", action="store_true",
                     help="exit with the verdict once junit.xml, report.html and summary.json are written; report.pdf "
                          "is built after, by a detached `bmsrig report RUN_DIR` (default: report.pdf exists at exit)")
    run.add_argument("plans", nargs="*", help="plan files under testplans/ (default: all)")
    run.set_defaults(func=cmd_run)

    chk = sub.add_parser("check", help="validate a rig description and a board profile")
    add_argparse(chk, CHECK_OPTIONS)
    chk.set_defaults(func=cmd_check)

    dfx = sub.add_parser("defects", help="list the virtual bench's defect catalog")
    dfx.add_argument("--json", action="store_true")
    dfx.set_defaults(func=cmd_defects)

    brd = sub.add_parser("boards", help="list the shipped board profiles")
    brd.set_defaults(func=cmd_boards)

    rep = sub.add_parser("report", help="rebuild every artifact of a run folder from its record")
    rep.add_argument("run_dir")
    rep.add_argument("--db", default=None, metavar="PATH|URL",
                     help="results database for the trend (default: $BMSRIG_DB, else results.sqlite beside "
                          "the run folder; none there: no trend)")
    rep.set_defaults(func=cmd_report)

    ben = sub.add_parser("bench", help="benchmarks: simulator speed and CAN decode rate")
    ben.add_argument("--json", action="store_true")
    ben.add_argument("names", nargs="*", help="scenario names (default: all)")
    ben.set_defaults(func=cmd_bench)
    pln = sub.add_parser("plan", help="the tests a run would run, with the estimated rig time of each and the total")
    add_argparse(pln, [o for o in RUN_OPTIONS if o.flag in ("--board", "--tier", "--board-model")])
    pln.add_argument("--json", action="store_true")
    pln.add_argument("--fresh", action="store_true", help="estimate again even if an estimate is cached")
    pln.set_defaults(func=cmd_plan)
    add_subcommands(sub)  # verify, index, history, compare (rig/cli_results.py)
    add_decode_subcommands(sub)  # decode, monitor (rig/cli_decode.py)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run one ``bmsrig`` command; the one place an error becomes an exit code.

    ConfigError / SafetyLimitError: 2. RigFault (link, instrument, storage, busy rig): 3.
    An OS error on a path the user named: 2 naming it; a storage failure (disk full, I/O
    error, read-only): 3. Ctrl-C while the plans run: 3 (the rig is in its safe state);
    while the report is built after a verdict, the verdict's code (see ``_report``).
    """
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return int(args.func(args))
    except BmsrigError as exc:
        print(f"bmsrig: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bmsrig: interrupted; the rig was put in its safe state; the board was not judged", file=sys.stderr)
        return EXIT_RIG_FAULT
    except OSError as exc:
        where = exc.filename or "a file"
        if is_disk_error(exc):
            print(f"bmsrig: error: rig fault in storage: could not write {where}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_RIG_FAULT
        print(f"bmsrig: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
