"""One labgrid client session on its own connection, and the requests the run makes on it.

Used by :mod:`rig.places` (acquire, reserve, release) and :mod:`rig.place_watch` (follow the
places' updates). Every request is bounded by :data:`CONNECT_TIMEOUT_S` of wall time.
"""

from __future__ import annotations

import asyncio
import contextlib

from .errors import ConfigError

CONNECT_TIMEOUT_S = 10.0  # wall-clock bound on one coordinator request, s


def connect_session(address: str, env_path):
    """A ClientSession on its own connection (its own gRPC channel and event loop of this
    thread): the coordinator tells clients apart by their connection, and labgrid's
    RemotePlace opens a session of its own in this process."""
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


def end_session(session):
    """Stop and close a session, whatever state its stream is in."""
    with contextlib.suppress(Exception):
        session.loop.run_until_complete(asyncio.wait_for(session.stop(), CONNECT_TIMEOUT_S))
    with contextlib.suppress(Exception):
        session.loop.run_until_complete(session.close())


def call(session, method: str, request, sync: bool = True):
    """One coordinator request (then a sync, so ``session.places`` shows its effect)."""
    async def request_and_sync():
        response = await getattr(session.stub, method)(request)
        if sync and not session.stopping.is_set():
            await session.sync_with_coordinator()
        return response

    return session.loop.run_until_complete(asyncio.wait_for(request_and_sync(), CONNECT_TIMEOUT_S))


def sync(session):
    """Wait until the session has every update the coordinator sent before this call."""
    session.loop.run_until_complete(asyncio.wait_for(session.sync_with_coordinator(), CONNECT_TIMEOUT_S))
