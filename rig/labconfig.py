"""The lab configuration file (``lab.yaml``): who the report is for and who stands behind it.

ISO/IEC 17025 7.8.2.1 asks a report for the customer, the date the item was received, the
method (a document with its identifier and revision) and the person(s) authorising it.
None of these is a property of the rig or the board, so they live in one small YAML file a
lab keeps beside its rig descriptions::

    customer: ACME Batteries GmbH, Stuttgart
    item_received: 2026-11-30            # date the item was received (ISO date)
    method: {id: LAB-BMS-TP-001, revision: C}
    preparer: {name: A. Tester, function: test engineer}
    approver: {name: B. Approver, function: head of laboratory}
    authorisation: Authorised for issue by the head of laboratory.
    item: {serial: NW16C-004411, fw_version: 3.1.0}   # the item record: identity as received

Path: ``--lab-config PATH`` (``bmsrig run`` and the pytest plugin), else ``$BMSRIG_LAB``;
none → every field is "not stated" in the report and the report is not authorised.
Read strictly (:mod:`rig.yamlio`): an unknown key, a missing ``name``, a date that is not a
date give a :class:`~rig.errors.ConfigError` naming the file, the key and the problem.
The loaded values go into the run record (``run_start`` context ``lab_config``), so the
report is rebuilt from the record alone.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, field_validator

from .errors import ConfigError
from .yamlio import load_yaml_mapping, validate

ENV_VAR = "BMSRIG_LAB"
NOT_STATED = "not stated"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _text(v):
    if v is None:
        return v
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"must be non-empty text, got {v!r}")
    return v.strip()


class Person(_Strict):
    """A named person and their function (e.g. "head of laboratory")."""

    name: str
    function: Optional[str] = None

    _t = field_validator("name", "function")(_text)


class MethodDoc(_Strict):
    """The test method as a controlled document: identifier and revision."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    id: str
    revision: str
    title: Optional[str] = None

    _t = field_validator("id", "revision", "title")(_text)


class ItemRecord(_Strict):
    """The lab's record of the item tested (its label, its receipt check): the identity a
    board that cannot report its own is known by (:func:`rig.identity.fill_identity`)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    serial: Optional[str] = None
    hw_revision: Optional[str] = None
    fw_version: Optional[str] = None

    _t = field_validator("serial", "hw_revision", "fw_version")(_text)


class LabConfig(_Strict):
    """The contents of ``lab.yaml`` (every key optional; unknown keys rejected)."""

    customer: Optional[str] = None
    item_received: Optional[_dt.date] = None
    method: Optional[MethodDoc] = None
    preparer: Optional[Person] = None
    approver: Optional[Person] = None
    authorisation: Optional[str] = None
    item: Optional[ItemRecord] = None

    _t = field_validator("customer", "authorisation")(_text)

    @field_validator("item_received", mode="before")
    @classmethod
    def _iso_date(cls, v):
        """A date as YAML writes it or as ``YYYY-MM-DD`` text; a number is not read as a Unix time."""
        if isinstance(v, (_dt.date, type(None))):
            return v
        if isinstance(v, str):
            try:
                return _dt.date.fromisoformat(v.strip())
            except ValueError:
                pass
        raise ValueError(f"must be a date (YYYY-MM-DD), got {v!r}")


def lab_config_path(option: str | None) -> Path | None:
    """The lab configuration file: the option's value, else ``$BMSRIG_LAB``, else none."""
    value = option or os.environ.get(ENV_VAR) or None
    return Path(value) if value else None


def load_lab_config(option: str | None) -> dict | None:
    """The lab configuration as plain JSON-able data for the run record (with ``source``),
    or None when no file is named. A named file that is missing or wrong: ConfigError."""
    path = lab_config_path(option)
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(path, "--lab-config" if option else ENV_VAR, "lab configuration file not found")
    cfg = validate(LabConfig, load_yaml_mapping(path, "lab configuration"), path)
    return {"source": str(path.resolve()), **cfg.model_dump(mode="json", exclude_none=True)}


def lab_facts(recorded: dict | None) -> dict:
    """What the report states from a recorded lab configuration: every field as text
    ("not stated" when absent) and ``authorised`` (an approver and an authorisation statement)."""
    rec = recorded or {}

    def person(key):
        p = rec.get(key)
        if not isinstance(p, dict) or not p.get("name"):
            return NOT_STATED
        return p["name"] + (f", {p['function']}" if p.get("function") else "")

    m = rec.get("method") if isinstance(rec.get("method"), dict) else None
    method = (f"{m.get('id')} rev. {m.get('revision')}" + (f" — {m['title']}" if m.get("title") else "")) if m else NOT_STATED
    facts = {
        "source": rec.get("source") or None,
        "customer": rec.get("customer") or NOT_STATED,
        "item_received": rec.get("item_received") or NOT_STATED,
        "method": method,
        "preparer": person("preparer"),
        "approver": person("approver"),
        "authorisation": rec.get("authorisation") or NOT_STATED,
    }
    facts["authorised"] = facts["approver"] != NOT_STATED and facts["authorisation"] != NOT_STATED
    return facts
