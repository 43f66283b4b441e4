"""What a board reports (from its link map) and which temperature is what (from its profile)."""

from pathlib import Path

import numpy as np
import pytest

from rig.errors import ConfigError
from rig.links.base import QUANTITIES, Capabilities
from rig.links.register_map import compile_register_map
from rig.links.signal_map import compile_signal_map
from rig.profile import BoardProfile, Temperatures, load_profile
from rig.protocols import BmsFlags, BmsSample
from testplans import procedures

DATA = Path(__file__).parent / "data"


def can_caps(profile_path) -> Capabilities:
    p = load_profile(profile_path)
    return compile_signal_map(p.resolve(p.link.signal_map), p.resolve(p.link.dbc), p.cells).capabilities()


def test_the_reference_maps_report_everything():
    caps = can_caps("reference-16s-lfp")
    assert caps.quantities == frozenset(QUANTITIES) and caps.n_temperatures == 17
    assert caps.identity == {"serial", "hw_revision", "fw_version"} and caps.reason("balancing", "hvc") is None
    p = load_profile("reference-4s-lfp-uart")
    mb = compile_register_map(p.resolve(p.link.register_map), p.cells).capabilities()
    assert mb.quantities == frozenset(QUANTITIES), sorted(frozenset(QUANTITIES) - mb.quantities)
    assert mb.map_kind == "register map" and mb.n_temperatures == 5


def test_an_unmapped_quantity_is_not_reported_and_the_reason_names_the_map_key():
    caps = can_caps(DATA / "reference-16s-no-balancing.yaml")
    assert not caps.has("balancing") and caps.has("hvc") and caps.has("cell_voltages")
    assert caps.reason("balancing") == ("not verified: the board does not report its balancing mask "
                                        "(signal map no-balancing-can.yaml has no `cells.balancing`)")
    flags = can_caps(DATA / "reference-16s-no-flags.yaml")
    assert flags.missing("hvc", "lvc", "ot", "ut", "balancing") == ["hvc", "lvc", "ot", "ut"]
    assert "its HVC flag or its LVC flag" in flags.reason("hvc", "lvc")
    with pytest.raises(KeyError, match="unknown reported quantity"):
        caps.has("soc")


def test_a_link_that_does_not_say_is_taken_to_report_everything():
    class Bare:
        pass

    assert procedures.reports(Bare()).quantities == frozenset(QUANTITIES)
    assert procedures.not_reported(Bare(), "balancing") is None


def sample(temps):
    return BmsSample(t=0.0, cell_v=np.full(4, 3.3), temps_c=np.asarray(temps, float), balancing=np.zeros(4, bool),
                     flags=BmsFlags(), charge_fet=True, discharge_fet=True)


def profile_with(**roles) -> BoardProfile:
    raw = load_profile("reference-4s-lfp-uart").model_dump(mode="json")
    raw["temperatures"] = roles
    return BoardProfile.model_validate(raw)


def test_unstated_roles_keep_the_reference_layout():
    s = sample([20.0, 22.0, 24.0, 26.0, 50.0])
    ref = load_profile("reference-4s-lfp-uart")
    assert not ref.temperatures.stated
    assert procedures.cell_temperature_c(s, ref) == procedures.cell_temperature_c(s) == 23.0
    assert procedures.bleed_ntc_c(s, ref) == 50.0 and procedures.board_temperature_c(s, ref) == 50.0
    assert Temperatures().indices("cells", 1) == [0] and Temperatures().indices("bleed_resistor", 1) == []


def test_stated_roles_are_used_any_number_of_each():
    # FET NTC first, two bleed-resistor NTCs, then the cells, an ambient sensor last
    s = sample([70.0, 40.0, 45.0, 20.0, 22.0, 24.0, 26.0, 18.0])
    p = profile_with(fet=[1], bleed_resistor=[2, 3], cells=[4, 5, 6, 7], ambient=[8])
    assert procedures.cell_temperature_c(s, p) == 23.0
    assert procedures.bleed_ntc_c(s, p) == 45.0  # the hottest resistor sensor
    assert procedures.board_temperature_c(s, p) == 45.0
    # a board with cell NTCs only: no resistor reading (derating not verified), cells judged on all eight
    only = profile_with(cells=list(range(1, 9)))
    assert procedures.bleed_ntc_c(s, only) is None
    assert procedures.cell_temperature_c(s, only) == pytest.approx(float(np.mean(s.temps_c)))
    assert procedures.board_temperature_c(s, only) == procedures.cell_temperature_c(s, only)


def test_a_role_position_the_board_does_not_report_is_a_config_error():
    p = profile_with(cells=[1, 2, 3, 4], bleed_resistor=[9])
    with pytest.raises(ConfigError, match=r"temperatures\.bleed_resistor.*position 9, but the board reports 5"):
        procedures.bleed_ntc_c(sample([20.0] * 5), p)


@pytest.mark.parametrize("roles, says", [
    ({"cells": [1, 2], "fet": [2]}, "position 2 is already the cells role's"),
    ({"cells": [0, 1]}, "positions count from 1"),
])
def test_a_bad_role_table_names_the_key(roles, says):
    with pytest.raises(Exception, match=says):
        profile_with(**roles)
