"""The profile's ``setpoints_by_command`` against the link map's ``commands:``.

Refused (:class:`~rig.errors.ConfigError` naming the profile, the key and the problem):

- a declaration naming a command the map does not declare, or a ``value`` that command does
  not carry (CAN: a parameter or listed signal; Modbus: a parameter);
- a CAN signal whose DBC unit (V or mV) is not the declaration's unit;
- a ``when: start`` command the board reads as the declared command (same message / write,
  its constants) that sends a value other than the one the profile promises, beyond half a
  step of the encoding (DBC scale / register scale): the rig must configure the board to
  what the plans then judge.

A map that sends no such start command is accepted: the board keeps its factory default
(unless a plan sends the command on demand), and the plans judge it against the promise.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def check_setpoints(profile, commands: dict, map_path) -> None:
    """Check every ``setpoints_by_command`` declaration of ``profile`` against ``commands``
    (name -> compiled command plan of the link map at ``map_path``)."""
    from ..profile_setpoints import SETPOINT_UNITS, promised_value

    decl = getattr(profile, "setpoints_by_command", None) or {}
    mapname = Path(str(map_path)).name
    for key, d in decl.items():
        where = f"setpoints_by_command.{key}"
        c = commands.get(d.command)
        if c is None:
            raise ConfigError(profile.source, f"{where}.command",
                              f"the link map {mapname} declares no command {d.command!r} "
                              f"(declared: {', '.join(sorted(commands)) or 'none'})")
        names = c.value_names()
        if d.value not in names:
            raise ConfigError(profile.source, f"{where}.value",
                              f"command {d.command} of {mapname} carries no {d.value!r} "
                              f"(it has: {', '.join(names) or 'nothing'})")
        step, dbc_unit = c.resolution(d.value)
        unit = d.command_unit(key)
        if dbc_unit in ("V", "mV") and dbc_unit != unit:
            raise ConfigError(profile.source, f"{where}.unit",
                              f"signal {d.value} of command {d.command} is in {dbc_unit} (DBC), the declaration "
                              f"reads it in {unit}; state unit: {dbc_unit}")
        promised = promised_value(profile, key)
        want = d.to_command(key, promised)
        for s in commands.values():
            if s.when != "start":
                continue
            got = c.reads(s)
            if got is None or got.get(d.value) is None:
                continue
            sent = float(got[d.value])
            if abs(sent - want) > step / 2 + 1e-9 * max(1.0, abs(want)):
                raise ConfigError(profile.source, where,
                                  f"the link map {mapname} configures the board at start with command {s.name}, "
                                  f"which sends {d.value} = {sent:g} {unit} (the board's {key} = "
                                  f"{d.to_profile(key, sent):g} {SETPOINT_UNITS[key]}), but the profile promises "
                                  f"{promised:g} {SETPOINT_UNITS[key]} (encoding step {step:g} {unit}); the rig "
                                  f"must configure the board to the value the plans judge")
