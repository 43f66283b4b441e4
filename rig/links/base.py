"""What every DUT link shares: the sample history, waiting on the rig clock, map loading.

A link turns the board's own reports (CAN frames, Modbus registers) into
:class:`~rig.protocols.BmsSample` objects stamped in rig time (s). The history is a
bounded deque (oldest samples fall off after ``history_len``); ``wait_for`` checks every
sample that arrived while waiting, in order, so a short pulse between two polls is not
missed.

Evidence or no verdict: :meth:`LinkBase.history` is the one door through which a judgement
reads the board's samples over a window, and by default it requires them to cover that
window (no gap longer than the link timeout); a silent or stalled link raises
:class:`~rig.errors.LinkFault` ("board not judged", exit 3) instead of handing back a
thin or empty list that a plan could read as "nothing happened".

The map files (CAN signal map, Modbus register map) are validated with pydantic; every
problem becomes a :class:`~rig.errors.ConfigError` naming the file, the key
(``cells.voltage.template``) and what is wrong.
"""

from __future__ import annotations

import math
import string
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from ..errors import CommandError, ConfigError, LinkFault, WaitTimeout
from ..protocols import BmsLink, BmsSample, DutIdentity

HISTORY_LEN = 200_000


@dataclass(frozen=True)
class LinkSample(BmsSample):
    """A :class:`BmsSample` with the extra pack-level values a map may provide.

    ``pack_v`` (V), ``pack_a`` (A, + charge) and ``state`` (the board's own name for its
    state, e.g. ``"charge"``) are ``None`` when the map does not say where they are.
    """

    pack_v: float | None = None
    pack_a: float | None = None
    state: str | None = None


# --------------------------------------------------------------------------- capabilities

#: quantity -> (what it is, in words; the map key that states where the board reports it)
QUANTITIES: dict[str, tuple[str, str]] = {
    "cell_voltages": ("its cell voltages", "cells.voltage"),
    "temperatures": ("any temperature", "temperatures"),
    "balancing": ("its balancing mask", "cells.balancing"),
    "hvc": ("its HVC flag", "flags.hvc"),
    "lvc": ("its LVC flag", "flags.lvc"),
    "ot": ("its over-temperature flag", "flags.ot"),
    "ut": ("its under-temperature flag", "flags.ut"),
    "charge_fet": ("its charge FET state", "fets.charge"),
    "discharge_fet": ("its discharge FET state", "fets.discharge"),
    "pack_v": ("its pack voltage", "pack.voltage"),
    "pack_a": ("its pack current", "pack.current"),
    "state": ("its state", "state"),
}


@dataclass(frozen=True)
class Capabilities:
    """What a board reports over its link, derived from its map (CAN signal map or Modbus
    register map): the quantities the map says where to find. A quantity not mapped reads
    as its default in every :class:`BmsSample` (0 V, no balancing, flag clear, FET open),
    which is no evidence: a plan step that needs it is *not applicable* (not verified).

    ``quantities``: names from :data:`QUANTITIES` that are mapped; ``n_temperatures``: how
    many temperatures a sample carries (in map order); ``identity``: the identity fields
    mapped (``serial``, ``hw_revision``, ``fw_version``); ``map_kind``/``map_file``: the map
    they come from (for the reason text).
    """

    quantities: frozenset = frozenset()
    n_temperatures: int = 0
    identity: frozenset = frozenset()
    map_kind: str = "map"
    map_file: str = ""

    @classmethod
    def everything(cls, n_temperatures: int = 0) -> "Capabilities":
        """A link that reports every quantity (the default for a link that does not say)."""
        return cls(frozenset(QUANTITIES), n_temperatures, frozenset({"serial", "hw_revision", "fw_version"}))

    def has(self, quantity: str) -> bool:
        """True when the board reports ``quantity`` (a :data:`QUANTITIES` name)."""
        if quantity not in QUANTITIES:
            raise KeyError(f"unknown reported quantity {quantity!r}; use one of {', '.join(QUANTITIES)}")
        return quantity in self.quantities

    def missing(self, *quantities: str) -> list[str]:
        """The ``quantities`` the board does not report, in the order given."""
        return [q for q in quantities if not self.has(q)]

    def reason(self, *quantities: str) -> str | None:
        """``"not verified: the board does not report its balancing mask (signal map
        reference-bms-can.yaml has no `cells.balancing`)"``, or None when all are reported."""
        gone = self.missing(*quantities)
        if not gone:
            return None
        what = " or ".join(QUANTITIES[q][0] for q in gone)
        keys = ", ".join(f"`{QUANTITIES[q][1]}`" for q in gone)
        where = f"{self.map_kind} {self.map_file}".strip() if self.map_file else self.map_kind
        return f"not verified: the board does not report {what} ({where} has no {keys})"


