"""The transmitter's packed payloads are the bytes ``Message.encode`` gives, on every shipped
CAN profile, for telemetry in range, beyond what the signals carry, and with every flag."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rig.links.dbc import DbcWarning
from rig.profile import list_profiles, load_profile
from rig.sim.can_tx import CanTransmitter

PUBLIC = Path(__file__).resolve().parents[1] / "links" / "public_dbc"  # boards of public vendor DBCs


def _can_profiles():
    out = []
    for p in list_profiles():
        try:
            prof = load_profile(p)
        except Exception:  # noqa: BLE001 - only the loadable CAN profiles are of interest here
            continue
        if getattr(prof.link, "dbc", None) is not None:
            out.append(prof)
    return out


CAN_PROFILES = _can_profiles() + [load_profile(p) for p in sorted(PUBLIC.glob("*.yaml")) if p.stem[-1] == "s"]


def _tx(prof, fast_path: bool) -> CanTransmitter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        return CanTransmitter(prof.resolve(prof.link.dbc), f"pk-{uuid.uuid4().hex[:8]}", prof.cells,
                              signal_map_path=prof.resolve(prof.link.signal_map), fast_path=fast_path)


def _telemetry(n: int, k: int, rng):
    wide = k % 5 == 4  # beyond what the signals carry: clipped to their range
    return SimpleNamespace(
        cell_v=(3.3 + (40.0 if wide else 0.05) * rng.standard_normal(n)),
        temps_c=25 + (400.0 if wide else 1.0) * rng.standard_normal(n + 1),
        balancing=rng.random(n) < 0.3, hvc=k % 3 == 0, lvc=k % 5 == 0, ot=k % 7 == 0, ut=k % 11 == 0,
        charge_fet=k % 2 == 0, discharge_fet=k % 4 != 1, pack_v=3.3 * n * (1 + (k % 3) * 0.1) * (-1 if wide else 1),
        pack_a=(1e5 if wide else 10.0) - k, serial=f"PK-{k:06d}", hw_revision="C", fw_version=f"2.{k % 4}.1",
        state=("charge", "idle", "fault", "balance")[k % 4])


@pytest.mark.parametrize("prof", CAN_PROFILES, ids=lambda p: p.name)
def test_packed_payloads_equal_message_encode(prof):
    fast, slow = _tx(prof, True), _tx(prof, False)
    rng = np.random.default_rng(3)
    try:
        for k in range(30):
            tel = _telemetry(prof.cells, k, rng)
            assert fast.encode(0.5 * k, tel) == slow.encode(0.5 * k, tel), k
    finally:
        fast.close()
        slow.close()


def test_the_reference_board_packs_every_frame_on_the_fast_path():
    prof = load_profile("reference-16s-lfp")
    fast, slow = _tx(prof, True), _tx(prof, False)
    try:
        sent = {fid for fid, _data in fast.encode(0.0, _telemetry(prof.cells, 0, np.random.default_rng(0)))}
        assert len(sent) >= 3 and sent <= fast.packed_frame_ids
        assert not slow.packed_frame_ids
    finally:
        fast.close()
        slow.close()
