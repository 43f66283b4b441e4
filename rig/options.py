"""The run options, declared once: ``bmsrig run`` (argparse) and the pytest plugin
(``pytest --help``, group "bmsrig") both add them from :data:`RUN_OPTIONS`.

Each :class:`Option` carries its flag, default, type, choices and help. ``bmsrig run``
forwards every shared option to the pytest session it starts with :func:`forward_argv`, so
a value typed on one command line means the same on the other. Options only one side has
(``--run-dir``/``--run-id`` for the plugin; ``--out``, ``-k``, ``--lock`` … for the CLI)
are declared where they are used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .measurement import DECISION_RULES

PLAN_SESSION_ARGS = ("-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                     "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:xdist", "-p", "no:xdist.looponfail")
"""pytest arguments of every plan session bmsrig starts (``bmsrig run``, ``bmsrig plan``'s dry
run): no cache folder among the plans, and the plugins of bmsrig's own test suite that a plan
never uses (property-based testing, benchmarks, parallel workers) not loaded, about 0.2 s of
imports at every run. A plan run with ``pytest`` directly loads whatever is installed."""

TIERS = ("regression", "qualification")
"""The plan tiers (testplans/tiers.py holds the same, with the table; a test checks they agree)."""


def default_operator() -> str:
    """The operator named in the report when none is given: the login name ($USER)."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or "not stated"


@dataclass(frozen=True)
class Option:
    """One command-line option: ``flag`` (``--board``), its default (a value, or a callable
    evaluated when a parser is built), ``type``, ``choices``, ``action`` and ``help``."""

    flag: str
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = None
    choices: Sequence[str] | None = None
    action: str | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The attribute name on the parsed namespace (``--board-model`` → ``board_model``)."""
        return self.flag.lstrip("-").replace("-", "_")

    def kwargs(self) -> dict:
        """Keyword arguments for ``argparse``'s ``add_argument`` and pytest's ``addoption``."""
        default = self.default() if callable(self.default) else self.default
        if self.action == "append":
            default = list(default or [])
        kw: dict[str, Any] = {"default": default, "help": self.help}
        for name in ("type", "choices", "action", "metavar"):
            value = getattr(self, name)
            if value is not None:
                kw[name] = list(value) if name == "choices" else value
        return kw

    def to_argv(self, value) -> list[str]:
        """The command-line words that give this option ``value`` (none for a None)."""
        if value is None:
            return []
        if self.action == "append":
            return [w for v in value for w in (self.flag, str(v))]
        return [self.flag, str(value)]


RUN_OPTIONS: tuple[Option, ...] = (
    Option("--rig", "rig description: labgrid environment YAML or shipped name (default: the virtual bench, 'sim')"),
    Option("--board", "board profile: shipped name or YAML path (default: %(default)s)", default="reference-16s-lfp"),
    Option("--defect", "inject a defect on the virtual bench (repeatable), e.g. hvc_delay:s=3",
           default=(), action="append", metavar="SPEC"),
    Option("--seed", "virtual bench seed (default %(default)s)", default=1, type=int),
    Option("--board-model", "bench only: board model, a registered name (bmsrig.boards) or module:Class (overrides the profile)"),
    Option("--decision-rule", "guarded (ILAC-G8, default) or simple acceptance",
           default="guarded", choices=tuple(sorted(DECISION_RULES))),
    Option("--lab", "lab name for the report (default: %(default)s)", default="bmsrig virtual lab"),
    Option("--location", "lab location for the report (default: %(default)s)", default="virtual bench"),
    Option("--requester", "customer / requester for the report (default: %(default)s)", default="not stated"),
    Option("--operator", "operator for the report (default: the login name, $USER)", default=default_operator),
    Option("--lab-config", "lab configuration YAML: customer, item received date, method document, preparer, "
           "approver, authorisation (default: $BMSRIG_LAB; none: 'not stated', report not authorised)",
           metavar="PATH"),
    Option("--tier", "regression (room temperature, minutes of rig time) or qualification (every requirement; "
           "default): the tests of testplans/tiers.yaml to run", default="qualification", choices=TIERS),
    Option("--junit-by", "junit.xml testcases: one per test function (default) or one per requirement",
           default="test", choices=("test", "requirement")),
)
"""Options both ``bmsrig run`` and the pytest plugin take, with the same defaults."""

PLUGIN_OPTIONS: tuple[Option, ...] = (
    Option("--run-dir", "write the run record and captures here"),
    Option("--run-id", "unique run ID for the record and report (default: the run folder's name)"),
    Option("--no-progress", "no live progress line (test, phase, rig time, ETA) on the console", action="store_true"),
)
"""Options only the pytest plugin takes (``bmsrig run`` sets them from ``--out``)."""

CHECK_OPTIONS: tuple[Option, ...] = tuple(o for o in RUN_OPTIONS if o.flag in ("--rig", "--board"))
"""The options ``bmsrig check`` takes: the same ``--rig`` and ``--board`` as a run."""


def add_argparse(parser, options: Sequence[Option] = RUN_OPTIONS) -> None:
    """Add ``options`` to an ``argparse`` parser."""
    for opt in options:
        parser.add_argument(opt.flag, **opt.kwargs())


def add_pytest(group, options: Sequence[Option] = RUN_OPTIONS + PLUGIN_OPTIONS) -> None:
    """Add ``options`` to a pytest option group (``parser.getgroup(...)``).

    pytest formats help with ``%(default)s`` as argparse does.
    """
    for opt in options:
        group.addoption(opt.flag, **opt.kwargs())


def forward_argv(args, overrides: dict[str, Any] | None = None) -> list[str]:
    """The pytest command-line words giving the plugin every shared option's value from the
    parsed ``bmsrig run`` namespace ``args`` (``overrides`` by dest replace a value)."""
    overrides = overrides or {}
    argv: list[str] = []
    for opt in RUN_OPTIONS:
        value = overrides[opt.dest] if opt.dest in overrides else getattr(args, opt.dest)
        argv += opt.to_argv(value)
    return argv
