"""The strict YAML loader every user file goes through."""

from __future__ import annotations

import pytest

from rig.errors import ConfigError
from rig.profile import BoardProfile, Cutoff
from rig.yamlio import parse_yaml, validate


def test_duplicate_key_names_the_dotted_key_and_both_lines():
    text = "a:\n  b: 1\n  c: 2\n  b: 3\n"
    with pytest.raises(ConfigError) as exc:
        parse_yaml(text, "f.yaml")
    assert exc.value.file == "f.yaml"
    assert exc.value.key == "a.b"
    assert "line 4" in exc.value.problem and "line 2" in exc.value.problem


def test_duplicate_key_inside_a_list_item():
    with pytest.raises(ConfigError) as exc:
        parse_yaml("drivers:\n  - X:\n      v: 1\n      v: 2\n", "env.yaml")
    assert exc.value.key == "drivers.0.X.v"


def test_equal_keys_in_different_mappings_are_fine():
    assert parse_yaml("a: {v: 1}\nb: {v: 2}\n", "f") == {"a": {"v": 1}, "b": {"v": 2}}


def test_merge_keys_and_labgrid_template_tag_still_load():
    text = "base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\nport: !template $LG_PORT\n"
    assert parse_yaml(text, "f") == {"base": {"x": 1, "y": 2}, "use": {"x": 1, "y": 3}, "port": "$LG_PORT"}


def test_schema_error_gives_the_line_of_the_key():
    raw = parse_yaml("threshold_v: 3.6\ndelay_s: .inf\n", "cut.yaml")
    with pytest.raises(ConfigError) as exc:
        validate(Cutoff, raw, "cut.yaml")
    assert exc.value.key == "delay_s"
    assert "finite" in exc.value.problem and "(line 2)" in exc.value.problem


def test_misspelt_key_is_reported_before_the_missing_one():
    with pytest.raises(ConfigError) as exc:
        validate(Cutoff, {"treshold_v": 3.6}, "cut.yaml")
    assert exc.value.key == "treshold_v"
    assert "did you mean 'threshold_v'" in exc.value.problem


def test_programmatic_profile_is_checked_against_the_chemistry():
    from rig.profile import load_profile

    good = load_profile("reference-16s-lfp")
    data = good.model_dump(by_alias=True, exclude={"source"})
    data["protection"]["hvc"]["threshold_v"] = 4.3
    with pytest.raises(ValueError, match="absolute range of a LFP cell"):
        BoardProfile.model_validate(data)
