"""DUT links: the board's own view, over whatever link kind its profile names.

The kinds are found by name in :mod:`rig.links.registry` (built-in table + entry points
``bmsrig.links``); each built-in kind is one module under :mod:`rig.links.kinds`:

- ``can`` — :class:`~rig.links.can_link.CanBmsLink`: python-can bus + cantools DBC + signal map YAML
- ``modbus`` — :class:`~rig.links.modbus_link.ModbusBmsLink`: pymodbus RTU on a tty + register map YAML

Every link implements :class:`rig.protocols.BmsLink`; imports are lazy (pymodbus is only
loaded for a UART link). See docs/links.md to add a kind.
"""

from __future__ import annotations

__all__ = ["CanBmsLink", "ModbusBmsLink", "LinkSample", "compile_signal_map", "compile_register_map"]


def __getattr__(name: str):
    if name == "CanBmsLink":
        from .can_link import CanBmsLink

        return CanBmsLink
    if name == "ModbusBmsLink":
        from .modbus_link import ModbusBmsLink

        return ModbusBmsLink
    if name == "LinkSample":
        from .base import LinkSample

        return LinkSample
    if name == "compile_signal_map":
        from .signal_map import compile_signal_map

        return compile_signal_map
    if name == "compile_register_map":
        from .register_map import compile_register_map

        return compile_register_map
    raise AttributeError(f"module 'rig.links' has no attribute {name!r}")
