"""Build a rig from a labgrid environment file: the same code path for bench and hardware."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chemistry import chemistry
from .clock import Clock, WallClock
from .context import RigContext, with_context
from .env_drivers import driver_key, order_drivers
from .errors import ConfigError, RigFault, WaitTimeout
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

    def baseline(self, ambient_c: float = 25.0, keep_chamber: bool = False) -> None:
        """Return the rig to its between-tests state and wait for the board to settle.

        Emulator in source mode, no injected noise, every channel at the baseline voltage;
        pack current zero; chamber at ambient and stable; the board out of any protection
        state with balancing off (as a lab does before each procedure). ``keep_chamber``: leave
        the chamber where it is (the next test sets its own set points; fixtures.schedule)
        unless the board reports over- or under-temperature there.
        """
        self.pack_source.off()
        self.emulator.set_source_mode()
        self.emulator.set_noise(0.0)
        self.emulator.set_voltages(np.full(self.emulator.n_channels, self.baseline_cell_v))
        self.emulator.enable(True)
        if keep_chamber and self.chamber is not None:  # kept only while the board is not OT/UT gated
            flags = self.link.latest().flags
            keep_chamber = not (flags.ot or flags.ut)
        if keep_chamber and self.chamber is not None:
            # a board that gates on temperature without reporting an OT/UT flag (or with no
            # flags at all) shows it only by not settling: then back to ambient, and settle there
            try:
                self._settle()
                return
            except WaitTimeout:
                keep_chamber = False
        if self.chamber is not None and not keep_chamber and abs(self.chamber.read_temperature() - ambient_c) > 1.0:
            self.chamber.set_temperature(ambient_c)
            self.chamber.wait_stable(tolerance_c=1.0, dwell_s=60.0, timeout_s=4 * 3600)
        self._settle()

    def _settle(self) -> None:
        """Wait out the protection recoveries, then for the board at baseline (no protection
        flags, FETs closed where the board reports them, balancing off); WaitTimeout when it
        does not get there."""
        p = self.profile
        cutoffs = (p.protection.hvc, p.protection.lvc)
        settle = max(max(c.recovery_s, c.lockout_s) for c in cutoffs) + 4 * p.sampling.period_s
        self.clock.sleep(settle)
        # a FET state the board does not report reads "open" and is no evidence: not waited for
        caps = getattr(self.link, "reports", None)
        chg, dsg = ((caps.has("charge_fet"), caps.has("discharge_fet")) if caps is not None else (True, True))
        self.link.wait_for(
            lambda s: (not (s.flags.hvc or s.flags.lvc) and (s.charge_fet or not chg) and (s.discharge_fet or not dsg)
                       and not s.balancing.any()),
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
    coordinator: str | None = None,
) -> Rig:
    """Build the rig an environment file describes, for the board ``profile``.
    ``coordinator``: labgrid coordinator address (HOST[:PORT]) for RemotePlace resources.

    Raises ConfigError (exit 2) for a bad environment and RigFault (exit 3) when an
    instrument or the link cannot be opened.
    """
    from labgrid import Environment
    from labgrid.exceptions import NoDriverFoundError, NoResourceFoundError

    from . import labgrid as _registrations  # noqa: F401  (register our classes)
    from .drivers.links import select_link_driver
    from .drivers.sim import SimBenchDriver
    from .places import rename_remote_places

    env_path = find_env(env)
    from .check import check_env

    check_env(env_path)  # strict YAML, known classes and arguments, limits: exit 2 before anything opens
    ctx = RigContext(profile=profile, seed=seed, defects=list(defects), board_model=board_model)
    try:
        environment = Environment(str(env_path))
        if coordinator:  # labgrid's --lg-coordinator: where the rig's RemotePlace resources are served
            environment.config.set_option("coordinator_address", str(coordinator))
        main = environment.config.get_targets().get("main")
        rename_remote_places(main)  # the place this run holds (bmsrig run --place), rig/places.py
        order_drivers(main)
        if isinstance(main, dict):
            with_context(main, ctx)  # the RunContext resource exists before any driver is created
        target = environment.get_target("main")
    except ConfigError:
        raise
    except LimitConfigError as exc:
        raise ConfigError(env_path, driver_key(exc), exc.problem) from None
    except Exception as exc:  # labgrid raises many types for a bad file
        raise ConfigError(env_path, _labgrid_key(exc), f"{type(exc).__name__}: {exc}") from None
    if target is None:
        raise ConfigError(env_path, "targets.main", "the rig description has no target 'main'")

    try:
        fix_limits(env_path, target)  # the run context is there: limits for this profile, before anything opens
    except ConfigError:
        target.cleanup()
        raise
    # The clock is known before any driver activates: the wall clock on hardware, the bench's
    # virtual clock once SimBenchDriver (activated first, here) runs.
    kind = "bench" if any(isinstance(d, SimBenchDriver) for d in target.drivers) else "hardware"
    if kind == "hardware":
        if defects:
            target.cleanup()
            raise ConfigError(env_path, "--defect", "defects can only be injected on the virtual bench")
        ctx.clock = WallClock()
    bench = _optional(target, SimBenchDriver)
    try:
        emulator = target.get_driver(CellEmulator)
        pack_source = target.get_driver(PackCurrentSource)
        link = select_link_driver(target, profile, env_path)
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


def _labgrid_key(exc: Exception) -> str | None:
    text = str(exc)
    for token in ("resources", "drivers", "targets", "imports"):
        if token in text:
            return token
    return None


__all__ = ["Rig", "build_rig", "find_env", "DEFAULT_ENV", "RigFault"]
