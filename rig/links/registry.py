"""Link kinds: what a profile's ``link: {kind: ...}`` names, found by name.

A :class:`LinkKind` gathers everything one way of talking to a board needs:

- ``settings`` — the pydantic model of the profile's ``link:`` section (a
  :class:`LinkSettings` subclass with ``kind: Literal["<name>"]``); its validators check the
  section, ``FILE_KEYS`` names the keys that are paths to files next to the profile;
- ``link_class`` — the host-side :class:`~rig.protocols.BmsLink` class (for documentation
  and ``isinstance`` checks); ``open(profile, endpoint, clock)`` builds an open one;
- ``ports`` — the labgrid resource classes of a real rig this kind can open
  (``CANPort``, ``RawSerialPort`` ...); the virtual bench's ``BenchPort`` fits every kind;
- ``check_maps(profile)`` — load the map files as the link will (``bmsrig check``), return
  reservations; errors are :class:`~rig.errors.ConfigError`;
- ``bench(profile, name)`` — the virtual bench's counterpart (the simulated board's side,
  see :class:`BenchCounterpart`).

Lookup: the :data:`BUILTIN` table (``can``, ``modbus``, ``jbd``, ``daly``), then the entry
points of group ``bmsrig.links`` (``[project.entry-points."bmsrig.links"] uart_text =
"pkg.module:KIND"``). A built-in name always resolves to the built-in module. An unknown kind, or an entry point
that does not load or is not a LinkKind, is a :class:`~rig.errors.ConfigError`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ConfigError
from ..yamlio import KeyedValueError as _Bad

# a link time (timeout, poll or request period, acknowledgement wait) above an hour is a typo the
# rig would wait out or a board it would never call silent, s
MAX_LINK_TIME_S = 3600.0

GROUP = "bmsrig.links"
"""Entry-point group of third-party link kinds."""

BUILTIN: dict[str, str] = {
    "can": "rig.links.kinds.can:KIND",
    "modbus": "rig.links.kinds.modbus:KIND",
    "jbd": "rig.links.kinds.jbd:KIND",
    "daly": "rig.links.kinds.daly:KIND",
}
"""Built-in kinds, name -> ``module:attribute`` (also declared as entry points in pyproject)."""




class LinkSettings(BaseModel):
    """The ``link:`` section every kind shares: ``kind``, ``timeout_s``, ``poll_s``.

    A kind subclasses it with ``kind: Literal["<name>"]`` and its own keys; unknown keys are
    errors, numbers must be finite.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    FILE_KEYS: ClassVar[tuple[str, ...]] = ()
    """Keys whose values are paths (relative to the profile) that must name existing files."""

    kind: str
    timeout_s: float = Field(2.0, gt=0, le=MAX_LINK_TIME_S, description="no sample within this is a link fault, s")
    poll_s: float = Field(0.1, gt=0, le=MAX_LINK_TIME_S, description="telemetry period / poll interval, s")

    @model_validator(mode="after")
    def _timing(self):
        if self.timeout_s <= self.poll_s:
            raise _Bad("timeout_s", f"({self.timeout_s:g} s) must be longer than link.poll_s ({self.poll_s:g} s)")
        return self

    def files(self) -> dict[str, str]:
        """``{key: relative path}`` of the link's files that are set."""
        return {k: getattr(self, k) for k in self.FILE_KEYS if getattr(self, k, None)}


@dataclass(frozen=True)
class Endpoint:
    """Where the host link connects: what a rig description's port resource says.

    ``address``: CAN channel, tty path ...; ``interface``: python-can interface (CAN only,
    ``""`` otherwise); ``speed``: bit/baud rate from the rig description (0 = the profile's);
    ``bench``: the virtual bench's board (timestamps are rig time already).
    """

    address: str
    interface: str = ""
    speed: int = 0
    bench: bool = False
    options: tuple = ()  # further (name, value) pairs for the interface: socketcand host/port, CAN FD


class BenchCounterpart(Protocol):
    """The simulated board's end of a link on the virtual bench (``LinkKind.bench`` builds it).

    - ``address`` (str): what the host link opens (virtual CAN channel, pty path ...),
      valid from construction;
    - ``publish(tel, t)``: one telemetry cycle of the board at board time ``t`` (s);
      ``tel`` is a :class:`rig.sim.harness.Telemetry` (V, °C, A, flags, identity strings);
    - ``hold(tel)``: serve this telemetry from now on without a new cycle (a polled slave
      keeps its register image; a streaming transmitter does nothing);
    - ``muted`` (bool attribute): True = the board says nothing (a polled slave stops
      answering; :class:`rig.sim.ports.DutPorts` also stops calling ``publish``);
    - ``close()``: release threads, descriptors and buses (idempotent).
    """

    address: str
    muted: bool

    def publish(self, tel: Any, t: float) -> None: ...

    def hold(self, tel: Any) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LinkKind:
    """One link kind (see the module docstring)."""

    name: str
    settings: type[LinkSettings]
    link_class: type
    open: Callable[..., Any]
    """``open(profile, endpoint: Endpoint, clock) -> BmsLink`` (raises LinkFault when it cannot)."""
    bench: Callable[..., BenchCounterpart]
    """``bench(profile, name: str) -> BenchCounterpart``; ``name`` is unique per bench."""
    check_maps: Callable[..., list[str]] = lambda profile: []
    ports: tuple[str, ...] = ()
    description: str = ""


