"""The link registry: kinds found by name (built-in table + entry points), a third-party
kind (tests/links/toy_link) run end to end on the bench, and a vendor DBC on the bench."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rig.errors import ConfigError
from rig.links import registry
from rig.profile import PROFILE_DIR, load_profile

from .conftest import DATA, make_telemetry

ROOT = Path(__file__).resolve().parents[2]
TOY_PROFILE = DATA / "toy-4s-lfp.yaml"
VENDOR_PROFILE = DATA / "vendor-8s-lfp.yaml"
VENDOR_DBC = DATA / "vendor-bms.dbc"
VENDOR_MAP = DATA / "vendor-bms-can.yaml"


def _patch_entry_points(monkeypatch, **eps: str) -> None:
    """Make ``importlib.metadata.entry_points(group=...)`` answer ``eps`` for bmsrig.links."""
    fake = [importlib.metadata.EntryPoint(name=k, value=v, group=registry.GROUP) for k, v in eps.items()]
    real = importlib.metadata.entry_points

    def entry_points(**kw):
        if kw.get("group") == registry.GROUP:
            return fake
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


# ---------------------------------------------------------------------------- lookup


def test_builtin_kinds_resolve_without_entry_points(monkeypatch):
    _patch_entry_points(monkeypatch)  # nothing installed: the built-in table alone
    assert registry.known_kinds() == ["can", "modbus", "jbd", "daly"]
    for name in ("can", "modbus", "jbd", "daly"):
        kind = registry.get_kind(name)
        assert kind.name == name and issubclass(kind.settings, registry.LinkSettings)
    assert registry.get_kind("can").ports == ("CANPort",)
    assert registry.get_kind("modbus").ports == ("RawSerialPort", "NetworkSerialPort")


def test_pyproject_declares_the_builtin_kinds_as_entry_points():
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split('[project.entry-points."bmsrig.links"]', 1)[1].split("\n[", 1)[0]
    declared = dict(re.findall(r'^(\w+)\s*=\s*"([^"]+)"', section, re.M))
    assert declared == registry.BUILTIN


def test_unknown_kind_names_profile_key_and_known_kinds(tmp_path, monkeypatch):
    _patch_entry_points(monkeypatch)
    raw = yaml.safe_load((PROFILE_DIR / "reference-16s-lfp.yaml").read_text())
    raw["link"] = {"kind": "lin", "timeout_s": 2.0}
    path = tmp_path / "lin-board.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as ei:
        load_profile(path)
    e = ei.value
    assert e.file == str(path) and e.key == "link.kind"
    assert "unknown link kind 'lin'" in e.problem and "'can', 'modbus', 'jbd' or 'daly'" in e.problem


def test_an_installed_kind_is_listed_among_the_known(tmp_path, monkeypatch):
    _patch_entry_points(monkeypatch, toy="tests.links.toy_link:KIND")
    with pytest.raises(ConfigError) as ei:
        registry.get_kind("lin", "board.yaml")
    assert ei.value.key == "link.kind" and "'can', 'modbus', 'jbd', 'daly' or 'toy'" in ei.value.problem


@pytest.mark.parametrize("value, problem", [
    ("no_such_pkg.links:KIND", "cannot load link kind: ModuleNotFoundError"),
    ("rig.links.registry:GROUP", "is a str, not a rig.links.registry.LinkKind"),
    ("rig.links.kinds.can:KIND", "called 'can', not 'toy'"),
])
def test_entry_point_failures_name_the_entry_point(monkeypatch, value, problem):
    _patch_entry_points(monkeypatch, toy=value)
    with pytest.raises(ConfigError) as ei:
        registry.get_kind("toy", "board.yaml")
    assert ei.value.file == f"entry point bmsrig.links:toy = {value}"
    assert problem in ei.value.problem


def test_entry_point_failure_while_loading_a_profile_is_a_config_error(monkeypatch):
    _patch_entry_points(monkeypatch, toy="no_such_pkg.links:KIND")
    with pytest.raises(ConfigError) as ei:
        load_profile(TOY_PROFILE)
    assert "bmsrig.links:toy" in ei.value.file


def test_kind_settings_validate_the_link_section(tmp_path, monkeypatch):
    """The toy kind's own model checks its keys; the shared ones (timeout > poll) still apply."""
    _patch_entry_points(monkeypatch, toy="tests.links.toy_link:KIND")
    profile = load_profile(TOY_PROFILE)
    assert type(profile.link).__name__ == "ToySettings" and profile.link.decimals == 4
    raw = yaml.safe_load(TOY_PROFILE.read_text())
    for change, key, problem in (({"decimals": 9}, "link.decimals", "less than or equal to 6"),
                                 ({"dbc": "x.dbc"}, "link.dbc", "unknown key 'dbc'"),
                                 ({"timeout_s": 0.1}, "link.timeout_s", "longer than link.poll_s")):
        bad = {**raw, "link": {**raw["link"], **change}}
        path = tmp_path / "toy-bad.yaml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(ConfigError) as ei:
            load_profile(path)
        assert (ei.value.file, ei.value.key) == (str(path), key) and problem in ei.value.problem