# --------------------------------------------------------------------------- units

# quantity -> unit -> (factor, offset): SI = value * factor + offset
UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "voltage": {"V": (1.0, 0.0), "mV": (1e-3, 0.0), "uV": (1e-6, 0.0), "µV": (1e-6, 0.0),
                "0.1mV": (1e-4, 0.0), "10mV": (1e-2, 0.0)},
    "current": {"A": (1.0, 0.0), "mA": (1e-3, 0.0), "0.1A": (0.1, 0.0), "10mA": (1e-2, 0.0)},
    "temperature": {"degC": (1.0, 0.0), "°C": (1.0, 0.0), "C": (1.0, 0.0), "deg C": (1.0, 0.0),
                    "0.1degC": (0.1, 0.0), "dC": (0.1, 0.0), "K": (1.0, -273.15)},
}
SI_UNIT = {"voltage": "V", "current": "A", "temperature": "degC"}


def unit_factor(quantity: str, unit: str | None, file: object, key: str) -> tuple[float, float]:
    """(factor, offset) converting ``unit`` of ``quantity`` to SI; ConfigError if unknown."""
    if unit is None or unit == "":
        return 1.0, 0.0
    table = UNITS[quantity]
    if unit not in table:
        raise ConfigError(file, key, f"unknown {quantity} unit {unit!r}; use one of {', '.join(table)}")
    return table[unit]


