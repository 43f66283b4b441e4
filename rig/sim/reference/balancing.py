"""The reference firmware's balancing (decided every ``balancing.interval_s``, at a conversion).

- pack state from the shunt: rest (|I| ≤ rest_current_a), discharge, float (0 < I <
  float_current_a), charge; the strategy duty of that state multiplies the bleed duty;
- only if Vmax ≥ ``min_cell_v_at(mean cell NTC)`` and Vmax − Vmin > start delta (or,
  already balancing, > stop delta); with ``start_mode: absolute``: a cell above
  ``start_cell_v`` (already balancing: above ``start_cell_v`` − stop delta);
- candidates: cells more than stop delta above Vmin (absolute: above that level); at most
  ``max_channels`` and ``max_per_group`` per group of ``group_cells``; never adjacent
  unless ``allow_adjacent``: odd and even channel sets alternate each interval, highest
  voltage first, then (``interleave: fill``) non-adjacent cells of the other parity fill
  free slots (``odd_even``: one parity per decision; the other when it has no candidate);
- duty = strategy × derating(bleed-resistor NTC) (``derating.duty_at``), applied as on/off
  PWM within the interval (on from the decision for duty × interval).

The reported ``balancing`` mask is the decision (cells selected this interval), not the
instantaneous switch state. Units: V, A, s, °C.
"""

from __future__ import annotations

import numpy as np


