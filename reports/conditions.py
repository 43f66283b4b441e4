"""§5 of the report: the test conditions (what the rig was told to hold: ambient, chamber set
points, pack current, ramps, set voltages) kept apart from the values each test observed
alongside its results (worst cell, final delta, duty, ...), which are results, not conditions.

A measurement's ``conditions`` dict mixes both; :data:`CONDITION_KEYS` names the declared
ones (unit from the key's suffix). Everything else is listed per test as an observation.
"""

from __future__ import annotations

from typing import Any

from rig.summary import RecordSummary, number

from .fmt import fmt_plain

#: declared condition keys -> (label, unit)
CONDITION_KEYS: dict[str, tuple[str, str]] = {
    "ambient_c": ("Ambient temperature", "°C"),
    "chamber_c": ("Chamber set point", "°C"),
    "chamber_temp_c": ("Chamber set point", "°C"),
    "temp_c": ("Temperature set point", "°C"),
    "cell_temp_c": ("Cell temperature", "°C"),
    "pack_current_a": ("Pack current", "A"),
    "ramp_mv_per_s": ("Cell voltage ramp", "mV/s"),
    "set_v": ("Cell emulator set voltage", "V"),
    "base_v": ("Base cell voltage", "V"),
    "step_mv": ("Voltage step", "mV"),
    "noise_mv_rms": ("Injected noise", "mV RMS"),
    "window_s": ("Observation window", "s"),
}
#: keys that only index a row (a cell number), neither condition nor observation
INDEX_KEYS = {"cell"}


def _span(vals: list) -> str:
    """Distinct values as written in the report, in numeric order; more than 6 as a range."""
    nums = sorted({n for n in (number(v) for v in vals if not isinstance(v, bool)) if n is not None})
    if nums and len(nums) == len({str(v) for v in vals}):
        texts = list(dict.fromkeys(fmt_plain(n) for n in nums))
        if len(texts) > 6:
            return f"{len(texts)} values, {texts[0]} … {texts[-1]}"
        return ", ".join(texts)
    return ", ".join(sorted({str(v) for v in vals}))


def split_conditions(cond: dict | None) -> tuple[dict, dict]:
    """(declared conditions, observations) of one measurement's ``conditions``."""
    declared, observed = {}, {}
    for k, v in (cond or {}).items():
        if k in INDEX_KEYS:
            declared[k] = v
        elif k in CONDITION_KEYS:
            declared[k] = v
        else:
            observed[k] = v
    return declared, observed


def _value_text(v: Any) -> str:
    return fmt_plain(v, 6) if isinstance(v, float) else str(v)


def cond_text(cond: dict | None) -> str:
    """A measurement's declared conditions (and cell) as ``k=v, ...`` for its results row."""
    declared, _ = split_conditions(cond)
    return ", ".join(f"{k}={_value_text(v)}" for k, v in declared.items())


def observed_text(cond: dict | None) -> str:
    """A measurement's observations as ``k=v, ...``."""
    _, observed = split_conditions(cond)
    return ", ".join(f"{k}={_value_text(v)}" for k, v in observed.items())


def conditions_section(summary: RecordSummary, ctx: dict) -> dict:
    """§5: ``declared`` [(label, values)], ``per_test`` [(test name, [(key, values)])],
    ``ambient``, ``seed``, ``defects``."""
    declared: dict[str, list] = {}
    per_test: list[tuple[str, list]] = []
    for t in summary.tests.values():
        obs: dict[str, list] = {}
        for m in t.measurements:
            d, o = split_conditions(m.get("conditions"))
            for k, v in d.items():
                if k not in INDEX_KEYS:
                    declared.setdefault(k, []).append(v)
            for k, v in o.items():
                obs.setdefault(k, []).append(v if isinstance(v, (str, int, float, bool)) else str(v))
        if obs:
            per_test.append((t.name, [(k, _span(v)) for k, v in obs.items()]))
    rows = []
    for k, vals in declared.items():
        label, unit = CONDITION_KEYS[k]
        rows.append((f"{label} ({k})", f"{_span(vals)} {unit}"))
    ambient = ctx.get("ambient_c")
    return {
        "ambient": f"{fmt_plain(ambient)} °C" if number(ambient) is not None else "not recorded in the run record",
        "declared": rows,
        "per_test": per_test,
        "seed": ctx.get("seed"),
        "defects": list(ctx.get("defects") or []),
    }
