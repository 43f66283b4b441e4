"""Watch that the places a run holds stay its own, for the whole run.

:class:`PlaceWatch` runs a labgrid client session of its own on a thread (its own event loop
and gRPC channel) and follows the coordinator's place updates as they are pushed: a held
place that is released (``labgrid-client release``, ``release --kick``), acquired by
another holder or deleted is *lost*, even if it is acquired again a moment later (by the
same user from another shell, say). :meth:`PlaceWatch.lost` then names the place and who
holds it now; the run's place guard (:mod:`fixtures.place_guard`) ends the run as a rig
fault at the next test boundary.

A coordinator that stops answering is not a lost place (the coordinator keeps its state):
the watch reconnects every :data:`RECONNECT_S` and checks the places again.
"""

from __future__ import annotations

import asyncio
import logging
import threading

log = logging.getLogger(__name__)

RECONNECT_S = 2.0  # wall-clock pause before reconnecting after the coordinator stream ended, s
START_TIMEOUT_S = 15.0  # wall-clock bound on the first connection, s


class PlaceWatch:
    """Follow ``places`` on the coordinator at ``address``; lost when one is not ``holder``'s."""

    def __init__(self, address: str, places: list[str], holder: str, env_path):
        self.address, self.places, self.holder, self.env_path = address, list(places), holder, env_path
        self._lost: str | None = None
        self._later = ""  # what happened to the place after it was lost (the latest)
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="bmsrig-place-watch", daemon=True)

    # -- the run's side
    def start(self) -> "PlaceWatch":
        """Start watching; returns once the first state was checked (raises what connecting raised)."""
        self._thread.start()
        self._ready.wait(START_TIMEOUT_S)
        if self._error is not None:
            raise self._error
        return self

    def lost(self) -> str | None:
        """Why a place is no longer the run's (None while all are)."""
        with self._lock:
            return None if self._lost is None else self._lost + self._later

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop already ended
                pass
        self._thread.join(START_TIMEOUT_S)

    # -- the watching thread
    def _mark(self, name: str, place) -> None:
        now = "deleted" if place is None else (f"acquired by {place.acquired}" if place.acquired else "released")
        with self._lock:
            if self._lost is None:
                self._lost = (f"labgrid place {name} on {self.address} is no longer held by this run "
                              f"({self.holder}): {now}")
                log.error("%s", self._lost)
            elif now not in self._lost:
                self._later = f"; then {now}"

    def _check(self, session) -> None:
        for name in self.places:
            place = session.places.get(name)
            if place is None or place.acquired != self.holder:
                self._mark(name, place)

    def _run(self) -> None:
        from labgrid.remote.client import ensure_event_loop

        from .coordinator import connect_session, end_session

        loop = ensure_event_loop()  # this thread's own loop, which its sessions use too
        self._loop, self._stop = loop, asyncio.Event()
        first = True
        try:
            while not self._stop.is_set():
                try:
                    session = connect_session(self.address, self.env_path)
                except BaseException as exc:  # noqa: BLE001 - reported to start(), else retried
                    if first:
                        self._error = exc
                        return
                    loop.run_until_complete(self._pause(RECONNECT_S))
                    continue
                self._follow(session)
                if first:
                    first = False
                    self._ready.set()
                loop.run_until_complete(self._until_stop_or_end(session))
                end_session(session)
                if not self._stop.is_set():
                    log.warning("place watch: coordinator %s stream ended; reconnecting", self.address)
                    loop.run_until_complete(self._pause(RECONNECT_S))
        finally:
            self._ready.set()
            loop.close()

    def _follow(self, session) -> None:
        original = session.on_place_changed
        watched = set(self.places)

        async def on_place_changed(place_pb2):
            await original(place_pb2)
            if place_pb2.name in watched:
                place = session.places.get(place_pb2.name)
                if place is None or place.acquired != self.holder:
                    self._mark(place_pb2.name, place)

        async def on_place_deleted(name):
            session.places.pop(name, None)
            if name in watched:
                self._mark(name, None)

        session.on_place_changed = on_place_changed
        session.on_place_deleted = on_place_deleted
        session.loop.run_until_complete(session.sync_with_coordinator())
        self._check(session)

    async def _until_stop_or_end(self, session) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        ended = asyncio.ensure_future(session.stopping.wait())
        await asyncio.wait({stop, ended}, return_when=asyncio.FIRST_COMPLETED)
        for f in (stop, ended):
            f.cancel()

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass
