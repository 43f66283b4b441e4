"""Rig-time estimates of a plan: ``bmsrig plan [--tier T] [--board B]``.

Method: the plan itself is the model. Every wait a plan makes is on the rig clock and is
derived from the board profile (settle and filter times, ramp rates, soak dwell, thermal
time constants, the balancing prediction); so the estimate is the rig time each test takes
when the tier's plans run on the virtual bench built from the same profile (the board
model the profile names, no defect, chamber ramp and soak as the bench models them). It
is read from that dry run's record the same way a real run's rig time is read: per test,
``t_rig`` at its ``test_end`` less ``t_rig`` at its ``test_start``. Nothing is tabulated per
test; a change of profile or plan changes the estimate.

Estimates are cached (JSON under ``$BMSRIG_CACHE`` or ``~/.cache/bmsrig/estimates``), keyed
by the profile, the tier, the board model and the content of the plans and the bench model.

Units: s of rig time.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .options import PLAN_SESSION_ARGS

ROOT = Path(__file__).resolve().parent.parent
PLANS_DIR = ROOT / "testplans"
_HASHED = (PLANS_DIR, ROOT / "fixtures", ROOT / "rig" / "sim")
"""What the estimate depends on besides the profile: plans, plugin, bench model."""
SEED = 0
"""The dry run's bench seed."""


@dataclass
class Estimate:
    """Estimated rig time per test (nodeid -> s), in run order, for ``board`` and ``tier``."""

    board: str
    tier: str
    tests: dict[str, float] = field(default_factory=dict)
    method: str = "dry run of the plans on the virtual bench built from the profile (rig.estimate)"

    @property
    def total_s(self) -> float:
        return float(sum(self.tests.values()))

    def to_dict(self) -> dict:
        return {"board": self.board, "tier": self.tier, "tests": self.tests, "total_s": self.total_s,
                "method": self.method}


def rig_time_per_test(run_dir: str | Path) -> dict[str, float]:
    """Rig time of each test of a run, from its record: test_end t_rig − test_start t_rig, s
    (tests not started or not ended are left out)."""
    from .summary import load_summary

    s = load_summary(run_dir)
    out = {}
    for nodeid, t in s.tests.items():
        if t.t_rig_start is not None and t.t_rig_end is not None:
            out[nodeid] = float(t.t_rig_end - t.t_rig_start)
    return out


def cache_dir() -> Path:
    base = os.environ.get("BMSRIG_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "bmsrig" / "estimates"


def cache_key(profile, tier: str, board_model: str | None) -> str:
    h = hashlib.sha256()
    h.update(profile.model_dump_json().encode())
    h.update(f"|{tier}|{board_model or ''}|{SEED}".encode())
    for base in _HASHED:
        for p in sorted(base.rglob("*")):
            if p.is_file() and p.suffix in (".py", ".yaml", ".dbc"):
                h.update(str(p.relative_to(ROOT)).encode())
                h.update(p.read_bytes())
    if profile.source:
        for p in sorted(Path(profile.source).parent.glob("*")):
            if p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()[:24]


def cached(profile, tier: str, board_model: str | None = None) -> Estimate | None:
    """The cached estimate for this profile, tier and plan content, if any."""
    path = cache_dir() / f"{cache_key(profile, tier, board_model)}.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return Estimate(raw["board"], raw["tier"], {k: float(v) for k, v in raw["tests"].items()})


def estimate_plan(profile, tier: str, board_model: str | None = None, use_cache: bool = True) -> Estimate:
    """The rig time of ``tier``'s tests for ``profile`` (see the module docstring)."""
    if use_cache:
        hit = cached(profile, tier, board_model)
        if hit is not None:
            return hit
    with tempfile.TemporaryDirectory(prefix="bmsrig-estimate-") as tmp:
        run_dir = Path(tmp) / "dry-run"
        cmd = [sys.executable, "-m", "pytest", str(PLANS_DIR), *PLAN_SESSION_ARGS,
               "--rootdir", str(PLANS_DIR), "-o", "testpaths=",
               "--rig", "sim", "--board", str(profile.source or profile.name), "--tier", tier,
               "--seed", str(SEED), "--run-dir", str(run_dir), "--run-id", "estimate", "-q", "--tb=no",
               "--no-progress"]
        if board_model:
            cmd += ["--board-model", board_model]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if not (run_dir / "record.jsonl").is_file():
            raise ConfigError(profile.source or profile.name, "bmsrig plan",
                              f"the dry run on the virtual bench wrote no record (exit {proc.returncode}): "
                              f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        tests = rig_time_per_test(run_dir)
    est = Estimate(profile.name, tier, tests)
    try:
        d = cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{cache_key(profile, tier, board_model)}.json").write_text(json.dumps(est.to_dict(), indent=1))
    except OSError:
        pass  # no cache: the next plan dry-runs again
    return est


def format_plan(est: Estimate) -> str:
    """The table ``bmsrig plan`` prints: one line per test, then the total."""
    from .progress import hms

    width = max([len(k) for k in est.tests] + [10])
    lines = [f"plan for {est.board}, tier {est.tier}: estimated rig time per test", ""]
    for nodeid, s in est.tests.items():
        lines.append(f"  {nodeid:<{width}}  {hms(s):>9}  ({s:>9.0f} s)")
    lines += ["", f"  {'total':<{width}}  {hms(est.total_s):>9}  ({est.total_s:>9.0f} s, {est.total_s / 3600:.2f} h)",
              f"  method: {est.method}"]
    return "\n".join(lines)
