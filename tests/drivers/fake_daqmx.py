"""A fake NI-DAQmx interpreter: the layer under ``nidaqmx.Task`` that talks to NI's C library.

nidaqmx picks its interpreter in ``nidaqmx.utils._select_interpreter`` (a ctypes wrapper of
NI's runtime, or gRPC). Patching that one function to return a :class:`FakeDaqmx` lets the
real nidaqmx Task code run (channel collections, channel-string flattening, timing, the
read-shape logic, context management) above an emulated device:

- ``Dev1/aiN`` voltage channels answer ``volts[N] + noise`` (a fixed pattern that averages to
  ``volts[N]`` over an even number of samples), thermocouple channels ``temps[physical]``
- ``Dev1/portP/lineL`` digital lines answer ``lines[physical]`` (a test flips them)
- ``fail_next`` makes the next DAQmx call fail with a real :class:`nidaqmx.errors.DaqError`

Every method has the same signature as :class:`nidaqmx._base_interpreter.BaseInterpreter`
(a test checks that); a call to anything not modelled is recorded in ``unmodelled``.
"""

from __future__ import annotations

import itertools

import numpy as np
from nidaqmx.constants import ChannelType, UsageTypeAI
from nidaqmx.errors import DaqError
from nidaqmx.utils import flatten_channel_string, unflatten_channel_string

_CHAN_TYPE = 0x187F
_AI_MEAS_TYPE = 0x0695
_TASK_NAME = 0x1276
_TASK_CHANNELS = 0x1273
_READ_CHANNELS = 0x1823
_DI_NUM_BOOLEANS = 0x217C
_PRODUCT_TYPE = 0x0631

MODELLED = (
    "create_task", "clear_task", "get_task_attribute_string", "create_ai_voltage_chan",
    "create_ai_thrmcpl_chan", "create_di_chan", "cfg_samp_clk_timing", "get_read_attribute_string",
    "get_read_attribute_uint32", "get_chan_attribute_int32", "read_analog_f64", "read_digital_lines",
    "internal_get_last_created_chan", "get_device_attribute_string",
)


class _Task:
    def __init__(self, name):
        self.name = name
        self.channels: list[dict] = []
        self.timing = None
        self.closed = False


