"""A chamber controller emulated on a real pymodbus TCP server (127.0.0.1, ephemeral port).

The server runs pymodbus's own request handling in a thread with its own asyncio loop, so
the driver's ModbusTcpClient talks real Modbus/TCP over a loopback socket. Register layout
of the emulated controller (separate tables, as on most controllers):

- holding register ``SP_REG`` (300): set point, signed, °C × 10
- holding register ``RAMP_REG`` (301): ramp rate, °C/min × 10 (0 = the controller's default)
- input register ``PV_REG`` (100): process value, signed, °C × 10

:meth:`ChamberServer.advance` is the chamber's physics for a VirtualClock: the process value
moves toward the set point at the ramp rate.
"""

from __future__ import annotations

import asyncio
import threading

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

SP_REG, RAMP_REG, PV_REG = 300, 301, 100
HOLDING, INPUT = 3, 4  # function codes addressing the two tables


def _s16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


class ChamberServer:
    def __init__(self, pv_c: float = 25.0, sp_c: float = 25.0, default_ramp_c_per_min: float = 2.0, device_id: int = 1):
        self.device_id = device_id
        self.default_ramp = default_ramp_c_per_min
        regs = lambda n: [SimData(0, count=n, values=0, datatype=DataType.REGISTERS)]  # noqa: E731
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        self._device = SimDevice(id=device_id, simdata=(bits, bits, regs(400), regs(200)))
        self._loop = asyncio.new_event_loop()
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self._init = (pv_c, sp_c)

    # -------------------------------------------------------------- lifecycle
    def start(self) -> "ChamberServer":
        ready, failure = threading.Event(), []

        async def listen():
            self._server = ModbusTcpServer(self._device, address=("127.0.0.1", 0))
            await self._server.serve_forever(background=True)
            self.port = self._server.transport.sockets[0].getsockname()[1]

        def run():
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(listen())
            except Exception as exc:  # pragma: no cover - reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="chamber-modbus-server", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"chamber server did not start: {failure}")
        pv, sp = self._init
        self.pv = pv
        self.sp = sp
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._thread = None
        self._loop.close()

    # -------------------------------------------------------------- register image
    def _get(self, fc: int, address: int) -> int:
        coro = self._server.async_getValues(self.device_id, fc, address, 1)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)[0]

    def _set(self, fc: int, address: int, raw: int) -> None:
        coro = self._server.async_setValues(self.device_id, fc, address, [raw & 0xFFFF])
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    @property
    def pv(self) -> float:
        """The chamber air temperature (the controller's full-precision value), °C."""
        return self._pv

    @pv.setter
    def pv(self, celsius: float) -> None:
        self._pv = float(celsius)
        self._set(INPUT, PV_REG, int(round(celsius * 10)))  # what the register shows: 0.1 °C steps

    @property
    def sp(self) -> float:
        return _s16(self._get(HOLDING, SP_REG)) / 10.0

    @sp.setter
    def sp(self, celsius: float) -> None:
        self._set(HOLDING, SP_REG, int(round(celsius * 10)))

    @property
    def ramp(self) -> float:
        return self._get(HOLDING, RAMP_REG) / 10.0

    def set_raw_pv(self, raw: int) -> None:
        self._set(INPUT, PV_REG, raw)

    # -------------------------------------------------------------- physics
    def advance(self, dt: float) -> None:
        """Move the process value toward the set point at the ramp rate for ``dt`` s."""
        rate = (self.ramp or self.default_ramp) / 60.0  # °C/s
        pv, sp = self.pv, self.sp
        step = max(-rate * dt, min(rate * dt, sp - pv))
        self.pv = pv + step  # exact in the controller; the register rounds
