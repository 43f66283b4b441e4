"""SCPI and Modbus-TCP instruments reached through the exporter host: bmsrig-exporter
forwards a port of its host to each instrument while the place is acquired, and the
resource names that host and port (the client needs no route to the lab network)."""

from __future__ import annotations

import socket
import threading

import pytest

import rig.labgrid  # noqa: F401  (the project resource classes)
from rig.clock import WallClock
from rig.tcp_proxy import TcpProxy, tcp_endpoint

from ..drivers.chamber_server import PV_REG, ChamberServer
from .test_places import client

WAIT_S = 10.0  # wall-clock bound for the exporter to start its forwarders, s
IDN = "ACME,PSU-1000,SN0042,1.0"


class ScpiServer:
    """A SCPI instrument on a raw socket (port 5025 style): answers ``*IDN?``, one line per query."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while data := conn.recv(4096):
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if line.strip() == b"*IDN?":
                            conn.sendall(IDN.encode() + b"\n")

    def close(self):
        self.sock.close()


@pytest.fixture
def instruments():
    scpi, chamber = ScpiServer(), ChamberServer(pv_c=23.4).start()
    yield scpi, chamber
    scpi.close()
    chamber.stop()


def test_which_resources_are_forwarded():
    from labgrid.factory import target_factory

    scpi = target_factory.resources["ScpiInstrument"](target=None, name=None, address="TCPIP0::10.1.2.3::5025::SOCKET")
    host, port, rewrite = tcp_endpoint(scpi)
    assert (host, port) == ("10.1.2.3", 5025) and rewrite("rig-a", 40000) == {"address": "TCPIP0::rig-a::40000::SOCKET"}
    vxi = target_factory.resources["ScpiInstrument"](target=None, name=None, address="TCPIP::10.1.2.3::INSTR")
    assert tcp_endpoint(vxi) is None
    chamber = target_factory.resources["ModbusChamberPort"](target=None, name=None, host="10.1.2.4", port=502)
    assert tcp_endpoint(chamber)[2]("rig-a", 40001) == {"host": "rig-a", "port": 40001}
    serial = target_factory.resources["ModbusChamberPort"](target=None, name=None, serial_port="/dev/ttyUSB0")
    assert tcp_endpoint(serial) is None


def test_proxy_pipes_both_ways(instruments):
    scpi, _ = instruments
    proxy = TcpProxy("127.0.0.1", scpi.port, listen_host="127.0.0.1").start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT_S) as s:
            s.sendall(b"*IDN?\n")
            assert s.makefile().readline().strip() == IDN
    finally:
        proxy.stop()


def test_instruments_through_the_exporter_host(coordinator, exporter, session, instruments, tmp_path):
    import pyvisa
    from pymodbus.client import ModbusTcpClient

    from rig.places import hold_places

    scpi, chamber = instruments
    proc = exporter("rig-d", f"bench-d:\n  supply:\n    cls: ScpiInstrument\n"
                             f"    address: TCPIP0::127.0.0.1::{scpi.port}::SOCKET\n"
                             f"  chamber:\n    cls: ModbusChamberPort\n    host: 127.0.0.1\n    port: {chamber.port}\n")
    session.wait_resources("rig-d", 2, proc)
    client(coordinator, "-p", "bench-d", "create")
    client(coordinator, "-p", "bench-d", "add-match", "rig-d/bench-d/*")
    env = tmp_path / "rig.yaml"
    env.write_text(f"options:\n  coordinator_address: {coordinator}\ntargets:\n  main:\n    resources:\n"
                   f"      RemotePlace:\n        name: bench-d\n")
    group = lambda: session.resources["rig-d"]["bench-d"]  # noqa: E731

    def forwarded():
        session.loop.run_until_complete(session.sync_with_coordinator())
        return (group()["supply"].args["address"] != f"TCPIP0::127.0.0.1::{scpi.port}::SOCKET"
                and group()["chamber"].args["port"] != chamber.port)

    with hold_places(env):
        WallClock().wait_until(forwarded, WAIT_S, "the exporter's forwarders", poll=0.05)
        address = group()["supply"].args["address"]
        assert address.startswith("TCPIP0::127.0.0.1::") and address.endswith("::SOCKET")  # the exporter host
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(address, read_termination="\n", write_termination="\n", timeout=5000)
        try:
            assert inst.query("*IDN?") == IDN
        finally:
            inst.close()
            rm.close()
        args = group()["chamber"].args
        modbus = ModbusTcpClient(args["host"], port=args["port"], timeout=5)
        try:
            assert modbus.connect()
            reply = modbus.read_input_registers(PV_REG, count=1, device_id=1)
            assert not reply.isError() and reply.registers[0] == 234  # 23.4 °C × 10
        finally:
            modbus.close()
    WallClock().wait_until(lambda: not forwarded(), WAIT_S, "the forwarders stopped on release", poll=0.05)
