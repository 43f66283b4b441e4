"""The report builder: a run record -> junit.xml, report.html, report.pdf, manifest.json.

``reports.build(run_dir)`` rebuilds every artifact from ``record.jsonl`` and the captures
alone; :func:`verify_manifest` checks a run folder against its manifest.
"""

from .build import build
from .manifest import verify_manifest, write_manifest

__all__ = ["build", "verify_manifest", "write_manifest"]
