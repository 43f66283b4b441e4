"""A compiled register map (:class:`RegisterPlan`): the reads to make and how register words
and bits turn into a sample (the link) or a sample into words and bits (the simulated board).

Register contents are tables: function code -> uint16 array indexed by address
(:meth:`RegisterPlan.new_image`); function 1/2 entries are one bit (0/1), function 3/4
entries one 16-bit word. The link fills them from its reads, the simulated board encodes
its telemetry into them. Built by
:func:`rig.links.register_map.compile_register_map`; values are SI (V, A, °C).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import Capabilities

BIT_FUNCTIONS = (1, 2)


class Read(tuple):
    """One read transaction: a ``(start, count)`` pair that also knows its ``function`` (1..4)."""

    function: int

    def __new__(cls, start: int, count: int, function: int = 3):
        self = super().__new__(cls, (int(start), int(count)))
        self.function = int(function)
        return self

    @property
    def start(self) -> int:
        return self[0]

    @property
    def count(self) -> int:
        return self[1]

    def __repr__(self) -> str:
        return f"Read(function={self.function}, start={self[0]}, count={self[1]})"


@dataclass
class Field_:
    """A numeric field: its registers, word layout and SI conversion (SI = raw * a + b).

    ``shifts`` (per value) and ``width`` select a part of one register (a byte half or a
    bit range), ``signed`` its two's complement reading."""

    key: str
    addresses: list[int]  # first register of each value
    type: str             # uint16 int16 uint32 int32 ascii (8-bit halves are uint16/int16 parts)
    a: float
    b: float
    count: int = 1        # ascii: registers per value
    function: int = 3
    shifts: list[int] | None = None
    width: int = 16
    signed: bool = False
    word_order: str = "big"

    def __post_init__(self):
        self.index = np.asarray(self.addresses, np.intp)
        self.shift_arr = None if self.shifts is None else np.asarray(self.shifts, np.int64)


@dataclass(frozen=True)
class Cond:
    """One condition of a flag/FET: the ``width`` bits from ``shift`` of a register (or one
    coil) equal one of ``values`` or, without values, are at ``level`` (1: any bit set;
    0: any bit clear)."""

    function: int
    address: int
    shift: int
    width: int
    values: frozenset | None
    level: int
    spare: int = 0  # a value meaning "not set" (the simulated board writes it)

    def test(self, tables: dict) -> bool:
        v = (int(tables[self.function][self.address]) >> self.shift) & ((1 << self.width) - 1)
        if self.values is not None:
            return v in self.values
        return v != 0 if self.level else v != (1 << self.width) - 1

    def write(self, image: dict, on: bool) -> None:
        arr = image[self.function]
        mask = ((1 << self.width) - 1) << self.shift
        if self.values is not None:
            v = min(self.values) if on else self.spare
        else:
            all_ones = (1 << self.width) - 1
            v = (1 if self.level else 0) if on else (0 if self.level else all_ones)
        arr[self.address] = (int(arr[self.address]) & ~mask) | ((v << self.shift) & mask)


@dataclass
class Indicator:
    """A flag or FET: set/closed when any of its conditions holds."""

    key: str
    conds: list[Cond]

    def test(self, tables: dict) -> bool:
        return any(c.test(tables) for c in self.conds)

    def write(self, image: dict, on: bool) -> None:
        for k, c in enumerate(self.conds):
            c.write(image, on and k == 0)


@dataclass
class Balancing:
    """The balancing mask: cell i at ``bits[i] = (address, bit)`` of table ``function``."""

    function: int
    bits: list[tuple[int, int]]
    active: int

    def __post_init__(self):
        self.index = np.asarray([a for a, _ in self.bits], np.intp)
        self.bit = np.asarray([k for _, k in self.bits], np.int64)


