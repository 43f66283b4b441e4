"""No conformity without identity: is the item tested identified by what it reported?

A statement of conformity is about one item (ISO/IEC 17025 7.8.2.1 e: "unambiguous
identification of the item tested"). A board whose serial number or firmware version was
not read, or reads as a placeholder (``""``, ``"0.0.0"``, ``"unknown"``, all zeros), is
not identified: its run gets no statement of conformity, a deviation, the verdict
``UNIDENTIFIED`` and exit code :data:`EXIT_UNIDENTIFIED` (4), whatever its results.
"""

from __future__ import annotations

import re
from pathlib import Path

#: exit code of a run whose board was judged but not identified
EXIT_UNIDENTIFIED = 4
#: the run's verdict then
UNIDENTIFIED = "UNIDENTIFIED"

_PLACEHOLDERS = {"", "unknown", "not read", "none", "null", "n/a", "na", "-", "?"}


def is_placeholder(text: object) -> bool:
    """True for a missing or placeholder identity string: empty, ``unknown``, ``0.0.0``,
    all zeros, NULs or ``F``/``0xFFFF`` fill (erased flash)."""
    if text is None:
        return True
    s = str(text).replace("\x00", "").strip()
    if s.lower() in _PLACEHOLDERS:
        return True
    core = re.sub(r"[\s.\-_:/]", "", s).lower()
    return core == "" or set(core) <= {"0"} or set(core) <= {"f"} or set(core) <= {"?"}


def identity_problems(dut: dict | None) -> list[str]:
    """Why the DUT identity in a record (a ``dut_identity`` event, or None) does not identify
    the item; an empty list means identified (serial and firmware version read and real)."""
    if not dut:
        return ["the DUT identity was not read"]
    out = []
    for key, what in (("serial", "serial number"), ("fw_version", "firmware version")):
        value = dut.get(key)
        if is_placeholder(value):
            shown = "not read" if value in (None, "") else repr(str(value))
            out.append(f"{what} {shown}")
    return out


ITEM_RECORD = "lab item record"
"""``identity_source`` of a field taken from the lab configuration's ``item`` (not the board)."""


def fill_identity(reported: dict, lab_config: dict | None) -> dict:
    """The DUT identity to record: the board's own fields, and for each one the board left
    blank or as a placeholder (its link map has no identity, or the board sends none), the
    lab's item record (``item:`` of the lab configuration, :mod:`rig.labconfig`) when it
    states it. ``identity_source`` says where each field came from (``board`` or
    :data:`ITEM_RECORD`); a field in neither stays blank, and the gate below still applies."""
    item = (lab_config or {}).get("item") or {}
    out = dict(reported)
    source = {}
    for key in ("serial", "hw_revision", "fw_version"):
        if is_placeholder(out.get(key)) and not is_placeholder(item.get(key)):
            out[key], source[key] = item[key], ITEM_RECORD
        else:
            source[key] = "board"
    out["identity_source"] = source
    return out


def gate_exit_code(code: int, dut: dict | None) -> int:
    """The run's exit code after the identity gate: a judged run (0 or 1) of an unidentified
    board becomes :data:`EXIT_UNIDENTIFIED`; usage errors (2) and rig faults (3) stand."""
    if code in (0, 1) and identity_problems(dut):
        return EXIT_UNIDENTIFIED
    return code


def gate_run(run_dir: Path | str, code: int) -> int:
    """:func:`gate_exit_code` with the identity recorded in ``run_dir``'s record (a record
    that cannot be read leaves the code as it is: the report build will say why)."""
    from .record import load_summary

    try:
        dut = load_summary(run_dir).dut
    except Exception:  # noqa: BLE001 - the report step reports an unreadable record
        return code
    return gate_exit_code(code, dut)
