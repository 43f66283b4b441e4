"""What the polled serial link kinds (``jbd``, ``daly``) share: the ``link:`` settings every
polled UART board has (baud rate, protection-flag bits, unreported quantities, reply timeout,
retries) and the profile checks against a protocol's limits. Units: bit/s, s."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from ...errors import ConfigError
from ...yamlio import KeyedValueError as _Bad
from ..base import QUANTITIES
from ..registry import LinkSettings

FLAG_NAMES = ("hvc", "lvc", "ot", "ut")


class PolledSerialSettings(LinkSettings):
    """The ``link:`` keys of every polled serial kind; a kind adds its own, its ``flags``
    default, and the width of its protection-status field (``FLAG_STATUS_BITS``)."""

    FLAG_STATUS_BITS: ClassVar[int] = 16

    baudrate: int = Field(9600, gt=0, le=1_000_000, description="UART baud rate, bit/s (8N1)")
    unreported: list[str] = Field(default_factory=list, description="quantities the board leaves empty")
    response_timeout_s: float = Field(0.5, gt=0, le=10, description="wait for one reply, s")
    retries: int = Field(2, ge=0, le=10)

    @field_validator("flags", check_fields=False)
    @classmethod
    def _flags(cls, value: dict) -> dict:
        """``{flag: [bit, ...]}``: known flags, bits inside the status field."""
        width = cls.FLAG_STATUS_BITS
        for name, bits in value.items():
            if name not in FLAG_NAMES:
                raise _Bad(name, f"unknown flag {name!r}; use {', '.join(FLAG_NAMES)}")
            for b in bits:
                if not 0 <= b < width:
                    raise _Bad(name, f"bit {b} is outside the {width}-bit protection status (0..{width - 1})")
        return value

    @field_validator("unreported")
    @classmethod
    def _unreported(cls, value: list) -> list:
        """Names of :data:`rig.links.base.QUANTITIES`."""
        for q in value:
            if q not in QUANTITIES:
                raise ValueError(f"unknown quantity {q!r}; use one of {', '.join(QUANTITIES)}")
        return value

    def flag_bits(self) -> dict[str, tuple[int, ...]]:
        """``flags`` as the link and its bench counterpart take them."""
        return {k: tuple(v) for k, v in self.flags.items()}


def check_cell_limit(profile, protocol: str, max_cells: int, why: str) -> list[str]:
    """ConfigError naming ``cells`` when the profile has more cells than ``protocol`` carries."""
    if profile.cells > max_cells:
        raise ConfigError(profile.source, "cells", f"{profile.cells} cells, but the {protocol} protocol reports at most "
                          f"{max_cells}: {why}")
    return []


def check_bench_sensors(profile, key: str, count: int) -> None:
    """ConfigError naming ``link.<key>`` when the bench board model measures fewer temperatures."""
    if count > profile.cells + 1:
        raise ConfigError(profile.source, f"link.{key}", f"{count} sensors, but the bench board model "
                          f"measures {profile.cells + 1} temperatures ({profile.cells} cells + the bleed resistor)")
