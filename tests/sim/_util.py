"""Shared helpers for the sim tests (not a test module)."""

from __future__ import annotations

import numpy as np

from rig.profile import load_profile
from rig.sim.world import World

PROFILE = load_profile("reference-16s-lfp")


def world(defects=None, seed=1, **kw) -> World:
    return World(PROFILE, seed=seed, defects=defects, **kw)


def conv_times_after(t: float, profile=PROFILE) -> float:
    """The first conversion instant at or after ``t`` (cycle k at k·period + mute)."""
    s = profile.sampling
    k = np.ceil((t - s.mute_s) / s.period_s - 1e-9)
    return k * s.period_s + s.mute_s


def collect(w: World, seconds: float, step: float = 0.25) -> list:
    """Telemetry snapshots every ``step`` s for ``seconds``."""
    out = []
    for _ in range(int(round(seconds / step))):
        w.advance(step)
        out.append(w.telemetry)
    return out
