"""Per-cell parts of a CAN signal map: cell series, per-cell bits, and boards of several strings.

Used by :func:`rig.links.signal_map.compile_signal_map`:

- :func:`series_names`: (signal name, page or None) per cell of a ``template`` / ``signals``
  / ``pages`` section; :func:`cell_bits`: a balancing / validity section as a bit mask or
  per-cell signals.
- :func:`fold_messages`: ``message: M`` on an entry qualifies its signal names (``M.Signal``),
  for DBCs whose messages reuse signal names.
- **strings** (:class:`StringPlan`, :func:`strings_of`, :func:`for_string`): a board of
  several series strings, each with its own messages whose signals carry the same names
  (``String1_Cells: Cell_1..Cell_4``, ``String2_Cells: Cell_1..Cell_4``). The per-cell
  sections are written once with ``{Key}`` placeholders and compiled once per string with
  that string's message names; cells are numbered flat across the board (string 1 cells
  1..N1, string 2 cells N1+1..). A flag naming a placeholder is the OR over the strings::

      strings:
        - {name: String1, cells: 8, messages: {Cells: String1_Cells, Status: String1_Status}}
        - {name: String2, cells: 8, messages: {Cells: String2_Cells, Status: String2_Status}}
      cells:
        voltage: {pages: {message: "{Cells}", index: CellMux, signals: [Cell_1, Cell_2, Cell_3, Cell_4]}}
        balancing: {message: "{Status}", mask: BalanceBits}
      flags: {hvc: "{Status}.OV"}

Every error is a :class:`~rig.errors.ConfigError` naming the map file, the key and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .base import expand_template
from . import signal_map_ext as ext
from .signal_map_schema import FlagRef, SignalMap

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_AS_MESSAGE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}\.|^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
#: sections compiled once per string (their ``{Key}`` placeholders name the string's messages)
PER_STRING = ("cells", "temperatures", "flags")


# --------------------------------------------------------------------------- series and bits


def series_names(series, n_cells: int, key: str, path: Path, exact: bool, res, pages: dict) -> list[tuple[str, object]]:
    """(signal name, page or None) per cell; ``pages`` collects each paged message's index."""
    if getattr(series, "pages", None) is not None:
        return ext.page_cells(series.pages, n_cells, key + ".pages", res, pages)
    if series.template is not None:
        names = expand_template(series.template, n_cells, series.first, path, key + ".template")
        missing = [x for x in names if x not in res.by_name and "." not in x]
        if missing:
            have = [x for x in names if x in res.by_name]
            raise ConfigError(path, key + ".template",
                              f"the profile has {n_cells} cells but DBC {res.dbc_path.name} has no signal "
                              f"{missing[0]!r}" + (f" (it has {len(have)} of the {n_cells}: "
                                                   f"{have[0]}..{have[-1]})" if have else ""))
        return [(x, None) for x in names]
    names = list(series.signals)
    if exact and len(names) != n_cells:
        raise ConfigError(path, key + ".signals",
                          f"lists {len(names)} signals but the profile has {n_cells} cells")
    return [(x, None) for x in names]


def cell_bits(spec, n_cells: int, key: str, res, pages: dict):
    """(mask [(slot, width)], bit offset, per-cell slots) for a balancing/validity section."""
    P = res.map_path
    if spec.mask is not None:
        masks = [spec.mask] if isinstance(spec.mask, str) else list(spec.mask)
        out, width = [], 0
        for nm in masks:
            slot, _m, sig = res.slot(nm, key + ".mask")
            out.append((slot, sig.length))
            width += sig.length
        if spec.bit_offset + n_cells > width:
            raise ConfigError(P, key + ".mask",
                              f"the mask has {width} bits (from bit {spec.bit_offset}) but the profile has {n_cells} cells")
        return out, spec.bit_offset, None
    names = series_names(spec, n_cells, key, P, True, res, pages)
    return None, 0, [res.slot(nm, key, page)[0] for nm, page in names]


def bit_refs(mask, offset: int, bits, n: int) -> list[tuple[int, int | None]]:
    """Per cell (slot, bit) of a compiled :func:`cell_bits` section; bit None = the whole
    signal is the cell's bit (a per-cell signal, 1 = set)."""
    if bits is not None:
        return [(s, None) for s in bits]
    out = []
    for i in range(n):
        b = offset + i
        for slot, width in mask:
            if b < width:
                out.append((slot, b))
                break
            b -= width
    return out


# --------------------------------------------------------------------------- message qualification


def _qualify(d: dict) -> dict:
    """A dumped entry with ``message`` folded into its signal names (``M.Signal``)."""
    m = d.get("message")
    if not m or "index" in d:  # a pages: section names its message itself
        return d
    q = (lambda x: x if "." in x else f"{m}.{x}")
    d = dict(d, message=None)
    for k in ("signal", "template", "mask"):
        if isinstance(d.get(k), str):
            d[k] = q(d[k])
    for k in ("signals", "mask"):
        if isinstance(d.get(k), list):
            d[k] = [q(x) for x in d[k]]
    if isinstance(d.get("any"), list):
        d["any"] = [_qualify(dict(t, message=t.get("message") or m)) for t in d["any"]]
    return d


def _walk(obj, fn):
    if isinstance(obj, dict):
        return fn({k: _walk(v, fn) for k, v in obj.items()})
    if isinstance(obj, list):
        return [_walk(v, fn) for v in obj]
    return obj


def fold_messages(smap: SignalMap) -> SignalMap:
    """``smap`` with every ``message:`` of a signal entry folded into its names."""
    d = smap.model_dump()
    for k in ("cells", "temperatures", "flags", "fets", "pack"):
        d[k] = _walk(d[k], _qualify)
    return SignalMap.model_validate(d)


