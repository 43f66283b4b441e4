"""End to end: a board that balances only after the host sent it a command.

``example-polled-commands`` declares ``balancing.enabled_by_command``; its signal map sends
the balancing-enable command when the link opens (CAN frames over python-can's virtual bus,
decoded by the bench transmitter, acknowledged). The same board with that command not sent
at start (``when: demand``) never balances, and the balancing tests catch it. The same with a
Modbus board whose command is a coil write (function 05) over the pty.

Set-points: the same board ships with an HVC threshold of 3.75 V (``setpoints_by_command``);
the map's start command configures the 3.65 V the profile promises, and the whole plan
passes. Without that start command the board cuts at its factory default and the HVC tests
fail it. The same with a Modbus register write (function 06).
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


def without_start_command(tmp_path, command="balancing_on"):
    """example-polled-commands whose map sends ``command`` on demand instead of at start."""
    for name in ("example-polled.dbc", "example-polled-commands.yaml"):
        shutil.copy(PROFILE_DIR / name, tmp_path / name)
    smap = (PROFILE_DIR / "example-polled-commands-can.yaml").read_text()
    head, sep, tail = smap.partition(f"\n  {command}:")
    assert sep and "    when: start\n" in tail
    (tmp_path / "example-polled-commands-can.yaml").write_text(
        head + sep + tail.replace("    when: start\n", "    when: demand\n", 1))
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


@pytest.mark.slow
def test_the_whole_plan_passes_on_the_board_the_rig_configured_at_start(tmp_path):
    done = run("example-polled-commands", tmp_path / "all")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bmsrig: PASS (exit 0)" in done.stdout


@pytest.mark.slow
def test_without_the_hvc_setpoint_at_start_the_board_cuts_at_its_factory_default(tmp_path):
    sent = run("example-polled-commands", tmp_path / "with", "-k", "hvc")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    (tmp_path / "b").mkdir()
    unsent = run(without_start_command(tmp_path / "b", "hvc_at_start"), tmp_path / "without", "-k", "hvc")
    assert unsent.returncode == 1, unsent.stdout + unsent.stderr
    assert "FAIL HVC-001" in unsent.stdout and "FAIL HVC-002" in unsent.stdout


def modbus_setpoint_board(folder, when):
    """reference-4s-lfp-uart whose board ships with HVC 3.75 V and takes 3.65 V from an FC 06 write."""
    folder.mkdir()
    regs = (PROFILE_DIR / "reference-bms-modbus.yaml").read_text()
    (folder / "sp-modbus.yaml").write_text(regs + (
        "commands:\n"
        "  hvc_setpoint: {function: 6, address: 200, values: [{parameter: threshold_v, scale: 0.001}]}\n"
        f"  hvc_at_start: {{function: 6, address: 200, values: [3650], when: {when}}}\n"))
    prof = (PROFILE_DIR / "reference-4s-lfp-uart.yaml").read_text()
    assert "register_map: reference-bms-modbus.yaml" in prof and "\nbench:" in prof and "threshold_v: 3.65" in prof
    prof = prof.replace("register_map: reference-bms-modbus.yaml", "register_map: sp-modbus.yaml")
    (folder / "board.yaml").write_text(prof.replace("\nbench:", "\nsetpoints_by_command:\n  protection.hvc.threshold_v: "
                                                    "{command: hvc_setpoint, value: threshold_v, factory_default: 3.75}"
                                                    "\nbench:", 1))
    return folder / "board.yaml"


@pytest.mark.slow
def test_a_modbus_board_cuts_where_the_rig_wrote_its_hvc_setpoint(tmp_path):
    sent = run(modbus_setpoint_board(tmp_path / "s", "start"), tmp_path / "with", "-k", "hvc")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    unsent = run(modbus_setpoint_board(tmp_path / "d", "demand"), tmp_path / "without", "-k", "hvc")
    assert unsent.returncode == 1, unsent.stdout + unsent.stderr
    assert "FAIL HVC-001" in unsent.stdout


def test_a_setpoint_sent_on_demand_moves_where_the_bench_board_cuts():
    """Through the built bench rig: the board configured to 3.65 V at start holds at 3.62 V; the
    host lowers the threshold on demand (a real CAN frame, acknowledged) and it cuts."""
    from rig.build import build_rig
    from rig.profile import load_profile

    rig = build_rig(None, load_profile("example-polled-commands"), seed=1)
    try:
        rig.emulator.enable(True)
        rig.emulator.set_voltages([3.40] * 7 + [3.62])
        rig.clock.sleep(5.0)
        s = rig.link.latest()
        assert not s.flags.hvc and s.charge_fet
        rig.link.command("hvc_setpoint", threshold_v=3.60)
        rig.clock.sleep(3.0)
        s = rig.link.latest()
        assert s.flags.hvc and not s.charge_fet
    finally:
        rig.close()
