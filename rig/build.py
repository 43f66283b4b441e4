"""Build a rig from a labgrid environment file: the same code path for bench and hardware."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chemistry import chemistry
from .clock import Clock, WallClock
from .context import RigContext
from .errors import ConfigError, RigFault
from .profile import BoardProfile
from .safety import FixedLimits, LimitConfigError
from .protocols import (
    BmsLink,
    CellEmulator,
    InstrumentInfo,
    PackCurrentSource,
    ReferenceDAQ,
    ThermalChamber,
)

ENV_DIR = Path(__file__).resolve().parent / "envs"
DEFAULT_ENV = ENV_DIR / "sim.yaml"



def find_env(name_or_path: str | Path | None) -> Path:
    """A shipped environment by name (``sim``) or any YAML file by path."""
    if name_or_path is None:
        return DEFAULT_ENV
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = ENV_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise ConfigError(name_or_path, None, "no such rig description (labgrid environment YAML)")


@dataclass
class Rig:
    """Instruments, DUT link and clock of one rig, as a plan sees them."""

    env_path: Path
    kind: str  # "bench" or "hardware"
    profile: BoardProfile
    clock: Clock
    emulator: CellEmulator
    pack_source: PackCurrentSource
    link: BmsLink
    chamber: ThermalChamber | None = None
    daq: ReferenceDAQ | None = None
    seed: int | None = None
    defects: list[str] = field(default_factory=list)
    target: object = None
    bench_info: InstrumentInfo | None = None

    @property
    def baseline_cell_v(self) -> float:
        """Resting cell voltage a rig returns to between tests, V: the chemistry's nominal, on
        the plateau far from every threshold (LFP table 3.27 V at 60 % SOC; NMC 3.76 V at
        25 %, REFERENCE.md OCV tables)."""
        return chemistry(self.profile.chemistry).nominal_v

    def instruments(self) -> list[InstrumentInfo]:
        out = [self.bench_info] if self.bench_info else []
        for inst in (self.emulator, self.pack_source, self.chamber, self.daq):
            if inst is not None:
                out.append(inst.info())
        return out

    def safe_state(self) -> None:
        """Pack current zero, chamber to ambient, emulator to its safe level. Never raises."""
        for inst in (self.pack_source, self.chamber, self.emulator):
            if inst is None:
                continue
            try:
                inst.safe_state()
            except Exception:
                pass

    def baseline(self, ambient_c: float = 25.0) -> None:
        """Return the rig to its between-tests state and wait for the board to settle.

        Emulator in source mode, no injected noise, every channel at the baseline voltage;
        pack current zero; chamber at ambient and stable; the board out of any protection
        state with balancing off (as a lab does before each procedure).
        """
        self.pack_source.off()
        self.emulator.set_source_mode()
        self.emulator.set_noise(0.0)
        self.emulator.set_voltages(np.full(self.emulator.n_channels, self.baseline_cell_v))
        self.emulator.enable(True)
        if self.chamber is not None and abs(self.chamber.read_temperature() - ambient_c) > 1.0:
            self.chamber.set_temperature(ambient_c)
            self.chamber.wait_stable(tolerance_c=1.0, dwell_s=60.0, timeout_s=4 * 3600)
        p = self.profile
        settle = max(p.protection.hvc.recovery_s, p.protection.lvc.recovery_s) + 4 * p.sampling.period_s
        self.clock.sleep(settle)
        self.link.wait_for(
            lambda s: not (s.flags.hvc or s.flags.lvc) and s.charge_fet and s.discharge_fet and not s.balancing.any(),
            timeout=settle + p.balancing.stop_latency_max_s + 30.0,
            what="the board to settle at baseline (no protection flags, FETs closed, balancing off)",
        )

    def close(self) -> None:
        self.safe_state()
        try:
            self.link.close()
        except Exception:
            pass
        if self.target is not None:
            try:
                self.target.cleanup()
            except Exception:
                pass


def _optional(target, proto):
    from labgrid.exceptions import NoDriverFoundError

    try:
        return target.get_driver(proto)
    except NoDriverFoundError:
        return None


def build_rig(
    env: str | Path | None,
    profile: BoardProfile,
    *,
    seed: int = 1,
    defects: list[str] | tuple[str, ...] = (),
    board_model: str | None = None,
) -> Rig:
    """Build the rig an environment file describes, for the board ``profile``.

    Raises ConfigError (exit 2) for a bad environment and RigFault (exit 3) when an
    instrument or the link cannot be opened.
    """
    from labgrid import Environment
    from labgrid.exceptions import NoDriverFoundError, NoResourceFoundError

    from . import labgrid as _registrations  # noqa: F401  (register our classes)
    from .drivers.links import CanLinkDriver, ModbusLinkDriver
    from .drivers.sim import SimBenchDriver

    env_path = find_env(env)
    from .check import check_env

    check_env(env_path)  # strict YAML, known classes and arguments, limits: exit 2 before anything opens
    try:
        environment = Environment(str(env_path))
        order_drivers(environment.config.get_targets().get("main"))
        target = environment.get_target("main")
    except ConfigError:
        raise
    except LimitConfigError as exc:
        raise ConfigError(env_path, driver_key(exc), exc.problem) from None
    except Exception as exc:  # labgrid raises many types for a bad file
        raise ConfigError(env_path, _labgrid_key(exc), f"{type(exc).__name__}: {exc}") from None
    if target is None:
        raise ConfigError(env_path, "targets.main", "the rig description has no target 'main'")

    ctx = RigContext(profile=profile, seed=seed, defects=list(defects), board_model=board_model)
    target.bmsrig = ctx
    bench = _optional(target, SimBenchDriver)
    kind = "bench" if bench is not None else "hardware"
    if kind == "hardware":
        if defects:
            raise ConfigError(env_path, "--defect", "defects can only be injected on the virtual bench")
        ctx.clock = WallClock()
    link_cls = CanLinkDriver if profile.link.kind == "can" else ModbusLinkDriver
    try:
        emulator = target.get_driver(CellEmulator)
        pack_source = target.get_driver(PackCurrentSource)
        link = target.get_driver(link_cls)
    except (NoDriverFoundError, NoResourceFoundError) as exc:
        raise ConfigError(env_path, "targets.main.drivers", str(exc)) from None
    rig = Rig(
        env_path=env_path,
        kind=kind,
        profile=profile,
        clock=ctx.clock,
        emulator=emulator,
        pack_source=pack_source,
        link=link,
        chamber=_optional(target, ThermalChamber),
        daq=_optional(target, ReferenceDAQ),
        seed=seed if kind == "bench" else None,
        defects=list(defects),
        target=target,
        bench_info=bench.info() if bench is not None else None,
    )
    ctx.safe_state = rig.safe_state  # what a limit trip while running calls
    try:
        fix_limits(env_path, target)
    except ConfigError:
        target.cleanup()
        raise
    if rig.emulator.n_channels != profile.cells:
        raise ConfigError(
            env_path, "cell emulator", f"{rig.emulator.n_channels} channels but the board profile has {profile.cells} cells"
        )
    return rig


def fix_limits(env_path, target) -> None:
    """Fix every instrument's effective hard limits now (narrowed for the profile) and
    validate its safe-state values against them: a ConfigError naming the key, else."""
    for drv in target.drivers:
        if isinstance(drv, FixedLimits):
            try:
                drv.limits
            except LimitConfigError as exc:
                raise ConfigError(env_path, f"targets.main.drivers.{type(drv).__name__}.{exc.key}", exc.problem) from None


def driver_key(exc: LimitConfigError) -> str:
    """``targets.main.drivers.<Driver>.<key>`` for a limit refused while a driver was built."""
    from labgrid.driver.common import Driver

    tb, name = exc.__traceback__, None
    while tb is not None:
        obj = tb.tb_frame.f_locals.get("self")
        if isinstance(obj, Driver):
            name = type(obj).__name__
        tb = tb.tb_next
    return f"targets.main.drivers.{name}.{exc.key}" if name else f"targets.main.drivers.{exc.key}"


def order_drivers(main) -> None:
    """Order the drivers of target ``main`` so that every driver comes after the drivers it
    binds to (labgrid binds in file order): a key-sorted rig file builds the same rig."""
    from labgrid.factory import target_factory

    if not isinstance(main, dict) or not main.get("drivers"):
        return
    drivers = main["drivers"]
    items = list(drivers.items()) if isinstance(drivers, dict) else list(drivers)

    def cls_of(item):
        if isinstance(drivers, dict):
            return item[0]
        return next(iter(item)) if isinstance(item, dict) and len(item) == 1 else None

    present = {cls_of(i) for i in items}

    def needs(item):
        cls = target_factory.drivers.get(cls_of(item))
        out = set()
        for want in getattr(cls, "bindings", {}).values():
            for name in ([want] if isinstance(want, str) else list(want)):
                if name in present and name != cls_of(item):
                    out.add(name)
        return out

    ordered, placed, rest = [], set(), items
    while rest:
        ready = [i for i in rest if needs(i) <= placed]
        if not ready:  # a cycle: leave the rest as written (labgrid reports it)
            ready = rest
        for i in ready:
            ordered.append(i)
            placed.add(cls_of(i))
        rest = [i for i in rest if all(i is not r for r in ready)]
    if isinstance(drivers, dict):
        main["drivers"] = dict(ordered)
    else:
        main["drivers"] = ordered


def _labgrid_key(exc: Exception) -> str | None:
    text = str(exc)
    for token in ("resources", "drivers", "targets", "imports"):
        if token in text:
            return token
    return None


__all__ = ["Rig", "build_rig", "find_env", "DEFAULT_ENV", "RigFault"]
