"""End to end: a board that balances only after the host sent it a command.

``example-polled-commands`` declares ``balancing.enabled_by_command``; its signal map sends
the balancing-enable command when the link opens (CAN frames over python-can's virtual bus,
decoded by the bench transmitter, acknowledged). The same board with that command not sent
at start (``when: demand``) never balances, and the balancing tests catch it. The same with a
Modbus board whose command is a coil write (function 05) over the pty.
"""

import shutil
import subprocess
import sys

import pytest

from rig.profile import PROFILE_DIR

CLI = [sys.executable, "-m", "rig.cli"]


def run(board, out, *k):
    return subprocess.run([*CLI, "run", "--board", str(board), "--out", str(out), "--no-index", "--no-progress",
                           *k], capture_output=True, text=True, timeout=900)


def without_start_command(tmp_path):
    for name in ("example-polled.dbc", "example-polled-commands.yaml"):
        shutil.copy(PROFILE_DIR / name, tmp_path / name)
    smap = (PROFILE_DIR / "example-polled-commands-can.yaml").read_text()
    assert "    when: start\n" in smap
    (tmp_path / "example-polled-commands-can.yaml").write_text(smap.replace("    when: start\n", "    when: demand\n"))
    return tmp_path / "example-polled-commands.yaml"


@pytest.mark.slow
def test_the_board_balances_because_the_rig_sends_the_command_at_start(tmp_path):
    sent = run("example-polled-commands", tmp_path / "with", "-k", "test_balancing_start or test_balancing_stop")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "PASS" in sent.stdout
    (tmp_path / "b").mkdir()
    board = without_start_command(tmp_path / "b")
    unsent = run(board, tmp_path / "without", "-k", "test_balancing_start or test_balancing_stop")
    assert unsent.returncode == 1, unsent.stdout + unsent.stderr
    assert "FAIL BAL-001" in unsent.stdout and "FAIL BAL-003" in unsent.stdout


def modbus_board(folder, when):
    """reference-4s-lfp-uart whose board balances only after a coil write (FC 05) ``balancing_on``."""
    folder.mkdir()
    regs = (PROFILE_DIR / "reference-bms-modbus.yaml").read_text()
    (folder / "cmd-modbus.yaml").write_text(
        regs + f"commands:\n  balancing_on: {{function: 5, address: 100, values: [1], when: {when}}}\n")
    prof = (PROFILE_DIR / "reference-4s-lfp-uart.yaml").read_text()
    assert "register_map: reference-bms-modbus.yaml" in prof and "\nbalancing:\n" in prof
    prof = prof.replace("register_map: reference-bms-modbus.yaml", "register_map: cmd-modbus.yaml")
    (folder / "board.yaml").write_text(prof.replace("\nbalancing:\n", "\nbalancing:\n  enabled_by_command: "
                                                                        "{command: balancing_on}\n"))
    return folder / "board.yaml"


@pytest.mark.slow
def test_a_modbus_board_balances_because_the_rig_writes_the_command_at_start(tmp_path):
    sent = run(modbus_board(tmp_path / "s", "start"), tmp_path / "with", "-k", "test_balancing_start")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    unsent = run(modbus_board(tmp_path / "d", "demand"), tmp_path / "without", "-k", "test_balancing_start")
    assert unsent.returncode == 1, unsent.stdout + unsent.stderr
    assert "FAIL BAL-001" in unsent.stdout
