"""An impossible or malformed input is never accepted: one table, every user-facing file.

Each row builds one malformed variant of a shipped file (profile, signal map, DBC, register
map, rig description) or a malformed command line in ``tmp_path``, runs ``bmsrig`` on it and
asserts: exit 2 (3 for an I/O fault), a message naming the file, the key and the problem, no
traceback, and nothing accepted (no "OK", no run folder).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

from rig.cli import main

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "testplans" / "profiles"
ENVS = ROOT / "rig" / "envs"
CAN16 = "reference-16s-lfp.yaml"
UART4 = "reference-4s-lfp-uart.yaml"
SIGMAP = "reference-bms-can.yaml"
REGMAP = "reference-bms-modbus.yaml"
DBC = "reference-bms.dbc"


class Ws:
    """A scratch copy of the shipped profiles folder and rig descriptions."""

    def __init__(self, root: Path):
        self.root = root
        self.dir = root / "profiles"
        shutil.copytree(PROFILES, self.dir)
        for env in ENVS.glob("*.yaml"):
            shutil.copy(env, root / env.name)
        self.env = str(root / "sim.yaml")
        self.out = root / "out"

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _set(data: dict, dotted: str, value) -> None:
        *parents, last = dotted.split(".")
        for p in parents:
            data = data.setdefault(p, {})
        if value is _DELETE:
            del data[last]
        else:
            data[last] = value

    def _yaml(self, src: Path, dst: Path, sets: dict, text: Callable[[str], str] | None) -> str:
        if text is not None:
            dst.write_text(text(src.read_text()))
        else:
            data = yaml.safe_load(src.read_text())
            for k, v in sets.items():
                self._set(data, k, v)
            dst.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return str(dst)

    def profile(self, base: str = CAN16, text=None, **sets) -> str:
        sets = {k.replace("__", "."): v for k, v in sets.items()}
        return self._yaml(self.dir / base, self.dir / "bad-profile.yaml", sets, text)

    def sigmap(self, text=None, **sets) -> str:
        """A malformed signal map, and a CAN profile using it."""
        sets = {k.replace("__", "."): v for k, v in sets.items()}
        self._yaml(self.dir / SIGMAP, self.dir / "bad-map.yaml", sets, text)
        return self.profile(CAN16, link__signal_map="bad-map.yaml")

    def regmap(self, text=None, **sets) -> str:
        sets = {k.replace("__", "."): v for k, v in sets.items()}
        self._yaml(self.dir / REGMAP, self.dir / "bad-map.yaml", sets, text)
        return self.profile(UART4, link__register_map="bad-map.yaml")

    def dbc(self, text: Callable[[str], str] | str, encoding: str = "utf-8") -> str:
        body = text if isinstance(text, str) else text((self.dir / DBC).read_text())
        (self.dir / "bad.dbc").write_bytes(body.encode(encoding))
        return self.profile(CAN16, link__dbc="bad.dbc")

    def rig(self, base: str = "sim.yaml", text=None, **sets) -> str:
        sets = {k.replace("__", "."): v for k, v in sets.items()}
        return self._yaml(self.root / base, self.root / "bad-env.yaml", sets, text)

    def check(self, board: str | None = None, rig: str | None = None) -> list[str]:
        return ["check", "--rig", rig or self.env, "--board", board or str(self.dir / CAN16)]

    def run(self, board: str | None = None, rig: str | None = None, *extra: str) -> list[str]:
        return ["run", "--rig", rig or self.env, "--board", board or str(self.dir / CAN16),
                "--out", str(self.out), *extra, "test_channel_mapping.py"]


_DELETE = object()
SIM_DRV = "targets__main__drivers__SimCellEmulatorDriver"


@dataclass
class Case:
    id: str
    argv: Callable[[Ws], list[str]]
    file: str          # the file (or CLI origin) the message must name
    key: str           # ... the key
    problem: str       # ... and the problem (case-insensitive substrings)
    code: int = 2
    xfail: str | None = None
    marks: list = field(default_factory=list)


def P(id, file="bad-profile.yaml", key="", problem="", build=None, **sets):
    """A malformed profile checked with ``bmsrig check``."""
    return Case(id, build or (lambda ws: ws.check(ws.profile(**sets))), file, key, problem)


def dup(src: str, anchor: str, extra: str) -> Callable[[str], str]:
    """Insert ``extra`` (a duplicate key line) right after the line containing ``anchor``."""

    def edit(text: str) -> str:
        assert anchor in text, anchor
        i = text.index("\n", text.index(anchor)) + 1
        return text[:i] + extra + "\n" + text[i:]

    return edit


def sub(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


INF, NAN = float("inf"), float("nan")

CASES: list[Case] = [
    # ------------------------------------------------------------------ profiles: physics
    P("hvc-9V", key="protection.hvc.threshold_v", problem="absolute range", protection__hvc__threshold_v=9.0),
    P("hvc-4.3V-on-lfp", key="protection.hvc.threshold_v", problem="absolute range of a LFP cell",
      protection__hvc__threshold_v=4.3),
    P("hvc-4.5V-on-nmc", key="protection.hvc.threshold_v", problem="absolute range of a NMC cell",
      chemistry="nmc", protection__hvc__threshold_v=4.5),
    P("lvc-negative", key="protection.lvc.threshold_v", problem="greater than 0", protection__lvc__threshold_v=-1.0),
    P("lvc-below-abs-min", key="protection.lvc.threshold_v", problem="absolute range", protection__lvc__threshold_v=1.5),
    P("min-cell-above-hvc", key="protection.hvc.threshold_v", problem="above balancing.min_cell_v",
      balancing__min_cell_v=3.7),
    P("lvc-above-min-cell", key="protection.lvc.threshold_v", problem="below balancing.min_cell_v",
      protection__lvc__threshold_v=3.5),
    P("hvc-hysteresis-beyond-span", key="protection.hvc.hysteresis_mv", problem="span", protection__hvc__hysteresis_mv=2000),
    P("recoveries-crossed", key="protection.hvc.hysteresis_mv", problem="LVC recovery",
      protection__hvc__hysteresis_mv=600, protection__lvc__hysteresis_mv=600),
    P("hysteresis-negative", key="protection.lvc.hysteresis_mv", problem="greater than or equal to 0",
      protection__lvc__hysteresis_mv=-5),
    P("tolerance-beyond-span", key="protection.hvc.threshold_tolerance_mv", problem="span",
      protection__hvc__threshold_tolerance_mv=900),
    P("latency-shorter-than-delay", key="protection.hvc.latency_max_s", problem="shorter than delay_s",
      protection__hvc__latency_max_s=0.5),
    P("latency-zero", key="protection.lvc.latency_max_s", problem="greater than 0", protection__lvc__latency_max_s=0),
    P("stop-delta-above-start", key="balancing.stop_delta_mv", problem="below balancing.start_delta_mv",
      balancing__stop_delta_mv=40),
    P("start-delta-zero", key="balancing.start_delta_mv", problem="greater than 0", balancing__start_delta_mv=0),
    P("start-delta-beyond-span", key="balancing.start_delta_mv", problem="span", balancing__start_delta_mv=2000),
    P("bleed-range-reversed", key="balancing.bleed_current_ma", problem="0 < low < high", balancing__bleed_current_ma=[60, 30]),
    P("bleed-range-negative", key="balancing.bleed_current_ma", problem="0 < low < high",
      balancing__bleed_current_ma=[-10, 60]),
    P("bleed-resistor-zero", key="balancing.bleed_resistor_ohm", problem="greater than 0", balancing__bleed_resistor_ohm=0),
    P("channels-beyond-cells", key="balancing.max_channels", problem="more than the board's 16 cells",
      balancing__max_channels=20),
    P("channels-zero", key="balancing.max_channels", problem="greater than or equal to 1", balancing__max_channels=0),
    P("interval-negative", key="balancing.interval_s", problem="greater than 0", balancing__interval_s=-1),
    P("strategy-duty-above-1", key="balancing.strategies.charge", problem="less than or equal to 1",
      balancing__strategies__charge=1.5),
    P("derating-reversed", key="balancing.derating.zero_c", problem="above derating.start_c", balancing__derating__zero_c=50),
    P("derating-tolerance-above-1", key="balancing.derating.duty_tolerance", problem="less than or equal to 1",
      balancing__derating__duty_tolerance=1.5),
    P("temperature-range-reversed", key="sampling.temperature_range_c", problem="low < high",
      sampling__temperature_range_c=[60, -20]),
    P("temperature-range-beyond-cell", key="sampling.temperature_range_c", problem="temperature envelope",
      sampling__temperature_range_c=[-60, 60]),
    P("charge-temperatures-reversed", key="protection.ut_charge_c", problem="below protection.ot_charge_c",
      protection__ot_charge_c=-10),
    P("charge-temperature-beyond-cell", key="protection.ot_charge_c", problem="temperature envelope",
      protection__ot_charge_c=200),
    P("period-zero", key="sampling.period_s", problem="greater than 0", sampling__period_s=0),
    P("mute-longer-than-period", key="sampling.mute_s", problem="shorter than sampling.period_s", sampling__mute_s=0.3),
    P("filter-zero", key="sampling.filter_samples", problem="greater than or equal to 1", sampling__filter_samples=0),
    P("cells-zero", key="cells", problem="greater than or equal to 1", cells=0),
    P("cells-negative", key="cells", problem="greater than or equal to 1", cells=-4),
    P("cells-text", key="cells", problem="integer", cells="sixteen"),
    P("capacity-zero", key="capacity_ah", problem="greater than 0", capacity_ah=0),
    P("capacity-negative", key="capacity_ah", problem="greater than 0", capacity_ah=-100),
    P("chemistry-unknown", key="chemistry", problem="'lfp' or 'nmc'", chemistry="lipo"),
    P("threshold-text", key="protection.hvc.threshold_v", problem="valid number", protection__hvc__threshold_v="high"),
    P("missing-protection", key="protection", problem="Field required", protection=_DELETE),
    # ------------------------------------------------------------------ profiles: finite numbers
    P("delay-inf", key="protection.hvc.delay_s", problem="finite", protection__hvc__delay_s=INF),
    P("delay-nan", key="protection.lvc.delay_s", problem="finite", protection__lvc__delay_s=NAN),
    P("tolerance-inf", key="protection.hvc.threshold_tolerance_mv", problem="finite",
      protection__hvc__threshold_tolerance_mv=INF),
    P("accuracy-nan", key="sampling.accuracy_mv", problem="finite", sampling__accuracy_mv=NAN),
    P("temperature-range-inf", key="sampling.temperature_range_c", problem="finite",
      sampling__temperature_range_c=[-20, INF]),
    P("recovery-inf", key="protection.hvc.recovery_s", problem="finite", protection__hvc__recovery_s=INF),
    P("poll-inf", key="link.poll_s", problem="finite", link__poll_s=INF),
    P("hvc-threshold-nan", key="protection.hvc.threshold_v", problem="finite", protection__hvc__threshold_v=NAN),
    # ------------------------------------------------------------------ profiles: keys, YAML
    P("duplicate-top-key", key="cells", problem="duplicate key 'cells'", build=lambda ws: ws.check(
        ws.profile(text=dup(CAN16, "cells: 16", "cells: 8")))),
    P("duplicate-nested-key", key="protection.hvc.threshold_v", problem="duplicate key", build=lambda ws: ws.check(
        ws.profile(text=dup(CAN16, "threshold_v: 3.65", "    threshold_v: 3.80")))),
    P("unknown-top-key", key="cell", problem="did you mean 'cells'", cell=16),
    P("unknown-nested-key", key="protection.hvc.delay_ms", problem="did you mean 'delay_s'", protection__hvc__delay_ms=5),
    P("unknown-strategy-key", key="balancing.strategies.dischrage", problem="did you mean 'discharge'",
      balancing__strategies__dischrage=0),
    P("not-a-mapping", problem="must be a YAML mapping", build=lambda ws: ws.check(ws.profile(text=lambda t: "- a\n- b\n"))),
    P("not-yaml", key="line", problem="not valid YAML", build=lambda ws: ws.check(ws.profile(text=lambda t: t + "\nfoo: [1,\n"))),
    P("not-utf8", problem="not UTF-8", build=lambda ws: ws.check(
        ws.profile(text=lambda t: t.replace("description:", "# \xb0C\ndescription:")) and _latin1(ws.dir / "bad-profile.yaml"))),
    Case("profile-missing-file", lambda ws: ws.check(str(ws.dir / "nope.yaml")), "nope.yaml", "", "no such board profile"),
    Case("profile-is-a-folder", lambda ws: ws.check(str(ws.dir)), "profiles", "", "no such board profile"),
    Case("profile-unknown-name", lambda ws: ws.check("reference-99s"), "reference-99s", "", "unknown board profile"),
    # ------------------------------------------------------------------ profiles: link, bench
    P("link-kind-unknown", key="link.kind", problem="unknown link kind 'lin'; known kinds: 'can', 'modbus'", link__kind="lin"),
    P("bitrate-negative", key="link.bitrate", problem="greater than 0", link__bitrate=-500000),
    P("bitrate-above-can", key="link.bitrate", problem="less than or equal to 1000000", link__bitrate=5_000_000),
    P("timeout-below-poll", key="link.timeout_s", problem="longer than link.poll_s", link__timeout_s=0.05),
    P("can-without-dbc", key="link", problem="needs 'dbc'", link__dbc=_DELETE),
    P("dbc-missing", key="link.dbc", problem="file not found", link__dbc="missing.dbc"),
    P("unit-id-out-of-range", key="link.unit_id", problem="less than or equal to 247", base=UART4, link__unit_id=300),
    P("key-of-another-kind", key="link.unit_id", problem="unknown key", link__unit_id=3),  # unit_id is Modbus-only
    P("bench-model-no-module", key="bench.model", problem="cannot import", bench__model="no_such_pkg.board:Board"),
    P("bench-model-no-class", key="bench.model", problem="has no board model class",
      bench__model="rig.sim.reference_board:NoSuchBoard"),
    P("bench-model-no-colon", key="bench.model", problem="pattern", bench__model="rig.sim.reference_board"),
    P("bench-model-not-a-board", key="bench.model", problem="wake", bench__model="math:pi"),
    # ------------------------------------------------------------------ signal maps
    Case("map-duplicate-key", lambda ws: ws.check(ws.sigmap(text=dup(SIGMAP, "hvc: Flag_HVC", "  hvc: Flag_LVC"))),
         "bad-map.yaml", "flags.hvc", "duplicate key"),
    Case("map-unknown-key", lambda ws: ws.check(ws.sigmap(cells__voltage__tempalte="x")), "bad-map.yaml",
         "cells.voltage.tempalte", "did you mean 'template'"),
    Case("map-signal-not-in-dbc", lambda ws: ws.check(ws.sigmap(flags__hvc="Flag_HVX")), "bad-map.yaml", "flags.hvc",
         "did you mean Flag_HVC"),
    Case("map-sample-on-unknown", lambda ws: ws.check(ws.sigmap(sample_on="BMS_Stat")), "bad-map.yaml", "sample_on",
         "not found in DBC"),
    Case("map-template-without-i", lambda ws: ws.check(ws.sigmap(cells__voltage__template="CellVoltage")), "bad-map.yaml",
         "cells.voltage.template", "{i}"),
    Case("map-scale-inf", lambda ws: ws.check(ws.sigmap(pack__voltage={"signal": "PackVoltage", "scale": INF})),
         "bad-map.yaml", "pack.voltage.scale", "finite"),
    Case("map-unit-unknown", lambda ws: ws.check(ws.sigmap(pack__voltage={"signal": "PackVoltage", "unit": "furlong"})),
         "bad-map.yaml", "pack.voltage.unit", "unknown voltage unit"),
    Case("map-bit-outside-signal", lambda ws: ws.check(ws.sigmap(flags__hvc={"signal": "Flag_HVC", "bit": 5})),
         "bad-map.yaml", "flags.hvc.bit", "outside signal"),
    Case("map-format-version", lambda ws: ws.check(ws.sigmap(format="bmsrig-signal-map/2")), "bad-map.yaml", "format",
         "bmsrig-signal-map/1"),
    Case("map-fet-both", lambda ws: ws.check(ws.sigmap(fets__charge={"signal": "ChargeFET", "closed_value": 1, "invert": True})),
         "bad-map.yaml", "fets.charge", "not both"),
    # ------------------------------------------------------------------ DBCs
    Case("dbc-duplicate-frame-id", lambda ws: ws.check(ws.dbc(sub("BO_ 257 BMS_Balancing", "BO_ 256 BMS_Balancing"))),
         "bad.dbc", "BO_ 256", "BMS_Status, BMS_Balancing"),
    Case("dbc-duplicate-message-name", lambda ws: ws.check(ws.dbc(sub("BO_ 257 BMS_Balancing", "BO_ 257 BMS_Status"))),
         "bad.dbc", "BO_ BMS_Status", "defined 2 times"),
    Case("dbc-signal-does-not-fit", lambda ws: ws.check(ws.dbc(sub("SG_ CellCount : 48|8@1+", "SG_ CellCount : 60|8@1+"))),
         "bad.dbc", "BO_ BMS_Status", "does not fit"),
    Case("dbc-overlap-and-no-fit", lambda ws: ws.check(ws.dbc(lambda t: sub("SG_ CellCount : 48|8@1+", "SG_ CellCount : 44|8@1+")(
        sub("SG_ BalanceMask : 0|64@1+", "SG_ BalanceMask : 8|64@1+")(t)))), "bad.dbc", "BMS_Balancing", "does not fit"),
    Case("dbc-garbage", lambda ws: ws.check(ws.dbc("this is not a DBC {{{\n")), "bad.dbc", "", "not a valid DBC"),
    Case("dbc-no-messages", lambda ws: ws.check(ws.dbc('VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_:\n')), SIGMAP, "sample_on",
         "not found in DBC bad.dbc"),
    Case("dbc-vendor-duplicate-extended-id", lambda ws: ws.check(ws.dbc(lambda t: t + _VENDOR_DUP_EXT)), "bad.dbc",
         "(extended)", "VCU_CellStats"),
    # ------------------------------------------------------------------ register maps
    Case("regmap-overlap", lambda ws: ws.check(ws.regmap(pack__voltage={"address": 17})), "bad-map.yaml", "pack.voltage",
         "also used by cells.voltage"),
    Case("regmap-address-out-of-range", lambda ws: ws.check(ws.regmap(state__address=70000)), "bad-map.yaml",
         "state.address", "less than or equal to 65535"),
    Case("regmap-runs-past-end", lambda ws: ws.check(ws.regmap(cells__voltage__address=65534, cells__voltage__max_cells=_DELETE)),
         "bad-map.yaml", "cells.voltage", "last Modbus address"),
    Case("regmap-max-cells", lambda ws: ws.check(ws.regmap(cells__voltage__max_cells=2)), "bad-map.yaml", "cells.voltage",
         "room for 2"),
    Case("regmap-bit-16", lambda ws: ws.check(ws.regmap(flags__hvc={"address": 0, "bit": 16})), "bad-map.yaml",
         "flags.hvc.bit", "less than or equal to 15"),
    Case("regmap-duplicate-bit", lambda ws: ws.check(ws.regmap(flags__lvc={"address": 0, "bit": 0})), "bad-map.yaml",
         "flags.lvc", "also used by flags.hvc"),
    Case("regmap-bit-on-value-register", lambda ws: ws.check(ws.regmap(flags__ot={"address": 16, "bit": 2})), "bad-map.yaml",
         "flags.ot", "also used by cells.voltage"),
    Case("regmap-type-unknown", lambda ws: ws.check(ws.regmap(pack__current={"address": 4, "type": "float32"})),
         "bad-map.yaml", "pack.current.type", "uint16"),
    Case("regmap-duplicate-key", lambda ws: ws.check(ws.regmap(text=dup(REGMAP, "word_order: big", "word_order: little"))),
         "bad-map.yaml", "word_order", "duplicate key"),
    Case("regmap-unknown-key", lambda ws: ws.check(ws.regmap(state={"adress": 2})), "bad-map.yaml", "state.adress",
         "did you mean 'address'"),
    Case("regmap-scale-zero", lambda ws: ws.check(ws.regmap(pack__voltage={"address": 3, "scale": 0})), "bad-map.yaml",
         "pack.voltage", "scale must not be 0"),
    Case("regmap-scale-nan", lambda ws: ws.check(ws.regmap(pack__voltage={"address": 3, "scale": NAN})), "bad-map.yaml",
         "pack.voltage.scale", "finite"),
    Case("regmap-block-too-large", lambda ws: ws.check(ws.regmap(max_block=200)), "bad-map.yaml", "max_block",
         "less than or equal to 125"),
    Case("regmap-state-name-twice", lambda ws: ws.check(ws.regmap(state={"address": 2, "choices": {0: "rest", 1: "rest"}})),
         "bad-map.yaml", "state", "several codes"),
    Case("regmap-state-code-too-large", lambda ws: ws.check(ws.regmap(state={"address": 2, "choices": {70000: "rest"}})),
         "bad-map.yaml", "state", "16-bit"),
    Case("regmap-identity-past-end", lambda ws: ws.check(ws.regmap(identity__serial={"address": 65530, "type": "ascii",
                                                                                     "count": 8})),
         "bad-map.yaml", "identity.serial", "last Modbus address"),
    # ------------------------------------------------------------------ rig descriptions
    Case("rig-unknown-driver-arg", lambda ws: ws.check(rig=ws.rig(**{SIM_DRV + "__max_noise_v_rm": 0.02})), "bad-env.yaml",
         "targets.main.drivers.SimCellEmulatorDriver.max_noise_v_rm", "did you mean 'max_noise_v_rms'"),
    Case("rig-unknown-resource-arg", lambda ws: ws.check(rig=ws.rig(targets__main__resources__CANPort__bitrat=500000)),
         "bad-env.yaml", "targets.main.resources.CANPort.bitrat", "did you mean 'bitrate'"),
    Case("rig-unknown-driver-class", lambda ws: ws.check(rig=ws.rig(text=sub("SimDaqDriver: {}", "SimDaqDrive: {}"))),
         "bad-env.yaml", "targets.main.drivers.SimDaqDrive", "did you mean 'SimDaqDriver'"),
    Case("rig-unknown-resource-class", lambda ws: ws.check(rig=ws.rig(text=sub("BenchPort:", "BenchPrt:"))),
         "bad-env.yaml", "targets.main.resources.BenchPrt", "unknown resource class"),
    Case("rig-real-unknown-arg", lambda ws: ws.check(rig=ws.rig("example-real-rig.yaml", text=sub(
        "max_current_a: 1.0", "max_curent_a: 1.0"))), "bad-env.yaml", "ScpiCellEmulatorDriver.max_curent_a",
         "did you mean 'max_current_a'"),
    Case("rig-duplicate-key", lambda ws: ws.check(rig=ws.rig(text=dup("sim", "voltage_range_v: [0.0, 4.5]",
                                                                      "        voltage_range_v: [0.0, 9.0]"))),
         "bad-env.yaml", "targets.main.drivers.SimCellEmulatorDriver.voltage_range_v", "duplicate key"),
    Case("rig-target-unknown-key", lambda ws: ws.check(rig=ws.rig(text=sub("    drivers:", "    driver:"))), "bad-env.yaml",
         "targets.main.driver", "did you mean 'drivers'"),
    Case("rig-no-imports", lambda ws: ws.check(rig=ws.rig(imports=_DELETE)), "bad-env.yaml", "imports", "rig.labgrid"),
    Case("rig-no-main", lambda ws: ws.check(rig=ws.rig(text=sub("  main:", "  bench:"))), "bad-env.yaml", "targets.main",
         "missing"),
    Case("rig-not-yaml", lambda ws: ws.check(rig=ws.rig(text=lambda t: t + "\n  - [\n")), "bad-env.yaml", "line",
         "not valid YAML"),
    Case("rig-missing-file", lambda ws: ws.check(rig=str(ws.root / "nope.yaml")), "nope.yaml", "", "no such rig description"),
    Case("rig-voltage-range-1000", lambda ws: ws.check(rig=ws.rig(**{SIM_DRV + "__voltage_range_v": [-1000, 1000]})),
         "bad-env.yaml", "voltage_range_v", ""),
    Case("rig-safe-voltage-9", lambda ws: ws.check(rig=ws.rig(**{SIM_DRV + "__safe_voltage_v": 9.0})),
         "bad-env.yaml", "safe_voltage_v", ""),
    Case("rig-max-current-negative", lambda ws: ws.check(rig=ws.rig(**{SIM_DRV + "__max_current_a": -5.0})),
         "bad-env.yaml", "max_current_a", ""),
    Case("rig-chamber-range-reversed", lambda ws: ws.check(rig=ws.rig(
        targets__main__drivers__SimChamberDriver__temperature_range_c=[90, -40])), "bad-env.yaml",
         "targets.main.drivers.SimChamberDriver.temperature_range_c", "is not a range"),
    Case("rig-is-a-folder", lambda ws: ws.check(rig=str(_mkdir(ws.root / "rigdir"))), "rigdir", "",
         "no such rig description"),
    Case("rig-resource-args-not-mapping", lambda ws: ws.check(rig=ws.rig(targets__main__resources__CANPort=[1, 2])),
         "bad-env.yaml", "targets.main.resources.CANPort", "must be a mapping"),
    # ------------------------------------------------------------------ bmsrig run: nothing runs
    Case("run-hvc-9V", lambda ws: ws.run(ws.profile(protection__hvc__threshold_v=9.0)), "bad-profile.yaml",
         "protection.hvc.threshold_v", "absolute range"),
    Case("run-duplicate-key", lambda ws: ws.run(ws.profile(text=dup(CAN16, "cells: 16", "cells: 8"))), "bad-profile.yaml",
         "cells", "duplicate key"),
    Case("run-bench-model-unknown", lambda ws: ws.run(ws.profile(bench__model="no_such_pkg.board:Board")),
         "bad-profile.yaml", "bench.model", "cannot import"),
    Case("run-unknown-driver-arg", lambda ws: ws.run(rig=ws.rig(**{SIM_DRV + "__max_noise_v_rm": 0.02})), "bad-env.yaml",
         "max_noise_v_rm", "unknown argument"),
    Case("run-defect-unknown", lambda ws: ws.run(None, None, "--defect", "no_such_defect"), "--defect", "",
         "no_such_defect"),
    Case("run-defect-on-hardware", lambda ws: ws.run(None, str(ws.root / "example-real-rig.yaml"), "--defect",
                                                     "balance_start_delta:mv=15"), "example-real-rig.yaml", "--defect",
         "virtual bench"),
    Case("run-lock-wait-negative", lambda ws: ws.run(None, None, "--lock-wait", "-1"), "bmsrig run", "--lock-wait", ">= 0"),
    Case("run-seed-not-int", lambda ws: ws.run(None, None, "--seed", "abc"), "bmsrig run", "--seed", "invalid int"),
    Case("run-decision-rule-unknown", lambda ws: ws.run(None, None, "--decision-rule", "lenient"), "bmsrig run",
         "--decision-rule", "invalid choice"),
    Case("run-board-model-unknown", lambda ws: ws.run(None, None, "--board-model", "no_such_pkg:Board"), "--board-model",
         "", "cannot import"),
    # ------------------------------------------------------------------ bmsrig report
    Case("report-no-folder", lambda ws: ["report", str(ws.root / "no-run")], "no-run", "record.jsonl", "no run record"),
    Case("report-empty-folder", lambda ws: ["report", str(_mkdir(ws.root / "empty-run"))], "empty-run", "record.jsonl",
         "no run record"),
    Case("report-on-a-file", lambda ws: ["report", ws.env], "sim.yaml", "record.jsonl", "no run record"),
    Case("report-corrupt-middle-line", lambda ws: ["report", str(_corrupt_run(ws.root / "corrupt-run"))], "record.jsonl",
         "line 2", "not a record event"),
]

_VENDOR_DUP_EXT = """
BO_ 2566834709 VCU_CellStats: 8 VCU
 SG_ MaxCellV : 0|16@1+ (0.001,0) [0|65.535] "V" BMS

