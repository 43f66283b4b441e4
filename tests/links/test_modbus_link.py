"""ModbusBmsLink against the sim board's Modbus RTU slave over a real pty (RTU framing, CRC)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import yaml

from rig.errors import LinkFault, WaitTimeout
from rig.links.modbus_link import ModbusBmsLink
from rig.sim.modbus_slave import ModbusSlave

from .conftest import REF_REGS, make_telemetry


@pytest.fixture
def slave():
    s = ModbusSlave(REF_REGS, 16).start()
    yield s
    s.close()


def uart_link(slave, clock, n=16, **kw):
    kw.setdefault("response_timeout_s", 0.1)
    return ModbusBmsLink("uart-dut", slave.port, REF_REGS, n, clock, **kw)


def test_roundtrip_over_pty_one_transaction(slave, clock):
    fd = os.open(slave.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        assert os.isatty(fd)  # a real tty, like a USB-RS485 adapter
    finally:
        os.close(fd)
    rng = np.random.default_rng(3)
    bal = rng.random(16) < 0.5
    tel = make_telemetry(16, cell_v=rng.uniform(2.5, 3.65, 16), temps_c=rng.uniform(-20, 60, 17), balancing=bal,
                         hvc=False, lvc=True, ot=False, ut=True, charge_fet=True, discharge_fet=False,
                         pack_v=51.23, pack_a=-7.5, state="discharge", serial="REF4U-000777")
    slave.update(tel)
    link = uart_link(slave, clock)
    clock.sleep(3.0)
    s = link.latest()
    assert s.t == 3.0
    np.testing.assert_allclose(s.cell_v, tel.cell_v, atol=0.051e-3)
    np.testing.assert_allclose(s.temps_c, tel.temps_c, atol=0.051)
    np.testing.assert_array_equal(s.balancing, bal)
    assert (s.flags.hvc, s.flags.lvc, s.flags.ot, s.flags.ut) == (False, True, False, True)
    assert (s.charge_fet, s.discharge_fet) == (True, False)
    assert s.pack_v == pytest.approx(51.23) and s.pack_a == pytest.approx(-7.5) and s.state == "discharge"
    before = link.transactions
    link.latest()
    assert link.transactions - before == 1  # the whole sample in one block read
    ident = link.identity()
    assert (ident.serial, ident.hw_revision, ident.fw_version) == ("REF4U-000777", "C", "2.3.1")
    link.close()


def test_64_cells_need_two_reads(clock):
    with ModbusSlave(REF_REGS, 64) as s:
        tel = make_telemetry(64, cell_v=np.linspace(3.0, 3.6, 64), temps_c=np.linspace(10, 40, 65),
                             balancing=np.arange(64) % 5 == 0)
        s.update(tel)
        link = uart_link(s, clock, 64)
        got = link.latest()
        assert link.plan.sample_reads == [(0, 125), (125, 19)]
        np.testing.assert_allclose(got.cell_v, tel.cell_v, atol=0.051e-3)
        np.testing.assert_array_equal(got.balancing, tel.balancing)
        link.close()


@pytest.mark.parametrize("mode, words", [
    ("flip", "CRC error"), ("short", "short reply"), ("silent", "no reply within 0.1 s"), ("garbage", "garbled reply"),
])
def test_corrupted_reply_is_a_link_fault(slave, clock, mode, words):
    slave.update(make_telemetry(16))
    link = uart_link(slave, clock)
    link.latest()
    slave.inject_corruption(1, mode)
    with pytest.raises(LinkFault) as ei:
        link.latest()
    msg = str(ei.value)
    assert "uart-dut" in msg and "holding registers 0..95" in msg and slave.port in msg and words in msg, msg
    # the next transaction is clean again
    assert link.latest().cell_v[0] == pytest.approx(3.30)
    link.close()


def test_retries_absorb_one_bad_reply(slave, clock):
    slave.update(make_telemetry(16))
    link = uart_link(slave, clock, retries=1)
    slave.inject_corruption(1, "flip")
    assert link.latest().cell_v[0] == pytest.approx(3.30)
    assert link.retried == 1
    slave.inject_corruption(2, "flip")
    with pytest.raises(LinkFault, match="CRC error"):
        link.latest()
    link.close()


def test_exception_reply_names_the_range(slave, clock, tmp_path):
    """The rig's map expects registers the board does not have: exception 02."""
    raw = yaml.safe_load(REF_REGS.read_text())
    raw["identity"]["serial"]["address"] = 1000
    p = tmp_path / "bigger.yaml"
    p.write_text(yaml.safe_dump(raw))
    link = ModbusBmsLink("uart-dut", slave.port, p, 16, clock, response_timeout_s=0.1)
    with pytest.raises(LinkFault, match=r"registers 1000\.\.1007 .*exception 2 \(illegal data address\)"):
        link.identity()
    link.close()


def test_listener_polls_and_wait_for(slave, clock):
    tel = make_telemetry(16)
    slave.update(tel)
    link = uart_link(slave, clock, poll_s=0.5)
    clock.sleep(0.5)
    clock.sleep(0.2)   # < poll_s since the last poll: no transaction
    clock.sleep(0.3)
    assert [s.t for s in link.history()] == pytest.approx([0.5, 1.0])

    def step(t0, t1):
        if t1 >= 2.0:
            slave.update(make_telemetry(16, hvc=True, charge_fet=False))

    clock.on_step.append(step)
    s = link.wait_for(lambda s: s.flags.hvc and not s.charge_fet, timeout=5.0, what="HVC")
    assert s.t == pytest.approx(2.0)
    with pytest.raises(WaitTimeout, match="LVC"):
        link.wait_for(lambda s: s.flags.lvc, timeout=1.0, what="LVC")
    link.close()


def test_no_such_port_is_a_link_fault(clock):
    with pytest.raises(LinkFault, match="cannot open serial port /dev/does-not-exist"):
        ModbusBmsLink("uart-dut", "/dev/does-not-exist", REF_REGS, 4, clock)


def test_slave_starts_and_closes_clean(clock):
    fds_before = len(os.listdir("/proc/self/fd"))
    threads_before = threading.active_count()
    s = ModbusSlave(REF_REGS, 16).start()
    assert os.path.exists(s.port)
    s.update(make_telemetry(16))
    link = uart_link(s, clock)
    link.latest()
    link.close()
    s.close()
    s.close()  # idempotent
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert threading.active_count() == threads_before


def test_other_unit_id_is_ignored(clock):
    with ModbusSlave(REF_REGS, 4, unit_id=7) as s:
        s.update(make_telemetry(4))
        link = ModbusBmsLink("uart-dut", s.port, REF_REGS, 4, clock, unit_id=1, response_timeout_s=0.1)
        with pytest.raises(LinkFault, match="no reply"):
            link.latest()
        link.close()
        link = ModbusBmsLink("uart-dut", s.port, REF_REGS, 4, clock, unit_id=7, response_timeout_s=0.1)
        assert link.latest().cell_v.shape == (4,)
        link.close()
