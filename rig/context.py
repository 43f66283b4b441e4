"""What a run hands to the rig's drivers when it builds a rig from a labgrid environment.

The environment file says where the instruments are; the run says which board is tested
(profile), with which seed and injected defects (bench only). Drivers read this from
``target.bmsrig`` when they activate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .clock import Clock
from .profile import BoardProfile


@dataclass
class RigContext:
    profile: BoardProfile
    seed: int = 1
    defects: list[str] = field(default_factory=list)
    board_model: str | None = None
    clock: Clock | None = None
    #: the rig's safe state (set by build_rig): what a limit trip while running calls
    safe_state: Callable[[], None] | None = None


def context_of(target) -> RigContext:
    ctx = getattr(target, "bmsrig", None)
    if ctx is None:
        raise RuntimeError(
            f"target {target.name!r} was not built by rig.build.build_rig (no run context attached)"
        )
    return ctx
