"""The ``drivers`` section of a rig file's target ``main``: the order labgrid builds them in,
and the YAML key of a driver whose limits were refused (shared by ``rig.check`` and
``rig.build``)."""

from __future__ import annotations

from .safety import LimitConfigError

__all__ = ["driver_key", "order_drivers"]


def driver_key(exc: LimitConfigError) -> str:
    """``targets.main.drivers.<Driver>.<key>`` for a limit refused while a driver was built."""
    from labgrid.driver.common import Driver

    tb, name = exc.__traceback__, None
    while tb is not None:
        obj = tb.tb_frame.f_locals.get("self")
        if isinstance(obj, Driver):
            name = type(obj).__name__
        tb = tb.tb_next
    return f"targets.main.drivers.{name}.{exc.key}" if name else f"targets.main.drivers.{exc.key}"


def order_drivers(main) -> None:
    """Order the drivers of target ``main`` so that every driver comes after the drivers it
    binds to (labgrid binds in file order): a key-sorted rig file builds the same rig."""
    from labgrid.factory import target_factory

    if not isinstance(main, dict) or not main.get("drivers"):
        return
    drivers = main["drivers"]
    items = list(drivers.items()) if isinstance(drivers, dict) else list(drivers)

    def cls_of(item):
        if isinstance(drivers, dict):
            return item[0]
        return next(iter(item)) if isinstance(item, dict) and len(item) == 1 else None

    present = {cls_of(i) for i in items}

    def needs(item):
        cls = target_factory.drivers.get(cls_of(item))
        out = set()
        for want in getattr(cls, "bindings", {}).values():
            for name in ([want] if isinstance(want, str) else list(want)):
                if name in present and name != cls_of(item):
                    out.add(name)
        return out

    ordered, placed, rest = [], set(), items
    while rest:
        ready = [i for i in rest if needs(i) <= placed]
        if not ready:  # a cycle: leave the rest as written (labgrid reports it)
            ready = rest
        for i in ready:
            ordered.append(i)
            placed.add(cls_of(i))
        rest = [i for i in rest if all(i is not r for r in ready)]
    if isinstance(drivers, dict):
        main["drivers"] = dict(ordered)
    else:
        main["drivers"] = ordered
