"""``bmsrig`` subcommands on finished runs: ``verify`` (signed evidence), and the results
database's ``index``, ``history`` and ``compare`` (:mod:`rig.results_db`).

Hooked into :mod:`rig.cli` by :func:`add_subcommands`. Exit codes: 0 success (verify: the
run folder is intact and signed), 1 verify found a problem, 2 bad usage (ConfigError).
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import EXIT_FAIL, EXIT_PASS, ConfigError


def _run_dir(text: str, key: str = "RUN_DIR") -> Path:
    run_dir = Path(text)
    if not run_dir.is_dir():
        raise ConfigError(run_dir, key, "not a run folder (no such directory)")
    return run_dir


def cmd_verify(args) -> int:
    """Re-hash every file listed in manifest.json and check manifest.sig: one line per problem."""
    from reports.manifest import MANIFEST_FILE, verify_manifest

    from .signing import load_public_key, verify_signature

    run_dir = _run_dir(args.run_dir)
    trusted = load_public_key(args.pubkey) if args.pubkey else None
    problems = verify_manifest(run_dir)
    sig_problems, fp = verify_signature(run_dir, trusted)
    problems += sig_problems
    for p in problems:
        print(f"bmsrig verify: TAMPERED {p}")
    if problems:
        print(f"bmsrig verify: FAILED — {len(problems)} problem(s) in {run_dir}")
        return EXIT_FAIL
    try:
        n = len(json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError):  # pragma: no cover - verify_manifest reported it
        n = 0
    print(f"bmsrig verify: OK — {n} files match {MANIFEST_FILE}; signature valid (Ed25519, key {fp}) — {run_dir}")
    return EXIT_PASS


def _open_db(args, run_dir: Path | None = None):
    from .results_db import ResultsDB, db_url

    return ResultsDB.open(db_url(args.db, run_dir))


def cmd_index(args) -> int:
    """Index run folders into the results database (re-indexing replaces a run's rows)."""
    dirs = [_run_dir(d) for d in args.run_dirs]
    db = _open_db(args, dirs[0])
    try:
        for d in dirs:
            row = db.index_run(d)
            print(f"indexed {row['run_id']}: {row['verdict']} (exit {row['exit_code']}), "
                  f"{row['n_measurements']} measurements")
    finally:
        db.close()
    print(f"database: {db.url}")
    return EXIT_PASS


def cmd_history(args) -> int:
    """The indexed runs, newest first (filter by board profile, serial, firmware)."""
    from .results_db import to_json

    db = _open_db(args)
    try:
        rows = db.history(args.board, args.serial, args.firmware, args.limit)
    finally:
        db.close()
    if args.json:
        print(to_json(rows))
        return EXIT_PASS
    if not rows:
        print(f"no indexed runs match (database {db.url}; index runs with `bmsrig index RUN_DIR`)")
        return EXIT_PASS
    print(f"{'started':<21} {'verdict':<13} {'exit':>4}  {'board':<22} {'serial':<14} {'fw':<8} run")
    for r in rows:
        print(f"{(r['started'] or '')[:19]:<21} {r['verdict'] or '':<13} {r['exit_code'] if r['exit_code'] is not None else '':>4}  "
              f"{r['board_profile'] or '':<22} {r['serial'] or '—':<14} {r['fw_version'] or '—':<8} {r['run_id']}")
    return EXIT_PASS


def _run_measurements(db, ref: str) -> tuple[str, list[dict]]:
    """(run id, measurement rows) of a run folder (read from its record) or an indexed run ID."""
    from .results_db import run_rows

    path = Path(ref)
    if (path / "record.jsonl").is_file():
        row, rows = run_rows(path)
        return row["run_id"], rows
    if db.run(ref) is None:
        raise ConfigError(db.url, ref, "neither a run folder nor a run ID in the results database")
    return ref, db.measurements(ref)


def cmd_compare(args) -> int:
    """Per-measurement deltas (B − A) and verdict changes between two runs."""
    from reports.fmt import fmt_plain

    from .results_db import compare, to_json

    db = _open_db(args)
    try:
        id_a, a = _run_measurements(db, args.run_a)
        id_b, b = _run_measurements(db, args.run_b)
    finally:
        db.close()
    rows = compare(a, b)
    if args.json:
        print(to_json({"a": id_a, "b": id_b, "measurements": rows}))
        return EXIT_PASS
    changed = [r for r in rows if r["changed"]]
    only = {p: sum(r["presence"] == p for r in rows) for p in ("only A", "only B")}
    print(f"A = {id_a}\nB = {id_b}\n{len(rows)} measurements, {len(changed)} verdict change(s), "
          f"{only['only A']} only in A, {only['only B']} only in B")
    for r in changed:
        print(f"  VERDICT {r['verdict_a']} -> {r['verdict_b']}: {r['key']}")
    if not args.changed_only:
        print(f"{'A':>12} {'B':>12} {'B - A':>12} {'unit':<6} measurement")
        for r in rows:
            delta = fmt_plain(r["delta"], 4) if r["delta"] is not None else "—"
            a_txt = fmt_plain(r["a"], 6) if r["verdict_a"] else "absent"
            b_txt = fmt_plain(r["b"], 6) if r["verdict_b"] else "absent"
            print(f"{a_txt:>12} {b_txt:>12} {delta:>12} {r['unit'] or '':<6} {r['key']}")
    return EXIT_PASS


def add_subcommands(sub) -> None:
    """Register ``verify`` (and the results database's commands) on the ``bmsrig`` parser."""
    ver = sub.add_parser("verify", help="check a run folder: every file's hash and the manifest's signature")
    ver.add_argument("run_dir")
    ver.add_argument("--pubkey", default=None, metavar="PEM",
                     help="require the signature to come from this Ed25519 public key (signing_key.pub.pem)")
    ver.set_defaults(func=cmd_verify)

    db_help = ("results database: a SQLite path or an SQLAlchemy URL (default $BMSRIG_DB, else "
               "results.sqlite beside the run folders: runs/results.sqlite)")
    idx = sub.add_parser("index", help="add run folders to the results database")
    idx.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    idx.add_argument("--db", default=None, help=db_help)
    idx.set_defaults(func=cmd_index)

    his = sub.add_parser("history", help="list indexed runs (newest first)")
    his.add_argument("--board", default=None, help="board profile name")
    his.add_argument("--serial", default=None)
    his.add_argument("--firmware", default=None)
    his.add_argument("--limit", type=int, default=50)
    his.add_argument("--json", action="store_true")
    his.add_argument("--db", default=None, help=db_help)
    his.set_defaults(func=cmd_history)

    cmp_ = sub.add_parser("compare", help="per-measurement deltas and verdict changes between two runs")
    cmp_.add_argument("run_a", metavar="RUN_A", help="run folder or indexed run ID")
    cmp_.add_argument("run_b", metavar="RUN_B", help="run folder or indexed run ID")
    cmp_.add_argument("--changed-only", action="store_true", help="only the verdict changes")
    cmp_.add_argument("--json", action="store_true")
    cmp_.add_argument("--db", default=None, help=db_help)
    cmp_.set_defaults(func=cmd_compare)
