"""Balancing convergence in cell-model mode (BAL-007): "2 Ah at 50 mA ≈ 40 h".

The emulator behaves like cells (OCV + RC, integrating the currents the board draws): one
cell 2 Ah above the others at the top of charge (99.9 % SOC against 97.9 %), and a charger
trickling a current just below the bleed current into the string (CV limit at ~3.5 V per
cell): the high cell bleeds slightly faster than it charges and stays on the knee above the
balancing minimum, while the others climb to meet it. The plan waits on the clock in
chunks (fast-forwarded on the bench) and checks the link between chunks until the high cell
is within the stop delta of the others (their median: on the knee the cells' own spread
shows in Vmax − Vmin) and the board has stopped bleeding it (no bleed on it over two
balancing decisions, watched on the link). What still stood out when the board first let go
of the high cell is judged too (``release_high_cell_excess_mv`` ≤ stop delta +
``RELEASE_MARGIN_MV`` + one reporting step): a board with too wide a stop delta lets go early
and the trickle would lift the others to it all the same.

Why one high cell rather than one low cell: with one low cell every other cell must shed
2 Ah through at most max_channels at once, so the bleed power drives the resistors into
derating and the rate is set by a thermal transient; one high cell is the named scenario
(one bleed, full duty) and its rate is steady.

Prediction from measurements, not from the spec: over the first chunk the emulator's
channel currents give each cell's mean bleed (on-current × duty), so the charge gap closes
at (high cell's bleed) − mean(other cells' bleed); predicted time = 2 Ah / that rate. The
measured convergence time must be within ±20 % of the prediction.

Scaled capacity (the method, and why it does not weaken BAL-007): the emulator's cells are
modelled, so each is modelled with its capacity multiplied by ``scale`` (and the 2 Ah gap
with it) while every current stays as it is. A cell's state moves as dSOC/dt = I / C: with
C and the time axis both multiplied by ``scale`` the SOC trajectory of every cell, and with
it every voltage the board sees and every decision it takes on them, is the same curve (the
cells keep the full-size cell's resistances, thermal mass and self-discharge current: only
the charge capacity is scaled, ``set_cell_model(..., capacity_scale=scale)``); the
bleed closes the gap at the same mA, the gap is ``scale`` times smaller, the hours are
``scale`` times fewer. The board's own timers (balancing interval, measurement pauses,
seconds) stay far shorter than the scaled run (minutes), so they do not see the difference.
``scale`` is chosen from the profile so that the nominal bleed current would close the
scaled gap in ``CONVERGENCE_BUDGET_H``; the prediction, the ±20 % band, the stall look-back
and the timeout are all on the same scaled time axis, and the record states the scale and
the full-capacity equivalent of the measured time (measured / scale).

The pack's state (``balancing.strategies``, :func:`testplans.procedures.enter_balancing_state`):
the board is held in the state its profile balances in, with the pack's mean current over a
cycle a little below the high cell's bleed (:class:`BalancingHold`, recorded as
``scenario``):

- rest (the reference boards): the charger trickles 80 % of the nominal bleed current
  (CV ~3.5 V per cell), below the rest bound, so the board still reads rest.
- charge or float only (a board that bleeds only while a charger drives current): a charger
  held in that state at the top of charge runs into CV/HVC within minutes. The pack is
  cycled instead: a discharge phase, then a phase at :func:`pack_current_in` (the balancing
  state) of ``HOLD_DECISIONS`` balancing intervals, with the discharge sized so the mean
  over the cycle is 80 % of the nominal bleed current times the fraction of the cycle spent
  in the balancing state (the trickle of the rest case, on the board's duty). The SOC swing
  of one phase is kept under ``SWING_SOC`` of the modelled capacity (a floor on the
  capacity scale), so the cells stay at the top of charge; every look at the link is at
  the end of a balancing phase, every window is whole cycles.
- ``start_mode: absolute`` (a cell bleeds above ``start_cell_v``, stops at ``start_cell_v``
  − stop delta, whatever the others read): the charger stays off, since any current into
  the string lifts every cell to the level, where the board bleeds each in turn. The other
  cells sit below the stop level; "converged" is every reported cell at or below the stop
  level (within one reporting margin) with nothing bleeding; the gap is the high cell's
  charge above the stop level (its SOC there found on the emulator's cell model,
  :func:`soc_at_voltage`).

Stall rule: a board that stops closing the gap (it stops bleeding early, or settles into
self-oscillation at its start delta) would keep a rig busy until the timeout, twice the
predicted time. The plan stops waiting when the high cell's excess has fallen by less
than ``STALL_MIN_FALL_MV`` over the look-back and records where it stalled. The look-back
is ``STALL_WINDOW_S`` at full capacity (a good board closes the gap by more than
``GOOD_CLOSING_MV_PER_H`` even at the end), long enough for that closing to cross one
reporting step (``sampling.resolution_mv``) plus the least fall, divided by the fraction of
the cycle spent balancing, scaled with the capacity, and never under ``STALL_MIN_WINDOW_S``
nor ten of the board's update periods.
"""

