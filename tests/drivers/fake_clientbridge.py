"""A fake Pickering ClientBridge: the native ``libpicmlx``/``libpiplx`` call layer under ``pilxi``.

``pilxi`` is a ctypes wrapper: ``Pi_Base.__init__`` loads the ClientBridge shared libraries
with ``ctypes.cdll.LoadLibrary`` and every method calls one exported C function with ctypes
arguments (values, ``byref`` out-parameters, string buffers) and checks its error code. The
runtime needs Pickering's native libraries and a chassis, neither of which runs here, so the
tests replace *only* ``ctypes.cdll.LoadLibrary`` for those library names: the real ``pilxi``
code builds every argument and decodes every result; this module plays the C functions for
41-752A battery-simulator modules (6 subunits each).

``calls`` records every native call (name, decoded arguments): the tests' proof of what
reached the instrument. A function not modelled here fails loudly and is recorded in
``unmodelled``.
"""

from __future__ import annotations

import numpy as np

ER_BAD_FUNCTION = 9
ER_CARD_NOT_FOUND = 3
ATTR_CURRENT_A = 0x404
ATTR_VOLTAGE_V = 0x441
ATTR_MEASURE_SET = 0x1101


def _val(x):
    return x.value if hasattr(x, "value") else x


def _out(ref):
    """The ctypes object behind ``ctypes.byref(obj)``."""
    return getattr(ref, "_obj", ref)


class FakeModule:
    def __init__(self, card_id="41-752A-001,1234567,1.02", cal=(2026, 152, 365), n=6):
        self.card_id = card_id
        self.cal = {0: (0, 0, 0), 1: cal}   # store -> (year, day of year, interval days)
        self.set_v = np.zeros(n)
        self.sink_a = np.zeros(n)
        self.enabled = np.zeros(n, dtype=bool)
        self.load_a = np.zeros(n)
        self.interlock = True


class FakeClientBridge:
    def __init__(self, modules: dict[tuple[int, int], FakeModule]):
        self.modules = modules
        self.cards: dict[int, tuple[int, int]] = {}
        self.calls: list[tuple] = []
        self.unmodelled: list[str] = []
        self.connected_to = None

    # -- the loader the tests patch in for ctypes.cdll.LoadLibrary ----------------------------
    def load_library(self, name):
        if "picmlx" in name or "piplx" in name:
            return _Lib(self)
        raise OSError(f"{name}: cannot open shared object file (not faked)")

    def native_calls(self, since: int = 0, prefix: str = "PIPLX_Batt") -> list[tuple]:
        return [c for c in self.calls[since:] if c[0].startswith(prefix)]

    # -- modelled C functions (return an error code, 0 = OK) ---------------------------------
    def PICMLX_Connect(self, board, address, port, timeout, session_ref):
        self.connected_to = (_val(address), _val(port))
        _out(session_ref).value = 77
        return 0

    def PICMLX_Disconnect(self, session):
        return 0

    def PICMLX_ErrorCodeToMessage(self, code, buf_ref, size):
        _out(buf_ref).value = f"fake picmlx error {code}".encode()
        return 0

    def PIPLX_ErrorCodeToMessage(self, code, buf_ref, size):
        _out(buf_ref).value = {ER_CARD_NOT_FOUND: b"Card not found", ER_BAD_FUNCTION: b"Function not supported"}.get(
            code, f"fake piplx error {code}".encode())
        return 0

    def PIPLX_OpenSpecifiedCard(self, session, bus, device, card_ref):
        key = (_val(bus), _val(device))
        if key not in self.modules:
            return ER_CARD_NOT_FOUND
        card = 100 + len(self.cards)
        self.cards[card] = key
        _out(card_ref).value = card
        return 0

    def PIPLX_CloseSpecifiedCard(self, session, card):
        return 0

    def PIPLX_CardLoc(self, session, card, bus_ref, slot_ref):
        bus, dev = self.cards[_val(card)]
        _out(bus_ref).value, _out(slot_ref).value = bus, dev
        return 0

    def _mod(self, card) -> FakeModule:
        return self.modules[self.cards[_val(card)]]

    def PIPLX_CardId(self, session, card, buf_ref, size):
        _out(buf_ref).value = self._mod(card).card_id.encode()
        return 0

    def PIPLX_ReadCalDate(self, session, card, sub, store, year_ref, day_ref, interval_ref):
        y, d, i = self._mod(card).cal[_val(store)]
        _out(year_ref).value, _out(day_ref).value, _out(interval_ref).value = y, d, i
        return 0

    def PIPLX_BattSetVoltage(self, session, card, sub, volts):
        self._mod(card).set_v[_val(sub) - 1] = _val(volts)
        return 0

    def PIPLX_BattGetVoltage(self, session, card, sub, volts_ref):
        _out(volts_ref).value = self._mod(card).set_v[_val(sub) - 1]
        return 0

    def PIPLX_BattSetCurrent(self, session, card, sub, amps):
        self._mod(card).sink_a[_val(sub) - 1] = _val(amps)
        return 0

    def PIPLX_BattSetEnable(self, session, card, sub, state):
        self._mod(card).enabled[_val(sub) - 1] = bool(_val(state))
        return 0

    def PIPLX_BattReadInterlockState(self, session, card, sub, state_ref):
        _out(state_ref).value = self._mod(card).interlock
        return 0

    def PIPLX_GetAttribute(self, session, card, sub, is_output, code, value_ref, size):
        m, ch = self._mod(card), _val(sub) - 1
        code = int(_val(code))
        if code == ATTR_VOLTAGE_V:
            _out(value_ref).value = float(m.set_v[ch]) if m.enabled[ch] else 0.0
        elif code == ATTR_CURRENT_A:
            _out(value_ref).value = float(m.load_a[ch]) if m.enabled[ch] else 0.0
        else:
            return ER_BAD_FUNCTION
        return 0


class _Lib:
    """What ``ctypes.cdll.LoadLibrary`` returns: attribute access finds the C function."""

    def __init__(self, bridge: FakeClientBridge):
        self._bridge = bridge

    def __getattr__(self, name):
        impl = getattr(self._bridge, name, None)
        bridge = self._bridge

        def call(*args):
            bridge.calls.append((name, tuple(_val(_out(a)) for a in args)))
            if impl is None:
                bridge.unmodelled.append(name)
                return ER_BAD_FUNCTION
            return impl(*args)

        return call
