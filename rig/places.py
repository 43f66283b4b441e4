"""A run holds its rig's labgrid places: acquired through the coordinator for the run,
released at its end (also when it fails or is interrupted).

A rig description whose targets hold ``RemotePlace: {name: NAME}`` resources is served by a
labgrid coordinator (``--lg-coordinator``/``coordinator``, else ``options:
{coordinator_address: HOST:PORT}`` in the rig file, else ``LG_COORDINATOR``, else labgrid's
default ``127.0.0.1:20408``). :func:`hold_places` acquires every such place before the run:

- **Which place.** The rig file's name, or ``place`` (``bmsrig run --place``, else
  ``LG_PLACE``) for a rig file with one RemotePlace, read as ``labgrid-client -p`` reads it:
  a name or alias (a unique substring is enough), ``+TOKEN`` (the place allocated to a
  labgrid reservation; ``+`` alone takes ``LG_TOKEN``), or — ours — ``key=value[,key=...]``:
  any place with those tags (a reservation is made with that filter).
- **Waiting.** ``wait_s`` (``--lock-wait``) 0: a place held by anyone else is
  :class:`~rig.lock.RigBusy` (exit 3) naming the holder. Above 0: the run queues through a
  labgrid reservation (filter ``name=PLACE`` or the tags), waits up to ``wait_s`` for the
  allocation on the rig's clock, then acquires; still held when the wait ends: exit 3 naming
  the holder, the reservation cancelled.
- **Own right.** labgrid names a holder ``host/user``, so two runs of one CI user on one host
  look alike to the coordinator. Each held place is also taken under a host lock
  (:func:`rig.lock.rig_lock`, name ``labgrid-<coordinator>-<place>``): a second run on this
  host waits or is exit 3 naming the first run's pid. A place this host and user acquired by
  hand (``labgrid-client -p NAME acquire``) is used and left acquired.
- **Losing it.** A :class:`rig.place_watch.PlaceWatch` follows the coordinator's place
  updates for the whole run; :meth:`PlaceHold.lost` says when a place stopped being ours
  (released, kicked, taken by another). The plugin's place guard ends the run as a rig fault.
  A lost place is not released (it is not ours to release).
- No such place, or no coordinator: :class:`~rig.errors.ConfigError` naming the rig file.

Only labgrid's coordinator API is used (``AcquirePlace``, ``ReleasePlace`` with
``fromuser``, ``CreateReservation``, ``PollReservation``, ``CancelReservation``) on a
:class:`labgrid.remote.client.ClientSession`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .clock import WallClock
from .coordinator import call as _call, connect_session, end_session, sync as _sync
from .errors import ConfigError
from .lock import RigBusy, rig_lock

log = logging.getLogger(__name__)

DEFAULT_COORDINATOR = "127.0.0.1:20408"
POLL_S = 1.0  # how often a queued run polls its reservation (labgrid expires it after 60 s unpolled), s
_TAG = re.compile(r"[a-z][a-z0-9_]+")

_ACTIVE: list["PlaceHold"] = []


def _load(env_path) -> dict:
    try:
        data = yaml.safe_load(Path(env_path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(env_path, "(file)", f"cannot read the rig description: {exc}") from None
    return data if isinstance(data, dict) else {}


def _entries(resources):
    return resources.items() if isinstance(resources, dict) else \
        [kv for item in resources or [] if isinstance(item, dict) for kv in item.items()]


def remote_places(env_path) -> list[str]:
    """Names of the ``RemotePlace`` resources of every target of the rig description, in order."""
    names = []
    for tname, target in (_load(env_path).get("targets") or {}).items():
        for cls, args in _entries((target or {}).get("resources") or {}):
            if cls == "RemotePlace":
                name = (args or {}).get("name") if isinstance(args, dict) else None
                if not name:
                    raise ConfigError(env_path, f"targets.{tname}.resources.RemotePlace.name", "a place name is required")
                names.append(str(name))
    return names


def coordinator_address(env_path, coordinator: str | None = None) -> str:
    """The coordinator serving the rig's places: ``coordinator``, else the rig file's
    ``options.coordinator_address``, else ``LG_COORDINATOR``, else labgrid's default."""
    if coordinator:
        return str(coordinator)
    option = (_load(env_path).get("options") or {}).get("coordinator_address")
    return str(option or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR)


# --------------------------------------------------------------------------- which place


