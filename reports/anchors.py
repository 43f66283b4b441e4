"""Where things are in report.html: the ids of a test's section, its plots and its
measurements, shared by the report (:mod:`reports.html`), summary.json and the console
summary of a failing run, so each names the same place. No imports from the package."""

from __future__ import annotations

import hashlib
import re


def slug(nodeid: str) -> str:
    """A stable HTML id fragment for a test: readable name plus a short hash (unique)."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", nodeid.split("::", 1)[-1]).strip("-").lower()[:48]
    return f"{name}-{hashlib.sha1(nodeid.encode()).hexdigest()[:6]}"


def has_measurement_plot(measurements: list[dict]) -> bool:
    """The test gets a plot drawn from its measurements (sampling error per channel)."""
    return any(str(m.get("name", "")).startswith("sampling_error") and "cell" in (m.get("conditions") or {})
               for m in measurements)


def plot_anchors(nodeid: str, measurements: list[dict], captures: list[dict]) -> list[str]:
    """The ids of a test's plots in report.html, in order (``p-<slug>-<k>``)."""
    n = int(has_measurement_plot(measurements)) + len(captures)
    return [f"p-{slug(nodeid)}-{k}" for k in range(1, n + 1)]