BO_ 2566834709 VCU_CellStats_v2: 8 VCU
 SG_ MinCellV : 0|16@1+ (0.001,0) [0|65.535] "V" BMS
"""


def _latin1(path: Path) -> str:
    path.write_bytes(path.read_text().encode("latin-1", errors="replace"))
    return str(path)


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _corrupt_run(path: Path) -> Path:
    path.mkdir()
    (path / "record.jsonl").write_text('{"event": "run_start"}\ngarbage{\n{"event": "run_end"}\n')
    return path


def test_the_table_is_large_enough():
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - an escaped exception is the traceback we look for
            import traceback

            err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc)))
            code = 1
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=False)]
                                               if c.xfail else []) for c in CASES])
def test_malformed_input_is_rejected(case: Case, tmp_path):
    ws = Ws(tmp_path)
    argv = case.argv(ws)
    code, out, err = _run_cli(argv)
    assert "Traceback" not in out + err, err
    assert code == case.code, f"exit {code} for {argv}\nstdout: {out}\nstderr: {err}"
    assert ": OK" not in out, out
    assert not ws.out.exists(), "bmsrig run created its run folder for a rejected input"
    message = err.lower()
    for part in (case.file, case.key, case.problem):
        assert part.lower() in message, f"{part!r} not in the message: {err}"


@pytest.mark.parametrize("argv_of", [
    lambda ws: ws.check(ws.profile(protection__hvc__delay_s=INF)),
    lambda ws: ws.check(ws.dbc(sub("BO_ 257 BMS_Balancing", "BO_ 256 BMS_Balancing"))),
    lambda ws: ws.run(rig=ws.rig(**{SIM_DRV + "__max_noise_v_rm": 0.02})),
    lambda ws: ws.check(ws.profile(text=dup(CAN16, "cells: 16", "cells: 8"))),
], ids=["profile-inf", "dbc-duplicate-id", "rig-unknown-arg", "duplicate-key"])
def test_rejected_through_the_real_command_without_traceback(argv_of, tmp_path):
    ws = Ws(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "rig.cli", *argv_of(ws)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.startswith("bmsrig: error: "), proc.stderr
    assert not ws.out.exists()


# ---------------------------------------------------------------------- valid inputs stay valid


def test_shipped_files_pass_check(tmp_path):
    ws = Ws(tmp_path)
    for board in (CAN16, "reference-32s-lfp.yaml", UART4):
        for env in ("sim.yaml", "example-real-rig.yaml"):
            code, out, err = _run_cli(["check", "--rig", str(ws.root / env), "--board", str(ws.dir / board)])
            assert code == 0, err
            assert ": OK" in out


_UTF8_DBC_TEMPS = ('BO_ 264 BMS_Extra: 8 BMS\n SG_ Board_Temp : 0|16@1- (0.1,0) [-50|150] "°C" RIG\n')


def test_utf8_dbc_is_read_as_utf8(tmp_path):
    """A UTF-8 DBC with a "°C" unit: read as cp1252 the unit would be "Â°C" (unknown)."""
    from rig.links.dbc import load_dbc

    ws = Ws(tmp_path)
    ws.dbc(lambda t: t + "\n" + _UTF8_DBC_TEMPS)
    db = load_dbc(ws.dir / "bad.dbc")
    assert db.get_message_by_name("BMS_Extra").get_signal_by_name("Board_Temp").unit == "°C"


def test_cp1252_dbc_still_loads(tmp_path):
    from rig.links.dbc import load_dbc

    ws = Ws(tmp_path)
    ws.dbc(lambda t: t + "\n" + _UTF8_DBC_TEMPS, encoding="cp1252")
    db = load_dbc(ws.dir / "bad.dbc")
    assert db.get_message_by_name("BMS_Extra").get_signal_by_name("Board_Temp").unit == "°C"


# A vendor-style DBC: a raw status byte and its bit fields overlap (common in OEM DBCs).
_VENDOR_OVERLAP = """
BO_ 1024 VCU_Status: 8 VCU
 SG_ StatusByte : 0|8@1+ (1,0) [0|255] "" BMS
 SG_ Status_Ready : 0|1@1+ (1,0) [0|1] "" BMS
 SG_ Status_Fault : 1|1@1+ (1,0) [0|1] "" BMS

