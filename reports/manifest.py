"""manifest.json: SHA-256 and size of every file of a run, written last.

The manifest lists every regular file under the run folder (``record.jsonl``, captures,
``junit.xml``, ``report.html``, ``report.pdf``, ``summary.json`` and anything else a run
left there) except itself and its signature (``manifest.sig``, :mod:`rig.signing`).
:func:`verify_manifest` re-hashes them and lists every difference: a changed or missing
file, a file that is not in the manifest, and an entry whose path leaves the run folder
(absolute, ``..``, or a symbolic link pointing out), which is never opened.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rig.record import utc_now_iso
from rig.runfolder import write_json_atomic

MANIFEST_FILE = "manifest.json"
SIG_FILE = "manifest.sig"
FORMAT = "bmsrig-manifest/1"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _files(run_dir: Path) -> list[str]:
    out = []
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            rel = (Path(root) / f).relative_to(run_dir).as_posix()
            if rel not in (MANIFEST_FILE, SIG_FILE) and not rel.endswith(".tmp"):
                out.append(rel)
    return sorted(out)


def write_manifest(run_dir: Path, run_id: str | None = None, generator: str | None = None) -> Path:
    """Hash every file under ``run_dir`` into ``manifest.json`` (atomically replaced)."""
    run_dir = Path(run_dir)
    entries = []
    for rel in _files(run_dir):
        p = run_dir / rel
        entries.append({"path": rel, "size": p.stat().st_size, "sha256": sha256_file(p)})
    doc = {
        "format": FORMAT,
        "run_id": run_id,
        "created": utc_now_iso(),
        "generator": generator,
        "algorithm": "sha256",
        "files": entries,
    }
    return write_json_atomic(run_dir / MANIFEST_FILE, doc)


def _escapes(root: Path, rel: object) -> str | None:
    """Why a manifest path is not a file inside the run folder ``root`` (None when it is)."""
    if not isinstance(rel, str) or not rel:
        return "empty or not a path"
    pure = Path(rel)
    if pure.is_absolute() or rel.startswith(("/", "\\")) or ":" in pure.parts[0]:
        return "absolute path outside the run folder"
    if ".." in pure.parts or "\\" in rel:
        return "path escapes the run folder"
    try:
        (root / pure).resolve().relative_to(root)
    except ValueError:
        return "a symbolic link pointing outside the run folder"
    return None


def verify_manifest(run_dir: Path, allow_extra: bool = False) -> list[str]:
    """Every mismatch between ``manifest.json`` and the files; an empty list means intact.

    Each entry is one line: ``"<path>: <problem>"``. Files not in the manifest are
    mismatches unless ``allow_extra``.
    """
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        entries = doc["files"]
    except FileNotFoundError:
        return [f"{MANIFEST_FILE}: missing"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{MANIFEST_FILE}: unreadable ({exc})"]
    problems = []
    listed = set()
    root = run_dir.resolve()
    for e in entries:
        rel = e.get("path", "") if isinstance(e, dict) else ""
        listed.add(rel)
        escape = _escapes(root, rel)
        if escape:
            problems.append(f"{rel}: rejected: {escape}")
            continue
        p = run_dir / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
            continue
        size = p.stat().st_size
        if size != e.get("size"):
            problems.append(f"{rel}: size {size} bytes, manifest says {e.get('size')}")
        digest = sha256_file(p)
        if digest != e.get("sha256"):
            problems.append(f"{rel}: SHA-256 {digest[:16]}… differs from the manifest's {str(e.get('sha256'))[:16]}…")
    if not allow_extra:
        for rel in _files(run_dir):
            if rel not in listed:
                problems.append(f"{rel}: not in the manifest")
    return problems
