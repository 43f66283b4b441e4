"""A run holds its rig's labgrid places: acquired through the coordinator for the run,
released at its end (also when it fails or is interrupted).

A rig description whose targets hold ``RemotePlace: {name: NAME}`` resources is served by a
labgrid coordinator (``options: {coordinator_address: HOST:PORT}`` in the rig file, else
``LG_COORDINATOR``, else labgrid's default ``127.0.0.1:20408`` — labgrid's own order).
:func:`hold_places` acquires every such place before the run and releases it after:

- a place free: acquired in this host's and user's name (labgrid's ``host/user``), released
  at the end, whatever the run's outcome;
- a place acquired by another host or user: :class:`~rig.lock.RigBusy` (exit 3) naming the
  holder, nothing acquired (places acquired before it are released);
- a place this host and user already acquired (``labgrid-client -p NAME acquire`` by hand):
  used as it is, and left acquired;
- no such place, or no coordinator: :class:`~rig.errors.ConfigError` naming the rig file.

Only the gRPC requests of labgrid's coordinator API are used (``AcquirePlace``,
``ReleasePlace``) on a :class:`labgrid.remote.client.ClientSession`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import yaml

from .errors import ConfigError
from .lock import RigBusy

log = logging.getLogger(__name__)

DEFAULT_COORDINATOR = "127.0.0.1:20408"
CONNECT_TIMEOUT_S = 10.0  # wall-clock wait for the coordinator to answer, s


def _load(env_path) -> dict:
    try:
        data = yaml.safe_load(Path(env_path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(env_path, "(file)", f"cannot read the rig description: {exc}") from None
    return data if isinstance(data, dict) else {}


def remote_places(env_path) -> list[str]:
    """Names of the ``RemotePlace`` resources of every target of the rig description, in order."""
    names = []
    for tname, target in (_load(env_path).get("targets") or {}).items():
        resources = (target or {}).get("resources") or {}
        entries = resources.items() if isinstance(resources, dict) else \
            [kv for item in resources if isinstance(item, dict) for kv in item.items()]
        for cls, args in entries:
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


def connect_session(address: str, env_path):
    """A ClientSession on its own connection: the coordinator tells clients apart by their
    connection, and labgrid's RemotePlace opens a session of its own in this process."""
    import grpc
    from labgrid.remote.client import ClientSession, ensure_event_loop
    from labgrid.remote.generated import labgrid_coordinator_pb2_grpc
    from labgrid.util.proxy import proxymanager

    try:
        loop = ensure_event_loop()
        target = proxymanager.get_grpc_address(address, default_port=20408)
        session = ClientSession(target, loop)
        loop.run_until_complete(session.channel.close())
        session.channel = grpc.aio.insecure_channel(target=target, options=[
            ("grpc.use_local_subchannel_pool", 1), ("grpc.keepalive_time_ms", 7500),
            ("grpc.keepalive_timeout_ms", 10000), ("grpc.http2.ping_timeout_ms", 10000),
            ("grpc.http2.max_pings_without_data", 0)])
        session.stub = labgrid_coordinator_pb2_grpc.CoordinatorStub(session.channel)
        loop.run_until_complete(asyncio.wait_for(session.start(), CONNECT_TIMEOUT_S))
    except Exception as exc:  # grpc / labgrid errors of an unreachable coordinator
        raise ConfigError(env_path, "options.coordinator_address",
                          f"labgrid coordinator {address} does not answer: {exc}") from None
    return session


def _holder_of(session, name: str, env_path) -> str | None:
    try:
        place = session.get_place(name)
    except Exception as exc:  # labgrid UserError: no such place
        raise ConfigError(env_path, "RemotePlace.name", f"place {name!r} on {session.address}: {exc}") from None
    return place.acquired or None


def _request(session, kind: str, name: str):
    """One AcquirePlace/ReleasePlace request and a sync, bounded by CONNECT_TIMEOUT_S."""
    from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

    async def call():
        if kind == "acquire":
            await session.stub.AcquirePlace(pb2.AcquirePlaceRequest(placename=name))
        else:
            await session.stub.ReleasePlace(pb2.ReleasePlaceRequest(placename=name))
        if not session.stopping.is_set():
            await session.sync_with_coordinator()

    session.loop.run_until_complete(asyncio.wait_for(call(), CONNECT_TIMEOUT_S))


def _end(session):
    with contextlib.suppress(Exception):
        session.loop.run_until_complete(asyncio.wait_for(session.stop(), CONNECT_TIMEOUT_S))
    with contextlib.suppress(Exception):
        session.loop.run_until_complete(session.close())


def _release(session, address: str, env_path, names: list[str]):
    """Release ``names``; a session whose stream ended during the run (a long run, a
    coordinator restart) is replaced first. A place that cannot be released is logged."""
    import grpc

    if session.stopping.is_set():
        _end(session)
        try:
            session = connect_session(address, env_path)
        except ConfigError as exc:
            log.warning("places %s not released: %s", ", ".join(names), exc)
            return None
    for name in names:
        try:
            _request(session, "release", name)
        except (grpc.aio.AioRpcError, asyncio.TimeoutError) as exc:
            log.warning("place %s on %s not released: %s", name, address, exc)
    return session


@contextlib.contextmanager
def hold_places(env_path, *, coordinator: str | None = None):
    """Hold every RemotePlace of the rig description for the body (see the module text).
    Yields ``{"coordinator": address, "places": {name: "acquired"|"already held"}}``; nothing
    is contacted when the rig has no RemotePlace."""
    names = remote_places(env_path)
    if not names:
        yield {"coordinator": None, "places": {}}
        return
    import grpc

    address = coordinator_address(env_path, coordinator)
    session = connect_session(address, env_path)
    me = f"{session.gethostname()}/{session.getuser()}"
    held: dict[str, str] = {}
    try:
        for name in names:
            holder = _holder_of(session, name, env_path)
            if holder == me:
                held[name] = "already held"
                continue
            if holder:
                raise RigBusy(f"labgrid place '{name}'", f"acquired by {holder} on coordinator {address}; "
                              f"wait for it to be released (labgrid-client -p {name} release)")
            try:
                _request(session, "acquire", name)
            except grpc.aio.AioRpcError as exc:
                holder = _holder_of(session, name, env_path) or "another client"
                raise RigBusy(f"labgrid place '{name}'", f"cannot be acquired on coordinator {address} "
                              f"(held by {holder}): {exc.details()}") from None
            held[name] = "acquired"
        yield {"coordinator": address, "places": dict(held)}
    finally:
        ours = [n for n, how in reversed(list(held.items())) if how == "acquired"]
        session = _release(session, address, env_path, ours) if ours else session
        if session is not None:
            _end(session)
