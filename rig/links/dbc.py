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


def _bo_lines(text: str) -> dict[tuple[int, bool], list[tuple[int, str]]]:
    """(frame id, extended) -> [(line number, message name)] of every ``BO_`` definition."""
    out: dict[tuple[int, bool], list[tuple[int, str]]] = {}
    for no, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*BO_\s+(\d+)\s+(\w+)\s*:", line)
        if m:
            raw = int(m.group(1))
            out.setdefault((raw & 0x1FFFFFFF, bool(raw & 0x80000000)), []).append((no, m.group(2)))
    return out


def _check_frames(db, p: Path, text: str = "") -> None:
    """One frame id, one message: a DBC defining an id twice would silently keep the last.
    The error names every definition (line and message name)."""
    lines = _bo_lines(text)
    by_id: dict[tuple[int, bool], list[str]] = {}
    by_name: dict[str, int] = {}
    for m in db.messages:
        if m.length > 64:
            raise ConfigError(p, f"BO_ {m.name}", f"length {m.length} bytes: a CAN frame carries at most 64 (CAN FD)")
        by_id.setdefault((m.frame_id, bool(m.is_extended_frame)), []).append(m.name)
        by_name[m.name] = by_name.get(m.name, 0) + 1
    for (fid, ext), where in lines.items():
        if len(where) > 1 or len(by_id.get((fid, ext), ())) > 1:
            defs = (", ".join(name for _no, name in where) + " at lines " + ", ".join(str(no) for no, _n in where)
                    if where else ", ".join(by_id[(fid, ext)]))
            raise ConfigError(p, f"BO_ {fid}" + (" (extended)" if ext else ""),
                              f"frame id 0x{fid:X} is defined {max(len(where), len(by_id.get((fid, ext), ())))} "
                              f"times ({defs}); a frame id must name exactly one message")
    for (fid, ext), names in by_id.items():
        if len(names) > 1:
            raise ConfigError(p, f"BO_ {fid}" + (" (extended)" if ext else ""),
                              f"frame id 0x{fid:X} is defined {len(names)} times ({', '.join(names)}); "
                              "a frame id must name exactly one message")
    for name, count in by_name.items():
        if count > 1:
            at = [f"line {no}" for ws in lines.values() for no, nm in ws if nm == name]
            raise ConfigError(p, f"BO_ {name}", f"message name {name!r} is defined {count} times"
                              + (f" ({', '.join(at)})" if at else ""))


#: CANdb++ exports the signals no frame carries as this pseudo-message (id 0xC0000000); cantools drops it
_INDEPENDENT = "VECTOR__INDEPENDENT_SIG_MSG"


def _unsent_signals(text: str) -> frozenset:
    """Names of the signals a DBC lists only in :data:`_INDEPENDENT` (sent in no frame)."""
    block = re.search(r"^\s*BO_\s+\d+\s+" + _INDEPENDENT + r"\s*:.*?(?=^\s*(?:BO_|CM_|BA_|VAL_|SIG_)|\Z)",
                      text, re.M | re.S)
    return frozenset(re.findall(r"^\s*SG_\s+(\w+)", block.group(0), re.M)) if block else frozenset()


def unsent_note(db, name: str) -> str:
    """Why ``name`` is in no message: "" or a sentence saying the DBC sends it in no frame."""
    if name in getattr(db, "bmsrig_unsent", ()):
        return (f"; the DBC lists {name!r} only in {_INDEPENDENT}, the CANdb++ list of signals sent in "
                "no frame: the board does not transmit it")
    return ""


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


def signal_bits(sig) -> frozenset:
    """The frame bit positions (Intel numbering, byte * 8 + bit) a signal occupies."""
    if sig.byte_order == "little_endian":
        return frozenset(range(sig.start, sig.start + sig.length))
    bits, b = [], sig.start
    for _ in range(sig.length):  # Motorola: MSB first, sawtooth numbering
        bits.append(b)
        b = b + 15 if b % 8 == 0 else b - 1
    return frozenset(bits)


def _coexist(a, b) -> bool:
    """Can signals ``a`` and ``b`` be in one frame (not on two different multiplexer values)?"""
    if a.multiplexer_ids and b.multiplexer_ids and a.multiplexer_signal == b.multiplexer_signal:
        return bool(set(a.multiplexer_ids) & set(b.multiplexer_ids))
    return True


def overlapping_signals(message) -> list[tuple[str, str]]:
    """Pairs of signals of ``message`` that share frame bits and can be sent together."""
    sigs = [(s, signal_bits(s)) for s in message.signals]
    out = []
    for i, (a, ba) in enumerate(sigs):
        for b, bb in sigs[i + 1:]:
            if ba & bb and _coexist(a, b):
                out.append((a.name, b.name))
    return out


class SplitMessage:
    """A message whose signals overlap (a raw byte and its bit fields), which cantools cannot
    pack or unpack as one: decoded and encoded as several non-overlapping views of the same
    frame. Same ``decode``/``encode`` calls as a cantools ``Message``."""

    def __init__(self, message):
        from cantools.database.can import Message

        self.message = message
        self.frame_id = message.frame_id
        self.name = message.name
        self.length = message.length
        self.is_extended_frame = message.is_extended_frame
        self.signals = message.signals
        muxes = [s for s in message.signals if s.is_multiplexer]
        groups: list[list] = []
        for s in message.signals:
            if s.is_multiplexer:
                continue
            bits = signal_bits(s)
            for g in groups:
                if not any(bits & signal_bits(o) and _coexist(s, o) for o in g):
                    g.append(s)
                    break
            else:
                groups.append([s])
        self.views = [Message(frame_id=message.frame_id, name=message.name, length=message.length,
                              signals=muxes + g, is_extended_frame=message.is_extended_frame, strict=False)
                      for g in groups or [[]]]
        self._names = [{s.name for s in v.signals} for v in self.views]

    def decode(self, data, decode_choices: bool = True, scaling: bool = True, **kw) -> dict:
        out: dict = {}
        for v in self.views:
            out.update(v.decode(data, decode_choices=decode_choices, scaling=scaling, **kw))
        return out

    def encode(self, data: dict, scaling: bool = True, padding: bool = False, strict: bool = True) -> bytes:
        acc = 0
        for v, names in zip(self.views, self._names):
            part = v.encode({k: x for k, x in data.items() if k in names}, scaling=scaling, padding=padding,
                            strict=strict)
            acc |= int.from_bytes(part, "big")
        return acc.to_bytes(self.length, "big")


def codec(db, message):
    """What decodes/encodes ``message``: the message itself, or a :class:`SplitMessage`
    when the DBC loaded with overlapping signals in it."""
    split = getattr(db, "bmsrig_split", {})
    return split.get(message.frame_id, message)


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
    split: dict = {}
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
        _check_signals_fit(db, p)  # no other strict error may hide behind the overlap
        pairs = [(m, a, b) for m in db.messages for a, b in overlapping_signals(m)]
        split = {m.frame_id: SplitMessage(m) for m in {id(m): m for m, _a, _b in pairs}.values()}
        named = "; ".join(f"{a} and {b} are overlapping in message {m.name}" for m, a, b in pairs)
        notes.append(f"{p}: {named}. Loaded without cantools' strict checks; the "
                     "overlapping signals share bits (each decoded on its own).")
    _check_frames(db, p, text)
    db.bmsrig_unsent = _unsent_signals(text)
    db.bmsrig_warnings = notes
    db.bmsrig_split = split if notes else {}
    for note in notes:
        warnings.warn(note, DbcWarning, stacklevel=2)
    return db
