"""Board commands on the CAN link: the signal map's ``commands:`` section.

A command is one DBC message the rig transmits with signal values: constants (numbers or
value-table names, in the DBC's physical units) and ``parameters`` filled at send time
(a set-point in the signal's DBC unit, a balancing-enable bit, a balancing mask). Every value
is checked against what the DBC signal can carry (its [min|max] when stated, its raw bits)
before anything is sent: a constant out of range is a :class:`~rig.errors.ConfigError`
naming the map file and key; a parameter out of range is a :class:`CommandError`
naming the command, the signal and its range. Encoding is cantools ``Message.encode``.

``when: start``: sent once when the link opens (configuration such as "enable balancing");
``when: demand`` (default): sent by ``link.command(name, **values)``. ``ack``: the board
answers with ``ack.message`` carrying ``ack.signals`` (constants) within ``ack.timeout_s``
(rig time, s); the command is resent ``ack.retries`` times, then it is a
:class:`~rig.errors.LinkFault` naming the command. Map keys::

    commands:
      balancing_on:
        message: POLL_Command
        signals: {CmdType: BALANCE, BalEnable: 1}
        when: start
        ack: {message: POLL_CmdAck, signals: {AckType: BALANCE}, timeout_s: 0.5, retries: 2}
      hvc_setpoint:
        message: POLL_Command
        signals: {CmdType: SETPOINT}
        parameters: {threshold_v: HvcSetpoint}      # link.command("hvc_setpoint", threshold_v=3.6)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import CommandError, ConfigError, LinkFault
from .base import check_command_parameters
from .registry import MAX_LINK_TIME_S

Value = int | float | str


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CommandAck(_M):
    """The board's acknowledgement: ``message`` carrying ``signals`` (constants)."""

    message: str
    signals: dict[str, Value] = Field(default_factory=dict)
    timeout_s: float = Field(0.5, gt=0, le=MAX_LINK_TIME_S)
    retries: int = Field(1, ge=0, le=10)


class Command(_M):
    """One named command (see the module docstring)."""

    message: str
    signals: dict[str, Value] = Field(default_factory=dict)
    parameters: dict[str, str] = Field(default_factory=dict)
    when: Literal["start", "demand"] = "demand"
    ack: CommandAck | None = None

    @model_validator(mode="after")
    def _check(self):
        both = set(self.signals) & set(self.parameters.values())
        if both:
            raise ValueError(f"signal(s) {', '.join(sorted(both))} given both a constant and a parameter")
        if self.when == "start" and self.parameters:
            raise ValueError("a command sent at start takes constants only (no 'parameters')")
        return self


def signal_range(sig) -> tuple[float, float]:
    """Physical range a DBC signal carries: its raw bits, narrowed to the DBC's [min|max] when stated."""
    if getattr(sig, "is_float", False):
        lo, hi = float("-inf"), float("inf")
    else:
        rlo, rhi = ((-(1 << (sig.length - 1)), (1 << (sig.length - 1)) - 1) if sig.is_signed
                    else (0, (1 << sig.length) - 1))
        a, b = rlo * sig.scale + sig.offset, rhi * sig.scale + sig.offset
        lo, hi = min(a, b), max(a, b)
    mn, mx = sig.minimum, sig.maximum
    if mn is not None and mx is not None and mn < mx:
        lo, hi = max(lo, mn), min(hi, mx)
    return float(lo), float(hi)


def physical(sig, v: Value) -> tuple[float | None, str]:
    """(physical value, "" ) or (None, problem) for a number or a value-table name."""
    if isinstance(v, str):
        choices = {str(n): int(k) for k, n in (sig.choices or {}).items()}
        if v not in choices:
            return None, (f"{v!r} is not a value name of signal {sig.name} "
                          f"(known: {', '.join(choices) or 'none: the signal has no value table'})")
        return choices[v] * sig.scale + sig.offset, ""
    lo, hi = signal_range(sig)
    if not lo - 1e-9 * max(1.0, abs(lo)) <= float(v) <= hi + 1e-9 * max(1.0, abs(hi)):
        unit = f" {sig.unit}" if sig.unit else ""
        return None, f"{v:g}{unit} is outside the range {lo:g}..{hi:g}{unit} signal {sig.name} carries"
    return float(v), ""


