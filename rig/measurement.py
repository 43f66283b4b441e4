"""Measurements as data, with a stated decision rule (OpenHTF's measurements, the pytest way).

A measurement is a name, a value with its unit, tolerance limits, the expanded
uncertainty U (k=2) of the value, the requirement it evidences and the conditions it was
taken under. Its verdict follows the run's decision rule:

- ``guarded`` (default): ILAC-G8 guarded acceptance. Acceptance limits are the tolerance
  limits pulled in by U: pass iff ``lo + U <= value <= hi - U``. Example from ILAC-G8 as
  cited in REFERENCE.md: ±5 mV with U = 1.5 mV accepts only |error| <= 3.5 mV.
- ``simple``: simple acceptance, pass iff ``lo <= value <= hi`` (up to 50 % false-accept
  risk on the limit, ILAC-G8).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

DECISION_RULES = {
    "guarded": (
        "Guarded acceptance per ILAC-G8:2019: a result passes only when it lies inside the "
        "tolerance limits reduced on each side by its expanded uncertainty U (k = 2), "
        "acceptance limit = tolerance limit − U; otherwise it fails."
    ),
    "simple": (
        "Simple acceptance per ILAC-G8:2019: a result passes when the measured value lies "
        "inside the tolerance limits; the measurement uncertainty is reported but not "
        "deducted (false-accept risk up to 50 % for results on a limit)."
    ),
}


@dataclass
class Measurement:
    """One recorded result. Units are the measurement's own (V, A, s, °C, mV, 1, ...)."""

    name: str
    value: float | None
    unit: str
    limits: tuple[float | None, float | None] = (None, None)
    uncertainty: float = 0.0
    requirement: str | None = None
    conditions: dict = field(default_factory=dict)
    decision_rule: str = "guarded"
    acceptance: tuple[float | None, float | None] = (None, None)
    verdict: str = "pass"
    test: str | None = None
    t_rig: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["limits"] = list(self.limits)
        d["acceptance"] = list(self.acceptance)
        return d

    def describe(self) -> str:
        """One line for a failure message: name = value unit, limits, verdict."""
        lo, hi = self.limits
        val = "None" if self.value is None else f"{self.value:.6g}"
        lim = f"[{'-inf' if lo is None else f'{lo:g}'}, {'+inf' if hi is None else f'{hi:g}'}]"
        u = f" ±{self.uncertainty:g} (U, k=2)" if self.uncertainty else ""
        req = f" {self.requirement}" if self.requirement else ""
        cond = ""
        if self.conditions:
            cond = " {" + ", ".join(f"{k}={v}" for k, v in self.conditions.items()) + "}"
        return f"{self.name} = {val} {self.unit}{u}, limits {lim}{req}{cond}: {self.verdict.upper()}"


def acceptance_limits(
    limits: tuple[float | None, float | None], uncertainty: float, rule: str
) -> tuple[float | None, float | None]:
    """The acceptance interval under ``rule`` for tolerance ``limits`` and expanded uncertainty."""
    if rule not in DECISION_RULES:
        raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(DECISION_RULES)}")
    lo, hi = limits
    if rule == "simple":
        return lo, hi
    u = abs(uncertainty or 0.0)
    return (None if lo is None else lo + u, None if hi is None else hi - u)


def judge(value: float | None, limits, uncertainty: float, rule: str) -> tuple[str, tuple]:
    """Return (verdict, acceptance limits). A missing or non-finite value fails."""
    acc = acceptance_limits(tuple(limits), uncertainty, rule)
    if value is None or not math.isfinite(float(value)):
        return "fail", acc
    lo, hi = acc
    if lo is not None and hi is not None and lo > hi:
        # the guard band swallowed the tolerance: nothing can be shown to conform
        return "fail", acc
    ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    return ("pass" if ok else "fail"), acc