import numpy as np
import pytest

from rig import progress
from testplans.procedures import (
    balancing_levels,
    cell_name,
    not_reported,
    observe_window,
    pack_current_in,
    top_of_charge_v,
)
from testplans.currents import bleed_currents, current_u_a, idle_currents, on_currents

GAP_AH = 2.0
TOLERANCE = 0.20
CONVERGENCE_BUDGET_H = 0.3
"""Rig time the nominal bleed current should need to close the scaled gap, h."""
STALL_WINDOW_S = 7200.0
"""Look-back of the stall rule at full capacity, s (scaled with the capacity)."""
STALL_MIN_WINDOW_S = 300.0
"""Shortest look-back of the stall rule, s: the board's reported voltages scatter by a few
tenths of a mV, so a scaled look-back under a few minutes would see a stall in the scatter."""
STALL_MIN_FALL_MV = 1.0
"""Least fall of the high cell's excess over the look-back that still counts as progress, mV."""

GOOD_CLOSING_MV_PER_H = 2.0
"""Least closing rate of the high cell's excess a good board keeps up to the end, mV/h at full capacity."""
RELEASE_MARGIN_MV = 2.0
"""Scatter of the board's reported cell voltages about the filtered values it decides on, mV
(a few tenths of a mV on the bench; with the median against Vmin, a good board lets go of the
high cell within stop delta + this + one reporting step of the others' median)."""
HOLD_DECISIONS = 3
"""Balancing intervals per balancing phase of a charge/float cycle."""
SWING_SOC = 0.001
"""Largest SOC swing of one phase of a charge/float cycle (0.1 % of the modelled capacity)."""
TRICKLE_OF_BLEED = 0.8
"""Rest: the trickle as a fraction of the nominal bleed current."""
HIGH_CELL_FALL_SOC = 0.002
"""Charge/float cycle: how far the high cell's SOC falls while the gap closes (0.2 %): on
LFP's knee a cell ~0.5 % below the top is at the balancing minimum, where the board stops."""


METHOD = ("scaled capacity: the profile's cells (resistances, thermal mass, self-discharge current) modelled "
          "with charge capacity x scale, the gap x scale, every current unchanged (dSOC/dt = I/C): the same SOC "
          "and voltage trajectory on a time axis x scale; prediction, ±20 % band, stall look-back and timeout "
          "on the same axis")


