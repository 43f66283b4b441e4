"""Validate a rig description and a board profile's link files without moving anything."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .profile import BoardProfile
from .yamlio import closest, load_yaml


def _entries(section, env_path: Path, key: str) -> list[tuple[str, str | None, dict]]:
    """labgrid's resources/drivers section (mapping or list form) as (class, name, args)."""
    if section is None:
        return []
    out = []
    if isinstance(section, dict):
        items = [(cls, args) for cls, args in section.items()]
    elif isinstance(section, list):
        items = []
        for i, item in enumerate(section):
            if not isinstance(item, dict) or not item:
                raise ConfigError(env_path, f"{key}[{i}]", f"must be a mapping 'Class: {{arguments}}', got {item!r}")
            if "cls" in item:
                item = dict(item)
                items.append((item.pop("cls"), item))
            elif len(item) == 1:
                items.append(next(iter(item.items())))
            else:
                raise ConfigError(env_path, f"{key}[{i}]", f"one class per list item, got {', '.join(map(str, item))}")
    else:
        raise ConfigError(env_path, key, f"must be a mapping or a list, got {type(section).__name__}")
    for cls, args in items:
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ConfigError(env_path, f"{key}.{cls}", f"arguments must be a mapping, got {args!r}")
        args = dict(args)
        name = args.pop("name", None)
        out.append((str(cls), name, args))
    return out


def check_env_arguments(raw: dict, env_path: Path) -> None:
    """Every resource/driver class must exist and take every argument given.

    labgrid only warns about an unknown argument and drops it: a misspelt limit
    (``voltage_rang_v``) would silently fall back to the driver's default.
    """
    import attr
    from labgrid.factory import target_factory

    for tname, target in raw["targets"].items():
        if not isinstance(target, dict):
            raise ConfigError(env_path, f"targets.{tname}", "must be a mapping with 'resources' and 'drivers'")
        extra = set(target) - {"resources", "drivers", "options", "features"}
        for k in sorted(extra):
            raise ConfigError(env_path, f"targets.{tname}.{k}", "unknown key" + closest(k, ["resources", "drivers", "options", "features"]))
        for section, registry, what in (("resources", target_factory.resources, "resource"),
                                        ("drivers", target_factory.drivers, "driver")):
            key = f"targets.{tname}.{section}"
            for cls_name, _name, args in _entries(target.get(section), env_path, key):
                cls = registry.get(cls_name)
                if cls is None:
                    raise ConfigError(env_path, f"{key}.{cls_name}", f"unknown {what} class {cls_name!r}"
                                      f"{closest(cls_name, registry)}")
                if what == "driver":
                    bindings = args.pop("bindings", {})
                    if not isinstance(bindings, dict):
                        raise ConfigError(env_path, f"{key}.{cls_name}.bindings", "must be a mapping")
                known = sorted(a.name for a in attr.fields(cls) if a.init and a.name not in ("target", "name"))
                for arg in sorted(set(args) - set(known)):
                    raise ConfigError(env_path, f"{key}.{cls_name}.{arg}",
                                      f"unknown argument {arg!r} for {what} {cls_name}{closest(arg, known)}; "
                                      f"known: {', '.join(known) or 'none'}")


def check_env(env_path: Path) -> str:
    """Parse and instantiate the environment's target (nothing is activated or opened).

    Returns ``"bench"`` or ``"hardware"``. Raises ConfigError naming file, key and problem.
    """
    from labgrid import Environment

    from . import labgrid as _registrations  # noqa: F401
    from .labgrid import SimBench
    from .places import rename_remote_places

    raw = load_yaml(env_path, "rig description")
    if not isinstance(raw, dict) or not isinstance(raw.get("targets"), dict):
        raise ConfigError(env_path, "targets", "a rig description needs a 'targets' mapping (labgrid environment format)")
    main = raw["targets"].get("main")
    if not isinstance(main, dict):
        raise ConfigError(env_path, "targets.main", "missing: the rig is the target named 'main'")
    imports = raw.get("imports") or []
    if not isinstance(imports, list) or "rig.labgrid" not in imports:
        raise ConfigError(env_path, "imports", "must list 'rig.labgrid' (registers bmsrig's resources and drivers)")
    try:
        env = Environment(str(env_path))  # imports the listed modules (registers their classes)
    except Exception as exc:
        raise ConfigError(env_path, "imports", f"{type(exc).__name__}: {exc}") from None
    check_env_arguments(raw, env_path)
    from .env_drivers import driver_key, order_drivers
    from .safety import LimitConfigError

    try:
        rename_remote_places(env.config.get_targets().get("main"))  # the place the run holds (--place)
        order_drivers(env.config.get_targets().get("main"))
        target = env.get_target("main")
        if target is None:  # labgrid builds no target from an empty 'main'
            raise ConfigError(env_path, "targets.main", "declares no resources and no drivers")
    except LimitConfigError as exc:
        raise ConfigError(env_path, driver_key(exc), exc.problem) from None
    except ConfigError:
        raise
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


def check_profile_links(profile: BoardProfile) -> list[str]:
    """Load the profile's link files (DBC + signal map, register map ...) as the link will:
    its link kind (:mod:`rig.links.registry`) checks its own maps.

    Returns the reservations about the files that did not stop them loading (e.g. a vendor
    DBC with overlapping signals, loaded non-strictly); errors raise ConfigError.
    """
    from .links.registry import kind_of

    return list(kind_of(profile).check_maps(profile))


CALIBRATION_WARN_DAYS = 30


def _calibration_entries(node, key: str):
    """Every ``calibration_due`` under ``node`` as (YAML key path, due value, identification)."""
    if isinstance(node, dict):
        if "calibration_due" in node:
            who = " ".join(str(node[k]) for k in ("model", "serial") if node.get(k)) or key.rsplit(".", 1)[-1]
            yield f"{key}.calibration_due", node["calibration_due"], who
        for k, v in node.items():
            if k != "calibration_due":
                yield from _calibration_entries(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _calibration_entries(v, f"{key}[{i}]")


def check_calibration(env_path: Path, today=None, warn_days: int = CALIBRATION_WARN_DAYS) -> list[str]:
    """Every instrument calibration due date in the rig description against ``today``
    (a ``datetime.date``; default: today, UTC).

    Returns a warning per calibration due within ``warn_days`` days; raises
    :class:`ConfigError` naming the file, the key, the instrument and the date when any has
    expired (or a due date is not a date). Calibration kept by the instrument itself (read at
    run time) is not checked here.
    """
    import datetime as _dt

    today = today or _dt.datetime.now(_dt.timezone.utc).date()
    raw = load_yaml(env_path, "rig description")
    expired, warnings = [], []
    for key, due, who in _calibration_entries((raw or {}).get("targets") if isinstance(raw, dict) else None, "targets"):
        if due is None or due == "":
            continue
        if isinstance(due, _dt.datetime):
            due = due.date()
        if not isinstance(due, _dt.date):
            try:
                due = _dt.date.fromisoformat(str(due).strip())
            except ValueError:
                raise ConfigError(env_path, key, f"{due!r} is not a date (YYYY-MM-DD)") from None
        days = (due - today).days
        if days < 0:
            expired.append((key, f"{who}: calibration expired on {due.isoformat()} ({-days} days before {today.isoformat()})"))
        elif days <= warn_days:
            warnings.append(f"{env_path}: {key}: {who}: calibration due on {due.isoformat()}, in {days} days")
    if expired:
        raise ConfigError(env_path, expired[0][0], "; ".join(p for _, p in expired)
                          + ": recalibrate before running (results would not be traceable)")
    return warnings
