"""How the report writes numbers: as a lab writes them on a certificate.

- the expanded uncertainty U to two significant figures, and the value rounded to the same
  decimal place (GUM 7.2.6): ``3.6512 ± 0.0021`` -> value ``3.6512``, U ``0.0021``;
- without U, at most ``sig`` significant figures; never e-notation (``2.13163e-10`` mA is
  ``0.0000000002`` mA below the resolution shown, written ``0``);
- one-sided limits as ``≤ 10`` / ``≥ 3``, two-sided as ``3 … 10``;
- a missing value as ``not measured``, never ``None``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rig.summary import number

MISSING = "not measured"
_MAX_DECIMALS = 6  # below 1e-6 of the unit a value without U is written 0


def _fixed(x: float, decimals: int) -> str:
    """``x`` with ``decimals`` decimal places (negative: rounded to tens, hundreds ...), no
    e-notation, no negative zero."""
    if decimals >= 0:
        text = f"{x:.{decimals}f}"
    else:
        q = 10 ** (-decimals)
        text = str(int(round(x / q)) * q)
    if re.fullmatch(r"-0(\.0*)?", text):
        text = text[1:]
    return text


def decimals_for(x: float, sig: int) -> int:
    """Decimal places that show ``sig`` significant figures of ``x`` (x ≠ 0)."""
    return sig - 1 - math.floor(math.log10(abs(x)))


def fmt_plain(x: Any, sig: int = 4) -> str:
    """A number without U: ``sig`` significant figures, trailing zeros dropped, no
    e-notation; tiny values (< 1e-6) are ``0``; ``MISSING`` for None; ``nan``/``±inf`` as is."""
    f = number(x)
    if f is None:
        return MISSING if x is None else str(x)
    if not math.isfinite(f):
        return "nan" if f != f else ("+inf" if f > 0 else "-inf")
    if f == 0 or abs(f) < 10 ** -_MAX_DECIMALS:
        return "0"
    d = min(max(decimals_for(f, sig), 0), _MAX_DECIMALS)  # large values: whole units, never 1.2e+06
    text = _fixed(f, d)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fmt_u(u: Any) -> str:
    """U to two significant figures (``0.166667`` -> ``0.17``, ``1.11803`` -> ``1.1``)."""
    f = number(u)
    if f is None or not math.isfinite(f) or f <= 0:
        return "0"
    return _fixed(f, decimals_for(f, 2))


def fmt_value_u(value: Any, u: Any) -> tuple[str, str]:
    """(value text, U text): U to two significant figures, the value to the same decimal place.

    Without U (0 or missing) the value gets :func:`fmt_plain`."""
    v, uu = number(value), number(u)
    if v is None or not math.isfinite(v):
        return (MISSING if value is None else fmt_plain(value)), fmt_u(u)
    if uu is None or not math.isfinite(uu) or uu <= 0:
        return fmt_plain(v), "0"
    d = decimals_for(uu, 2)
    return _fixed(v, d), _fixed(uu, d)


def fmt_limits(limits: Any, sig: int = 6) -> str:
    """``3 … 10``, ``≤ 10``, ``≥ 3`` or ``—`` (no limit)."""
    lo, hi = (list(limits or []) + [None, None])[:2]
    lo, hi = number(lo), number(hi)
    lo = None if lo is None or lo == -math.inf else lo
    hi = None if hi is None or hi == math.inf else hi
    if lo is None and hi is None:
        return "—"
    if lo is None:
        return f"≤ {fmt_plain(hi, sig)}"
    if hi is None:
        return f"≥ {fmt_plain(lo, sig)}"
    if lo == hi:
        return f"= {fmt_plain(lo, sig)}"
    return f"{fmt_plain(lo, sig)} … {fmt_plain(hi, sig)}"


_UNITS = r"(?:s|ms|µs|min|h|V|mV|µV|A|mA|Ah|mAh|°C|K|%|Ω|mΩ|ppm|W|Hz)"
_NONE_UNIT = re.compile(r"\bNone\s*" + _UNITS + r"(?![\w°])")
_E_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?[eE][-+]?\d+\b")


def clean_text(text: Any) -> str:
    """A free-text message for the report: ``None <unit>`` (a value that was never measured)
    becomes ``not measured``; numbers in e-notation are written plainly."""
    s = "" if text is None else str(text)
    s = _NONE_UNIT.sub(MISSING, s)
    return _E_NUMBER.sub(lambda m: fmt_plain(float(m.group(0)), 6), s)