class Balancing:
    """Balancing part of :class:`~rig.sim.reference.firmware.ReferenceBoard` (a mixin)."""

    def setup_balancing(self, b, fd) -> None:
        """Settings from the profile's ``balancing`` section ``b`` and the typed firmware
        defects ``fd`` (:class:`~rig.sim.defects.BoardDefects`)."""
        start_mv = self.initial_setpoint("balancing.start_delta_mv", b.start_delta_mv)  # factory default if commanded
        stop_mv = self.initial_setpoint("balancing.stop_delta_mv", b.stop_delta_mv)
        self.start_v = fd.balance_start_delta_v if fd.balance_start_delta_v is not None else start_mv * 1e-3
        self.stop_v = fd.balance_stop_delta_v if fd.balance_stop_delta_v is not None else stop_mv * 1e-3
        self.ignore_min_v = fd.balance_mid_soc
        self.no_mute = fd.balance_during_sampling
        self.bleed_all = fd.balance_adjacent
        self.chatter = fd.balance_chatter
        self.no_derating = fd.no_derating
        self.derate_shift = fd.derating_shift_c
        self.temp_comp = not fd.no_temp_compensation
        self.max_ch = b.max_channels
        self.absolute_v = (self.initial_setpoint("balancing.start_cell_v", b.start_cell_v)
                           if b.start_mode == "absolute" else None)
        self.odd_even = b.interleave == "odd_even"
        self.group_of = b.group_of
        self.per_group = b.most_per_group()
        self.allow_adjacent = b.allow_adjacent
        self.st = b.strategies
        self.r_bleed = b.bleed_resistor_ohm
        self.balancing = False
        self.mask = np.zeros(self.n, bool)
        self.duty = 0.0
        self.parity = 0
        self.pwm_off_at = None
        self.state = "rest"
        self.toggles = 0
        self._sel_k = None  # the cycle selections() was computed for
        self._sel = None

    def command_enabled(self) -> bool:
        """False while the profile's ``balancing.enabled_by_command`` has not been satisfied by a
        command the host sent over the link (see :meth:`rig.sim.harness.BoardHarness.commands`)."""
        gate = self.profile.balancing.enabled_by_command
        if gate is None:
            return True
        got = self.h.commands().get(gate.command)
        if got is None:
            return False
        return gate.value is None or bool(got.get(gate.value))

    def pack_state(self, i: float) -> str:
        """``rest`` / ``discharge`` / ``float`` / ``charge`` from the shunt current ``i``, A."""
        st = self.st
        if abs(i) <= st.rest_current_a:
            return "rest"
        if i < 0:
            return "discharge"
        if i < st.float_current_a:
            return "float"
        return "charge"

    def strategy_duty(self, state: str) -> float:
        """Duty multiplier in pack ``state`` (defect ``balance_any_state``: 1 in every state)."""
        return 1.0 if self.firmware_defects.balance_any_state else self.st.duty(state)

    def absolute_level_v(self, was_active: bool) -> float:
        """Absolute start: the level a cell must be above to bleed, V."""
        return self.absolute_v - self.stop_v if was_active else self.absolute_v

    def min_cell_v(self) -> float:
        """The balancing minimum cell voltage at the mean cell NTC, V."""
        b = self.profile.balancing
        if not self.temp_comp:
            return b.min_cell_v
        cells = self.temps["cells"]
        return b.min_cell_v_at(float(cells.sum() / cells.size))  # np.mean: sum / count (the same number)

    def derating_duty(self, t_ntc: float) -> float:
        """Derating duty (0..1) at bleed-resistor NTC ``t_ntc``, °C."""
        if self.no_derating:
            return 1.0
        duty = self.profile.balancing.derating.duty_at(t_ntc - self.derate_shift)
        return max(duty, self.firmware_defects.derating_floor)

    def active(self, v: np.ndarray, was_active: bool, strat: float) -> bool:
        """Whether balancing runs on filtered voltages ``v``."""
        if not self.command_enabled():
            return False
        if strat <= 0.0:
            return False
        vmax, vmin = v.item(v.argmax()), v.item(v.argmin())  # max/min (argmax: cheaper calls)
        if not self.ignore_min_v and vmax < self.min_cell_v():
            return False
        if self.absolute_v is not None:
            return vmax > self.absolute_level_v(was_active)
        delta = vmax - vmin
        if self.chatter:
            return delta > self.start_v
        return delta > self.stop_v if was_active else delta > self.start_v

    def select(self, v: np.ndarray, parity: int) -> np.ndarray:
        """The channels to bleed this interval for filtered voltages ``v``."""
        return self.select_truncated(v, parity)[0]

    def selections(self) -> tuple[tuple[np.ndarray, bool], tuple[np.ndarray, bool]]:
        """``select_truncated(self.v, q)`` for both parities, computed once per conversion
        (the filtered voltages change only there)."""
        if self._sel_k != self.k:
            self._sel = self._select_parities(self.v, (0, 1))
            self._sel_k = self.k
        return self._sel

    def select_truncated(self, v: np.ndarray, parity: int) -> tuple[np.ndarray, bool]:
        """``(mask, truncated)``: truncated when ``max_channels`` left out a candidate that
        could otherwise have been bled (then the voltage order decided the mask).

        Vectorised: cells of one parity are never adjacent, so the first pass (``parity``)
        takes its candidates highest voltage first up to ``max_channels``; the second
        pass takes the other parity's candidates not next to a first-pass cell, in the
        same order, into the slots left."""
        return self._select_parities(v, (parity,))[0]

    def _select_parities(self, v: np.ndarray, parities: tuple) -> tuple:
        """``tuple(select_truncated(v, q) for q in parities)``: the candidates and the voltage
        order found once for all parities (one conversion asks for both)."""
        n = self.n
        cand = self.candidates(v)
        if not cand.any():
            return tuple((np.zeros(n, bool), False) for _ in parities)
        if self.bleed_all:
            return tuple((cand.copy(), False) for _ in parities)
        order = np.argsort(-v, kind="stable")
        if self.odd_even or self.per_group < self.max_ch:
            return tuple(self._select_grouped(cand, order, q) for q in parities)
        ranked = order[cand[order]]  # candidates, highest voltage first (ties: lower index)
        max_ch = self.max_ch
        if self.allow_adjacent:
            return tuple((_first(ranked, max_ch, n), len(ranked) > max_ch) for _ in parities)
        odd = ranked % 2
        return tuple(_pick_parity_first(ranked, odd, q, max_ch, np.zeros(n, bool)) for q in parities)

    def _select_grouped(self, cand: np.ndarray, order: np.ndarray, parity: int) -> tuple[np.ndarray, bool]:
        """``select_truncated`` with groups (``max_per_group``) or ``odd_even`` interleave:
        cell by cell, highest voltage first, each group's count kept."""
        n = self.n
        sel = np.zeros(n, bool)
        per_group: dict[int, int] = {}
        count = 0
        truncated = False
        passes = [None] if self.allow_adjacent else [parity, 1 - parity]
        if self.odd_even:
            passes = [parity if (cand[parity::2]).any() else 1 - parity]
        for pass_parity in passes:
            for i in order:
                if not cand[i] or sel[i] or (pass_parity is not None and (i % 2) != pass_parity):
                    continue
                if pass_parity is not None and ((i > 0 and sel[i - 1]) or (i < n - 1 and sel[i + 1])):
                    continue
                g = self.group_of(int(i))
                if count >= self.max_ch or per_group.get(g, 0) >= self.per_group:
                    truncated = True
                    continue
                sel[i] = True
                count += 1
                per_group[g] = per_group.get(g, 0) + 1
        return sel, truncated

    def candidates(self, v: np.ndarray) -> np.ndarray:
        """The cells a decision may bleed on filtered voltages ``v`` (bool mask)."""
        if self.absolute_v is not None:
            return v > self.absolute_level_v(self.balancing)
        return (v - v.item(v.argmin())) > self.stop_v

    def decide(self, now: float, v: np.ndarray, advance_parity: bool = True) -> None:
        """Take a balancing decision on voltages ``v`` (sets mask, duty, PWM off time)."""
        self.state = self.pack_state(self.i_pack)
        strat = self.strategy_duty(self.state)
        active = self.active(v, self.balancing, strat)
        if active:
            if self.balancing and advance_parity:
                self.parity ^= 1  # odd/even sets alternate each interval
            mask = self.select(v, self.parity)
            duty = strat * self.derating_duty(float(self.temps["bleed_resistor"]))
        else:
            mask = np.zeros(self.n, bool)
            duty = 0.0
        self.balancing = active and bool(mask.any())
        if not np.array_equal(mask, self.mask):
            self.toggles += 1
        self.mask = mask
        self.duty = duty
        if advance_parity or self.chatter:
            self.pwm_off_at = (now + duty * self.interval) if (self.balancing and duty > 0.0) else None
            if self.pwm_off_at is not None and duty >= 1.0:
                self.pwm_off_at = now + self.interval + self.period  # on through the interval


def _pick_parity_first(ranked: np.ndarray, odd: np.ndarray, parity: int, max_ch: int,
                       sel: np.ndarray) -> tuple[np.ndarray, bool]:
    """Up to ``max_ch`` of the ``ranked`` candidates (highest voltage first; ``odd`` = their
    index parity) into the all-False mask ``sel``: those of ``parity`` first, then the others
    that sit beside none of them. Returns (mask, whether a candidate was left out)."""
    same = odd == parity
    first = ranked[same]
    taken = first[:max_ch]
    sel[taken] = True
    room = max_ch - len(taken)
    beside = np.zeros(len(sel) + 2, bool)  # beside[i + 1]: cell i has a first-pass neighbour
    beside[taken] = True
    beside[taken + 2] = True
    second = ranked[~same]
    second = second[~beside[second + 1]]
    sel[second[:room]] = True
    return sel, len(first) > max_ch or len(second) > room


def _first(ranked: np.ndarray, max_ch: int, n: int) -> np.ndarray:
    """The mask of the first ``max_ch`` of the ``ranked`` cells (``n`` cells)."""
    sel = np.zeros(n, bool)
    sel[ranked[:max_ch]] = True
    return sel