@dataclass
class CommandPlan:
    """One command, resolved against the DBC."""

    name: str
    message: object                  # cantools Message
    constants: dict[str, float]      # signal -> physical value (every signal of the frame)
    parameters: dict[str, object]    # parameter -> cantools signal
    when: str
    ack_id: int | None = None
    ack_values: dict[str, float] = field(default_factory=dict)   # signal -> physical value
    ack_message: object = None
    timeout_s: float = 0.5
    retries: int = 1
    keys: frozenset = frozenset()    # the signals the map gives constants for (what identifies it)

    @property
    def frame_id(self) -> int:
        return self.message.frame_id

    def encode(self, values: dict) -> bytes:
        """The frame for parameter ``values`` (CommandError naming the problem)."""
        check_command_parameters(self.name, sorted(self.parameters), values)
        d = dict(self.constants)
        for p, sig in self.parameters.items():
            v, problem = physical(sig, values[p])
            if v is None:
                raise CommandError(f"command {self.name}: parameter {p}: {problem}; nothing was sent")
            d[sig.name] = v
        return bytes(self.message.encode(d, strict=False))

    def matches(self, values: dict) -> bool:
        """Whether decoded ``values`` of a frame of this message carry this command's constants."""
        return all(abs(float(values.get(k, float("nan"))) - v) <= 1e-9 * max(1.0, abs(v))
                   for k, v in self.constants.items() if k in self.keys)

    def parameter_values(self, values: dict) -> dict:
        """Decoded frame ``values`` -> {parameter: physical value}, plus every listed constant by signal."""
        out = {k: values.get(k) for k in self.keys}
        out.update({p: values.get(s.name) for p, s in self.parameters.items()})
        return out

    def reads(self, other: "CommandPlan") -> dict | None:
        """What a board recognising this command reads from the frame of ``other`` (a command of
        constants, e.g. ``when: start``): {parameter or listed signal: value}, or None when that
        frame is not this command."""
        if other.frame_id != self.frame_id or other.parameters:
            return None
        values = self.message.decode(other.encode({}), decode_choices=False)
        return self.parameter_values(values) if self.matches(values) else None

    def value_signal(self, name: str):
        """The DBC signal carrying parameter or listed signal ``name`` (None: the command has none)."""
        if name in self.parameters:
            return self.parameters[name]
        return self.message.get_signal_by_name(name) if name in self.keys else None

    def value_names(self) -> list[str]:
        """The names a board reads from this command: parameters and listed signals."""
        return sorted(set(self.parameters) | set(self.keys))

    def resolution(self, name: str) -> tuple[float, str]:
        """(step of value ``name`` in its physical unit, the DBC unit or "") — 0 for a float signal."""
        sig = self.value_signal(name)
        return (0.0 if getattr(sig, "is_float", False) else abs(float(sig.scale))), (sig.unit or "")

    def is_ack(self, values: dict) -> bool:
        return all(abs(float(values.get(k, float("nan"))) - v) <= 1e-9 * max(1.0, abs(v))
                   for k, v in self.ack_values.items())


def _constants(msg, given: dict, res, key: str) -> dict[str, float]:
    sigs = {s.name: s for s in msg.signals}
    out = {s.name: float((getattr(s, "raw_initial", None) or 0) * s.scale + s.offset) for s in msg.signals}
    for name, v in given.items():
        if name not in sigs:
            raise ConfigError(res.map_path, f"{key}.{name}", f"signal {name!r} is not in message {msg.name} of DBC "
                              f"{res.dbc_path.name}{res.suggest(name, list(sigs))}")
        phys, problem = physical(sigs[name], v)
        if phys is None:
            raise ConfigError(res.map_path, f"{key}.{name}", problem)
        out[name] = phys
    return out


