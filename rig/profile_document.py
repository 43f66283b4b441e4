"""Is the YAML given as a board profile a profile at all? (checked before its keys are).

A lab's most common mix-up is passing the wrong one of a board's files: the CAN signal map
or the Modbus register map instead of the profile that names it, or an old profile that
still carries requirement texts. Each is a :class:`~rig.errors.ConfigError` naming the file,
the key that gives it away and what to pass instead.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

# the `format:` of the link files a profile names (rig/links/*_schema.py), and its profile key
LINK_FILE_FORMATS = {
    "bmsrig-signal-map/1": ("CAN signal map", "link.signal_map"),
    "bmsrig-register-map/1": ("Modbus register map", "link.register_map"),
}


def refuse_non_profile(raw: dict, path: Path) -> None:
    """ConfigError when ``raw`` (the YAML mapping read from ``path``) is not a board profile."""
    fmt = raw.get("format")
    if isinstance(fmt, str) and fmt in LINK_FILE_FORMATS:
        what, key = LINK_FILE_FORMATS[fmt]
        raise ConfigError(path, "format", f"this is a {what} ({fmt}), not a board profile: pass the board "
                          f"profile whose {key} names this file")
    if fmt is None and "sample_on" in raw and "chemistry" not in raw:  # a signal map that omits its format
        raise ConfigError(path, "sample_on", "this looks like a CAN signal map (it has sample_on, no chemistry), "
                          "not a board profile: pass the board profile whose link.signal_map names this file")
    if "requirements" in raw:
        raise ConfigError(path, "requirements", "requirement texts are no longer part of a board profile: they "
                          "moved to testplans/requirements.yaml (one place for every profile); remove this section")
