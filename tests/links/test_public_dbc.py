"""Public vendor DBCs nobody on the project wrote (``tests/links/public_dbc/``, sources and
licences in its README): the signal map and profile a lab would write for each, real frames
encoded by cantools through the vendor's DBC on a python-can virtual bus, decoded by the link
(compiled fast path and ``Message.decode``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import can
import numpy as np
import pytest

from rig.errors import ConfigError
from rig.links.can_link import CanBmsLink
from rig.links.dbc import DbcWarning, codec, load_dbc
from rig.links.signal_map import compile_signal_map

HERE = Path(__file__).parent / "public_dbc"
FOX2_DBC, FOX2_MAP, FOX2_N = HERE / "foxbms2-excerpt.dbc", HERE / "foxbms2-can.yaml", 16


def _db(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        return load_dbc(path)


class Board:
    """Sends frames encoded by cantools through the vendor DBC as shipped."""

    def __init__(self, sender, dbc):
        self.db, self.sender = _db(dbc), sender

    def frame(self, name: str, values: dict, t: float) -> None:
        m = self.db.get_message_by_name(name)
        full = {s.name: 0 for s in m.signals}
        full.update(values)
        data = codec(self.db, m).encode(m.gather_signals(full) if m.is_multiplexed() else full, strict=False)
        self.sender.send(can.Message(arbitration_id=m.frame_id, data=bytes(data),
                                     is_extended_id=bool(m.is_extended_frame), timestamp=t))


def _link(dbc, smap, n, can_bus, clock, fast_path=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        return CanBmsLink("pub", can_bus, dbc, smap, n, clock, timeout_s=2.0, fast_path=fast_path)


# ----------------------------------------------------------------------------- foxBMS 2


def test_foxbms2_identity_request_on_a_multiplexed_message_encodes_only_its_page():
    """foxBMS_Debug is multiplexed: the request selects page 0 (GetBmsSoftwareVersion); the
    other pages' signals are not part of that frame."""
    plan = compile_signal_map(FOX2_MAP, FOX2_DBC, FOX2_N, db=_db(FOX2_DBC))
    (req,) = plan.requests
    (data, _v), = req.frames
    msg = _db(FOX2_DBC).get_message_by_name("foxBMS_Debug")
    assert msg.decode(data) == {"foxBMS_Debug_Mux": 0, "foxBMS_GetMcuLotNumber": 0, "foxBMS_GetBmsSoftwareVersion": 1,
                                "foxBMS_GetMcuUniqueDieId": 0, "foxBMS_GetMcuWaferInformation": 0,
                                "foxBMS_GetCommitHash": 0}


def test_a_request_signal_on_another_page_than_the_one_selected_is_a_config_error(tmp_path):
    text = FOX2_MAP.read_text().replace("foxBMS_GetBmsSoftwareVersion: 1}", "foxBMS_GetBmsSoftwareVersion: 1, SetYear: 3}")
    p = tmp_path / "fox-map.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        compile_signal_map(p, FOX2_DBC, FOX2_N, db=_db(FOX2_DBC))
    msg = str(ei.value)
    assert "fox-map.yaml" in msg and "requests[0].signals" in msg and "SetYear" in msg, msg
    assert "on page foxBMS_Debug_Mux = [1]" in msg and "not on the page foxBMS_Debug_Mux = 0" in msg, msg