def compile_commands(commands: dict, res, message_named: Callable) -> dict[str, CommandPlan]:
    """name -> :class:`CommandPlan`; ConfigError naming map file, key and problem."""
    out = {}
    for name, c in commands.items():
        key = f"commands.{name}"
        msg = message_named(res, c.message, key + ".message")
        consts = _constants(msg, c.signals, res, key + ".signals")
        sigs = {s.name: s for s in msg.signals}
        params = {}
        for p, sname in c.parameters.items():
            if sname not in sigs:
                raise ConfigError(res.map_path, f"{key}.parameters.{p}", f"signal {sname!r} is not in message "
                                  f"{msg.name} of DBC {res.dbc_path.name}{res.suggest(sname, list(sigs))}")
            params[p] = sigs[sname]
        plan = CommandPlan(name, msg, consts, params, c.when, keys=frozenset(c.signals))
        try:
            plan.encode({p: signal_range(s)[0] if s.choices is None else min(s.choices)
                         for p, s in params.items()})
        except Exception as exc:
            raise ConfigError(res.map_path, key, f"cannot encode {msg.name}: {exc}") from None
        if c.ack is not None:
            am = message_named(res, c.ack.message, key + ".ack.message")
            plan.ack_id, plan.ack_message = am.frame_id, am
            plan.ack_values = {k: v for k, v in _constants(am, c.ack.signals, res, key + ".ack.signals").items()
                               if k in c.ack.signals}
            plan.timeout_s, plan.retries = c.ack.timeout_s, c.ack.retries
            if am.frame_id == msg.frame_id:
                raise ConfigError(res.map_path, key + ".ack.message", f"the acknowledgement cannot be the "
                                  f"command's own message {msg.name}")
        out[name] = plan
    return out


class CommandSender:
    """Sends commands through ``send(frame_id, extended, data)`` and tracks their acknowledgements
    on the rig clock (s). Never blocks: the link calls :meth:`service` from its pump."""

    def __init__(self, plans: dict[str, CommandPlan], send: Callable[[int, bool, bytes], None]):
        self.plans = plans
        self._send = send
        self.ack_ids = frozenset(p.ack_id for p in plans.values() if p.ack_id is not None)
        self._pending: dict[str, list] = {}   # name -> [deadline s, tries, data]
        self.failed: dict[str, str] = {}      # name -> why (unacknowledged)
        self.sent = 0
        self.acknowledged = 0

    def start(self, now: float) -> None:
        """Send the ``when: start`` commands (configuration sent when the link opens)."""
        for p in self.plans.values():
            if p.when == "start":
                self.fire(p.name, {}, now)

    def fire(self, name: str, values: dict, now: float) -> None:
        p = self.plans[name]
        data = p.encode(values)
        self._send(p.frame_id, bool(p.message.is_extended_frame), data)
        self.sent += 1
        self.failed.pop(name, None)
        if p.ack_id is not None:
            self._pending[name] = [now + p.timeout_s, 0, data]

    def pending(self, name: str) -> bool:
        return name in self._pending

    def received(self, frame_id: int, values: dict) -> None:
        """A frame of an acknowledgement message arrived (decoded physical ``values``)."""
        for name in list(self._pending):
            p = self.plans[name]
            if p.ack_id == frame_id and p.is_ack(values):
                del self._pending[name]
                self.acknowledged += 1

    def service(self, now: float) -> None:
        """Resend commands whose acknowledgement is overdue; after the last try, record the failure."""
        for name, pend in list(self._pending.items()):
            if now <= pend[0]:
                continue
            p = self.plans[name]
            if pend[1] < p.retries:
                self._send(p.frame_id, bool(p.message.is_extended_frame), pend[2])
                self.sent += 1
                pend[0], pend[1] = now + p.timeout_s, pend[1] + 1
                continue
            del self._pending[name]
            self.failed[name] = (f"command {name} ({p.message.name}) was not acknowledged: no "
                                 f"{p.ack_message.name} within {p.timeout_s:g} s ({p.retries + 1} tries)")

    @property
    def fault(self) -> str:
        return "; ".join(self.failed[k] for k in sorted(self.failed))


class CommandsMixin:
    """``command(name, **values)`` for :class:`~rig.links.can_link.CanBmsLink` (needs ``commands``,
    ``clock``, ``poll_s``, ``pump`` and ``name``)."""

    def command(self, name: str, **values) -> None:
        """Send command ``name`` with parameter ``values``; with an acknowledgement declared, wait
        on the rig clock for it (LinkFault naming the command when it never comes)."""
        sender: CommandSender = self.commands
        if name not in sender.plans:
            known = ", ".join(sorted(sender.plans)) or "none"
            raise CommandError(f"{self.name}: this link declares no command {name!r} (declared: {known})")
        sender.fire(name, values, self.clock.now())
        while sender.pending(name):
            self.clock.sleep(self.poll_s)
            self.pump()
        if name in sender.failed:
            raise LinkFault(self.name, sender.failed[name])

    def check_commands(self) -> None:
        """LinkFault when a command sent at start was never acknowledged."""
        if self.commands.failed:
            raise LinkFault(self.name, self.commands.fault)