def test_nothing_in_rig_branches_on_the_link_kind():
    """Only the kind modules know what a kind is: no comparison with a kind name elsewhere."""
    pattern = re.compile(r"""kind\s*[!=]=\s*["'](can|modbus)["']|["'](can|modbus)["']\s*[!=]=""")
    offenders = []
    for path in (ROOT / "rig").rglob("*.py"):
        if "kinds" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
    assert not [p for p in (ROOT / "rig").rglob("*.py") if re.search(r"\btoy\b", p.read_text())]


# ---------------------------------------------------------------------------- bench side


def test_vendor_dbc_round_trips_through_the_boards_own_dbc(can_bus, channel, clock):
    """The bench transmitter encodes through the board's DBC + map: other names, Motorola
    NTCs, +1 V offset cells (the unused Vc9 slot must not be sent as 0.0 V), a mask at bit 2."""
    from rig.links.can_link import CanBmsLink
    from rig.sim.can_tx import CanTransmitter

    link = CanBmsLink("vnd", can_bus, VENDOR_DBC, VENDOR_MAP, 8, clock)
    tx = CanTransmitter(VENDOR_DBC, channel, 8, signal_map_path=VENDOR_MAP)
    bal = np.zeros(8, bool)
    bal[[1, 6]] = True
    tel = make_telemetry(8, balancing=bal, lvc=True, ot=True, charge_fet=False, pack_v=26.4, pack_a=-12.35,
                         state="discharge", serial="VND-004711", hw_revision="K", fw_version="3.0.7",
                         temps_c=np.r_[20.0 + 0.5 * np.arange(8), 55.5])
    try:
        assert tx.send(1.0, tel) == 3 + 1 + 1 + 2 + 1  # 3 cell blocks, thermals, bleed, 2 info pages, state last
        s = link.latest()
        np.testing.assert_allclose(s.cell_v, tel.cell_v, atol=1e-9)
        np.testing.assert_allclose(s.temps_c, tel.temps_c, atol=1e-9)
        np.testing.assert_array_equal(s.balancing, bal)
        assert (s.flags.hvc, s.flags.lvc, s.flags.ot, s.flags.ut) == (False, True, True, False)
        assert (s.charge_fet, s.discharge_fet) == (False, True)
        assert s.pack_v == pytest.approx(26.4) and s.pack_a == pytest.approx(-12.35)
        assert s.state == "discharge"
        ident = link.identity()
        assert (ident.serial, ident.hw_revision, ident.fw_version) == ("VND-004711", "K", "3.0.7")
    finally:
        link.close()
        tx.close()


def test_values_beyond_a_signal_are_clamped_not_crashing(channel):
    """0 V on a cell (a disconnected channel) is below the +1 V offset: clamped to 1 V."""
    import cantools

    from rig.sim.can_tx import CanTransmitter

    tx = CanTransmitter(VENDOR_DBC, channel, 8, signal_map_path=VENDOR_MAP)
    try:
        frames = tx.encode(0.0, make_telemetry(8, cell_v=np.r_[0.0, 9.0, np.full(6, 3.3)]))
    finally:
        tx.close()
    db = cantools.database.load_file(str(VENDOR_DBC))
    decode = db.get_message_by_name("VND_CellBlock").decode
    block0 = next(decode(d) for fid, d in frames if fid == 0x310 and d[0] == 0)
    assert block0["Vc1"] == pytest.approx(1.0) and block0["Vc2"] == pytest.approx(7.5535)
    block2 = next(decode(d) for fid, d in frames if fid == 0x310 and d[0] == 2)
    assert block2["Vc9"] == pytest.approx(1.0)  # unmapped on 8S: raw 0, the signal's offset


