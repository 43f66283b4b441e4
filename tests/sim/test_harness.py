"""BoardHarness, Telemetry and board-model loading."""

from __future__ import annotations

import numpy as np
import pytest

from rig.errors import ConfigError
from rig.sim.harness import Telemetry, load_board_model
from rig.sim.reference_board import ReferenceBoard

from ._util import world


def test_load_reference_board():
    assert load_board_model("rig.sim.reference_board:ReferenceBoard") is ReferenceBoard


def test_load_errors_name_source_and_key():
    with pytest.raises(ConfigError) as ei:
        load_board_model("rig.sim.reference_board:Nope", source="board.yaml")
    assert ei.value.file == "board.yaml" and ei.value.key == "bench.model"
    with pytest.raises(ConfigError) as ei:
        load_board_model("justamodule")
    assert ei.value.file == "--board-model"


def test_harness_surface():
    w = world()
    h = w.harness
    w.advance(1.0)
    assert h.n_cells == 16 and h.now() == w.t and h.profile is w.profile
    v = h.read_cell_voltages()
    assert v.shape == (16,) and np.allclose(v, 3.30, atol=2e-3)
    t = h.read_temperatures()
    assert t["cells"].shape == (16,) and isinstance(t["board"], float) and "bleed_resistor" in t
    assert h.read_pack_current() == 0.0
    h.set_output("hvc_out", True)
    assert w.digital_level("hvc_out") and w.daq_edges[-1].t == w.t
    h.set_fets(False, True)
    assert not w.charge_fet and w.daq_edges[-1].line == "charge_enable"


def test_publish_stamps_time_and_telemetry_fields():
    w = world()
    w.advance(2.0)
    tel = w.telemetry
    assert isinstance(tel, Telemetry)
    assert tel.t <= w.t and w.t - tel.t <= 0.25
    assert tel.temps_c.shape == (17,) and tel.balancing.dtype == bool
    assert (tel.serial, tel.hw_revision, tel.fw_version) == ("REF16-000123", "C", "2.3.1")
    assert tel.state == "rest" and tel.charge_fet and tel.discharge_fet
    assert tel.pack_v == pytest.approx(16 * 3.30, abs=0.02)


def test_a_harness_subclass_keeps_its_own_methods():
    # the harness binds the per-conversion calls straight to the bench's side, but not over
    # a subclass's own method
    from rig.sim.harness import BoardHarness

    class Fixed(BoardHarness):
        def read_pack_current(self) -> float:
            return 42.0

    w = world()
    h = Fixed(w.board_io, w.profile, np.random.default_rng(0))
    assert h.read_pack_current() == 42.0
    assert h.read_cell_voltages().shape == (w.n,)