class BalancingHold:
    """Keeps the pack in the profile's balancing state for the whole run (module docstring).

    ``state``: the balancing state; ``i_hold_a``: the pack current in it (A, + charge);
    ``cycle_s``: a charge/float cycle (None at rest: one steady current); ``fraction``: the
    part of the time spent in the balancing state; ``i_other_a`` and the phase lengths (s)
    of the cycle. Times are rig time, s.
    """

    def __init__(self, profile):
        b = profile.balancing
        self.profile = profile
        self.state = b.strategies.balancing_state() or "rest"
        self.absolute = b.start_mode == "absolute"
        bleed = profile.bleed_current_nominal_a
        self.v_limit = profile.cells * (b.min_cell_v + 0.100)  # CV ~3.5 V per cell at the top
        if self.state == "rest":
            self.i_hold_a = 0.0 if self.absolute else min(TRICKLE_OF_BLEED * bleed, 0.9 * b.strategies.rest_current_a)
            self.cycle_s, self.fraction, self.t_hold_s, self.i_other_a = None, 1.0, 0.0, 0.0
        else:
            self.i_hold_a = pack_current_in(profile, self.state)
            self.t_hold_s = HOLD_DECISIONS * b.interval_s
            self.cycle_s, self.fraction = 2.0 * self.t_hold_s, 0.5
            # the mean current over a cycle: this share of the high cell's mean bleed (the
            # rest lost by the high cell over the gap is HIGH_CELL_FALL_SOC of its charge)
            self.share = 0.0 if self.absolute else min(0.98, max(0.5, 1.0 - HIGH_CELL_FALL_SOC * profile.capacity_ah / GAP_AH))
            self.set_mean(self.share * bleed * self.fraction)

    def set_mean(self, mean_a: float) -> None:
        """Charge/float cycle: the discharge phase sized for a mean of ``mean_a`` over the cycle, A."""
        self.mean_a = mean_a
        self.bias_a = getattr(self, "bias_a", 0.0)
        self.i_other_a = 2.0 * (mean_a + self.bias_a) - self.i_hold_a  # the same phase length

    def correct(self, string_mean_a: float) -> None:
        """Charge/float cycle: a charger's set points are not its delivered current to 1 %,
        and 1 % of the phase current is the whole mean: trim the discharge phase by what
        the string actually carried over the last whole cycles (``string_mean_a``, A,
        measured on the emulator's channels) against the mean wanted (integral action)."""
        if self.cycle_s is None:
            return
        self.bias_a += self.mean_a - string_mean_a
        self.i_other_a = 2.0 * (self.mean_a + self.bias_a) - self.i_hold_a

    def least_scale(self) -> float:
        """The capacity scale under which one phase would swing the SOC more than SWING_SOC."""
        if self.cycle_s is None:
            return 0.0
        return abs(self.i_hold_a) * self.t_hold_s / 3600.0 / (SWING_SOC * self.profile.capacity_ah)

    def whole_cycles(self, seconds: float) -> float:
        """``seconds`` rounded up to whole cycles, s."""
        if self.cycle_s is None:
            return seconds
        return self.cycle_s * max(1, int(np.ceil(seconds / self.cycle_s - 1e-9)))

    def _set(self, pack_source, amps: float) -> None:
        if amps == 0.0:
            pack_source.off()
        else:
            pack_source.set_current(amps, voltage_limit_v=self.v_limit if amps > 0 else None)

    def start(self, pack_source) -> dict:
        """Enter the state (the steady current at rest); returns the conditions to record."""
        self._set(pack_source, self.i_hold_a if self.cycle_s is None else self.i_other_a)
        return self.conditions()

    def run(self, pack_source, clock, seconds: float) -> None:
        """Let ``seconds`` (whole cycles) of rig time pass; a cycle ends in the balancing state."""
        if self.cycle_s is None:
            clock.sleep(seconds)
            return
        for _ in range(int(round(seconds / self.cycle_s))):
            self._set(pack_source, self.i_other_a)
            clock.sleep(self.t_hold_s)
            self._set(pack_source, self.i_hold_a)
            clock.sleep(self.t_hold_s)

    def in_state(self, pack_source, clock, measure_fn):
        """Run ``measure_fn()`` in the balancing state, then give back its charge (a cycle's
        other phase as long as it took): the SOC stays where the cycles keep it."""
        if self.cycle_s is None:
            return measure_fn()
        t0 = clock.now()
        self._set(pack_source, self.i_hold_a)
        clock.sleep(self.profile.balancing.interval_s)  # the board decides in the state
        out = measure_fn()
        self._set(pack_source, self.i_other_a)
        clock.sleep(clock.now() - t0)
        return out

    def conditions(self) -> dict:
        """The scenario as recorded in the measurement conditions."""
        if self.cycle_s is None:
            what = ("charger off (absolute start)" if self.absolute and self.i_hold_a == 0.0
                    else f"steady {self.i_hold_a:.4g} A (trickle, reads as {self.state})")
            return {"pack_state": self.state, "scenario": what, "pack_current_a": round(self.i_hold_a, 4)}
        return {"pack_state": self.state, "pack_current_a": round(self.i_hold_a, 4),
                "scenario": (f"cycle of {self.cycle_s:g} s: {self.t_hold_s:g} s at {self.i_other_a:+.4g} A, then "
                             f"{self.t_hold_s:g} s at {self.i_hold_a:+.4g} A ({self.state}); mean "
                             f"{0.5 * (self.i_hold_a + self.i_other_a) * 1e3:.3g} mA"),
                "balancing_fraction": self.fraction, "mean_share_of_high_cell_bleed": round(self.share, 3)}


