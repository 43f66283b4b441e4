"""The simulated reference board's CAN transmitter: Telemetry -> reference DBC frames.

The sim board's firmware knows its own DBC, so the signal names here are hard-wired to
``testplans/profiles/reference-bms.dbc``. Frames go out on a python-can ``virtual`` bus
with ``preserve_timestamps=True`` and ``timestamp`` = virtual time, so the rig's
:class:`~rig.links.can_link.CanBmsLink` (its own virtual bus on the same channel) stamps
samples in rig time. One telemetry cycle, in order: BMS_CellVoltages (every group),
BMS_Temperatures (every group), BMS_BoardTemperatures, BMS_Balancing, BMS_Status (last: it
completes a sample). BMS_Identity (3 pages) goes out on the first cycle and then every
``identity_period_s``.

Values beyond a signal's range saturate, as firmware would clamp them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REFERENCE_DBC = Path(__file__).resolve().parents[2] / "testplans" / "profiles" / "reference-bms.dbc"
CELLS_PER_FRAME = 3
MAX_CELLS = 64


def _limits(sig) -> tuple[float, float]:
    """Physical range representable by a signal's raw bits."""
    if sig.is_signed:
        lo, hi = -(1 << (sig.length - 1)), (1 << (sig.length - 1)) - 1
    else:
        lo, hi = 0, (1 << sig.length) - 1
    a = lo * sig.scale + sig.offset
    b = hi * sig.scale + sig.offset
    return (min(a, b), max(a, b))


