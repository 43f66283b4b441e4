"""Instrument protocols: every method is abstract, every registered driver implements its
protocol fully (a driver missing a method fails at construction, not with a silent None)."""

import importlib
import inspect
import pkgutil

import pytest

import rig.drivers
import rig.links
from rig import protocols
from rig.protocols import BmsLink, CellEmulator, PackCurrentSource, ReferenceDAQ, ThermalChamber

PROTOCOLS = (CellEmulator, PackCurrentSource, ThermalChamber, ReferenceDAQ, BmsLink)


def _public_methods(proto) -> set[str]:
    return {n for n, v in vars(proto).items() if inspect.isfunction(v) and not n.startswith("_")}


def _implementations() -> list[type]:
    """Every concrete class in rig.drivers / rig.links that implements a protocol."""
    found = set()
    for pkg in (rig.drivers, rig.links):
        for mod in pkgutil.iter_modules(pkg.__path__):
            module = importlib.import_module(f"{pkg.__name__}.{mod.name}")
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, PROTOCOLS) and cls not in PROTOCOLS and cls.__module__ == module.__name__:
                    found.add(cls)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.__name__)
def test_every_protocol_method_is_abstract(proto):
    methods = _public_methods(proto)
    assert methods, proto
    assert proto.__abstractmethods__ == frozenset(methods)


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.__name__)
def test_a_driver_missing_one_method_cannot_be_constructed(proto):
    methods = sorted(_public_methods(proto))
    missing = methods[-1]
    body = {name: (lambda self, *a, **k: None) for name in methods if name != missing}
    partial = type(f"Partial{proto.__name__}", (proto,), body)
    with pytest.raises(TypeError, match=missing):
        partial()
    complete = type(f"Complete{proto.__name__}", (partial,), {missing: lambda self, *a, **k: None})
    assert isinstance(complete(), proto)


def test_every_implementing_class_is_found():
    names = {c.__name__ for c in _implementations()}
    # one per instrument family at least, and both link kinds
    assert {"SimCellEmulatorDriver", "SimPackSourceDriver", "SimChamberDriver", "SimDaqDriver",
            "CanLinkDriver", "ModbusLinkDriver", "CanBmsLink", "ModbusBmsLink", "NiDaqDriver",
            "ScpiCellEmulatorDriver", "ScpiPackSourceDriver"} <= names


def _concrete() -> list[type]:
    """The implementations but the bases other drivers derive from (checked through those)."""
    from rig.links.base import LinkBase

    return [c for c in _implementations() if c is not LinkBase]


@pytest.mark.parametrize("cls", _concrete(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_implementing_driver_implements_its_protocol_fully(cls):
    assert not cls.__abstractmethods__, f"{cls.__name__} lacks {sorted(cls.__abstractmethods__)}"


def test_registered_labgrid_drivers_are_complete():
    from labgrid.factory import target_factory

    _implementations()  # import every driver module: registration happens on import
    registered = [cls for cls in target_factory.drivers.values() if issubclass(cls, PROTOCOLS)]
    assert len(registered) >= 10
    incomplete = {cls.__name__: sorted(cls.__abstractmethods__) for cls in registered if cls.__abstractmethods__}
    assert incomplete == {}


def test_protocol_module_names_units():
    assert "SI" in protocols.__doc__ and "abstract" in protocols.__doc__


def test_a_labgrid_driver_missing_a_method_fails_at_construction_naming_it():
    """The way a real driver is written (labgrid Driver + protocol): one method forgotten,
    and construction fails before the driver reaches a target, naming the method."""
    from labgrid.driver import Driver

    from rig.drivers.sim import SimDaqDriver

    body = {n: getattr(SimDaqDriver, n) for n in _public_methods(ReferenceDAQ) if n != "edges"}
    forgetful = type("ForgetfulDaqDriver", (Driver, ReferenceDAQ), body)
    with pytest.raises(TypeError, match=r"ForgetfulDaqDriver.*edges"):
        forgetful(target=None, name=None)
