"""Bench counterpart of the ``daly`` link kind: the simulated board speaking the Daly protocol on a pty.

It answers requests for data ids 0x90..0x98 from the board model's last
:class:`~rig.sim.harness.Telemetry`, encoded by :mod:`rig.links.daly_protocol` as a Daly board
lays them out (0x95 one frame per 3 cells, 0x96 one per 7 sensors); other ids get no answer
(as a Daly board ignores what it does not know).

What the board model knows and a Daly board reports:

- temperatures: the first ``temperature_count`` telemetry temperatures (cell NTCs, then the
  bleed-resistor NTC), rounded to 1 °C, offset 40;
- failure bits (0x98): each of ``hvc lvc ot ut`` sets the first bit the profile's ``flags`` maps it to;
- current: sent with the sign the profile's ``current_positive`` names;
- SOC and remaining capacity: the bench estimates no state of charge (sent as 0).
"""

from __future__ import annotations

import struct

import numpy as np

from ..links import daly_protocol as daly
from ..links.daly_link import DEFAULT_FLAG_BITS
from .pty_slave import PtySlave


class DalySlave(PtySlave):
    """``DalySlave(n_cells, temperature_count, flags, current_positive).start().address``."""

    def __init__(self, n_cells: int, temperature_count: int, flags: dict | None = None,
                 current_positive: str = "charge"):
        super().__init__()
        self.n_cells = int(n_cells)
        self.temperature_count = int(temperature_count)
        bits = {**DEFAULT_FLAG_BITS, **(flags or {})}
        self.flag_bit = {k: v[0] for k, v in bits.items() if v}
        self.current_sign = 1.0 if current_positive == "charge" else -1.0
        self._replies: dict[int, list[bytes]] = {}
        self.life = 0

    # ----------------------------------------------------------------- board side
    def update(self, tel) -> None:
        """Encode a Telemetry into the reply image (thread-safe: replies see all or nothing)."""
        n = self.n_cells
        cell_v = np.asarray(tel.cell_v, float)
        temps = np.asarray(tel.temps_c, float)[: self.temperature_count]
        failures = 0
        for name, bit in self.flag_bit.items():
            if getattr(tel, name, False):
                failures |= 1 << bit
        self.life = (self.life + 1) & 0xFF
        imax, imin = int(np.argmax(cell_v)), int(np.argmin(cell_v))
        t_raw = np.round(temps) if len(temps) else np.zeros(1)
        jmax, jmin = int(np.argmax(t_raw)), int(np.argmin(t_raw))
        pack_a = float(tel.pack_a)
        data = {
            daly.SOC_V_I: [daly.build_soc(float(tel.pack_v), self.current_sign * pack_a)],
            daly.MINMAX_CELL: [struct.pack(">HBHBxx", round(cell_v[imax] * 1000), imax + 1,
                                           round(cell_v[imin] * 1000), imin + 1)],
            daly.MINMAX_TEMP: [bytes([_t(t_raw[jmax]), jmax + 1, _t(t_raw[jmin]), jmin + 1, 0, 0, 0, 0])],
            daly.MOS: [daly.build_mos(str(tel.state), tel.charge_fet, tel.discharge_fet, self.life)],
            daly.STATUS: [daly.build_status(n, self.temperature_count, pack_a > 0, pack_a < 0)],
            daly.CELL_VOLTAGES: daly.build_cell_frames(cell_v),
            daly.TEMPERATURES: daly.build_temp_frames(temps) if len(temps) else [],
            daly.BALANCE: [daly.build_balance(tel.balancing)],
            daly.FAILURES: [daly.build_failures(failures)],
        }
        replies = {k: [daly.encode_frame(daly.BOARD, k, d) for d in v] for k, v in data.items()}
        with self.lock:
            self._replies = replies

    def publish(self, tel, t: float) -> None:
        """One telemetry cycle at board time ``t`` (s): the replies now carry it."""
        self.update(tel)

    def hold(self, tel) -> None:
        """Serve ``tel`` until the next cycle."""
        self.update(tel)

    # ----------------------------------------------------------------- protocol
    def answer(self, buf: bytes):
        used, data_id = daly.parse_request(buf)
        if data_id is None:
            return used, None
        with self.lock:
            frames = self._replies.get(data_id)
        return used, (b"".join(frames) if frames else None)


def _t(celsius: float) -> int:
    return int(min(255, max(0, round(celsius + daly.TEMP_OFFSET_C))))