def capacity_scale(profile, hold: BalancingHold | None = None, gap_ah: float = GAP_AH) -> float:
    """The factor on the modelled cell capacity (<= 1): the nominal bleed current, for the
    fraction of the time the board balances, closes the scaled gap in
    :data:`CONVERGENCE_BUDGET_H`, and never under the swing floor of a charge/float cycle
    (:meth:`BalancingHold.least_scale`); 1 for a board whose full gap already does."""
    fraction = hold.fraction if hold is not None else 1.0
    nominal_h = gap_ah / (profile.bleed_current_nominal_a * fraction)
    floor = hold.least_scale() if hold is not None else 0.0
    return min(1.0, max(CONVERGENCE_BUDGET_H / nominal_h, floor))


def stall_lookback_s(profile, scale: float, fraction: float = 1.0) -> float:
    """Look-back of the stall rule on the scaled time axis, s (module docstring)."""
    s = profile.sampling
    full = max(STALL_WINDOW_S, 3600.0 * (s.resolution_mv + STALL_MIN_FALL_MV) / GOOD_CLOSING_MV_PER_H) / fraction
    return max(full * scale, STALL_MIN_WINDOW_S, 10.0 * s.report_period_s)


def soc_at_voltage(emulator, clock, profile, volts: float, lo: float = 0.95, hi: float = 0.9995,
                   passes: int = 3) -> float:
    """SOC (0..1) at which the emulator's cell model rests at ``volts`` (V): every channel a
    cell at another SOC across ``[lo, hi]``, the read-back voltages bracket the level; each
    pass narrows the bracket. The board's draw (µA..mA) moves no reading by 0.1 mV."""
    n = emulator.n_channels
    for _ in range(passes):
        socs = np.linspace(lo, hi, n)
        emulator.set_cell_model(profile.chemistry, profile.capacity_ah, socs)
        clock.sleep(1.0)
        v = np.asarray(emulator.read_voltages(), dtype=float)
        k = int(np.searchsorted(v, volts))
        lo, hi = float(socs[max(k - 1, 0)]), float(socs[min(k, n - 1)])
    return 0.5 * (lo + hi)