def test_vendor_profile_check_loads_its_maps():
    """An extended frame whose id fits 11 bits (0x301) is found by its message, not its bare id."""
    from rig.check import check_profile_links

    assert check_profile_links(load_profile(VENDOR_PROFILE)) == []


def test_dut_ports_create_the_kinds_counterpart_lazily_and_mute_it():
    from rig.sim.defects import parse_defects
    from rig.sim.ports import DutPorts

    profile = load_profile("reference-4s-lfp-uart")
    bleeding = [False]
    ports = DutPorts(profile, "t", parse_defects(["silent_while_balancing"], profile), lambda: bleeding[0])
    tel = make_telemetry(4)
    try:
        ports.publish(tel, 0.0)
        assert ports.port is None  # nothing opened before the rig asks
        path = ports.endpoint()
        assert path.startswith("/dev/") and ports.port.registers().any()  # holds the last telemetry
        bleeding[0] = True
        ports.publish(tel, 0.25)
        assert ports.muted and ports.port.muted
        bleeding[0] = False
        ports.publish(tel, 0.5)
        assert not ports.port.muted
    finally:
        ports.close()
    assert ports.port is None


# ---------------------------------------------------------------------------- end to end on the bench


def _dist_info(root: Path) -> Path:
    """A site folder with a dist-info declaring the toy kind's entry point (as an install would)."""
    site = root / "site"
    info = site / "bmsrig_toy_link-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bmsrig-toy-link\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\ntoy = tests.links.toy_link:KIND\n")
    return site


def _run(board: Path, out: Path, site: Path | None = None, *plans: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (site, ROOT) if p is not None)
    return subprocess.run([sys.executable, "-m", "rig.cli", "run", "--board", str(board), "--out", str(out), *plans],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)


@pytest.mark.slow
def test_toy_kind_runs_a_plan_on_the_bench(tmp_path):
    """A kind no module of rig/ names, installed by one entry point, runs a plan end to end."""
    site = _dist_info(tmp_path)
    proc = _run(TOY_PROFILE, tmp_path / "run", site, "test_channel_mapping.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = (tmp_path / "run" / "record.jsonl").read_text()
    assert '"serial":"REF4U-000777"' in record.replace(" ", "")  # identity came over the toy link
    assert "passed" in proc.stdout


@pytest.mark.slow
def test_vendor_dbc_board_runs_a_plan_on_the_bench(tmp_path):
    """Another DBC and signal names, through the built-in CAN kind: the bench encodes with the board's own DBC."""
    proc = _run(VENDOR_PROFILE, tmp_path / "run", None, "test_channel_mapping.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '"serial":"VND-004711"' in (tmp_path / "run" / "record.jsonl").read_text().replace(" ", "")


def test_a_port_that_does_not_fit_the_kind_names_link_kind(tmp_path):
    """A rig whose link port is a CANPort cannot carry a Modbus board: ConfigError on link.kind."""
    from rig.build import ENV_DIR, build_rig

    text = (ENV_DIR / "sim.yaml").read_text()
    text = text.replace("BenchPort: {}", "CANPort: {interface: virtual, channel: not-the-bench}")
    text = text.replace("BenchLinkDriver: {}", "LinkDriver: {}")
    env = tmp_path / "can-rig.yaml"
    env.write_text(text)
    rig = build_rig(env, load_profile("reference-4s-lfp-uart"))
    try:
        with pytest.raises(ConfigError) as ei:
            rig.link.latest()
        assert ei.value.key == "link.kind" and "CANPort" in ei.value.problem and "RawSerialPort" in ei.value.problem
    finally:
        rig.close()
