"""NI-DAQmx reference DAQ: cell voltages, timestamped digital inputs, thermocouples.

``nidaqmx`` needs NI's runtime on the rig PC, so it is imported lazily (on activation) and
is an optional extra (``pip install bmsrig[nidaq]``). Digital edges are timestamped on the
rig clock when polled by :meth:`NiDaqDriver.poll_digital` (a change-detection task can
replace the polling on rigs that need sub-millisecond edges).
"""

from __future__ import annotations

import attr
import numpy as np
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from ..context import context_of
from ..errors import RigFault
from ..protocols import DigitalEdge, InstrumentInfo, ReferenceDAQ


@target_factory.reg_driver
@attr.s(eq=False)
class NiDaqDriver(Driver, ReferenceDAQ):
    """Reference DAQ on an NI-DAQmx device.

    Args:
        channels (int): number of cell-voltage channels
        uncertainty_v (float): expanded uncertainty (k=2) of an averaged reading, V, from the
            calibration certificate
        sample_rate_hz (float): rate for averaged voltage reads
    """

    bindings = {"res": "NiDaqDevice"}
    channels = attr.ib(default=16, converter=int)
    uncertainty_v = attr.ib(default=0.0005, converter=float)
    sample_rate_hz = attr.ib(default=1000.0, converter=float)
    role = "reference DAQ"

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._nidaqmx = None
        self._edges: list[DigitalEdge] = []
        self._levels: dict[str, bool] = {}

    @property
    def n_channels(self):
        return self.channels

    def on_activate(self):
        try:
            import nidaqmx  # noqa: F401  (needs NI's runtime)
        except Exception as exc:
            raise RigFault(f"NI-DAQmx {self.res.device}", f"nidaqmx is not usable here: {exc}") from None
        self._nidaqmx = nidaqmx

    def info(self):
        return InstrumentInfo(role=self.role, model=self.res.model or "NI-DAQmx device", serial=self.res.serial,
                              calibration_due=self.res.calibration_due, notes=self.res.device)

    def _fault(self, what, exc):
        return RigFault(f"NI-DAQmx {self.res.device}", f"{what}: {exc}")

    def read_cell_voltages(self, samples=1):
        n = max(1, int(samples))
        try:
            with self._nidaqmx.Task() as task:
                task.ai_channels.add_ai_voltage_chan(self.res.voltage_channels)
                if n > 1:
                    from nidaqmx.constants import AcquisitionType

                    task.timing.cfg_samp_clk_timing(self.sample_rate_hz, sample_mode=AcquisitionType.FINITE, samps_per_chan=n)
                data = task.read(number_of_samples_per_channel=n)
        except Exception as exc:
            raise self._fault("voltage read failed", exc) from None
        arr = np.asarray(data, dtype=float).reshape(self.channels, -1)
        return arr.mean(axis=1)

    def voltage_uncertainty_v(self):
        return self.uncertainty_v

    def read_digital(self, line):
        physical = self.res.digital_lines.get(line)
        if physical is None:
            raise RigFault(f"NI-DAQmx {self.res.device}", f"no digital line named {line!r} in the rig description")
        try:
            with self._nidaqmx.Task() as task:
                task.di_channels.add_di_chan(physical)
                level = bool(task.read())
        except Exception as exc:
            raise self._fault(f"digital read of {line} failed", exc) from None
        self._note(line, level)
        return level

    def _note(self, line, level):
        if self._levels.get(line) is not None and self._levels[line] != level:
            self._edges.append(DigitalEdge(context_of(self.target).clock.now(), line, level))
        self._levels[line] = level

    def poll_digital(self):
        """Read every configured line once, recording edges on the rig clock."""
        for line in self.res.digital_lines:
            self.read_digital(line)

    def edges(self, since=0.0, line=None):
        return [e for e in self._edges if e.t >= since and (line is None or e.line == line)]

    def read_thermocouples(self):
        out = {}
        try:
            with self._nidaqmx.Task() as task:
                names = list(self.res.thermocouples)
                for name in names:
                    task.ai_channels.add_ai_thrmcpl_chan(self.res.thermocouples[name])
                values = task.read()
        except Exception as exc:
            raise self._fault("thermocouple read failed", exc) from None
        values = values if isinstance(values, list) else [values]
        for name, v in zip(names, values):
            out[name] = float(v)
        return out
