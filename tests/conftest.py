"""Suite-wide options and markers.

- ``--zoo=full`` (or ``BMSRIG_ZOO=full``): the exhaustive defect-zoo sweep (every seed, every
  defect on every profile, the full plan per defect). The default runs a representative
  subset in which every catalog defect is still caught on at least one profile; items
  marked ``zoo_full`` are deselected from it (see ``tests/zoo/conftest.py``).
- Runs sign their manifest with a lab key: the suite's runs use a key made for the session
  (``BMSRIG_KEY_DIR``), never the user's own under ``~/.config/bmsrig``.
- ``needs_pdf_renderer``: the test needs WeasyPrint to load its native libraries (Pango,
  HarfBuzz, fontconfig: system packages, not pip-installable); skipped with the loader's
  error as the reason when they are missing.
"""

from __future__ import annotations

import functools
import os
import tempfile

import pytest

ZOO_MODES = ("default", "full")

os.environ.setdefault("BMSRIG_KEY_DIR", tempfile.mkdtemp(prefix="bmsrig-test-keys-"))


def pytest_addoption(parser):
    parser.addoption("--zoo", choices=ZOO_MODES, default=None,
                     help="defect-zoo coverage: 'default' (a representative subset, every catalog defect caught "
                          "at least once) or 'full' (every seed, defect and profile); env BMSRIG_ZOO")


def zoo_mode(config) -> str:
    """The zoo mode of this session: ``--zoo``, else ``BMSRIG_ZOO``, else ``default``."""
    mode = config.getoption("--zoo") or os.environ.get("BMSRIG_ZOO", "").strip() or "default"
    if mode not in ZOO_MODES:
        raise pytest.UsageError(f"BMSRIG_ZOO={mode!r}: expected one of {', '.join(ZOO_MODES)}")
    return mode


def pytest_configure(config):
    zoo_mode(config)  # a bad BMSRIG_ZOO is a usage error before collection


@functools.lru_cache(maxsize=1)
def pdf_renderer_missing() -> str | None:
    """Why WeasyPrint cannot render here (its import loads Pango through cffi), or None."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as exc:
        return (f"WeasyPrint unavailable (it needs Pango and HarfBuzz, system packages): "
                f"{type(exc).__name__}: {exc}")
    return None


def pytest_collection_modifyitems(config, items):
    if zoo_mode(config) != "full":
        kept = [it for it in items if it.get_closest_marker("zoo_full") is None]
        if len(kept) != len(items):
            config.hook.pytest_deselected(items=[it for it in items if it.get_closest_marker("zoo_full")])
            items[:] = kept
    if any(it.get_closest_marker("needs_pdf_renderer") for it in items):
        reason = pdf_renderer_missing()
        if reason:
            for it in items:
                if it.get_closest_marker("needs_pdf_renderer"):
                    it.add_marker(pytest.mark.skip(reason=reason))