@dataclass
class RegisterPlan:
    """A register map resolved for ``n_cells``: reads to make and how to decode/encode them."""

    path: Path
    n_cells: int
    table: str
    word_order: str
    sample_reads: list[Read]
    identity_reads: list[Read]
    cell_v: Field_
    temps: list[Field_]
    balancing: Balancing | None
    flags: dict[str, Indicator | None]
    fets: dict[str, Indicator | None]
    pack_v: Field_ | None
    pack_a: Field_ | None
    state: tuple[int, dict[int, str], int] | None  # (address, choices, function)
    identity: dict[str, tuple[list[tuple[str, Field_]], str | None] | None]
    image_sizes: dict[int, int] = field(default_factory=dict)  # function -> 1 + highest address
    served: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # function -> [(start, count)]
    blocks_declared: bool = False
    commands: dict = field(default_factory=dict)  # name -> ModbusCommandPlan (rig.links.modbus_commands)

    @property
    def image_size(self) -> int:
        """1 + the highest register address of the map's main table (``table``)."""
        return self.image_sizes.get(3 if self.table == "holding" else 4, 0)

    def capabilities(self) -> Capabilities:
        """What the board reports: the quantities this map says where to find."""
        q = {"cell_voltages"} if self.cell_v.addresses else set()
        q |= {"temperatures"} if self.temps else set()
        q |= {"balancing"} if self.balancing is not None else set()
        q |= {k for k, v in self.flags.items() if v is not None}
        q |= {f"{k}_fet" for k, v in self.fets.items() if v is not None}
        q |= {k for k, v in (("pack_v", self.pack_v), ("pack_a", self.pack_a), ("state", self.state)) if v is not None}
        return Capabilities(frozenset(q), self.n_temperatures, frozenset(k for k, v in self.identity.items() if v),
                            "register map", self.path.name)

    @property
    def n_temperatures(self) -> int:
        """How many temperatures a sample carries (map order)."""
        return sum(len(f.addresses) for f in self.temps)

    # ------------------------------------------------------------- decode
    def _values(self, tables: dict, f: Field_) -> np.ndarray:
        arr, t = tables[f.function], f.type
        if len(f.addresses) == 1:
            return np.array([self._scalar(arr, f)])
        if t in ("uint16", "int16") and f.shift_arr is None:  # the common layouts, straight from the words
            w = arr[f.index]
            return (w.view(np.int16) if f.signed else w) * f.a + f.b
        if t in ("uint16", "int16"):
            w = arr[f.index].astype(np.int64)
            if f.shift_arr is not None:
                w = (w >> f.shift_arr) & ((1 << f.width) - 1)
            if f.signed:
                w = np.where(w >= 1 << (f.width - 1), w - (1 << f.width), w)
            raw = w.astype(float)
        else:
            w0, w1 = arr[f.index].astype(np.int64), arr[f.index + 1].astype(np.int64)
            v = (w0 << 16 | w1) if f.word_order == "big" else (w1 << 16 | w0)
            if t == "int32":
                v = np.where(v >= 1 << 31, v - (1 << 32), v)
            raw = v.astype(float)
        return raw * f.a + f.b

    @staticmethod
    def _scalar(arr: np.ndarray, f: Field_) -> float:
        """One value of ``f`` (its first address), SI."""
        a = f.addresses[0]
        if f.type in ("uint16", "int16"):
            v, width = int(arr[a]), 16
            if f.shifts is not None:
                v, width = (v >> f.shifts[0]) & ((1 << f.width) - 1), f.width
        else:
            w0, w1 = int(arr[a]), int(arr[a + 1])
            v, width = ((w0 << 16 | w1) if f.word_order == "big" else (w1 << 16 | w0)), 32
        if f.signed and v >= 1 << (width - 1):
            v -= 1 << width
        return v * f.a + f.b

    def decode_sample(self, regs: dict):
        """(cell_v, temps_c, balancing, flags dict, fets dict, pack_v, pack_a, state) from
        the tables ``regs`` (function -> array by address, :meth:`new_image`)."""
        cell_v = self._values(regs, self.cell_v)
        temps = np.concatenate([self._values(regs, f) for f in self.temps]) if self.temps else np.zeros(0)
        if self.balancing is not None:
            b = self.balancing
            bal = ((regs[b.function][b.index].astype(np.int64) >> b.bit) & 1) == b.active
        else:
            bal = np.zeros(self.n_cells, bool)
        flags = {k: (v is not None and v.test(regs)) for k, v in self.flags.items()}
        fets = {k: (v is not None and v.test(regs)) for k, v in self.fets.items()}
        pack_v = self._scalar(regs[self.pack_v.function], self.pack_v) if self.pack_v else None
        pack_a = self._scalar(regs[self.pack_a.function], self.pack_a) if self.pack_a else None
        state = None
        if self.state is not None:
            addr, choices, fc = self.state
            code = int(regs[fc][addr])
            state = choices.get(code, str(code))
        return cell_v, temps, bal, flags, fets, pack_v, pack_a, state

    def decode_identity(self, regs: dict) -> dict[str, str]:
        out = {}
        for k, spec in self.identity.items():
            if spec is None:
                out[k] = "unknown"
                continue
            fields, fmt = spec
            vals = {}
            for name, f in fields:
                if f.type == "ascii":
                    a0 = f.addresses[0]
                    b = regs[f.function][a0:a0 + f.count].astype(">u2").tobytes()
                    vals[name] = b.replace(b"\x00", b"").decode("ascii", errors="replace").strip()
                else:
                    v = float(self._values(regs, f)[0])
                    vals[name] = int(v) if v.is_integer() else v
            out[k] = fmt.format(**vals) if fmt else str(vals["value"])
        return out

    # ------------------------------------------------------------- encode (the simulated board)
    def new_image(self) -> dict[int, np.ndarray]:
        """Empty register/bit tables (function -> uint16 array, address = index)."""
        return {fc: np.zeros(size, np.uint16) for fc, size in self.image_sizes.items()}

    def _encode(self, f: Field_, si, image: dict) -> None:
        raw = np.rint((np.asarray(si, float) - f.b) / f.a)
        arr, t = image[f.function], f.type
        if f.shifts is not None:
            lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else (0, (1 << f.width) - 1)
            raw = np.clip(np.nan_to_num(raw), lo, hi).astype(np.int64) & ((1 << f.width) - 1)
            m = (1 << f.width) - 1
            for a, s, v in zip(f.addresses, f.shifts, raw.tolist()):
                arr[a] = (int(arr[a]) & ~(m << s)) | (v << s)
            return
        lo, hi = {"uint16": (0, 65535), "int16": (-32768, 32767),
                  "uint32": (0, 2**32 - 1), "int32": (-2**31, 2**31 - 1)}[t]
        raw = np.clip(np.nan_to_num(raw), lo, hi).astype(np.int64)
        addrs = np.asarray(f.addresses)
        if t in ("uint16", "int16"):
            arr[addrs] = (raw & 0xFFFF).astype(np.uint16)
        else:
            u = raw & 0xFFFFFFFF
            hi_w, lo_w = (u >> 16).astype(np.uint16), (u & 0xFFFF).astype(np.uint16)
            if f.word_order == "big":
                arr[addrs], arr[addrs + 1] = hi_w, lo_w
            else:
                arr[addrs], arr[addrs + 1] = lo_w, hi_w

    def encode_telemetry(self, tel, image: dict, temps_c=None) -> None:
        """Write a Telemetry (duck-typed, SI) into register/bit tables (:meth:`new_image`).

        ``temps_c``: the temperatures in map order (°C) when the caller placed them by role;
        default ``tel.temps_c`` in order (the last repeated when the map lists more)."""
        n = self.n_cells
        self._encode(self.cell_v, np.asarray(tel.cell_v, float)[:n], image)
        temps = np.asarray(tel.temps_c if temps_c is None else temps_c, float)
        k = 0
        for f in self.temps:
            m = len(f.addresses)
            vals = temps[k:k + m]
            if len(vals) < m:  # fewer readings than registers: repeat the last
                vals = np.resize(vals if len(vals) else np.array([25.0]), m)
            self._encode(f, vals, image)
            k += m
        if self.balancing is not None:
            b = self.balancing
            arr = image[b.function]
            mask = np.asarray(tel.balancing, bool)[:n]
            for (a, bit), on in zip(b.bits, mask):
                level = b.active if on else 1 - b.active
                arr[a] = (int(arr[a]) & ~(1 << bit)) | (level << bit)
        for name, ind in list(self.flags.items()) + list(self.fets.items()):
            if ind is not None:
                attr = name if name in ("hvc", "lvc", "ot", "ut") else f"{name}_fet"
                ind.write(image, bool(getattr(tel, attr)))
        if self.pack_v:
            self._encode(self.pack_v, [tel.pack_v], image)
        if self.pack_a:
            self._encode(self.pack_a, [tel.pack_a], image)
        if self.state is not None:
            addr, choices, fc = self.state
            rev = {v: c for c, v in choices.items()}
            image[fc][addr] = rev.get(str(tel.state), 0xFFFF)
        for key in ("serial", "hw_revision", "fw_version"):
            spec = self.identity.get(key)
            if spec is None:
                continue
            fields, fmt = spec
            text = str(getattr(tel, key))
            vals = _parse_format(fmt, text) if fmt else {"value": text}
            for name, f in fields:
                v = vals.get(name, "")
                if f.type == "ascii":
                    b = str(v).encode("ascii", errors="replace")[:2 * f.count].ljust(2 * f.count, b"\x00")
                    a0 = f.addresses[0]
                    image[f.function][a0:a0 + f.count] = np.frombuffer(b, ">u2")
                else:
                    digits = re.findall(r"-?\d+(?:\.\d+)?", str(v))
                    self._encode(f, [float(digits[-1]) if digits else 0.0], image)


def _parse_format(fmt: str, text: str) -> dict[str, str]:
    """Invert a simple ``"{major}.{minor}.{patch}"`` format on ``text`` (missing parts -> "")."""
    pattern, names = "", []
    for literal, fname, _spec, _conv in string.Formatter().parse(fmt):
        pattern += re.escape(literal)
        if fname is not None:
            names.append(fname)
            pattern += rf"(?P<{fname}>.*?)"
    m = re.fullmatch(pattern, text)
    if m:
        return m.groupdict()
    parts = re.findall(r"\d+", text)
    return {n: (parts[i] if i < len(parts) else "") for i, n in enumerate(names)}
