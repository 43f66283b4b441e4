"""Board-model registry of the virtual bench.

A board model is named either by a registered name (``reference``) or by ``module:Class``.
Registered names come from :data:`BUILTIN` and from the entry-point group
``bmsrig.boards`` (a package registers its model in its ``pyproject.toml``)::

    [project.entry-points."bmsrig.boards"]
    myboard = "mypkg.board:MyBoard"

A built-in name keeps its built-in class (an entry point of the same name is ignored).
:func:`load_board` checks the class against the contract (:data:`REQUIRED_METHODS`, the
constructor ``(harness, profile, defects)``; see ``docs/board-models.md``) and raises
:class:`~rig.errors.ConfigError` naming the file (or option), the key and the problem.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from importlib import metadata
from pathlib import Path

from ..errors import ConfigError

ENTRY_POINT_GROUP = "bmsrig.boards"
BUILTIN: dict[str, str] = {
    "reference": "rig.sim.reference:ReferenceBoard",
    "northwind-nw16c": "rig.sim.vendors.northwind:NorthwindBoard",
    "kestrel-ks8": "rig.sim.vendors.kestrel:KestrelBoard",
    "fjord-fj12": "rig.sim.vendors.fjord:FjordBoard",
    "gannet-gn24": "rig.sim.vendors.gannet:GannetBoard",
}
"""Built-in board models, name -> ``module:Class`` (imported only when loaded)."""
REQUIRED_METHODS = ("wake",)
"""Methods every board model must have (``wake(now) -> next wake time, s``)."""
OPTIONAL_METHODS = ("fast_forward",)
"""Methods a board model may have (``fast_forward(until)``; see :mod:`rig.sim.fastforward`)."""
EXAMPLE = "rig.sim.reference_board:ReferenceBoard"


def registered() -> dict[str, str]:
    """Every registered board model, name -> ``module:Class``: :data:`BUILTIN`, then the
    ``bmsrig.boards`` entry points (a broken installation's entry points are skipped)."""
    out = dict(BUILTIN)
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # pragma: no cover - a broken distribution's metadata
        eps = ()
    for ep in eps:
        out.setdefault(ep.name, ep.value.split("[")[0].strip())
    return out


def _import(mod_name: str):
    """Import ``mod_name``; when it is not found and the working directory is not on
    ``sys.path`` (a console script) but holds the module's top-level package, retry with
    the working directory first on the path, as ``python -m`` and pytest do (also when
    another distribution ships a top-level package of the same name, e.g. ``tests``)."""
    top = mod_name.split(".")[0]
    had_top = top in sys.modules
    try:
        return importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if not (mod_name == missing or mod_name.startswith(missing + ".")):
            raise  # the module exists; something it imports does not
        cwd = os.getcwd()
        on_path = {os.path.abspath(p or os.curdir) for p in sys.path}
        here = Path(cwd, top)
        if cwd in on_path or not (here.is_dir() or here.with_suffix(".py").is_file()):
            raise
        loaded = sys.modules.get(top)
        if loaded is not None and had_top:
            raise ModuleNotFoundError(
                f"{exc}; '{top}' is already imported from {getattr(loaded, '__file__', None)}, not from {here}",
                name=exc.name) from None
        # the failed attempt may have imported another distribution's package of that name
        # (a top-level ``tests``): forget it, the working directory's comes first now
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[name]
        sys.path.insert(0, cwd)
        importlib.invalidate_caches()
        return importlib.import_module(mod_name)


def contract_problem(cls) -> str | None:
    """What keeps ``cls`` from being a board model (None: it satisfies the contract)."""
    for name in REQUIRED_METHODS:
        if not callable(getattr(cls, name, None)):
            return f"has no {name}(now) method (required of every board model: {', '.join(REQUIRED_METHODS)})"
    if not isinstance(cls, type):
        return f"is a {type(cls).__name__}, not a class"
    for name in OPTIONAL_METHODS:
        if hasattr(cls, name) and not callable(getattr(cls, name)):
            return f"has a {name} attribute that is not a method"
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - a builtin or extension class
        return None
    try:
        sig.bind(object(), object(), object())
    except TypeError:
        return f"cannot be built as {cls.__name__}(harness, profile, defects): its constructor takes {sig}"
    return None


def load_board(spec: str, source: object = None, key: str = "bench.model") -> type:
    """The board model class named by ``spec`` (a registered name or ``module:Class``).

    ``source`` is the file (or option) the name came from and ``key`` its key, for the
    :class:`~rig.errors.ConfigError` raised when the name is unknown, the module cannot be
    imported, the class is missing or does not satisfy the contract.
    """
    src = source or "--board-model"
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(src, key, f"board model {spec!r} must be a registered name or 'module:Class' (e.g. {EXAMPLE})")
    spec = spec.strip()
    label = spec
    if ":" not in spec:
        known = registered()
        if spec not in known:
            raise ConfigError(src, key, f"unknown board model {spec!r}: not a registered name "
                                        f"({', '.join(sorted(known))}) and not 'module:Class' (e.g. {EXAMPLE})")
        spec = known[spec]
    if spec.count(":") != 1:
        raise ConfigError(src, key, f"board model {label!r} must be 'module:Class' (e.g. {EXAMPLE})")
    mod_name, cls_name = (s.strip() for s in spec.split(":"))
    if not mod_name or not cls_name:
        raise ConfigError(src, key, f"board model {label!r} must be 'module:Class' (e.g. {EXAMPLE})")
    try:
        module = _import(mod_name)
    except Exception as exc:  # ImportError, or an error inside the module
        raise ConfigError(src, key, f"cannot import board model module '{mod_name}': {type(exc).__name__}: {exc}") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise ConfigError(src, key, f"module '{mod_name}' has no board model class '{cls_name}'")
    problem = contract_problem(cls)
    if problem is not None:
        raise ConfigError(src, key, f"board model '{label}' {problem}")
    return cls


__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "REQUIRED_METHODS", "OPTIONAL_METHODS", "registered", "contract_problem",
           "load_board"]
