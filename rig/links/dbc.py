"""Loading a DBC (CAN database) the way a qualification rig must: nothing silently wrong.

- Text: UTF-8 first (a UTF-8 file is never read as cp1252 mojibake), then cp1252 (the Vector
  tools' encoding), then latin-1.
- A frame id (or message name) defined twice is a :class:`~rig.errors.ConfigError`: cantools
  would keep the last definition and decode the board's frames with the wrong layout.
- Overlapping signals, which real vendor DBCs contain (e.g. a raw byte and its bit fields),
  load non-strictly with a :class:`DbcWarning`; every other strict error stays an error.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError


class DbcWarning(UserWarning):
    """A DBC was accepted with a reservation (e.g. overlapping signals, loaded non-strictly)."""


def _read_dbc_text(p: Path) -> str:
    """The DBC as text: UTF-8 when it decodes as UTF-8 (so a UTF-8 file is never read as
    cp1252 mojibake), else cp1252 (the Vector tools' encoding), else latin-1."""
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(p, None, f"cannot read DBC: {exc.strerror or exc}") from None
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any byte string")  # pragma: no cover


def _check_frames(db, p: Path) -> None:
    """One frame id, one message: a DBC defining an id twice would silently keep the last."""
    by_id: dict[tuple[int, bool], list[str]] = {}
    by_name: dict[str, int] = {}
    for m in db.messages:
        by_id.setdefault((m.frame_id, bool(m.is_extended_frame)), []).append(m.name)
        by_name[m.name] = by_name.get(m.name, 0) + 1
    for (fid, ext), names in by_id.items():
        if len(names) > 1:
            raise ConfigError(p, f"BO_ {fid}" + (" (extended)" if ext else ""),
                              f"frame id 0x{fid:X} is defined {len(names)} times ({', '.join(names)}); "
                              "a frame id must name exactly one message")
    for name, count in by_name.items():
        if count > 1:
            raise ConfigError(p, f"BO_ {name}", f"message name {name!r} is defined {count} times")


class _DropOverwrite(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Overwriting message")


@contextmanager
def _quiet_overwrites():
    """cantools logs "Overwriting message ..." for a duplicate frame id and keeps the last;
    :func:`_check_frames` turns that into an error instead, so the log line is dropped."""
    log = logging.getLogger("cantools.database.can.database")
    flt = _DropOverwrite()
    log.addFilter(flt)
    try:
        yield
    finally:
        log.removeFilter(flt)


def _check_signals_fit(db, p: Path) -> None:
    """Each signal on its own must fit in its message (cantools' strict check minus overlap)."""
    for m in db.messages:
        for sig in m.signals:
            try:
                # cantools' own per-signal check on an empty frame: only "does not fit" can fire
                m._check_signal([None] * (8 * m.length), sig)
            except AttributeError:  # pragma: no cover - cantools without the private helper
                return
            except Exception as exc:
                raise ConfigError(p, f"BO_ {m.frame_id} {m.name}", f"not a valid DBC: {exc}") from None


def load_dbc(dbc_path: str | Path):
    """Load a DBC with cantools; a malformed or missing DBC is a ConfigError naming it.

    Read as UTF-8 first (cp1252 if it is not UTF-8). A frame id defined twice is an error.
    Overlapping signals, which real vendor DBCs do contain, load non-strictly with a
    :class:`DbcWarning` (also kept in the database's ``bmsrig_warnings`` list); every other
    strict-mode error stays an error.
    """
    import warnings

    import cantools

    p = Path(dbc_path)
    if not p.is_file():
        raise ConfigError(p, None, "DBC file not found")
    text = _read_dbc_text(p)
    notes: list[str] = []
    try:
        with _quiet_overwrites():
            db = cantools.database.load_string(text, database_format="dbc", strict=True)
    except Exception as exc:  # cantools raises ParseError, UnsupportedDatabaseFormatError, ValueError...
        first = " ".join(x.strip() for x in str(exc).strip().splitlines() if x.strip())
        if " are overlapping in message " not in first:
            where = re.search(r"in message (\w+)", first)
            raise ConfigError(p, f"BO_ {where.group(1)}" if where else None,
                              f"not a valid DBC: {first or type(exc).__name__}") from None
        try:
            with _quiet_overwrites():
                db = cantools.database.load_string(text, database_format="dbc", strict=False)
        except Exception as exc2:
            text2 = " ".join(x.strip() for x in str(exc2).strip().splitlines() if x.strip())
            raise ConfigError(p, None, f"not a valid DBC: {text2 or type(exc2).__name__}") from None
        notes.append(f"{p}: {first} Loaded without cantools' strict checks; decoded values of "
                     "the overlapping signals share bits.")
        _check_signals_fit(db, p)  # no other strict error may hide behind the overlap
    _check_frames(db, p)
    db.bmsrig_warnings = notes
    for note in notes:
        warnings.warn(note, DbcWarning, stacklevel=2)
    return db
