"""How the report writes numbers: U to two significant figures with the value rounded to
match, one-sided limits as ≤ / ≥, no e-notation, no ``None s``; §5 conditions apart from results."""

from __future__ import annotations

import re

import pytest

from reports.conditions import split_conditions
from reports.fmt import clean_text, fmt_limits, fmt_plain, fmt_u, fmt_value_u


@pytest.mark.parametrize("u, text", [(0.166667, "0.17"), (1.11803, "1.1"), (0.0008, "0.00080"), (12.34, "12"),
                                     (0, "0"), (None, "0")])
def test_u_has_two_significant_figures(u, text):
    assert fmt_u(u) == text


@pytest.mark.parametrize("v, u, expect", [(3.65123456, 0.0021, ("3.6512", "0.0021")),
                                          (1.23456, 0.166667, ("1.23", "0.17")),
                                          (1234.5, 12.3, ("1234", "12")),
                                          (-0.0004, 0.01, ("0.000", "0.010")),
                                          (None, 0.1, ("not measured", "0.10"))])
def test_value_is_rounded_to_the_decimal_place_of_u(v, u, expect):
    assert fmt_value_u(v, u) == expect


@pytest.mark.parametrize("x, text", [(2.13163e-10, "0"), (1234567.8, "1234568"), (0.000123456, "0.000123"),
                                     (12.0, "12"), (None, "not measured"), (-3.5e-5, "-0.000035")])
def test_plain_numbers_never_use_e_notation(x, text):
    assert fmt_plain(x) == text and not re.search(r"\de", fmt_plain(x))


@pytest.mark.parametrize("limits, text", [([None, 10], "≤ 10"), (["-inf", 10], "≤ 10"), ([3, None], "≥ 3"),
                                          ([3, "inf"], "≥ 3"), ([3.6, 3.7], "3.6 … 3.7"), ([None, None], "—")])
def test_limits_are_written_as_a_lab_writes_them(limits, text):
    assert fmt_limits(limits) == text


def test_messages_lose_none_units_and_e_notation():
    assert clean_text("latency None s > 1.5 s") == "latency not measured > 1.5 s"
    assert clean_text("idle 2.13163e-10 mA") == "idle 0 mA"
    assert clean_text("None of the cells bled") == "None of the cells bled"


def test_declared_conditions_are_split_from_observations():
    declared, observed = split_conditions({"temp_c": 25.0, "cell": 3, "worst_cell": 2, "final_delta_mv": 4.1,
                                           "pack_current_a": 10.0, "duty": 0.5})
    assert declared == {"temp_c": 25.0, "cell": 3, "pack_current_a": 10.0}
    assert observed == {"worst_cell": 2, "final_delta_mv": 4.1, "duty": 0.5}


def test_built_report_has_no_raw_number_forms(built_run):
    run_dir, _, _ = built_run
    html = (run_dir / "report.html").read_text()
    body = re.sub(r"<svg.*?</svg>", "", html, flags=re.S)  # plots carry their own coordinates
    body = re.sub(r"<[^>]+>", " ", body)
    assert not re.search(r"\d[eE][-+]\d", body), re.search(r".{40}\d[eE][-+]\d.{20}", body)
    assert "None s" not in body and "[-inf" not in body and "+inf]" not in body
    sec5 = body[body.rindex("5 Test conditions"): body.rindex("6 Decision rule")]  # after the contents
    assert "Ambient temperature" in sec5 and "Temperature set point" in sec5
