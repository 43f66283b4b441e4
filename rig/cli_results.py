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


def add_subcommands(sub) -> None:
    """Register ``verify`` (and the results database's commands) on the ``bmsrig`` parser."""
    ver = sub.add_parser("verify", help="check a run folder: every file's hash and the manifest's signature")
    ver.add_argument("run_dir")
    ver.add_argument("--pubkey", default=None, metavar="PEM",
                     help="require the signature to come from this Ed25519 public key (signing_key.pub.pem)")
    ver.set_defaults(func=cmd_verify)