@dataclass(frozen=True)
class PlaceSpec:
    """What ``--place`` asks for: ``kind`` "name" (pattern), "tags" (filter) or "token"."""

    kind: str
    pattern: str = ""
    tags: dict = field(default_factory=dict)
    token: str = ""

    @property
    def text(self) -> str:
        return {"name": self.pattern, "token": f"+{self.token}",
                "tags": ",".join(f"{k}={v}" for k, v in self.tags.items())}[self.kind]


def parse_place(text: str, source: str = "--place") -> PlaceSpec:
    """Read a ``--place`` / ``LG_PLACE`` value (see the module text); ConfigError if malformed."""
    text = str(text).strip()
    if not text:
        raise ConfigError("bmsrig run", source, "the place is empty: give a place name, +TOKEN or key=value tags")
    if text.startswith("+"):
        token = text[1:] or os.environ.get("LG_TOKEN", "")
        if not token:
            raise ConfigError("bmsrig run", source, "'+' takes the reservation token from LG_TOKEN, which is not set")
        return PlaceSpec("token", token=token)
    if "=" in text:
        tags = {}
        for pair in text.split(","):
            key, _, value = pair.partition("=")
            key, value = key.strip(), value.strip()
            if not _TAG.fullmatch(key) or not value:
                raise ConfigError("bmsrig run", source, f"tag filter {pair!r} is not key=value (key: lower-case "
                                                         f"letters, digits and '_', starting with a letter)")
            tags[key] = value
        return PlaceSpec("tags", tags=tags)
    return PlaceSpec("name", pattern=text)


def _selection(env_path, names: list[str], place: str | None) -> list[tuple[str, PlaceSpec]]:
    """(rig-file place name, what to hold for it) for every RemotePlace of the rig."""
    source = "--place"
    if place is None and os.environ.get("LG_PLACE"):
        place, source = os.environ["LG_PLACE"], "LG_PLACE"
    if place is None:
        return [(n, PlaceSpec("name", pattern=n)) for n in names]
    if len(names) != 1:
        if source == "LG_PLACE" and not names:
            return []  # labgrid's variable, set for other tools: a rig without places ignores it
        raise ConfigError(env_path, source, f"selects one place, but the rig description names "
                                            f"{len(names)} RemotePlace resources ({', '.join(names) or 'none'})")
    return [(names[0], parse_place(place, source))]


# --------------------------------------------------------------------------- the hold


@dataclass
class PlaceHold:
    """The places a run holds: ``places`` maps the rig file's RemotePlace name to the place
    held; ``how`` is "acquired" or "already held" per place."""

    coordinator: str | None
    holder: str = ""
    places: dict = field(default_factory=dict)
    how: dict = field(default_factory=dict)
    reservations: dict = field(default_factory=dict)  # place -> reservation token
    resources: dict = field(default_factory=dict)  # place -> [{"path", "cls", "exporter", "host"}]
    watch: object = None

    def lost(self) -> str | None:
        """Why a held place is no longer ours (None while every one is)."""
        return self.watch.lost() if self.watch is not None else None

    def record(self) -> dict:
        """What the run record and report name: coordinator, places, holder, exporters, resources."""
        return {"coordinator": self.coordinator, "holder": self.holder,
                "places": [{"name": name, "rig_file_name": rig_name, "how": self.how.get(name),
                            "reservation": self.reservations.get(name),
                            "exporters": sorted({r["exporter"] for r in self.resources.get(name, [])}),
                            "exporter_hosts": sorted({r["host"] for r in self.resources.get(name, []) if r["host"]}),
                            "resources": self.resources.get(name, [])}
                           for rig_name, name in self.places.items()]}


def active_hold() -> PlaceHold | None:
    """The places the run in this process holds (inside :func:`hold_places`), else None."""
    return _ACTIVE[-1] if _ACTIVE else None


def rename_remote_places(target_config) -> None:
    """Point the RemotePlace resources of a target's config (labgrid's dict) at the places
    this run holds (``--place`` may have chosen another than the rig file names)."""
    hold = active_hold()
    if hold is None or not isinstance(target_config, dict):
        return
    for cls, args in _entries(target_config.get("resources") or {}):
        if cls == "RemotePlace" and isinstance(args, dict) and args.get("name") in hold.places:
            args["name"] = hold.places[args["name"]]