def format_fields(fmt: str, file: object, key: str) -> list[str]:
    """The field names a ``str.format`` template uses (ConfigError if malformed)."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(fmt) if f is not None]
    except ValueError as exc:
        raise ConfigError(file, key, f"malformed format string {fmt!r}: {exc}") from None
    return [n.split(".")[0].split("[")[0] for n in names]


def expand_template(template: str, n: int, first: int, file: object, key: str) -> list[str]:
    """``Cell{i}_Voltage`` -> names for i = first .. first+n-1 (``{i:02d}`` works too)."""
    fields = format_fields(template, file, key)
    if fields != ["i"] and set(fields) != {"i"}:
        raise ConfigError(file, key, f"template {template!r} must use exactly the field {{i}} (the 1-based cell number)")
    try:
        return [template.format(i=i) for i in range(first, first + n)]
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(file, key, f"template {template!r} does not format: {exc}") from None


# --------------------------------------------------------------------------- map loading


def load_yaml_mapping(path: Path, what: str) -> dict:
    """Read a YAML mapping strictly (duplicate keys rejected); ConfigError naming the file (and line)."""
    from ..yamlio import load_yaml_mapping as _strict

    return _strict(path, what)


def validate_model(model: type[BaseModel], raw: dict, path: Path) -> Any:
    """pydantic validation with the first error turned into a ConfigError (file, key, problem).

    An unknown key names the closest known key; the key's line is given when known.
    """
    from ..yamlio import validate

    return validate(model, raw, path)


# --------------------------------------------------------------------------- history + waits


class SampleHistory:
    """A bounded, time-ordered store of samples (newest last)."""

    def __init__(self, maxlen: int = HISTORY_LEN):
        self._d: deque[BmsSample] = deque(maxlen=maxlen)
        self.count = 0  # samples ever appended (monotonic; survives the deque's bound)

    def append(self, sample: BmsSample) -> None:
        self._d.append(sample)
        self.count += 1

    def newest(self) -> BmsSample | None:
        return self._d[-1] if self._d else None

    def oldest(self) -> BmsSample | None:
        return self._d[0] if self._d else None

    def since(self, t: float) -> list[BmsSample]:
        """Samples with ``sample.t >= t``, oldest first."""
        out = []
        for s in reversed(self._d):
            if s.t < t:
                break
            out.append(s)
        out.reverse()
        return out

    def after_count(self, count: int) -> list[BmsSample]:
        """Samples appended after the ``count``-th one (those still held), oldest first."""
        k = self.count - count
        if k <= 0:
            return []
        k = min(k, len(self._d))
        return [self._d[i] for i in range(len(self._d) - k, len(self._d))]

    def __len__(self) -> int:
        return len(self._d)


def describe_sample(s: BmsSample | None) -> str:
    if s is None:
        return "no sample received"
    valid = [float(v) for v, ok in zip(s.cell_v, s.cells_valid) if ok]
    vmax = max(valid) if valid else math.nan
    vmin = min(valid) if valid else math.nan
    bal = [i + 1 for i, b in enumerate(s.balancing) if b]
    bad = [i + 1 for i, ok in enumerate(s.cells_valid) if not ok]
    f = s.flags
    return (f"last sample t={s.t:.3f} s: Vmin={vmin:.4f} V Vmax={vmax:.4f} V, balancing cells {bal}, "
            f"HVC={f.hvc} LVC={f.lvc} OT={f.ot} UT={f.ut}, charge FET {'closed' if s.charge_fet else 'open'}, "
            f"discharge FET {'closed' if s.discharge_fet else 'open'}"
            + (f", cells reported invalid {bad}" if bad else ""))


class LinkBase(BmsLink):
    """Shared behaviour of the CAN and Modbus links.

    Subclasses implement ``_refresh()`` (bring the history up to the clock's now: pump the
    bus or poll the board) and ``latest()``.
    """

    def __init__(self, name: str, n_cells: int, clock, timeout_s: float, poll_s: float,
                 history_len: int = HISTORY_LEN):
        self.name = name
        self.n_cells = int(n_cells)
        self.clock = clock
        self.timeout_s = float(timeout_s)
        self.poll_s = float(poll_s)
        self._history = SampleHistory(history_len)
        self._identity: DutIdentity | None = None
        self._listening = False

    # -- clock listener
    def _listen(self) -> None:
        add = getattr(self.clock, "add_listener", None)
        if add is not None:
            add(self._on_clock)
            self._listening = True

    def _unlisten(self) -> None:
        if self._listening:
            rm = getattr(self.clock, "remove_listener", None)
            if rm is not None:
                rm(self._on_clock)
            self._listening = False

    def _on_clock(self, now: float) -> None:  # pragma: no cover - overridden
        self._refresh()

    def _refresh(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- evidence
    @property
    def max_gap_s(self) -> float:
        """Longest stretch of a judged window without a sample, s: the link timeout (the
        profile's ``link.timeout_s``). Longer, and the board was not observed."""
        return self.timeout_s

    def history(self, since: float = 0.0, until: float | None = None, *,
                require_coverage: bool = True) -> list[BmsSample]:
        """Samples stamped in ``[since, until]`` (rig time, s; ``until`` defaults to now),
        oldest first: the evidence a judgement over that window rests on.

        With ``require_coverage`` (the default) the samples must cover the window: no
        stretch longer than :attr:`max_gap_s` from ``since`` to the first sample, between
        two samples, or from the last sample to ``until`` (or now, if earlier). Otherwise
        :class:`LinkFault` ("board not judged") names the gap: a silent or stalled link
        is a fault of the rig, never a pass. A window no longer than the gap limit may
        hold no sample (none was due yet); a caller never judges an empty list.
        ``require_coverage=False`` returns whatever is held (diagnostics only).
        """
        self._refresh()
        samples = self._history.since(since)
        if until is not None:
            samples = [s for s in samples if s.t <= until]
        if require_coverage:
            end = self.clock.now() if until is None else min(float(until), self.clock.now())
            self._check_coverage(samples, float(since), end)
        return samples

    def _check_coverage(self, samples: list[BmsSample], t0: float, t1: float) -> None:
        """LinkFault unless ``samples`` cover ``[t0, t1]`` with no gap over ``max_gap_s``."""
        limit = self.max_gap_s
        times = [t0] + [s.t for s in samples] + [t1]
        worst, at = 0.0, t0
        for a, b in zip(times, times[1:]):
            if b - a > worst:
                worst, at = b - a, a
        if worst <= limit + 1e-9:
            return
        held = len(self._history)
        lost = self._history.count > held and (not samples or samples[0].t > t0 + limit)
        if lost:
            why = (f"the history holds only the last {held} samples (oldest t={self._history.oldest().t:.3f} s): "
                   f"the window starts before it")
        elif not samples:
            why = f"no sample at all in {t1 - t0:.3f} s"
        else:
            why = f"no sample for {worst:.3f} s from t={at:.3f} s ({len(samples)} samples in the window)"
        detail = self._silence_detail()
        raise LinkFault(self.name, f"board not judged: the link did not cover the judged window "
                                   f"t={t0:.3f}..{t1:.3f} s: {why}; longest gap allowed {limit:g} s "
                                   f"(link timeout)" + (f"; {detail}" if detail else ""))

    # -- BmsLink

    def wait_for(self, condition: Callable[[BmsSample], bool], timeout: float, what: str,
                 poll: float | None = None) -> BmsSample:
        """Wait on the rig clock until a sample taken from now on satisfies ``condition``.

        Every sample that arrives while waiting is checked, oldest first. Raises
        :class:`WaitTimeout` naming ``what`` (a failure of the board), or
        :class:`LinkFault` when the link stays silent longer than its timeout (a fault of
        the rig: the board was not judged).
        """
        poll = self.poll_s if poll is None else float(poll)
        if poll <= 0:
            raise ValueError("wait_for: poll must be > 0 s")
        clock = self.clock
        start = clock.now()
        self._refresh()
        # samples stamped at or after the start count; older ones were already history
        mark = self._history.count
        for s in self._history.since(start):
            if condition(s):
                return s
        while True:
            for s in self._history.after_count(mark):
                if condition(s):
                    return s
            mark = self._history.count
            newest = self._history.newest()
            now = clock.now()
            waited = now - start
            heard = max(start, newest.t) if newest is not None else start
            if now - heard > self.timeout_s:
                detail = self._silence_detail()
                raise LinkFault(self.name, f"no sample for {now - heard:.3f} s (link timeout {self.timeout_s:g} s) "
                                           f"while waiting for {what}" + (f"; {detail}" if detail else ""))
            # a tolerance of 1 µs: a float remainder too small to move the clock must not spin
            if waited >= timeout - 1e-6:
                raise WaitTimeout(what, timeout, describe_sample(newest))
            clock.sleep(min(poll, timeout - waited))
            self._refresh()

    @property
    def reports(self) -> Capabilities:
        """What the board reports over this link (:class:`Capabilities`), from its map."""
        plan = getattr(self, "plan", None)
        caps = getattr(plan, "capabilities", None)
        return caps() if callable(caps) else Capabilities.everything()

    def identity(self) -> DutIdentity:  # pragma: no cover - overridden
        raise NotImplementedError

    def _silence_detail(self) -> str:
        return ""

    @property
    def sample_count(self) -> int:
        """Samples received since the link was built."""
        return self._history.count

    def command(self, name: str, **values) -> None:
        """A link kind without board commands (jbd, daly, ...) refuses every ``name``."""
        raise CommandError(f"{self.name}: this link declares no command {name!r}")

    def close(self) -> None:
        self._unlisten()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_command_parameters(command: str, takes, given) -> None:
    """CommandError naming ``command``'s unknown and missing parameters when the ``given``
    parameter names are not exactly the ones it ``takes`` (checked before anything is sent)."""
    takes = list(takes)
    unknown = sorted(set(given) - set(takes))
    missing = [p for p in takes if p not in given]
    if unknown or missing:
        raise CommandError(f"command {command}: " + "; ".join(
            ([f"unknown parameter(s) {', '.join(unknown)} (it takes: {', '.join(takes) or 'none'})"] if unknown else [])
            + ([f"missing parameter(s) {', '.join(missing)}"] if missing else [])))


def check_command_gate(profile, commands: dict, map_path) -> None:
    """ConfigError when the profile's ``balancing.enabled_by_command`` names a command (or a
    parameter / constant) the link map does not declare: the rig could never enable the board."""
    from .setpoint_check import check_setpoints

    check_setpoints(profile, commands, map_path)  # and the set-points the board takes from commands
    gate = getattr(getattr(profile, "balancing", None), "enabled_by_command", None)
    if gate is None:
        return
    c = commands.get(gate.command)
    if c is None:
        raise ConfigError(profile.source, "balancing.enabled_by_command.command",
                          f"the link map {Path(map_path).name} declares no command {gate.command!r} "
                          f"(declared: {', '.join(sorted(commands)) or 'none'})")
    names = set(getattr(c, "keys", ())) | set(getattr(c, "parameters", ()))
    if gate.value is not None and gate.value not in names:
        raise ConfigError(profile.source, "balancing.enabled_by_command.value",
                          f"command {gate.command} of {Path(map_path).name} carries no {gate.value!r} "
                          f"(it has: {', '.join(sorted(names)) or 'nothing'})")


def check_temperature_positions(profile, n_reported: int) -> None:
    """ConfigError (profile file, ``temperatures.<role>``) when the profile gives a sensor role a
    position beyond the ``n_reported`` temperatures the link reports: checked when the maps load,
    not first when a plan asks for the role."""
    from ..profile import TEMPERATURE_ROLES

    roles = getattr(profile, "temperatures", None)
    if roles is not None and roles.stated:
        for role in TEMPERATURE_ROLES:
            roles.indices(role, n_reported, profile.source)
