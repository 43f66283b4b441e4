"""Frames the CAN link transmits: scheduled polls, requests before a sample, identity requests.

The map's ``requests:`` entries are encoded once (:func:`rig.links.signal_map_ext.compile_requests`);
:class:`RequestScheduler` decides *when* to send them, on the rig clock (s), and tracks the
answers: a request with a ``response`` expects one response frame per frame sent within
``timeout_s`` — or, when it lists values of one signal (``ReqPage: [0, 1, 2]``) and the
response message carries a page index (a DBC multiplexer or the map's page index), the
response *page* equal to each listed value: a reply of another page does not answer it; it is resent up to ``retries`` times, then counted as unanswered and named in
:attr:`RequestScheduler.problem` (the link's silence detail). The scheduler never blocks: the
link calls :meth:`service` from its pump.

Triggers (``when``): ``schedule`` every ``every_s`` from the link's start; ``start`` once;
``sample`` at start and again after each complete sample (a board that answers only when
asked, one request per sample); ``identity`` at start and whenever identity is read and
not yet complete.
"""

from __future__ import annotations

from typing import Callable


class RequestScheduler:
    """Sends the compiled requests through ``send(frame_id, extended, data)``."""

    def __init__(self, plans, send: Callable[[int, bool, bytes], None], names: dict[int, str],
                 handlers: dict | None = None):
        self.plans = list(plans)
        #: response frame ids answered by page (the request lists pages, the response carries its page index)
        self.paged_ids = frozenset(p.response_id for p in self.plans if p.listed_signal is not None and handlers
                                   and getattr(handlers.get(p.response_id), "page_index", None) is not None)
        self._send = send
        self._names = names
        self.response_ids = frozenset(p.response_id for p in self.plans if p.response_id is not None)
        self._next: dict[int, float] = {}
        self._pending: dict[int, list] = {}  # plan index -> [deadline s, tries, responses due: count or pages]
        self.frames_sent = 0
        self.unanswered = 0
        self._problems: dict[int, str] = {}

    @property
    def problem(self) -> str:
        """The requests that went unanswered (last outcome of each), "" when all were answered."""
        return "; ".join(self._problems[k] for k in sorted(self._problems))

    def start(self, now: float) -> None:
        """Send what goes out when the link opens; start the schedules at ``now`` (s)."""
        for p in self.plans:
            if p.on in ("schedule", "start", "sample", "identity"):
                self._fire(p, now)
            if p.on == "schedule":
                self._next[p.index] = now + p.every_s

    def service(self, now: float) -> None:
        """Send the scheduled requests that are due and resend unanswered ones (rig time, s)."""
        for p in self.plans:
            due = self._next.get(p.index)
            if due is not None and now >= due:
                self._fire(p, now)
                due += p.every_s
                self._next[p.index] = due if due > now else now + p.every_s
        for idx, pend in list(self._pending.items()):
            if now <= pend[0]:
                continue
            p = self.plans[idx]
            if pend[1] < p.retries:
                self._fire(p, now, tries=pend[1] + 1)
                continue
            del self._pending[idx]
            self.unanswered += 1
            due = pend[2]
            pages = f" page {', '.join(str(v) for v in sorted(due))}" if isinstance(due, set) else ""
            self._problems[idx] = (f"request {p.message} got no {self._names.get(p.response_id, hex(p.response_id))}"
                                   f"{pages} within {p.timeout_s:g} s ({p.retries + 1} tries)")
            if p.on == "sample":  # keep asking: a board that comes back resumes the samples
                self._fire(p, now)

    def answered(self, frame_id: int, page=None) -> None:
        """A response frame arrived (``page``: its page index / multiplexer value, if it has one)."""
        for idx, pend in list(self._pending.items()):
            if self.plans[idx].response_id == frame_id:
                if isinstance(pend[2], set):
                    pend[2].discard(page)
                else:
                    pend[2] -= 1
                if not pend[2]:
                    del self._pending[idx]
                    self._problems.pop(idx, None)

    def sample_completed(self, now: float) -> None:
        """A sample completed: ask for the next one (``on: sample``)."""
        for p in self.plans:
            if p.on == "sample" and p.index not in self._pending:
                self._fire(p, now)

    def identity_wanted(self, now: float) -> None:
        """Identity is being read and is incomplete: (re)send the identity requests."""
        for p in self.plans:
            if p.on == "identity" and p.index not in self._pending:
                self._fire(p, now)

    def _fire(self, p, now: float, tries: int = 0) -> None:
        for data, _value in p.frames:
            self._send(p.frame_id, p.extended, data)
            self.frames_sent += 1
        if p.response_id is not None and (tries or p.index not in self._pending):
            # a scheduled send while the previous one is unanswered keeps that one's deadline
            due = {v for _d, v in p.frames} if p.response_id in self.paged_ids else len(p.frames)
            self._pending[p.index] = [now + p.timeout_s, tries, due]