def _resources_of(session, name: str) -> list[dict]:
    place = session.places.get(name)
    out = []
    for path in getattr(place, "acquired_resources", []) or []:
        exporter, group, cls, rname = (list(path) + ["", "", "", ""])[:4]
        entry = session.resources.get(exporter, {}).get(group, {}).get(rname)
        args = dict(getattr(entry, "args", {}) or {})
        extra = dict(getattr(entry, "extra", {}) or {})
        out.append({"path": "/".join(map(str, path)), "cls": cls, "exporter": exporter,
                    "host": str(extra.get("proxy") or args.get("host") or "")})
    return out


class _Taker:
    """Acquires places on one session, queueing through reservations up to a deadline."""

    def __init__(self, session, address, env_path, wait_s, clock, stack):
        self.session, self.address, self.env_path, self.stack = session, address, env_path, stack
        self.clock = clock or WallClock()
        self.t_end = self.clock.now() + max(0.0, float(wait_s))
        self.wait_s = max(0.0, float(wait_s))
        self.queue = self.wait_s > 0
        self.me = f"{session.gethostname()}/{session.getuser()}"

    def remaining(self) -> float:
        return max(0.0, self.t_end - self.clock.now())

    def place(self, name):
        _sync(self.session)
        place = self.session.places.get(name)
        if place is None:
            raise ConfigError(self.env_path, "RemotePlace.name", f"place {name!r} is gone from {self.address}")
        return place

    def resolve(self, pattern: str) -> str:
        _sync(self.session)
        try:
            return self.session.get_place(pattern).name
        except Exception as exc:  # labgrid UserError: matches nothing / several places
            raise ConfigError(self.env_path, "RemotePlace.name", f"place {pattern!r} on {self.address}: {exc}") from None

    def describe(self, name) -> str:
        place = self.session.places.get(name)
        if place is None:
            return name
        if place.acquired:
            return f"{name} (acquired by {place.acquired})"
        return f"{name} (reserved by reservation {place.reservation})" if place.reservation else f"{name} (free)"

    def host_lock(self, name: str):
        """This host's lock on the place: two runs of one host/user are kept apart."""
        lock = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"labgrid-{self.address}-{name}")[:100]
        self.stack.enter_context(rig_lock(lock, wait_s=self.remaining(), rig=f"labgrid place {name}",
                                          clock=self.clock))

    def acquire(self, name: str, token: str | None = None) -> str:
        """Acquire ``name`` (free, or allocated to our ``token``); "acquired"/"already held"."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        self.host_lock(name)
        place = self.place(name)
        if place.acquired == self.me:
            return "already held"
        if place.acquired or (place.reservation and place.reservation != token):
            raise RigBusy(f"labgrid place '{name}'", f"{self.describe(name)} on coordinator {self.address}; "
                          f"queue for it with --lock-wait SECONDS")
        try:
            _call(self.session, "AcquirePlace", pb2.AcquirePlaceRequest(placename=name))
        except grpc.aio.AioRpcError as exc:
            self.place(name)
            raise RigBusy(f"labgrid place '{name}'", f"cannot be acquired on coordinator {self.address} "
                          f"({self.describe(name)}): {exc.details()}") from None
        return "acquired"

    def reserve(self, tags: dict, token: str | None, what: str) -> tuple[str, str, bool]:
        """Wait for a reservation's allocation: ``(place, token, ours)``. A new reservation
        with ``tags`` when ``token`` is None (cancelled here if the wait ends without one)."""
        import grpc
        from labgrid.remote.common import Reservation, ReservationState
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        ours = token is None
        if ours:
            try:
                response = _call(self.session, "CreateReservation", pb2.CreateReservationRequest(
                    filters={"main": pb2.Reservation.Filter(filter=tags)}, prio=0.0), sync=False)
            except grpc.aio.AioRpcError as exc:
                raise ConfigError(self.env_path, "--place", f"reservation for {what} refused by {self.address}: "
                                                            f"{exc.details()}") from None
            token = response.reservation.token
        try:
            while True:
                try:
                    res = Reservation.from_pb2(_call(self.session, "PollReservation",
                                                     pb2.PollReservationRequest(token=token), sync=False).reservation)
                except grpc.aio.AioRpcError as exc:
                    raise ConfigError(self.env_path, "--place", f"reservation {token}: {exc.details()}") from None
                if res.state in (ReservationState.allocated, ReservationState.acquired) and res.allocations:
                    return res.allocations["main"][0], token, ours
                if res.state is not ReservationState.waiting:
                    raise RigBusy(f"labgrid reservation {token}", f"is {res.state.name} on {self.address}")
                if self.remaining() <= 0 and not ours:
                    raise RigBusy(f"labgrid reservation {token}", f"still waiting for a place after "
                                  f"{self.wait_s:g} s (--lock-wait) on {self.address}; filter "
                                  f"{' '.join(f'{k}={v}' for k, v in res.filters.get('main', {}).items()) or 'none'}")
                if self.remaining() <= 0:
                    _sync(self.session)
                    matching = [self.describe(n) for n, p in sorted(self.session.places.items())
                                if tags and all(dict(p.tags, name=n).get(k) == v for k, v in tags.items())]
                    raise RigBusy(f"labgrid place {what}", f"no place free after waiting "
                                  f"{self.wait_s:g} s (--lock-wait) on {self.address}: "
                                  f"{'; '.join(matching) or 'no place matches'}")
                self.clock.sleep(min(POLL_S, self.remaining()))
        except BaseException:
            if ours:
                self.cancel(token)
            raise

    def cancel(self, token: str):
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        with contextlib.suppress(Exception):
            _call(self.session, "CancelReservation", pb2.CancelReservationRequest(token=token), sync=False)

    def take(self, spec: PlaceSpec, hold: PlaceHold) -> str:
        """Hold the place ``spec`` asks for; its name."""
        if spec.kind == "name":
            name = self.resolve(spec.pattern)
            place = self.place(name)
            if not self.queue or place.acquired == self.me:
                hold.how[name] = self.acquire(name)
                return name
            spec = PlaceSpec("tags", tags={"name": name})
        if spec.kind == "tags":
            name, token, ours = self.reserve(spec.tags, None, spec.text)
        else:
            name, token, ours = self.reserve({}, spec.token, spec.text)
        try:
            hold.how[name] = self.acquire(name, token)
        except BaseException:
            if ours:
                self.cancel(token)
            raise
        if ours:
            hold.reservations[name] = token
        return name


def _release(session, address: str, env_path, hold: PlaceHold):
    """Release the places this run acquired and still holds, cancel its reservations; a
    session whose stream ended during the run is replaced first. Failures are logged."""
    from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

    lost = hold.lost()
    ours = [n for n, how in reversed(list(hold.how.items())) if how == "acquired"]
    if not ours and not hold.reservations:
        return session
    if session.stopping.is_set():
        end_session(session)
        try:
            session = connect_session(address, env_path)
        except ConfigError as exc:
            log.warning("places %s not released: %s", ", ".join(ours), exc)
            return None
    for name in ours:
        if lost and name in lost:
            log.warning("place %s not released: %s", name, lost)
            continue
        try:  # fromuser: a place someone else holds by now is left with them
            _call(session, "ReleasePlace", pb2.ReleasePlaceRequest(placename=name, fromuser=hold.holder))
        except Exception as exc:  # grpc errors, a timeout
            log.warning("place %s on %s not released: %s", name, address, exc)
    for token in hold.reservations.values():
        with contextlib.suppress(Exception):
            _call(session, "CancelReservation", pb2.CancelReservationRequest(token=token), sync=False)
    return session


@contextlib.contextmanager
def hold_places(env_path, *, coordinator: str | None = None, place: str | None = None, wait_s: float = 0.0,
                clock=None, watch: bool = True):
    """Hold every RemotePlace of the rig description for the body (see the module text).
    Yields a :class:`PlaceHold` (no places and no coordinator contacted for a rig without
    RemotePlace); :func:`active_hold` returns it meanwhile."""
    selection = _selection(env_path, remote_places(env_path), place)
    if not selection:
        yield PlaceHold(coordinator=None)
        return
    from .place_watch import PlaceWatch

    address = coordinator_address(env_path, coordinator)
    session = connect_session(address, env_path)
    hold = PlaceHold(coordinator=address, holder=f"{session.gethostname()}/{session.getuser()}")
    with contextlib.ExitStack() as stack:  # the host locks, released last
        try:
            taker = _Taker(session, address, env_path, wait_s, clock, stack)
            for rig_name, spec in selection:
                hold.places[rig_name] = taker.take(spec, hold)
            _sync(session)
            hold.resources = {n: _resources_of(session, n) for n in hold.places.values()}
            if watch:
                hold.watch = PlaceWatch(address, list(hold.places.values()), hold.holder, env_path).start()
            _ACTIVE.append(hold)
            yield hold
        finally:
            if hold in _ACTIVE:
                _ACTIVE.remove(hold)
            if hold.watch is not None:
                hold.watch.stop()
            session = _release(session, address, env_path, hold)
            if session is not None:
                end_session(session)
