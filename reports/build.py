"""Build every artifact of a run from its record: ``build(run_dir) -> {name: path}``.

Order: junit.xml, report.html, report.pdf, summary.json, then manifest.json (it hashes the
others, record.jsonl and the captures) and manifest.sig last (the lab key's Ed25519
signature over the manifest, :mod:`rig.signing`; the report prints the key's fingerprint). Each file is written to a temporary name and renamed, so
an interrupted build never leaves a half file under the real name. A record without
``run_end`` gives a report marked "Incomplete run". A file that cannot be written raises
:class:`rig.errors.DiskFault` (storage failed: exit 3) or :class:`rig.errors.ConfigError`
(a folder the user cannot write: exit 2), naming the file.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from contextlib import contextmanager
from pathlib import Path

from rig.errors import path_error

from rig.record import load_summary

from . import html as html_mod
from .junit import write_junit
from .manifest import MANIFEST_FILE, write_manifest
from .pdf import no_gc, render_pdf
from .summary_json import SUMMARY_FILE, write_summary

ARTIFACTS = ("junit.xml", SUMMARY_FILE, "report.html", "report.pdf", MANIFEST_FILE, "manifest.sig")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@contextmanager
def _writing(path: Path):
    """Turn an OS error while producing ``path`` into the rig's error naming the file."""
    try:
        yield
    except OSError as exc:
        named = exc.filename if exc.filename and not str(exc.filename).endswith(".tmp") else path
        raise path_error(exc, named, "run folder", "cannot write the report file") from None


def build(
    run_dir: Path | str,
    *,
    pdf: bool = True,
    issued: _dt.datetime | None = None,
    timings: dict | None = None,
    sign: bool = True,
    key_dir: Path | str | None = None,
    trend: dict | None = None,
) -> dict[str, Path]:
    """Rebuild junit.xml, report.html, report.pdf (unless ``pdf=False``) and manifest.json.

    ``issued`` is the report's date of issue (default: now, UTC). ``timings``, if given,
    receives the seconds each step took. ``sign``: sign the manifest with the key in
    ``key_dir`` (default ``$BMSRIG_KEY_DIR`` or ``~/.config/bmsrig``, created on first use);
    a key that cannot be loaded leaves the run unsigned, the report saying why. ``trend``:
    earlier runs' key measurements from the results database (:func:`rig.results_db.load_trend`),
    shown in the report when given. Returns artifact name -> path. Raises
    :class:`rig.record.RecordError` when there is no readable record.
    """
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    clock = {}

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        clock[name] = now - t0
        t0 = now

    summary = load_summary(run_dir)
    lap("read")
    out: dict[str, Path] = {}
    junit_path = run_dir / "junit.xml"
    tmp = run_dir / "junit.xml.tmp"
    with _writing(junit_path):
        write_junit(summary, tmp)
        os.replace(tmp, junit_path)
    out["junit.xml"] = junit_path
    lap("junit")
    signer, signature = None, {"reason": "signing was turned off for this build"}
    if sign:
        from rig.errors import ConfigError
        from rig.signing import load_or_create_key

        try:
            signer = load_or_create_key(key_dir)
            signature = {"fingerprint": signer.fingerprint}
        except ConfigError as exc:
            signature = {"reason": f"the signing key could not be loaded ({exc})"}
    names = ["junit.xml", SUMMARY_FILE, "report.html", MANIFEST_FILE] + (["report.pdf"] if pdf else []) \
        + (["manifest.sig"] if signer is not None else []) + [c["file"] for c in summary.captures if c.get("file")]
    with no_gc():  # the plots' figures: see reports.pdf.no_gc
        html = html_mod.render_html(summary, issued=issued, signature=signature, trend=trend)
    html_path = run_dir / "report.html"
    with _writing(html_path):
        _write_text(html_path, html)
    out["report.html"] = html_path
    lap("html")
    if pdf:
        pdf_path = run_dir / "report.pdf"
        with _writing(pdf_path):
            clock["pdf_pages"] = render_pdf(html, pdf_path, base_url=run_dir)
        out["report.pdf"] = pdf_path
        lap("pdf")
    summary_path = run_dir / SUMMARY_FILE
    with _writing(summary_path):
        out[SUMMARY_FILE] = write_summary(summary, summary_path, signature, names)
    lap("summary")
    from rig import __version__

    with _writing(run_dir / MANIFEST_FILE):
        out[MANIFEST_FILE] = write_manifest(run_dir, run_id=summary.run_id, generator=f"bmsrig {__version__}")
    lap("manifest")
    if signer is not None:
        from rig.signing import SIG_FILE, sign_manifest

        with _writing(run_dir / SIG_FILE):
            out[SIG_FILE] = sign_manifest(run_dir, signer)
        lap("sign")
    if timings is not None:
        timings.update(clock)
    return out
