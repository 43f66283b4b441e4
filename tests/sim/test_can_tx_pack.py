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


SYNTHETIC_DBC = '''VERSION ""
NS_ :
BS_:
BU_: BMS
BO_ 291 Mixed: 8 BMS
 SG_ Page M : 7|8@0+ (1,0) [0|3] "" Vector__XXX
 SG_ BigSigned m0 : 15|12@0- (0.5,-3) [-1000|1000] "" Vector__XXX
 SG_ Little m0 : 24|12@1+ (0.01,1.5) [0|40] "" Vector__XXX
 SG_ Flag m0 : 36|1@1+ (1,0) [0|1] "" Vector__XXX
 SG_ Wide m1 : 8|32@1+ (1,0) [0|4294967295] "" Vector__XXX
 SG_ Spare m1 : 47|8@0- (1,0) [-128|127] "" Vector__XXX
 SG_ Counter : 60|4@1+ (1,0) [0|15] "" Vector__XXX
BO_ 292 Floats: 8 BMS
 SG_ Real : 0|32@1- (1,0) [0|0] "" Vector__XXX
 SG_ Scaled : 32|16@1+ (0.1,-10) [0|0] "" Vector__XXX
BO_ 293 Overlap: 8 BMS
 SG_ Sel M : 0|8@1+ (1,0) [0|1] "" Vector__XXX
 SG_ RawByte : 8|8@1+ (1,0) [0|255] "" Vector__XXX
 SG_ Nibble m1 : 12|4@1+ (1,0) [0|15] "" Vector__XXX
 SG_ BigPart m1 : 23|8@0+ (1,0) [0|255] "" Vector__XXX
SIG_VALTYPE_ 292 Real : 1;
'''


@pytest.mark.parametrize("seed", range(3))
def test_the_packer_gives_message_encodes_bytes_on_mixed_byte_orders_signs_and_floats(seed):
    import cantools

    from rig.sim.can_tx_pack import compile_packer

    # strict=False: "Overlap" has a plain byte over a page's bits (its nodes are packed apart and ORed)
    db = cantools.database.load_string(SYNTHETIC_DBC, database_format="dbc", strict=False)
    rng = np.random.default_rng(seed)
    cases = [("Mixed", ("Page", 0), ["BigSigned", "Little", "Flag"]), ("Mixed", ("Page", 1), ["Wide", "Spare"]),
             ("Floats", None, ["Real", "Scaled"]), ("Overlap", ("Sel", 1), ["RawByte", "Nibble", "BigPart"])]
    for name, mux, mapped in cases:
        m = db.get_message_by_name(name)
        carried = [s for s in m.signals if not s.multiplexer_ids or (mux and mux[1] in s.multiplexer_ids)]
        base = {s.name: float(s.offset) for s in carried}
        if mux:
            base[mux[0]] = mux[1]
        fields = [(n, j) for j, n in enumerate(mapped)]
        pack = compile_packer(m, base, fields, mux)
        assert pack is not None, name
        for _ in range(50):
            vals = []
            for n in mapped:
                s = m.get_signal_by_name(n)
                lo = s.minimum if s.minimum is not None else -1e3
                hi = s.maximum if s.maximum is not None and s.maximum > lo else lo + 1e3
                vals.append(None if rng.random() < 0.1 else float(rng.uniform(lo, hi)) if s.scale != 1
                            else int(rng.integers(int(lo), int(hi) + 1)))
            d = dict(base)
            d.update({n: v for n, v in zip(mapped, vals) if v is not None})
            assert _outcome(pack, vals) == _outcome(lambda _v: m.encode(d, strict=False), vals), (name, vals)


def _outcome(fn, vals):
    """What ``fn(vals)`` gives: its bytes, or the type of what it raised (a value the signal cannot carry)."""
    try:
        return bytes(fn(vals))
    except Exception as exc:  # noqa: BLE001 - the same refusal either way
        return type(exc)


def test_payloads_stay_equal_after_frames_stop_looking_up_their_memo():
    from rig.sim import can_tx

    prof = load_profile("reference-16s-lfp")
    fast, slow = _tx(prof, True), _tx(prof, False)
    rng = np.random.default_rng(4)
    try:
        for k in range(can_tx.MEMO_TRIAL + 60):  # cells new every cycle, temperatures repeating
            tel = _telemetry(prof.cells, 1, rng)
            tel.temps_c = np.full(prof.cells + 1, 25.0 + k % 3)
            assert fast.encode(0.25 * k, tel) == slow.encode(0.25 * k, tel), k
    finally:
        fast.close()
        slow.close()


def test_the_transmitters_frame_copies_like_python_can_does():
    """What a receiver of the virtual bus gets from the transmitter's frame equals python-can's
    own deep copy of the same message, field by field, with its own data buffer; and the
    frame's fast copy is used only with the python-can whose Message fields it knows."""
    import copy

    import can

    from rig.sim import can_tx

    frame_class = can_tx._frame_class()
    fields = set(can.Message.__slots__) - {"__weakref__"}
    assert (frame_class is not can.Message) == (fields == can_tx.FRAME_FIELDS)
    frame = frame_class(arbitration_id=0x18FF50E5, is_extended_id=True, data=bytes(range(8)), timestamp=12.5,
                        channel="vcan0", is_rx=False)
    plain = can.Message(arbitration_id=0x18FF50E5, is_extended_id=True, data=bytes(range(8)), timestamp=12.5,
                        channel="vcan0", is_rx=False)
    got, want = copy.deepcopy(frame), copy.deepcopy(plain)
    assert type(got) is can.Message
    assert {f: getattr(got, f) for f in fields} == {f: getattr(want, f) for f in fields}
    assert got.data is not frame.data
    frame.data[0] = 0xAA
    assert got.data[0] == 0