# ---------------------------------------------------------------------------- lookup


def _entry_points() -> list:
    """The installed entry points of group ``bmsrig.links``."""
    from importlib.metadata import entry_points

    return list(entry_points(group=GROUP))


def _ep_label(ep) -> str:
    return f"entry point {GROUP}:{ep.name} = {ep.value}"


def _load_ref(ref: str, label: str) -> LinkKind:
    mod, _, attr = ref.partition(":")
    try:
        obj = getattr(importlib.import_module(mod), attr) if attr else importlib.import_module(mod)
    except Exception as exc:
        raise ConfigError(label, None, f"cannot load link kind {ref!r}: {type(exc).__name__}: {exc}") from None
    return obj


def _checked(obj: object, name: str, label: str) -> LinkKind:
    if not isinstance(obj, LinkKind):
        raise ConfigError(label, None, f"is a {type(obj).__name__}, not a rig.links.registry.LinkKind")
    if obj.name != name:
        raise ConfigError(label, None, f"the LinkKind it names is called {obj.name!r}, not {name!r}")
    if not (isinstance(obj.settings, type) and issubclass(obj.settings, LinkSettings)):
        raise ConfigError(label, None, "its settings model is not a rig.links.registry.LinkSettings subclass")
    return obj


_loaded: dict[tuple[str, str], LinkKind] = {}


def known_kinds() -> list[str]:
    """Every kind name: built-in first, then entry points (sorted)."""
    extra = sorted({ep.name for ep in _entry_points()} - set(BUILTIN))
    return [*BUILTIN, *extra]


def _known_text(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def get_kind(name: object, source: object = None, key: str = "link.kind") -> LinkKind:
    """The kind called ``name``. ConfigError (``source``, ``key``) naming the known kinds
    when there is none; ConfigError naming the entry point when it does not load."""
    if not isinstance(name, str) or not name:
        raise ConfigError(source, key, f"must name a link kind: {_known_text(known_kinds())}")
    ref = BUILTIN.get(name)
    label = f"built-in link kind {name!r}"
    if ref is None:
        eps = [ep for ep in _entry_points() if ep.name == name]
        if not eps:
            raise ConfigError(source, key, f"unknown link kind {name!r}; known kinds: {_known_text(known_kinds())}")
        ep = eps[0]
        ref, label = ep.value, _ep_label(ep)
        cached = _loaded.get((name, ref))
        if cached is not None:
            return cached
        try:
            obj = ep.load()
        except Exception as exc:
            raise ConfigError(label, None, f"cannot load link kind: {type(exc).__name__}: {exc}") from None
    else:
        cached = _loaded.get((name, ref))
        if cached is not None:
            return cached
        obj = _load_ref(ref, label)
    kind = _checked(obj, name, label)
    _loaded[(name, ref)] = kind
    return kind


def kind_of(profile) -> LinkKind:
    """The link kind of a :class:`~rig.profile.BoardProfile`."""
    return get_kind(profile.link.kind, getattr(profile, "source", None))


def validate_settings(raw: object, source: object = None) -> LinkSettings:
    """Validate a profile's ``link:`` mapping against its kind's settings model.

    Errors are raised as ValueError subclasses carrying ``.key`` (relative to ``link``), so
    the profile's validation error names ``link.<key>``; an unknown kind names ``link.kind``.
    """
    if isinstance(raw, LinkSettings):
        return raw
    if not isinstance(raw, dict):
        raise ValueError(f"must be a mapping with 'kind' and the kind's settings, got {type(raw).__name__}")
    name = raw.get("kind")
    try:
        kind = get_kind(name, source)
    except ConfigError as exc:
        if exc.key == "link.kind":
            raise _Bad("kind", exc.problem) from None
        raise
    from pydantic import ValidationError

    from ..yamlio import bool_for_number, validation_error

    bad = bool_for_number(kind.settings, raw)
    if bad is not None:
        raise _Bad(bad, "must be a number, got a YAML boolean (true/false, yes/no, on/off)")
    try:
        return kind.settings.model_validate(raw)
    except ValidationError as exc:
        err = validation_error(kind.settings, exc, None)
        if err.key == "<top level>":
            raise ValueError(err.problem) from None
        raise _Bad(err.key, err.problem) from None


__all__ = ["GROUP", "BUILTIN", "LinkKind", "LinkSettings", "Endpoint", "BenchCounterpart", "get_kind", "kind_of",
           "known_kinds", "validate_settings"]
