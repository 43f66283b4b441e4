"""The board-model contract: a class that does not satisfy it is rejected with a
ConfigError naming the file (or option), the key and the problem, wherever it is named."""

from __future__ import annotations

import pytest

from rig.cli import main
from rig.errors import ConfigError
from rig.profile import load_profile
from rig.sim.boards import contract_problem, load_board
from rig.sim.reference import ReferenceBoard

from .toy_board import ToyBoard


class NoWake:
    """A board model missing its one required method."""

    def __init__(self, harness, profile, defects):
        self.h = harness

    def fast_forward(self, until):
        return None


class WakeNotCallable:
    wake = 3.0

    def __init__(self, harness, profile, defects):
        pass


class WrongConstructor:
    def __init__(self, harness):
        pass

    def wake(self, now):
        return now + 1.0


class FastForwardNotAMethod:
    fast_forward = None

    def __init__(self, harness, profile, defects):
        pass

    def wake(self, now):
        return now + 1.0


def a_function(harness, profile, defects):
    return None


a_function.wake = lambda now: now + 1.0


def test_the_shipped_and_the_toy_board_satisfy_the_contract():
    assert contract_problem(ReferenceBoard) is None and contract_problem(ToyBoard) is None


@pytest.mark.parametrize("name, fragment", [
    ("NoWake", "has no wake(now) method"),
    ("WakeNotCallable", "has no wake(now) method"),
    ("WrongConstructor", "cannot be built as WrongConstructor(harness, profile, defects)"),
    ("FastForwardNotAMethod", "fast_forward attribute that is not a method"),
    ("a_function", "not a class"),
])
def test_a_board_that_breaks_the_contract_is_a_config_error(name, fragment):
    with pytest.raises(ConfigError) as ei:
        load_board(f"tests.sim.test_board_contract:{name}", source="bench.yaml", key="bench.model")
    assert ei.value.file == "bench.yaml" and ei.value.key == "bench.model" and fragment in ei.value.problem


def test_missing_method_in_a_profile_names_the_profile_and_bench_model(tmp_path):
    src = (load_profile("reference-16s-lfp").source)
    text = open(src).read().replace("model: rig.sim.reference_board:ReferenceBoard",
                                    "model: tests.sim.test_board_contract:NoWake")
    (tmp_path / "bad.yaml").write_text(text)
    for name in ("reference-bms.dbc", "reference-bms-can.yaml"):
        (tmp_path / name).write_bytes(open(src.rsplit("/", 1)[0] + "/" + name, "rb").read())
    with pytest.raises(ConfigError) as ei:
        load_profile(tmp_path / "bad.yaml")
    assert ei.value.key == "bench.model" and ei.value.file.endswith("bad.yaml") and "wake" in ei.value.problem


def test_missing_method_on_the_command_line_exits_2_naming_the_option(capsys):
    code = main(["run", "--board-model", "tests.sim.test_board_contract:NoWake", "--out", "/nonexistent/never"])
    err = capsys.readouterr().err
    assert code == 2 and "--board-model" in err and "has no wake(now) method" in err and "Traceback" not in err


def test_a_registered_name_is_accepted_in_a_profile(tmp_path):
    src = load_profile("reference-16s-lfp").source
    text = open(src).read().replace("model: rig.sim.reference_board:ReferenceBoard", "model: reference")
    (tmp_path / "named.yaml").write_text(text)
    for name in ("reference-bms.dbc", "reference-bms-can.yaml"):
        (tmp_path / name).write_bytes(open(src.rsplit("/", 1)[0] + "/" + name, "rb").read())
    assert load_profile(tmp_path / "named.yaml").bench.model == "reference"