class CanTransmitter:
    """Encodes the board's Telemetry into reference-DBC frames on a virtual CAN channel.

    ``send(t, telemetry)``: t is the board's time (virtual, s); telemetry fields as in
    ``rig.sim.harness.Telemetry`` (duck-typed): cell_v (V), temps_c (°C: cells then the
    bleed-resistor NTC), balancing (bool), hvc lvc ot ut, charge_fet discharge_fet
    (True = closed), pack_v (V), pack_a (A), serial, hw_revision, fw_version ("2.3.1"), state.
    """

    def __init__(self, dbc_path: str | Path | None, channel: str, n_cells: int,
                 identity_period_s: float = 1.0, bus=None):
        import can
        import cantools

        self.dbc_path = Path(dbc_path) if dbc_path else REFERENCE_DBC
        if not 1 <= n_cells <= MAX_CELLS:
            raise ValueError(f"the reference DBC carries 1..{MAX_CELLS} cells, not {n_cells}")
        self.n_cells = n = int(n_cells)
        self.channel = channel
        self.identity_period_s = float(identity_period_s)
        self.db = db = cantools.database.load_file(str(self.dbc_path))
        self.bus = bus if bus is not None else can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
        self._own_bus = bus is None

        def msg(name):
            m = db.get_message_by_name(name)
            frame = can.Message(arbitration_id=m.frame_id, is_extended_id=m.is_extended_frame,
                                data=bytes(m.length), dlc=m.length)
            return m, frame

        self._status, self._status_frame = msg("BMS_Status")
        self._bal, self._bal_frame = msg("BMS_Balancing")
        self._cells, self._cells_frame = msg("BMS_CellVoltages")
        self._temps, self._temps_frame = msg("BMS_Temperatures")
        self._board, self._board_frame = msg("BMS_BoardTemperatures")
        self._ident, self._ident_frame = msg("BMS_Identity")
        self._frames_by_id = {
            f.arbitration_id: f for f in (self._status_frame, self._bal_frame, self._cells_frame,
                                          self._temps_frame, self._board_frame, self._ident_frame)
        }
        self._state_code = {str(v): int(k) for k, v in (self._status.get_signal_by_name("State").choices or {}).items()}

        groups = (n + CELLS_PER_FRAME - 1) // CELLS_PER_FRAME
        # a group's cells beyond n_cells (and beyond the DBC's 64) are sent as 0
        self._groups = [list(range(g * CELLS_PER_FRAME, min(MAX_CELLS, (g + 1) * CELLS_PER_FRAME)))
                        for g in range(groups)]
        self._vnames = [f"Cell{i + 1}_Voltage" for i in range(MAX_CELLS)]
        self._tnames = [f"Cell{i + 1}_Temp" for i in range(MAX_CELLS)]
        self._vlim = _limits(self._cells.get_signal_by_name("Cell1_Voltage"))
        self._tlim = _limits(self._temps.get_signal_by_name("Cell1_Temp"))
        sig = self._status.get_signal_by_name
        self._pvlim = _limits(sig("PackVoltage"))
        self._palim = _limits(sig("PackCurrent"))
        self._counter = 0
        self._next_identity = -np.inf
        self._ident_cache: tuple | None = None
        self._ident_data: list[bytes] = []
        self.frames_sent = 0

    # ----------------------------------------------------------------- encoding

    def _identity_pages(self, tel) -> list[bytes]:
        key = (tel.serial, tel.hw_revision, tel.fw_version)
        if key != self._ident_cache:
            serial = str(tel.serial).encode("ascii", errors="replace")[:14].ljust(14, b"\x00")
            hw = str(tel.hw_revision).encode("ascii", errors="replace")[:1] or b"\x00"
            parts = (str(tel.fw_version).split(".") + ["0", "0", "0"])[:3]
            fw = [int(p) if p.isdigit() else 0 for p in parts]
            enc = self._ident.encode
            self._ident_data = [
                enc({"IdentityPage": 0, "Serial_Part0": int.from_bytes(serial[:7], "little")}),
                enc({"IdentityPage": 1, "Serial_Part1": int.from_bytes(serial[7:], "little")}),
                enc({"IdentityPage": 2, "HwRevision": hw[0], "FwMajor": min(fw[0], 255),
                     "FwMinor": min(fw[1], 255), "FwPatch": min(fw[2], 255)}),
            ]
            self._ident_cache = key
        return self._ident_data

    def encode(self, t: float, tel) -> list[tuple[int, bytes]]:
        """The frames of one cycle as (frame id, data), in send order (identity included when due)."""
        n = self.n_cells
        out: list[tuple[int, bytes]] = []
        if t >= self._next_identity:
            fid = self._ident.frame_id
            out.extend((fid, d) for d in self._identity_pages(tel))
            self._next_identity = t + self.identity_period_s
        pad = [0.0] * (len(self._groups) * CELLS_PER_FRAME - n)
        cell_v = np.clip(np.asarray(tel.cell_v, float)[:n], *self._vlim).tolist() + pad
        temps = np.asarray(tel.temps_c, float)
        cell_t = np.clip(temps[:n], *self._tlim).tolist() + pad
        bleed = float(np.clip(temps[n] if len(temps) > n else (temps[-1] if len(temps) else 25.0), *self._tlim))
        enc_v, enc_t = self._cells.encode, self._temps.encode
        vn, tn = self._vnames, self._tnames
        fid_v, fid_t = self._cells.frame_id, self._temps.frame_id
        for g, idx in enumerate(self._groups):
            d = {"CellGroup": g}
            for i in idx:
                d[vn[i]] = cell_v[i]
            out.append((fid_v, enc_v(d, strict=False)))
        for g, idx in enumerate(self._groups):
            d = {"TempGroup": g}
            for i in idx:
                d[tn[i]] = cell_t[i]
            out.append((fid_t, enc_t(d, strict=False)))
        out.append((self._board.frame_id, self._board.encode({"BleedResistor_Temp": bleed}, strict=False)))
        bal = np.zeros(64, bool)
        bal[:n] = np.asarray(tel.balancing, bool)[:n]
        mask = int.from_bytes(np.packbits(bal, bitorder="little").tobytes(), "little")
        out.append((self._bal.frame_id, self._bal.encode({"BalanceMask": mask}, strict=False)))
        self._counter = (self._counter + 1) & 0xF
        out.append((self._status.frame_id, self._status.encode({
            "State": self._state_code.get(str(tel.state), self._state_code.get("fault", 0)),
            "Flag_HVC": int(bool(tel.hvc)), "Flag_LVC": int(bool(tel.lvc)),
            "Flag_OT": int(bool(tel.ot)), "Flag_UT": int(bool(tel.ut)),
            "ChargeFET": int(bool(tel.charge_fet)), "DischargeFET": int(bool(tel.discharge_fet)),
            "PackVoltage": float(np.clip(tel.pack_v, *self._pvlim)),
            "PackCurrent": float(np.clip(tel.pack_a, *self._palim)),
            "CellCount": n, "AliveCounter": self._counter,
        }, strict=False)))
        return out

    def send(self, t: float, telemetry) -> int:
        """Encode one telemetry cycle and put it on the bus, every frame stamped ``t``; return frames sent."""
        frames = self.encode(t, telemetry)
        send = self.bus.send
        frames_by_id = self._frames_by_id
        for fid, data in frames:
            frame = frames_by_id[fid]
            frame.data = data
            frame.timestamp = t
            send(frame)  # the virtual bus copies the message for each receiver
        self.frames_sent += len(frames)
        return len(frames)

    def close(self) -> None:
        if self._own_bus and self.bus is not None:
            self.bus.shutdown()
        self.bus = None
