"""BAL-007's scenario per board: the pack held in the state the profile balances in, the
stall look-back long enough for the board's reporting step (testplans/test_balancing_convergence.py)."""

from rig.profile import load_profile
from testplans import procedures
from testplans import test_balancing_convergence as conv


def test_a_board_that_balances_at_rest_gets_a_trickle_it_still_reads_as_rest():
    ref = load_profile("reference-16s-lfp")
    hold = conv.BalancingHold(ref)
    st = ref.balancing.strategies
    assert hold.state == "rest" and hold.cycle_s is None
    assert 0.0 < hold.i_hold_a <= st.rest_current_a
    assert hold.i_hold_a < ref.bleed_current_nominal_a  # the high cell's bleed outruns it


def test_a_charge_only_board_is_cycled_through_its_charge_state_with_a_small_net_charge():
    nw = load_profile("northwind-nw16c")
    hold = conv.BalancingHold(nw)
    st = nw.balancing.strategies
    assert hold.state == "charge" and hold.i_hold_a == procedures.pack_current_in(nw, "charge")
    assert hold.i_hold_a >= st.float_current_a  # the board reads charge in that phase
    assert hold.i_other_a < -st.rest_current_a  # and discharge (no balancing) in the other
    mean = 0.5 * (hold.i_hold_a + hold.i_other_a)
    assert 0.0 < mean < nw.bleed_current_nominal_a * hold.fraction  # the others climb, the high cell falls
    # one phase moves the scaled cells' SOC by no more than SWING_SOC
    scale = conv.capacity_scale(nw, hold)
    swing = hold.i_hold_a * hold.t_hold_s / 3600.0 / (nw.capacity_ah * scale)
    assert swing <= conv.SWING_SOC + 1e-12
    assert hold.whole_cycles(hold.cycle_s * 1.2) == 2 * hold.cycle_s


def test_a_float_only_board_holds_a_float_current_and_the_trim_follows_what_the_cells_received():
    gn = load_profile("gannet-gn24")
    hold = conv.BalancingHold(gn)
    st = gn.balancing.strategies
    assert hold.state == "float" and st.rest_current_a < hold.i_hold_a < st.float_current_a
    before = hold.i_other_a
    hold.correct(hold.mean_a - 0.002)  # the cells received 2 mA less than wanted
    assert abs((hold.i_other_a - before) - 0.004) < 1e-12  # the other phase (half the cycle) gives 4 mA less back


def test_an_absolute_start_board_is_left_without_a_charger():
    ks = load_profile("kestrel-ks8")
    hold = conv.BalancingHold(ks)
    assert hold.absolute and hold.cycle_s is None and hold.i_hold_a == 0.0
    assert "charger off" in hold.conditions()["scenario"]


def test_the_stall_look_back_spans_the_reporting_step_and_update_period():
    fj = load_profile("fjord-fj12")  # 10 mV steps, a report a second
    s = fj.sampling
    for scale in (1.0, 0.0075):
        look = conv.stall_lookback_s(fj, scale)
        # a good board's closing (GOOD_CLOSING_MV_PER_H at full capacity) crosses one step and the least fall
        closing_mv = conv.GOOD_CLOSING_MV_PER_H * look / scale / 3600.0
        assert closing_mv >= s.resolution_mv + conv.STALL_MIN_FALL_MV - 1e-9
        assert look >= 10 * s.report_period_s
    ref = load_profile("reference-16s-lfp")
    assert conv.stall_lookback_s(fj, 1.0) > conv.stall_lookback_s(ref, 1.0)
    # a board balancing half the time closes half as fast: twice the look-back
    assert conv.stall_lookback_s(ref, 1.0, 0.5) == 2 * conv.stall_lookback_s(ref, 1.0)
