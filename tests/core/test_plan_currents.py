"""The bleed currents a plan reads while a charger drives the string.

On a real cell emulator every channel also sinks the string's charge current; a plan that
took only the pre-test idle draw off judged -8 mA where the board bled 40 mA (a correct
board failed BAL-007 on a BS1200). These readings are what such an emulator reports."""

from __future__ import annotations

import numpy as np
import pytest

from testplans.currents import bleed_currents

N = 16
IDLE_A = np.full(N, 1e-3)          # the board's supply draw per channel, A
CHARGE_A = 0.048                   # string current while charging, A (sunk by every channel)
BLEED_A = 0.040                    # bleed current of the bleeding channel, A
DUTY = 0.5


def readings(string_a: float, bleeding=(8,)):
    on = IDLE_A - string_a
    mean = IDLE_A - string_a
    on = on.copy()
    mean = mean.copy()
    for ch in bleeding:
        on[ch] += BLEED_A
        mean[ch] += DUTY * BLEED_A
    return on, mean


def test_charge_current_through_every_channel_is_taken_out():
    on, mean, bleeding = bleed_currents(*readings(CHARGE_A), IDLE_A, 0.030)
    assert list(np.flatnonzero(bleeding)) == [8]
    assert on[8] == pytest.approx(BLEED_A, abs=1e-9)
    assert float(np.sum(mean[bleeding]) / np.sum(on[bleeding])) == pytest.approx(DUTY, abs=1e-9)


def test_taking_off_the_idle_draw_alone_misses_the_bleed():
    """The plan's former arithmetic (idle taken off, nothing else) on the same readings."""
    on, _ = readings(CHARGE_A)
    old = on - np.median(IDLE_A)
    assert not (old > 0.5 * 0.030).any()          # no channel seen bleeding: the verdict had no sample


def test_at_rest_the_result_is_the_idle_corrected_reading():
    on, mean, bleeding = bleed_currents(*readings(0.0, bleeding=(3, 9)), IDLE_A, 0.030)
    assert list(np.flatnonzero(bleeding)) == [3, 9]
    assert on[[3, 9]] == pytest.approx([BLEED_A, BLEED_A], abs=1e-9)
    assert np.allclose(on[~bleeding], 0.0, atol=1e-12)


def test_half_the_channels_bleeding_falls_back_to_the_idle_draw():
    many = tuple(range(0, N, 2))
    on, mean, bleeding = bleed_currents(*readings(0.0, bleeding=many), IDLE_A, 0.030)
    assert list(np.flatnonzero(bleeding)) == list(many)
    assert on[list(many)] == pytest.approx([BLEED_A] * len(many), abs=1e-9)


def test_nothing_bleeding_reports_no_channel():
    on, mean, bleeding = bleed_currents(*readings(CHARGE_A, bleeding=()), IDLE_A, 0.030)
    assert not bleeding.any()
