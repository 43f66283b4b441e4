"""The reference board model, split by job: :mod:`.firmware` (cycle, conversions,
telemetry), :mod:`.protection`, :mod:`.balancing` and :mod:`.quiet` (its declaration to
the bench's fast-forward)."""

from .firmware import ReferenceBoard

__all__ = ["ReferenceBoard"]
