"""``python3 -m rig.lgclient`` (labgrid-client with the project's resource classes).

labgrid's ``labgrid-client`` builds a target from a place's resources by class name; a
place holding ``CANPort``, ``ScpiInstrument`` ... needs those classes registered, which
importing :mod:`rig.labgrid` does. Either give labgrid-client a rig file with ``imports:
[rig.labgrid]`` (``-c rig.yaml`` / ``LG_ENV``), or run this module: the same command line
as ``labgrid-client``, with the classes known.
"""

from __future__ import annotations


def main():
    from labgrid.remote.client import main as labgrid_client_main

    from . import labgrid as _registered  # noqa: F401  (registers the project's resource classes)

    labgrid_client_main()


if __name__ == "__main__":
    main()
