"""Decision rules: guarded acceptance per ILAC-G8 and simple acceptance."""

import math

import pytest

from rig.measurement import Measurement, acceptance_limits, judge


def test_ilac_g8_example_from_the_reference():
    # ±5 mV with U = 1.5 mV accepts only |error| <= 3.5 mV (REFERENCE.md, ILAC-G8)
    assert acceptance_limits((-5.0, 5.0), 1.5, "guarded") == (-3.5, 3.5)
    assert judge(3.4, (-5, 5), 1.5, "guarded")[0] == "pass"
    assert judge(3.6, (-5, 5), 1.5, "guarded")[0] == "fail"
    assert judge(-3.6, (-5, 5), 1.5, "guarded")[0] == "fail"


def test_simple_acceptance_ignores_uncertainty():
    assert judge(4.9, (-5, 5), 1.5, "simple")[0] == "pass"
    assert judge(5.1, (-5, 5), 1.5, "simple")[0] == "fail"


def test_one_sided_limits_and_missing_values():
    assert judge(0.4, (None, 1.5), 0.001, "guarded")[0] == "pass"
    assert judge(1.4995, (None, 1.5), 0.001, "guarded")[0] == "fail"
    assert judge(None, (0, 1), 0, "guarded")[0] == "fail"
    assert judge(math.nan, (0, 1), 0, "simple")[0] == "fail"


def test_a_guard_band_wider_than_the_tolerance_cannot_pass():
    assert judge(0.0, (-1, 1), 2.0, "guarded")[0] == "fail"


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError):
        acceptance_limits((0, 1), 0, "lenient")


def test_describe_names_value_limits_and_verdict():
    m = Measurement("cell05_error_mv", 7.2, "mV", (-5, 5), 0.6, "ACC-001", {"temp_c": 25}, verdict="fail")
    text = m.describe()
    assert "cell05_error_mv = 7.2 mV" in text and "[-5, 5]" in text and "FAIL" in text and "temp_c=25" in text
