"""Validate a rig description and a board profile's link files without moving anything."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ConfigError
from .profile import BoardProfile


def check_env(env_path: Path) -> str:
    """Parse and instantiate the environment's target (nothing is activated or opened).

    Returns ``"bench"`` or ``"hardware"``. Raises ConfigError naming file, key and problem.
    """
    from labgrid import Environment

    from . import labgrid as _registrations  # noqa: F401
    from .labgrid import SimBench

    try:
        raw = yaml.safe_load(Path(env_path).read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(env_path, f"line {mark.line + 1}" if mark else None, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("targets"), dict):
        raise ConfigError(env_path, "targets", "a rig description needs a 'targets' mapping (labgrid environment format)")
    main = raw["targets"].get("main")
    if not isinstance(main, dict):
        raise ConfigError(env_path, "targets.main", "missing: the rig is the target named 'main'")
    if "rig.labgrid" not in (raw.get("imports") or []):
        raise ConfigError(env_path, "imports", "must list 'rig.labgrid' (registers bmsrig's resources and drivers)")
    try:
        env = Environment(str(env_path))
        target = env.get_target("main")
    except Exception as exc:
        raise ConfigError(env_path, "targets.main", f"{type(exc).__name__}: {exc}") from None
    try:
        kind = "bench" if any(isinstance(r, SimBench) for r in target.resources) else "hardware"
    finally:
        try:
            target.cleanup()
        except Exception:
            pass
    return kind


def check_profile_links(profile: BoardProfile) -> None:
    """Load the profile's DBC + signal map or register map as the link will."""
    if profile.link.kind == "can":
        from .links.signal_map import load_signal_map

        load_signal_map(profile.resolve(profile.link.signal_map), profile.resolve(profile.link.dbc), profile.cells)
    else:
        from .links.register_map import load_register_map

        load_register_map(profile.resolve(profile.link.register_map), profile.cells)
