"""Reading every frame waiting on a python-can bus without blocking: :func:`frame_reader`.

The general way is ``bus.recv(0)`` until it returns ``None`` (one call per frame, each
taking the bus's queue lock and logging the frame at python-can's receive level). A
python-can ``virtual`` bus without receive filters keeps the frames other buses sent it in
its own ``queue.Queue`` (``VirtualBus.queue``); the reader takes all of them at once under
that queue's lock, in order, as the same :class:`can.Message` copies ``recv`` would have
returned (a frame arriving after that is read at the next call, as one arriving after
``recv`` returned ``None`` would be). When nothing is waiting it asks ``bus.recv(0)``, so
a closed bus raises as before. Any other bus, or a virtual bus with filters, is read with
``recv(0)`` frame by frame.
"""

from __future__ import annotations

import collections
import queue
from functools import partial
from typing import Callable, Iterable


def frame_reader(bus) -> Callable[[], Iterable]:
    """``frames() -> the frames waiting on bus`` (an iterable, in arrival order; never blocks)."""
    recv = partial(bus.recv, 0)
    try:
        from can.interfaces.virtual import VirtualBus
    except ImportError:  # pragma: no cover - python-can always has it
        VirtualBus = ()
    q = getattr(bus, "queue", None)
    if not (isinstance(bus, VirtualBus) and getattr(bus, "filters", None) is None and type(q) is queue.Queue
            and isinstance(getattr(q, "queue", None), collections.deque)):
        return lambda: iter(recv, None)
    mutex, waiting, not_full = q.mutex, q.queue, q.not_full

    def frames():
        with mutex:
            batch = list(waiting)
            waiting.clear()
            if batch:
                not_full.notify_all()  # a bounded queue's senders may go on
        if batch:
            return batch  # a frame arriving after this is read at the next call
        return iter(recv, None)  # nothing waiting: the bus's own recv (a closed bus raises)

    return frames
