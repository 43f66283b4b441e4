"""The Modbus UART link over an exported tty (labgrid ``NetworkSerialPort``), as a place serves it."""

from __future__ import annotations

import pytest

from rig.build import ENV_DIR, build_rig
from rig.clock import StepClock
from rig.errors import ConfigError, LinkFault
from rig.links import registry
from rig.links.modbus_link import ModbusBmsLink
from rig.profile import PROFILE_DIR, load_profile
from rig.sim.modbus_slave import ModbusSlave

from ..links.conftest import make_telemetry
from .rfc2217_server import Rfc2217Server

REF_REGS = PROFILE_DIR / "reference-bms-modbus.yaml"


def _rig_file(tmp_path, port_line: str):
    text = (ENV_DIR / "sim.yaml").read_text()
    text = text.replace("BenchPort: {}", port_line).replace("BenchLinkDriver: {}", "LinkDriver: {}")
    env = tmp_path / "uart-place.yaml"
    env.write_text(text)
    return env


def test_modbus_kind_opens_network_serial_ports():
    assert registry.get_kind("modbus").ports == ("RawSerialPort", "NetworkSerialPort")


def test_modbus_link_over_rfc2217_reads_the_board():
    """pyserial's rfc2217:// URL through a real RFC 2217 server to the sim board's Modbus slave."""
    with ModbusSlave(REF_REGS, 4) as slave, Rfc2217Server(slave.port) as server:
        slave.update(make_telemetry(4, serial="REF4U-000042"))
        link = ModbusBmsLink("uart-dut", f"rfc2217://127.0.0.1:{server.port}?ign_set_control", REF_REGS, 4,
                             StepClock(), response_timeout_s=0.5)
        try:
            assert link.identity().serial == "REF4U-000042"
            assert list(link.latest().cell_v) == pytest.approx([3.300, 3.301, 3.302, 3.303])
        finally:
            link.close()
        assert server.connections == 1


def test_rig_file_with_a_network_serial_port_builds_the_uart_link(tmp_path):
    """A rig whose UART is exported (rfc2217) builds LinkDriver on it; the board answers through it."""
    with ModbusSlave(REF_REGS, 4) as slave, Rfc2217Server(slave.port) as server:
        slave.update(make_telemetry(4, serial="REF4U-000043"))
        env = _rig_file(tmp_path, f"NetworkSerialPort: {{host: 127.0.0.1, port: {server.port}}}")
        rig = build_rig(env, load_profile("reference-4s-lfp-uart"))
        try:
            drv = rig.target.get_driver("LinkDriver")
            assert drv.endpoint().address == f"rfc2217://127.0.0.1:{server.port}?ign_set_control"
            assert rig.link.identity().serial == "REF4U-000043"
            assert rig.link.link_name.startswith("Modbus RTU rfc2217://127.0.0.1:")
        finally:
            rig.close()


def test_raw_network_serial_port_opens_a_socket_url(tmp_path):
    """protocol raw: ``socket://host:port``; nothing listening is a rig fault naming that URL."""
    env = _rig_file(tmp_path, "NetworkSerialPort: {host: 127.0.0.1, port: 9, protocol: raw}")
    rig = build_rig(env, load_profile("reference-4s-lfp-uart"))
    try:
        with pytest.raises(LinkFault, match="cannot open serial port socket://127.0.0.1:9 "):
            rig.link.latest()
    finally:
        rig.close()


def test_unknown_protocol_is_a_config_error(tmp_path):
    env = _rig_file(tmp_path, "NetworkSerialPort: {host: 127.0.0.1, port: 4001, protocol: telnet}")
    rig = build_rig(env, load_profile("reference-4s-lfp-uart"))
    try:
        with pytest.raises(ConfigError) as ei:
            rig.link.latest()
    finally:
        rig.close()
    assert ei.value.key == "NetworkSerialPort.protocol" and "telnet" in ei.value.problem
