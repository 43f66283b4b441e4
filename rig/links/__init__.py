"""DUT links: the board's own view over CAN (signal map) or Modbus RTU (register map).

- :class:`~rig.links.can_link.CanBmsLink` — python-can bus + cantools DBC + signal map YAML
- :class:`~rig.links.modbus_link.ModbusBmsLink` — pymodbus RTU on a tty + register map YAML

Both implement :class:`rig.protocols.BmsLink`; imports are lazy (pymodbus is only loaded
for a UART link).
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
