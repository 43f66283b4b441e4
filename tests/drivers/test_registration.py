"""Adding an instrument driver is one module in ``rig/drivers/``: importing rig.labgrid
registers every driver class of every module there with labgrid's factory."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from labgrid.driver.common import Driver
from labgrid.factory import target_factory

import rig.drivers
import rig.labgrid


def _public_driver_modules():
    return sorted(m.name for m in pkgutil.iter_modules(rig.drivers.__path__) if not m.name.startswith("_"))


def test_every_driver_module_is_imported_by_rig_labgrid():
    assert rig.labgrid.DRIVER_MODULES == _public_driver_modules()


def test_every_driver_class_defined_there_is_registered_with_labgrid():
    defined = []
    for name in _public_driver_modules():
        mod = importlib.import_module(f"rig.drivers.{name}")
        for cls_name, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, Driver) and cls.__module__ == mod.__name__ and not inspect.isabstract(cls) \
                    and not cls_name.startswith("_"):
                defined.append(cls_name)
    assert len(defined) >= 10
    missing = [c for c in defined if c not in target_factory.drivers]
    assert not missing, f"driver classes not registered with labgrid: {missing}"
