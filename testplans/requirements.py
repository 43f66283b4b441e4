"""The requirement texts, declared once (``testplans/requirements.yaml``) for every profile.

A plan marks the IDs it evidences (``@pytest.mark.requirement("HVC-001")``); the plugin
stores these texts in the run record at run start (``run_start.context.requirements``) and
the report quotes them from there. Board profiles hold no texts: their limits and timings
are what the plans judge against.
"""

from __future__ import annotations

import re
from pathlib import Path

from rig.errors import ConfigError
from rig.yamlio import load_yaml_mapping

REQUIREMENTS_FILE = Path(__file__).resolve().with_name("requirements.yaml")
"""The one file of requirement texts (shipped as package data)."""

ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]*-\d{3}$")
"""A requirement ID: an area code, a dash, three digits (``BAL-007``)."""


def load_requirements(path: str | Path = REQUIREMENTS_FILE) -> dict[str, str]:
    """Requirement ID -> text, in file order. ConfigError naming the file and the ID when an
    ID is malformed or a text is not a non-empty string."""
    raw = load_yaml_mapping(path, "requirements file")
    out: dict[str, str] = {}
    for key, text in raw.items():
        rid = str(key)
        if not ID_PATTERN.match(rid):
            raise ConfigError(path, rid, "a requirement ID is an area code, a dash and three digits, e.g. HVC-001")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(path, rid, "the requirement text must be a non-empty string")
        out[rid] = " ".join(text.split())
    return out


def record_requirements(context: dict) -> dict[str, str]:
    """The requirement texts of a run, from its record's ``run_start`` context: the texts
    stored at run start (from this file); for a record written when profiles still carried
    texts, the profile's copy; for a record with neither, this file's texts as they are now."""
    texts = context.get("requirements")
    if texts is None:
        texts = (context.get("board_profile") or {}).get("requirements")
    if texts is None:
        texts = load_requirements()
    return {str(k): str(v) for k, v in dict(texts).items()}
