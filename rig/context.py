"""What a run hands to the rig's drivers when it builds a rig from a labgrid environment.

The environment file says where the instruments are; the run says which board is tested
(profile), with which seed and injected defects (bench only). :func:`rig.build.build_rig`
passes this to the drivers explicitly, as a labgrid resource of the target:
:class:`RunContext` (registered with labgrid's factory by :mod:`rig.labgrid`), added to
the target's resources before any driver is created. A driver finds it with
:func:`context_of` (``target.get_resource(RunContext)``) whenever it needs it, so the order
in which drivers are listed or activated does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import attr
from labgrid.resource.common import Resource

from .clock import Clock
from .profile import BoardProfile


@dataclass
class RigContext:
    profile: BoardProfile
    seed: int = 1
    defects: list[str] = field(default_factory=list)
    board_model: str | None = None
    #: the rig clock: a WallClock on hardware (set before any driver activates), the
    #: bench's VirtualClock once SimBenchDriver is active (build_rig activates it first)
    clock: Clock | None = None
    #: the rig's safe state (set by build_rig): what a limit trip while running calls
    safe_state: Callable[[], None] | None = None


def _is_rig_context(_inst, _attribute, value) -> None:
    if not isinstance(value, RigContext):
        raise ValueError("RunContext is supplied by bmsrig when it builds the rig (rig.build.build_rig); "
                         "it is not listed in a rig description")


@attr.s(eq=False)
class RunContext(Resource):
    """The run's context (:class:`RigContext`) as a resource of the labgrid target."""

    context = attr.ib(default=None, validator=_is_rig_context)


def find_context(target) -> RigContext | None:
    """The run context of ``target``; None when the target has none (built outside a run)."""
    for res in getattr(target, "resources", ()):
        if isinstance(res, RunContext):
            return res.context
    return None


def context_of(target) -> RigContext:
    """The run context of ``target`` (``target.get_resource(RunContext)``); RuntimeError if none."""
    from labgrid.exceptions import NoResourceFoundError

    try:
        return target.get_resource(RunContext).context
    except NoResourceFoundError:
        raise RuntimeError(
            f"target {target.name!r} was not built by rig.build.build_rig (no RunContext resource)"
        ) from None


def attach_context(target, ctx: RigContext) -> RunContext:
    """Add ``ctx`` to an already built ``target`` (tests, tools that build a target themselves)."""
    return RunContext(target, None, context=ctx)


def with_context(target_config: dict, ctx: RigContext) -> None:
    """Put a :class:`RunContext` entry first in a target's ``resources`` (mapping or list form),
    so labgrid creates it before any driver of the target."""
    resources = target_config.get("resources") or {}
    entry = {"context": ctx}
    if isinstance(resources, dict):
        target_config["resources"] = {"RunContext": entry, **{k: v for k, v in resources.items() if k != "RunContext"}}
    else:
        target_config["resources"] = [{"RunContext": entry}, *resources]
