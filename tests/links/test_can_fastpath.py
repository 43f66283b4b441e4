"""The pump's fast path gives the very samples ``Message.decode`` gives, on every shipped CAN
profile, including frames that are short, over-long or carry a multiplexer value the DBC
does not list."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from types import SimpleNamespace

import can
import numpy as np
import pytest

from rig.clock import VirtualClock
from rig.links.can_link import CanBmsLink
from rig.links.dbc import DbcWarning
from rig.profile import list_profiles, load_profile
from rig.sim.can_tx import CanTransmitter


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


CAN_PROFILES = _can_profiles()


def _frames(prof, cycles: int = 40) -> list:
    """A telemetry stream of ``prof``'s board, then the same stream with damaged frames mixed in."""
    dbc, smap = prof.resolve(prof.link.dbc), prof.resolve(prof.link.signal_map)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        tx = CanTransmitter(dbc, f"fp-{uuid.uuid4().hex[:8]}", prof.cells, signal_map_path=smap)
    rng = np.random.default_rng(1)
    n = prof.cells
    out = []
    try:
        for k in range(cycles):
            tel = SimpleNamespace(cell_v=3.3 + 0.05 * rng.standard_normal(n), temps_c=25 + rng.standard_normal(n + 1),
                                  balancing=rng.random(n) < 0.3, hvc=k % 3 == 0, lvc=k % 5 == 0, ot=k % 7 == 0,
                                  ut=False, charge_fet=k % 2 == 0, discharge_fet=True, pack_v=3.3 * n,
                                  pack_a=10.0 - k, serial="FP-000001", hw_revision="C", fw_version="2.3.1",
                                  state="charge" if k % 2 else "idle")
            t = 0.25 * k
            for j, (fid, data) in enumerate(tx.encode(t, tel)):
                data = bytes(data)
                ext = fid > 0x7FF
                out.append(can.Message(arbitration_id=fid, data=data, is_extended_id=ext, timestamp=t))
                if k % 4 == 1 and j == 0:    # a short copy: a decode error, nothing stored
                    out.append(can.Message(arbitration_id=fid, data=data[:1], is_extended_id=ext, timestamp=t))
                if k % 4 == 2 and j == 1:    # a copy with a multiplexer/page byte nobody lists
                    out.append(can.Message(arbitration_id=fid, data=b"\xEE" + data[1:], is_extended_id=ext,
                                           timestamp=t))
                if k % 4 == 3 and j == 2:    # a copy with two excess bytes (ignored, as cantools does)
                    out.append(can.Message(arbitration_id=fid, data=data + b"\x00\x00", is_extended_id=ext,
                                           timestamp=t))
    finally:
        tx.close()
    return out


def _link(prof, fast_path: bool):
    t = [0.0]
    clock = VirtualClock(lambda dt: t.__setitem__(0, t[0] + dt), lambda: t[0])
    bus = can.Bus(interface="virtual", channel=f"fp-{uuid.uuid4().hex[:8]}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        return CanBmsLink("fp", bus, prof.resolve(prof.link.dbc), prof.resolve(prof.link.signal_map), prof.cells,
                          clock, timeout_s=1e9, own_bus=True, fast_path=fast_path)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("prof", CAN_PROFILES, ids=lambda p: Path(str(p.source)).name)
def test_fast_path_samples_equal_message_decode_samples(prof):
    frames = _frames(prof)
    fast, slow = _link(prof, True), _link(prof, False)
    try:
        assert fast.feed(frames) == slow.feed(frames) == len(frames)
        got = fast.history(require_coverage=False)
        want = slow.history(require_coverage=False)
        assert len(got) == len(want) > 0
        for g, w in zip(got, want):
            for name in w.__dataclass_fields__:
                assert _same(getattr(g, name), getattr(w, name)), (w.t, name)
        assert (fast.decode_errors, fast.incomplete_cycles, fast.frames_decoded) == \
            (slow.decode_errors, slow.incomplete_cycles, slow.frames_decoded)
        assert fast.decode_errors > 0  # the damaged frames were counted, not stored
        assert fast.identity_if_known() == slow.identity_if_known()
        assert fast.silence_detail() == slow.silence_detail()
    finally:
        fast.close()
        slow.close()


def test_the_reference_board_decodes_on_the_fast_path():
    prof = next(p for p in CAN_PROFILES if p.link.dbc and "reference" in str(p.link.dbc))
    link = _link(prof, True)
    try:
        assert link.fast_frame_ids == set(link.plan.handlers)
    finally:
        link.close()
