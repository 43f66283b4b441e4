"""``bmsrig decode`` and ``bmsrig monitor``: the board's decoded view from a capture or live.

``bmsrig decode LOG --board PROFILE`` reads a CAN log through python-can's log readers
(``can.LogReader``: candump ``-L`` ``.log``, Vector ``.asc``, ``.blf``, ``.trc``...) and
prints every complete sample the profile's DBC + signal map decode from it as one JSON
line: ``t`` (s since the first frame of the log), ``cells_v`` (V; ``null`` where the board
reported no valid reading), ``cells_valid``, ``temperatures`` (°C by the profile's roles),
``balancing``, ``flags``, ``fets``, ``identity`` (once every identity signal was seen), and
``pack_v`` (V), ``pack_a`` (A), ``state`` when the map has them, and ``strings`` (each
string's first and last board cell, 1-based) for a board of several strings. A lab checks its map against
a capture before a board is ever connected. Nothing is transmitted.

``bmsrig monitor [--rig ENV] --board PROFILE``: the same view live from the rig's link,
a refreshing table on a terminal, JSON lines otherwise.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .errors import ConfigError
from .profile import TEMPERATURE_ROLES, load_profile


class _LogClock:
    """Rig time while decoding a log: the newest frame's time (s since the log's first frame)."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


class _ListenOnlyBus:
    """Decoding a capture transmits nothing (requests in the map are not sent)."""

    channel_info = "a CAN log"

    def send(self, msg, timeout=None) -> None:
        pass

    def recv(self, timeout=None):
        return None


def sample_json(sample, profile, identity=None, strings=None) -> dict:
    """One decoded sample as the JSON-able dict ``bmsrig decode`` prints (SI units);
    ``strings``: [(name, cells before it, its cells)] of a board of several strings."""
    temps = [float(x) for x in sample.temps_c]
    roles = {}
    for role in TEMPERATURE_ROLES:
        idx = profile.temperatures.indices(role, len(temps), profile.source)
        if idx:
            roles[role] = [round(temps[i], 3) for i in idx]
    out = {
        "t": round(float(sample.t), 6),
        "cells_v": [None if not ok or math.isnan(v) else round(float(v), 6)
                    for v, ok in zip(sample.cell_v, sample.cells_valid)],
        "cells_valid": [bool(x) for x in sample.cells_valid],
        "temperatures": roles,
        "balancing": [bool(x) for x in sample.balancing],
        "flags": {k: bool(getattr(sample.flags, k)) for k in ("hvc", "lvc", "ot", "ut")},
        "fets": {"charge": bool(sample.charge_fet), "discharge": bool(sample.discharge_fet)},
        "identity": None if identity is None else {"serial": identity.serial, "hw_revision": identity.hw_revision,
                                                   "fw_version": identity.fw_version},
    }
    for k in ("pack_v", "pack_a", "state"):
        v = getattr(sample, k, None)
        if v is not None:
            out[k] = round(v, 6) if isinstance(v, float) else v
    if strings:
        out["strings"] = {name: [first + 1, first + n] for name, first, n in strings}
    return out


def _can_profile(board: str, command: str):
    profile = load_profile(board)
    if getattr(profile.link, "dbc", None) is None:
        raise ConfigError(profile.source, "link.kind", f"bmsrig {command} decodes CAN: the profile's link kind is "
                                                       f"{profile.link.kind!r}, not can")
    return profile


def decode_log(log: str | Path, board: str, out=None) -> int:
    """Print the samples decoded from ``log`` as JSON lines; return how many."""
    import can

    from .links.can_link import CanBmsLink

    out = out or sys.stdout
    profile = _can_profile(board, "decode")
    path = Path(log)
    if not path.is_file():
        raise ConfigError(path, None, "CAN log not found")
    clock = _LogClock()
    t0: list[float] = []
    link = CanBmsLink("capture", _ListenOnlyBus(), profile.resolve(profile.link.dbc),
                      profile.resolve(profile.link.signal_map), profile.cells, clock,
                      timeout_s=profile.link.timeout_s, frame_time=lambda ts: ts - t0[0])
    count = seen = 0
    try:
        reader = can.LogReader(str(path))
    except Exception as exc:  # unknown suffix, unreadable header
        raise ConfigError(path, None, f"not a CAN log python-can reads: {exc}") from None
    try:
        for msg in reader:
            if not t0:
                t0.append(msg.timestamp)
            clock.t = msg.timestamp - t0[0]
            link.feed((msg,))
            if link.sample_count > seen:
                seen = link.sample_count
                out.write(json.dumps(sample_json(link.latest_held(), profile, link.identity_if_known(),
                                                  link.plan.strings)) + "\n")
                count += 1
    except (ValueError, OSError) as exc:
        raise ConfigError(path, None, f"CAN log unreadable after {link.frames_received} frames: {exc}") from None
    finally:
        stop = getattr(reader, "stop", None)
        if stop:
            stop()
        link.close()
    if count == 0:
        print(f"bmsrig decode: no complete sample in {path} ({link.frames_received} frames); "
              f"{link.silence_detail()}", file=sys.stderr)
    return count


def _table(row: dict) -> str:
    cells = "  ".join("  --  " if v is None else f"{v:6.4f}" for v in row["cells_v"])
    bal = "".join("B" if b else "." for b in row["balancing"])
    flags = " ".join(k.upper() for k, v in row["flags"].items() if v) or "-"
    temps = "  ".join(f"{k}: {', '.join(f'{x:.1f}' for x in v)}" for k, v in row["temperatures"].items())
    fets = f"CHG {'closed' if row['fets']['charge'] else 'open'}  DSG {'closed' if row['fets']['discharge'] else 'open'}"
    return (f"t = {row['t']:.3f} s\ncells (V): {cells}\nbalancing: {bal}\ntemperatures (°C): {temps}\n"
            f"flags: {flags}    {fets}\n")


def monitor(rig: str | None, board: str, samples: int | None = None, out=None) -> int:
    """Live decoded view from the rig's link, one sample per board update period."""
    from .build import build_rig

    out = out or sys.stdout
    profile = load_profile(board)
    tty = hasattr(out, "isatty") and out.isatty()
    built = build_rig(rig, profile)
    shown = 0
    try:
        ident = None
        try:
            ident = built.link.identity()
        except Exception:  # identity is shown when it comes; the view runs without it
            ident = None
        while samples is None or shown < samples:
            built.clock.sleep(profile.sampling.period_s)
            row = sample_json(built.link.latest(), profile, ident)
            out.write(("\x1b[H\x1b[2J" + _table(row)) if tty else json.dumps(row) + "\n")
            out.flush()
            shown += 1
    finally:
        built.close()
    return shown


def add_subcommands(sub) -> None:
    """Register ``decode`` and ``monitor`` on the ``bmsrig`` parser."""
    dec = sub.add_parser("decode", help="decode a CAN log (candump -L, .asc, .blf) into samples (JSON lines)")
    dec.add_argument("log")
    dec.add_argument("--board", required=True, help="board profile (name or path)")
    dec.set_defaults(func=lambda a: 0 if decode_log(a.log, a.board) else 1)
    mon = sub.add_parser("monitor", help="live decoded view of the board's link")
    mon.add_argument("--rig", default=None, help="rig description (default: the virtual bench)")
    mon.add_argument("--board", required=True, help="board profile (name or path)")
    mon.add_argument("--samples", type=int, default=None, help="stop after this many samples (default: Ctrl-C)")
    mon.set_defaults(func=lambda a: 0 if monitor(a.rig, a.board, a.samples) else 1)