@pytest.mark.requirement("BAL-007")
def test_balancing_convergence(profile, emulator, pack_source, clock, link, measure, capture):
    """One cell 2 Ah high at the top of charge (absolute start: its charge above the stop
    level) converges in the time the measured bleed current and duty predict (±20 %), the
    pack held in the state the board balances in."""
    b = profile.balancing
    n = emulator.n_channels
    hold = BalancingHold(profile)
    hi_cell = n // 2
    others = np.arange(n) != hi_cell
    idle_v = idle_currents(emulator, clock)
    soc_high = 0.999
    soc = np.full(n, soc_high - GAP_AH / profile.capacity_ah)
    soc[hi_cell] = soc_high
    gap_full_ah = GAP_AH
    levels = balancing_levels(profile, link)
    if hold.absolute:  # the gap is the high cell's charge above the stop level
        soc_stop = soc_at_voltage(emulator, clock, profile, levels.stop_v)
        soc[others] = min(soc_high - GAP_AH / profile.capacity_ah, soc_stop - 0.01)
        gap_full_ah = (soc_high - soc_stop) * profile.capacity_ah
    scale = capacity_scale(profile, hold, gap_full_ah)
    cap = profile.capacity_ah * scale  # modelled charge capacity, Ah
    gap_ah = gap_full_ah * scale  # modelled gap, Ah: the same SOC gap as on the full cell
    progress.phase(f"balancing: convergence (capacity x {scale:.3g}, {hold.state})")
    # the profile's cells (resistances, thermal mass, self-discharge current) with their
    # charge capacity x scale: rig.protocols.CellEmulator.set_cell_model
    emulator.set_cell_model(profile.chemistry, profile.capacity_ah, soc, capacity_scale=scale)
    scenario = hold.start(pack_source)
    soc_seen = [clock.now(), np.asarray(emulator.read_soc(), dtype=float)]

    def string_mean_a() -> float:
        """Mean current the charger drove into the cells since the last call, A (+ charge):
        the SOC gained by the cells that do not bleed (their median, the emulator's
        cell-model readout) × the modelled capacity (self-discharge included: the net)."""
        now, soc_now = clock.now(), np.asarray(emulator.read_soc(), dtype=float)
        gained = float(np.median(soc_now[others] - soc_seen[1][others]))
        dt = max(now - soc_seen[0], 1e-9)
        soc_seen[:] = [now, soc_now]
        return gained * cap * 3600.0 / dt
    chunk = hold.whole_cycles(max(12 * b.interval_s, 600.0 * scale))  # s: the first (rate) window
    t0 = clock.now()
    rows = [(0.0, link.latest())]
    # first chunk: measure the bleed currents the prediction rests on
    hold.run(pack_source, clock, chunk)
    i_mean = np.asarray(emulator.read_currents(aperture_s=chunk))
    string_first_a = string_mean_a()
    i_on = hold.in_state(pack_source, clock,
                         lambda: on_currents(emulator, clock, profile, reads=24, span_s=2 * b.interval_s))
    # the charger's string current flows through every channel of a real emulator: out with it
    i_on, i_mean, bleeding = bleed_currents(i_on, i_mean, idle_v, b.bleed_current_ma[0] * 1e-3)
    rows.append((clock.now() - t0, link.latest()))
    bleed_hi_a = float(i_mean[hi_cell])
    floor_v = top_of_charge_v(profile, link) + levels.margin_v  # the high cell stays above, V
    if hold.cycle_s is not None and not hold.absolute and bleed_hi_a > 0:
        hold.set_mean(hold.share * bleed_hi_a)  # the measured mean bleed, not the nominal
        hold.correct(string_first_a)
        scenario = hold.conditions()
    rate = float(i_mean[hi_cell] - (0.0 if hold.absolute else np.mean(i_mean[others])))  # A: how fast the gap closes
    duty = float(np.sum(i_mean[bleeding]) / np.sum(i_on[bleeding])) if bleeding.any() else 0.0
    measure("bleed_on_current_ma", float(np.mean(i_on[bleeding]) * 1e3) if bleeding.any() else None, "mA",
            limits=b.bleed_current_ma, uncertainty=0.5, conditions={"channels": int(bleeding.sum()), **scenario})
    predicted = gap_ah * 3600.0 / rate if rate > 0 else None  # s
    # U (k=2): the high cell's current reading and the mean of the others' (emulator readback)
    u_rate = float(np.sqrt(current_u_a(i_mean[hi_cell]) ** 2 + np.mean(current_u_a(i_mean[others])) ** 2 / others.sum()))
    measure("gap_closing_rate_ma", rate * 1e3, "mA", limits=(0.0, None), uncertainty=u_rate * 1e3,
            conditions={"duty": round(duty, 4), "channels_bleeding": int(bleeding.sum()), "window_s": chunk, **scenario})

    def excess_v(sample):
        """How far the high cell still stands above its goal, V: the others' median (not Vmax
        − Vmin: on the knee the cells' own spread shows too); absolute start: above the stop
        level, the highest cell."""
        v = np.asarray(sample.cell_v, dtype=float)
        if hold.absolute:
            return float(v.max() - levels.stop_v)
        return float(v[hi_cell] - np.median(v[others]))

    def above_others_v(sample) -> float:
        """How far the high cell stands above the highest other cell, V."""
        v = np.asarray(sample.cell_v, dtype=float)
        return float(v[hi_cell] - v[others].max())

    def standing_out_v(sample) -> float:
        """What is left to close, V: absolute start, the highest cell above the stop level;
        delta, the high cell above the others' median; in a charge/float cycle (the high cell
        falls only HIGH_CELL_FALL_SOC, so the cells meet near the top of LFP's knee, where the
        others' own spread reaches the stop delta) above the others' median or above the
        highest other cell, whichever is less."""
        if hold.absolute or hold.cycle_s is None:
            return excess_v(sample)
        return min(excess_v(sample), above_others_v(sample))

    def converged(sample) -> bool:
        if hold.absolute:  # every cell at or below the stop level (one reporting margin), none bleeding
            return excess_v(sample) <= levels.margin_v and not any(sample.balancing)
        # the board has let go of the high cell and it no longer stands out (standing_out_v)
        return not sample.balancing[hi_cell] and standing_out_v(sample) < b.stop_delta_mv * 1e-3

    def watch_decisions() -> list:
        """Two balancing decisions watched on the link in the balancing state (a cycle gives
        the charge back afterwards), the samples."""
        return hold.in_state(pack_source, clock, lambda: observe_window(
            link, clock, profile, 2.0 * b.interval_s, "convergence: does the board still bleed the high cell"))

    no_mask = not_reported(link, "balancing")
    bled_a = 0.5 * max(duty, 0.1) * b.bleed_current_ma[0] * 1e-3  # A: the high cell's channel above the others'

    def high_cell_bled() -> bool:
        """A board that reports no balancing mask: the rig's observation, the high cell's
        channel current above the others' median over two balancing decisions."""
        i = np.asarray(emulator.read_currents(aperture_s=2.0 * b.interval_s), dtype=float)
        return float(i[hi_cell] - np.median(i[others])) > bled_a

    release_excess = None  # V: what still stood out when the board first let go of the high cell
    converged_at = None
    stalled = None  # (elapsed s, excess V) where the gap stopped closing
    timeout = 2.0 * (predicted or 0.0) if predicted else 0.0
    look = hold.whole_cycles(max(2 * b.interval_s, 60.0 * scale))  # s between looks (60 s at full capacity)
    lookback_s = stall_lookback_s(profile, scale, hold.fraction)
    lookback = max(2, int(np.ceil(lookback_s / look)))
    excess = [standing_out_v(rows[-1][1])]
    while predicted and clock.now() - t0 < timeout:
        hold.run(pack_source, clock, look)  # ends in the balancing state
        hold.correct(string_mean_a())
        if hold.cycle_s is not None and not hold.absolute and bleed_hi_a > 0:
            # the high cell falls at (1 - share) of its bleed until it nears the balancing
            # minimum; from there the cycle's mean matches its bleed and holds it
            near_floor = float(link.latest().cell_v[hi_cell]) < floor_v
            hold.set_mean((1.0 if near_floor else hold.share) * bleed_hi_a)
        s = link.latest()
        released = False
        if no_mask:  # no mask to watch: two decisions of the high cell's channel current say
            s, released = watch_decisions()[-1], not high_cell_bled()
        elif not s.balancing[hi_cell]:  # a look that finds the high cell not bled: two decisions say
            seen = watch_decisions()
            s, released = seen[-1], not any(x.balancing[hi_cell] for x in seen)
        rows.append((clock.now() - t0, s))
        excess.append(standing_out_v(s))
        if released and release_excess is None:
            release_excess = excess[-1]
        if released and converged(s):
            converged_at = clock.now() - t0
            break
        if len(excess) > lookback and excess[-1 - lookback] - min(excess[-lookback:]) < STALL_MIN_FALL_MV * 1e-3:
            stalled = (clock.now() - t0, excess[-1])
            break
    pack_source.off()
    final = rows[-1][1]  # the last look's sample, in the balancing state
    emulator.set_source_mode()
    cond = {"gap_ah": round(gap_full_ah, 4), "capacity_ah": profile.capacity_ah, "capacity_scale": round(scale, 6),
            "modelled_capacity_ah": round(cap, 4), "modelled_gap_ah": round(gap_ah, 5), "method": METHOD,
            "high_cell": hi_cell + 1, "soc_high": soc_high, **scenario,
            "start_mode": b.start_mode, "predicted_h": None if predicted is None else round(predicted / 3600, 2),
            "duty": round(duty, 4), "rate_ma": round(rate * 1e3, 3),
            "stall_lookback_s": round(lookback * look, 1), "high_cell_floor_v": round(floor_v, 4), "string_mean_first_chunk_ma": round(string_first_a * 1e3, 3)}
    if hold.absolute:
        cond.update(stop_level_v=round(levels.stop_v, 4), soc_at_stop_level=round(soc_stop, 5))
    if stalled is not None:
        cond.update(stalled_after_h=round(stalled[0] / 3600, 2), stalled_excess_mv=round(stalled[1] * 1e3, 2),
                    stall_rule=f"excess fell < {STALL_MIN_FALL_MV} mV in {lookback * look / 3600:.3g} h "
                               f"(reporting step {profile.sampling.resolution_mv:g} mV)")
    if converged_at is not None:
        cond["full_capacity_equivalent_h"] = round(converged_at / scale / 3600, 2)
    lo_hi = (None, None) if predicted is None else (predicted * (1 - TOLERANCE) / 3600, predicted * (1 + TOLERANCE) / 3600)
    measure("convergence_time_h", None if converged_at is None else converged_at / 3600, "h", limits=lo_hi,
            uncertainty=look / 3600, conditions=cond)
    final_limit_mv = levels.margin_v * 1e3 if hold.absolute else b.stop_delta_mv
    measure("final_high_cell_excess_mv", standing_out_v(final) * 1e3, "mV", limits=(None, final_limit_mv),
            u_reason="the board's own reported cell voltages (the quantity the board acts on), no rig instrument",
            conditions={**cond, "final_delta_mv": round(final.delta_v * 1e3, 2)})
    # a board that lets go of the high cell early (stop delta too wide) still "converges"
    # when the trickle lifts the others to it: what stood out when it let go says so
    release_limit_mv = final_limit_mv if hold.absolute else b.stop_delta_mv + RELEASE_MARGIN_MV + profile.sampling.resolution_mv
    measure("release_high_cell_excess_mv", None if release_excess is None else release_excess * 1e3, "mV",
            limits=(None, release_limit_mv),
            u_reason="the board's own reported cell voltages (the quantity the board acts on), no rig instrument",
            conditions={**cond, "release_rule": "no bleed on the high cell over two balancing decisions"
                        + (f" (rig observation: emulator channel currents; {no_mask})" if no_mask else "")})
    step = max(1, len(rows) // 2000 + 1)
    rows = rows[::step]
    cols = {"t_s": np.array([r[0] for r in rows])}
    for i in range(n):
        cols[f"v_{cell_name(i)}"] = np.array([float(r[1].cell_v[i]) for r in rows])
    cols["delta_v"] = np.array([r[1].delta_v for r in rows])
    capture("balancing_convergence", cols, {k: ("s" if k == "t_s" else "V") for k in cols},
            kind="balancing_convergence", meta={"high_cell": hi_cell + 1, "gap_ah": round(gap_full_ah, 4)})
