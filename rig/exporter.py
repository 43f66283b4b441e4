"""``bmsrig-exporter``: labgrid's exporter that knows the project's resources.

``python3 -m rig.exporter [labgrid-exporter options] RESOURCES.yaml`` (console script
``bmsrig-exporter``) imports :mod:`rig.labgrid` — the project's resource classes — and
registers an export for each with labgrid's exporter, then runs labgrid's exporter unchanged
(``-c/--coordinator``, ``-n/--name``, ``--hostname``, ``LG_COORDINATOR``).

An export builds the resource on the exporter host with the same converters as a rig file,
so a bad parameter marks that one resource broken with the reason (``labgrid-client
resources -v`` shows it) instead of ending the exporter. Parameters cross the coordinator as
labgrid carries them: mappings (``NiDaqDevice.digital_lines``) as JSON text, dates (an
unquoted ``calibration_due: 2027-03-31``) as ISO strings; the resource's converters read
them back on the client. labgrid's ``exports`` table is extended, not replaced.

Not done here: availability that checks the instrument (a resource is available while the
exporter runs), network services proxied through the exporter host, a CAN bridge.
"""

from __future__ import annotations

import logging

import attr
from labgrid.factory import target_factory
from labgrid.remote.exporter import ResourceExport, exports

from . import labgrid as _registered  # noqa: F401  (registers the project's resource classes)
from .resources import wire_value

NOT_EXPORTED = frozenset({"RunContext"})  # added by build_rig to a target, never written in a rig file


def project_resources() -> list[str]:
    """The project's resource classes registered with labgrid (by :mod:`rig.labgrid` and the
    driver modules it imports), sorted."""
    return sorted(n for n, c in target_factory.resources.items()
                  if c.__module__.split(".")[0] == "rig" and n not in NOT_EXPORTED)


@attr.s(eq=False)
class ProjectResourceExport(ResourceExport):
    """Export of one project resource: built locally (converters check it), parameters sent
    in the coordinator's types. A resource that cannot be built is broken, with the reason."""

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.problem = None
        try:
            cls = target_factory.resources[self.cls]
            self.local = cls(target=None, name=None, **self.local_params)
        except (TypeError, ValueError) as exc:
            self.local = None
            self.problem = f"{self.cls}: {exc}"
            logging.getLogger(f"ResourceExport({self.cls})").error("cannot export: %s", self.problem)

    def _get_params(self):
        if self.local is None:
            return {k: wire_value(v) for k, v in self.local_params.items()}
        return {k: wire_value(getattr(self.local, k, v)) for k, v in self.local_params.items()}

    def poll(self):
        if self.local is None:
            if not self.broken:
                self.broken = self.problem
            params = self._get_params()
            params["extra"] = {"proxy_required": self.proxy_required, "proxy": self.proxy, "broken": self.broken}
            dirty = self.params != params
            self.data["params"].update(params)
            return dirty
        return super().poll()


def register_exports() -> list[str]:
    """Register :class:`ProjectResourceExport` for every project resource class labgrid knows
    (a class registered with its own export is left alone). Returns the class names."""
    names = project_resources()
    for name in names:
        exports.setdefault(name, ProjectResourceExport)
    return names


def main():
    """Run labgrid's exporter with the project's resource exports registered."""
    from labgrid.remote import exporter

    register_exports()
    exporter.main()


if __name__ == "__main__":
    main()