BO_ 2147484672 VCU_StatusExt: 8 VCU
 SG_ Counter : 0|8@1+ (1,0) [0|255] "" BMS
"""


def test_vendor_dbc_with_overlapping_signals_loads_with_a_warning(tmp_path):
    from rig.check import check_profile_links
    from rig.links.dbc import DbcWarning
    from rig.profile import load_profile

    ws = Ws(tmp_path)
    board = ws.dbc(lambda t: t + _VENDOR_OVERLAP)
    with pytest.warns(DbcWarning, match="overlapping in message VCU_Status"):
        notes = check_profile_links(load_profile(board))
    assert len(notes) == 1 and "VCU_Status" in notes[0], notes
    code, out, err = _run_cli(ws.check(board))
    assert code == 0, err


_VENDOR_MIXED = """
CM_ "Vendor pack controller, UTF-8 comments: Zelltemperatur in °C";

BO_ 1024 PCU_Std: 8 PCU
 SG_ Voltage : 0|16@1+ (0.001,0) [0|65.535] "V" BMS

BO_ 2147484672 PCU_Ext: 8 PCU
 SG_ Mux M : 0|8@1+ (1,0) [0|3] "" BMS
 SG_ T0 m0 : 8|16@1- (0.1,0) [-40|125] "°C" BMS
 SG_ T1 m1 : 8|16@1- (0.1,0) [-40|125] "°C" BMS

VAL_ 2147484672 Mux 0 "first" 1 "second" ;
"""


def test_vendor_dbc_same_number_standard_and_extended_is_not_a_duplicate(tmp_path):
    """0x400 as a standard and as an extended id are two different frames."""
    from rig.links.dbc import load_dbc

    ws = Ws(tmp_path)
    board = ws.dbc(lambda t: t + _VENDOR_MIXED)
    db = load_dbc(ws.dir / "bad.dbc")
    assert {m.name for m in db.messages} >= {"PCU_Std", "PCU_Ext"}
    assert db.get_message_by_name("PCU_Ext").get_signal_by_name("T0").unit == "°C"
    code, out, err = _run_cli(ws.check(board))
    assert code == 0, err
