"""``bmsrig decode``: a candump -L / ASC capture of each shipped CAN example, decoded to JSON lines."""

from __future__ import annotations

import io
import json
import warnings
from contextlib import redirect_stdout

import can
import numpy as np
import pytest

from rig.cli import main
from rig.links.dbc import DbcWarning
from rig.profile import PROFILE_DIR, load_profile
from rig.sim.can_tx import CanTransmitter

from .conftest import make_telemetry

EXAMPLES = ["example-vendor-mux", "example-j1939", "example-polled", "reference-16s-lfp", "example-two-string"]


def write_capture(path, profile_name: str, cycles: int, t0: float = 1_700_000_000.0, **tel):
    """The board's frames for ``cycles`` cycles (0.25 s apart), encoded by cantools, written
    by python-can's own log writer (format from the suffix)."""
    prof = load_profile(PROFILE_DIR / f"{profile_name}.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        tx = CanTransmitter(prof.resolve(prof.link.dbc), f"cap-{profile_name}", prof.cells,
                            signal_map_path=prof.resolve(prof.link.signal_map))
    telemetry = make_telemetry(prof.cells, serial=prof.bench.serial, **tel)
    ext = {fid: tx.plan.handlers[fid].message.is_extended_frame for fid in tx.plan.handlers}
    with can.Logger(str(path)) as log:
        for k in range(cycles):
            t = t0 + 0.25 * k
            for fid, data in tx.encode(0.25 * k, telemetry):
                log.on_message_received(can.Message(timestamp=t, arbitration_id=fid, data=data,
                                                     is_extended_id=ext.get(fid, fid > 0x7FF), channel="can0"))
    tx.close()
    return prof, telemetry


def decode(path, board) -> tuple[int, list[dict]]:
    buf = io.StringIO()
    with redirect_stdout(buf), warnings.catch_warnings():
        warnings.simplefilter("ignore", DbcWarning)
        code = main(["decode", str(path), "--board", str(board)])
    return code, [json.loads(x) for x in buf.getvalue().splitlines()]


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("suffix", [".log", ".asc"])
def test_decode_capture_of_each_can_example(tmp_path, name, suffix):
    path = tmp_path / f"{name}{suffix}"
    prof, tel = write_capture(path, name, cycles=6, hvc=True, charge_fet=False)
    code, rows = decode(path, PROFILE_DIR / f"{name}.yaml")
    assert code == 0 and len(rows) == 6
    last = rows[-1]
    assert last["t"] == pytest.approx(1.25)                      # s since the capture's first frame
    np.testing.assert_allclose(last["cells_v"], tel.cell_v, atol=1e-3)
    assert last["cells_valid"] == [True] * prof.cells
    assert last["flags"]["hvc"] and not last["flags"]["lvc"]
    assert last["fets"] == {"charge": False, "discharge": True}
    assert set(last["temperatures"]) >= {"cells", "bleed_resistor"}
    assert len(last["temperatures"]["cells"]) == (len(prof.temperatures.cells) or prof.cells)
    assert last["identity"]["serial"] == prof.bench.serial
    assert len(last["balancing"]) == prof.cells


def test_decode_of_the_two_string_board_prints_all_16_cells(tmp_path):
    """Per-string frames with identical signal names: both strings' cells, in board order."""
    path = tmp_path / "ts.log"
    cells = 3.25 + 0.004 * np.arange(16)
    bal = np.zeros(16, bool)
    bal[[1, 9]] = True                                            # string 1 cell 2, string 2 cell 2
    write_capture(path, "example-two-string", cycles=3, cell_v=cells, balancing=bal)
    code, rows = decode(path, PROFILE_DIR / "example-two-string.yaml")
    assert code == 0 and len(rows) == 3
    np.testing.assert_allclose(rows[-1]["cells_v"], cells, atol=1e-3)
    assert len(rows[-1]["cells_v"]) == 16 and all(rows[-1]["cells_valid"])
    assert [i for i, b in enumerate(rows[-1]["balancing"]) if b] == [1, 9]
    assert rows[-1]["strings"] == {"String1": [1, 8], "String2": [9, 16]}
    assert len(rows[-1]["temperatures"]["bleed_resistor"]) == 2


def test_decode_reports_an_invalid_cell_as_null(tmp_path):
    path = tmp_path / "vm.log"
    cells = 3.3 + 0.001 * np.arange(18)
    cells[10] = 65.535                                            # 0xFFFF mV: "not measured"
    write_capture(path, "example-vendor-mux", cycles=2, cell_v=cells)
    code, rows = decode(path, PROFILE_DIR / "example-vendor-mux.yaml")
    assert code == 0 and rows[-1]["cells_v"][10] is None and rows[-1]["cells_valid"][10] is False


def test_decode_of_a_modbus_profile_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "x.log"
    write_capture(path, "example-j1939", cycles=1)
    code = main(["decode", str(path), "--board", str(PROFILE_DIR / "reference-4s-lfp-uart.yaml")])
    assert code == 2 and "link.kind" in capsys.readouterr().err


def test_monitor_on_the_bench_prints_live_samples_of_a_polled_board():
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["monitor", "--board", str(PROFILE_DIR / "example-polled.yaml"), "--samples", "3"])
    rows = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert code == 0 and len(rows) == 3
    assert rows[1]["t"] > rows[0]["t"] and len(rows[0]["cells_v"]) == 8 and all(rows[-1]["cells_valid"])
    assert rows[0]["identity"]["serial"] == "P-000777"