class FakeDaqmx:
    def __init__(self, device="Dev1", product_type="PXIe-4300", n_ai=16):
        self.device = device
        self.product_type = product_type
        self.volts = np.zeros(n_ai)
        self.noise_v = 0.0  # amplitude of the +/- pattern added to every sample
        self.temps: dict[str, float] = {}
        self.lines: dict[str, bool] = {}
        self.tasks: list[_Task] = []
        self.calls: list[tuple] = []
        self.unmodelled: list[str] = []
        self.fail_next: tuple[int, str] | None = None
        self._ids = itertools.count(1)

    # -------------------------------------------------------------- plumbing
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def unmodelled(*args, **kwargs):
            self.unmodelled.append(name)
            raise NotImplementedError(f"fake DAQmx: {name} is not modelled")

        return unmodelled

    def _call(self, name, *args):
        self.calls.append((name, *args))
        if self.fail_next is not None:
            code, msg = self.fail_next
            self.fail_next = None
            raise DaqError(msg, code)

    def _check_physical(self, physical):
        dev = physical.split("/", 1)[0]
        if dev != self.device:
            raise DaqError(f"Device identifier is invalid.\nDevice Specified: {dev}", -200220)

    def open_tasks(self):
        return [t for t in self.tasks if not t.closed]

    def _chans(self, task, names):
        wanted = unflatten_channel_string(names)
        return [c for c in task.channels if c["name"] in wanted]

    # -------------------------------------------------------------- tasks
    def create_task(self, session_name):
        self._call("create_task", session_name)
        task = _Task(session_name or f"_unnamedTask<{next(self._ids)}>")
        self.tasks.append(task)
        return task, True

    def clear_task(self, task):
        self._call("clear_task")
        task.closed = True

    def get_task_attribute_string(self, task, attribute):
        if attribute == _TASK_NAME:
            return task.name
        if attribute == _TASK_CHANNELS:
            return flatten_channel_string([c["name"] for c in task.channels])
        return self.__getattr__(f"get_task_attribute_string(0x{attribute:x})")()

    def internal_get_last_created_chan(self):
        raise NotImplementedError  # as on DAQmx before 24Q3: nidaqmx falls back to the physical names

    # -------------------------------------------------------------- channels
    def create_ai_voltage_chan(self, task, physical_channel, name_to_assign_to_channel, terminal_config,
                               min_val, max_val, units, custom_scale_name):
        self._call("create_ai_voltage_chan", physical_channel, terminal_config, min_val, max_val)
        for p in unflatten_channel_string(physical_channel):
            self._check_physical(p)
            task.channels.append({"name": p, "kind": "ai_voltage", "index": int(p.rsplit("ai", 1)[1])})

    def create_ai_thrmcpl_chan(self, task, physical_channel, name_to_assign_to_channel, min_val, max_val,
                               units, thermocouple_type, cjc_source, cjc_val, cjc_channel):
        self._call("create_ai_thrmcpl_chan", physical_channel, units, thermocouple_type, cjc_source)
        for p in unflatten_channel_string(physical_channel):
            self._check_physical(p)
            task.channels.append({"name": p, "kind": "ai_thermocouple"})

    def create_di_chan(self, task, lines, name_to_assign_to_lines, line_grouping):
        self._call("create_di_chan", lines, line_grouping)
        for p in unflatten_channel_string(lines):
            self._check_physical(p)
        task.channels.append({"name": lines, "kind": "di", "lines": unflatten_channel_string(lines)})

    def cfg_samp_clk_timing(self, task, rate, source, active_edge, sample_mode, samps_per_chan):
        self._call("cfg_samp_clk_timing", rate, sample_mode, samps_per_chan)
        task.timing = (rate, sample_mode, samps_per_chan)

    def get_read_attribute_string(self, task, attribute, size_hint=0):
        if attribute == _READ_CHANNELS:
            return flatten_channel_string([c["name"] for c in task.channels])
        return self.__getattr__(f"get_read_attribute_string(0x{attribute:x})")()

    def get_read_attribute_uint32(self, task, attribute):
        if attribute == _DI_NUM_BOOLEANS:
            return 1  # one line per channel
        return self.__getattr__(f"get_read_attribute_uint32(0x{attribute:x})")()

    def get_chan_attribute_int32(self, task, channel, attribute):
        chans = self._chans(task, channel)
        kind = chans[0]["kind"]
        if attribute == _CHAN_TYPE:
            return (ChannelType.DIGITAL_INPUT if kind == "di" else ChannelType.ANALOG_INPUT).value
        if attribute == _AI_MEAS_TYPE:
            return (UsageTypeAI.VOLTAGE if kind == "ai_voltage" else UsageTypeAI.TEMPERATURE_THERMOCOUPLE).value
        return self.__getattr__(f"get_chan_attribute_int32(0x{attribute:x})")()

    # -------------------------------------------------------------- reads
    def read_analog_f64(self, task, num_samps_per_chan, timeout, fill_mode, read_array):
        self._call("read_analog_f64", num_samps_per_chan, timeout)
        n = num_samps_per_chan
        if n > 1 and task.timing is None:
            raise DaqError("Requested multiple samples on an on-demand task.", -200462)
        pattern = self.noise_v * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        rows = []
        for c in task.channels:
            if c["kind"] == "ai_voltage":
                rows.append(self.volts[c["index"]] + pattern)
            else:
                rows.append(np.full(n, self.temps.get(c["name"], float("nan"))))
        read_array.reshape(len(rows), n)[:] = np.array(rows)
        return read_array, n

    def read_digital_lines(self, task, num_samps_per_chan, timeout, fill_mode, read_array):
        self._call("read_digital_lines", num_samps_per_chan)
        levels = [self.lines.get(c["lines"][0], False) for c in task.channels]
        read_array.reshape(len(levels), num_samps_per_chan)[:] = np.array(levels)[:, None]
        return read_array, num_samps_per_chan, 1

    # -------------------------------------------------------------- system
    def get_device_attribute_string(self, device_name, attribute):
        self._call("get_device_attribute_string", device_name, attribute)
        if device_name != self.device:
            raise DaqError(f"Device identifier is invalid.\nDevice Specified: {device_name}", -200220)
        if attribute == _PRODUCT_TYPE:
            return self.product_type
        return self.__getattr__(f"get_device_attribute_string(0x{attribute:x})")()