# --------------------------------------------------------------------------- strings


@dataclass
class StringPlan:
    """One string of cells: ``first`` = cells before it (0-based offset), ``cells`` = its count."""

    name: str | None
    first: int
    cells: int
    messages: dict[str, str] = field(default_factory=dict)
    numbering: str = "string"
    index: int = 0


def strings_of(smap: SignalMap, n_cells: int, res) -> list[StringPlan]:
    """The board's strings (one string of every cell when the map lists none); ConfigError
    when their cells do not add up to the profile's, a name repeats or a message is unknown."""
    P = res.map_path
    if not smap.strings:
        return [StringPlan(None, 0, n_cells)]
    total = sum(s.cells for s in smap.strings)
    if total != n_cells:
        raise ConfigError(P, "strings", f"the strings hold {total} cells "
                          f"({' + '.join(str(s.cells) for s in smap.strings)}) but the profile has {n_cells}")
    out, first, names = [], 0, set()
    for j, s in enumerate(smap.strings):
        if s.name in names:
            raise ConfigError(P, f"strings[{j}].name", f"string {s.name!r} is listed twice")
        names.add(s.name)
        for k, m in s.messages.items():
            ext.message_named(res, m, f"strings[{j}].messages.{k}")
        out.append(StringPlan(s.name, first, s.cells, dict(s.messages), s.numbering, j))
        first += s.cells
    return out


def placeholders(model, as_message: bool = False) -> set[str]:
    """The ``{Key}`` placeholders a section uses (``{i}``, a template's cell number, excluded);
    ``as_message``: only those standing where a message name goes (``{Key}.Signal``, ``{Key}``)."""
    found: set[str] = set()

    def look(x):
        if isinstance(x, list):
            for v in x:
                look(v)
        elif isinstance(x, str):
            if as_message:
                found.update(a or b for a, b in _AS_MESSAGE.findall(x))
            else:
                found.update(k for k in _PLACEHOLDER.findall(x) if k != "i")
        return x
    _walk(model.model_dump() if hasattr(model, "model_dump") else model, lambda d: {k: look(v) for k, v in d.items()})
    return found


def for_string(model, st: StringPlan, key: str, P: Path):
    """``model`` (a section) for string ``st``: placeholders replaced by its message names,
    cell numbering shifted when the string's frames number cells as the board does."""
    if st.name is None:
        return model
    unknown = sorted(placeholders(model) - set(st.messages))
    if unknown:
        raise ConfigError(P, f"strings[{st.index}].messages", f"{key} uses {{{unknown[0]}}} but string "
                          f"{st.name} names no message {unknown[0]!r} (it names: {', '.join(st.messages) or 'none'})")

    def one(v):
        if isinstance(v, list):
            return [one(x) for x in v]
        return _PLACEHOLDER.sub(lambda m: st.messages.get(m.group(1), m.group(0)), v) if isinstance(v, str) else v

    def sub(d: dict) -> dict:
        return {k: one(v) for k, v in d.items()}
    d = _walk(model.model_dump(), sub)
    if st.numbering == "board" and st.first:
        if d.get("template") is not None:
            d["first"] = d.get("first", 1) + st.first
        if d.get("mask") is not None:
            d["bit_offset"] = d.get("bit_offset", 0) + st.first
        if d.get("pages") is not None:
            per = len(d["pages"]["signals"])
            if st.first % per:
                raise ConfigError(P, key + ".pages", f"string {st.name} starts at cell {st.first + 1}, inside a "
                                  f"page of {per} cells: numbering: board needs strings that start on a page")
            d["pages"]["first"] = d["pages"].get("first", 0) + st.first // per
    return type(model).model_validate(d)


def per_string(model, strings: list[StringPlan], key: str, P: Path, every: bool = True):
    """[(string, the section for it)]: once per string when it uses placeholders (or
    ``every``: a per-cell section), else once for the whole board (string None)."""
    if strings[0].name is None and placeholders(model, as_message=True):
        used = sorted(placeholders(model, as_message=True))
        raise ConfigError(P, key, f"uses {{{used[0]}}}, a string's message, but the map lists no 'strings:'")
    if strings[0].name is None or (not every and not placeholders(model)):
        return [(StringPlan(None, 0, sum(s.cells for s in strings)), model)]
    return [(st, for_string(model, st, key, P)) for st in strings]


def in_string(st: StringPlan, fn, *args):
    """``fn(*args)``; a ConfigError from it says which string it is about."""
    try:
        return fn(*args)
    except ConfigError as exc:
        if st.name is None:
            raise
        raise ConfigError(exc.file, exc.key, f"string {st.name} (strings[{st.index}]): {exc.problem}") from None


def expand_flag(ref, strings: list[StringPlan], key: str, P: Path):
    """A flag whose terms name a placeholder: the OR of its terms over every string."""
    if ref is not None and strings[0].name is None:
        per_string(ref, strings, key, P)  # a placeholder without strings: the error
    if ref is None or strings[0].name is None or not placeholders(ref):
        return ref
    terms = []
    for st in strings:
        r = for_string(ref, st, key, P)
        if r.any is not None:
            terms.extend(t.model_dump() for t in r.any)
        else:
            terms.append({k: v for k, v in r.model_dump().items() if k in ("signal", "message", "bit", "mask", "values")})
    d = ref.model_dump()
    d.update(signal=None, bit=None, mask=None, values=None, any=terms)
    return type(ref).model_validate(d)
