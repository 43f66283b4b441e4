"""The Modbus register map: which register holds what (the UART counterpart of a signal map).

YAML, validated with pydantic, then compiled for a cell count into :class:`RegisterPlan`:
the block reads to make (as few transactions as the layout allows, at most ``max_block``
registers each) and how to turn register words into a sample. The simulated board's Modbus
slave uses the same plan backwards (:meth:`RegisterPlan.encode_telemetry`). Example::

    table: holding                  # holding (function 03) or input (function 04)
    word_order: big                 # 32-bit values: high word first
    cells:
      voltage: {address: 16, type: uint16, unit: mV, max_cells: 64}   # cell i at 16 + (i-1)
      balancing: {address: 5}       # cell i = bit (i-1) % 16 of register 5 + (i-1) // 16
    temperatures:
      cells: {address: 80, type: int16, scale: 0.1, unit: degC}
      bleed_resistor: {address: 9, type: int16, scale: 0.1}
    flags: {hvc: {address: 0, bit: 0}, lvc: {address: 0, bit: 1}, ...}
    fets: {charge: {address: 1, bit: 0, closed_value: 1}, ...}
    identity:
      serial: {address: 200, type: ascii, count: 8}
      fw_version: {fields: {major: {address: 210}, minor: {address: 211}, patch: {address: 212}},
                   format: "{major}.{minor}.{patch}"}

A value is ``(raw * scale + offset)`` in ``unit`` (converted to SI). Addresses are 0-based
protocol addresses (register 40001 is address 0). Errors are
:class:`~rig.errors.ConfigError` naming the file, the key and the problem.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .base import Capabilities, format_fields, load_yaml_mapping, unit_factor, validate_model
from .register_map_schema import (  # noqa: F401  (re-exported)
    WORDS,
    MAX_READ,
    Bit,
    Bitfield,
    Cells,
    Fets,
    Flags,
    Identity,
    IdentityField,
    Pack,
    Reg,
    RegisterMap,
    RegSeries,
    RegType,
    State,
    Temperatures,
)

# --------------------------------------------------------------------------- compiled plan


@dataclass
class Field_:
    """A numeric field: its register addresses, word layout and SI conversion."""

    key: str
    addresses: list[int]  # first register of each value
    type: str
    a: float              # SI = raw * a + b
    b: float
    count: int = 1        # ascii: registers per value


@dataclass
class BitField_:
    key: str
    address: int
    bit: int
    level: int


def _words(t: str, count: int | None) -> int:
    return count if t == "ascii" else WORDS[t]


def blocks(addresses: set[int], max_block: int) -> list[tuple[int, int]]:
    """Cover sorted register addresses with the fewest reads of at most ``max_block`` registers."""
    out: list[tuple[int, int]] = []
    for a in sorted(addresses):
        if out and a < out[-1][0] + max_block:
            start = out[-1][0]
            out[-1] = (start, a - start + 1)
        else:
            out.append((a, 1))
    return out


@dataclass
class RegisterPlan:
    """A register map resolved for ``n_cells``: reads to make and how to decode/encode them."""

    path: Path
    n_cells: int
    table: str
    word_order: str
    sample_reads: list[tuple[int, int]]
    identity_reads: list[tuple[int, int]]
    cell_v: Field_
    temps: list[Field_]
    balancing: tuple[int, str, int] | None  # (address, bit_order, active)
    flags: dict[str, BitField_ | None]
    fets: dict[str, BitField_ | None]
    pack_v: Field_ | None
    pack_a: Field_ | None
    state: tuple[int, dict[int, str]] | None
    identity: dict[str, tuple[list[tuple[str, Field_]], str | None] | None]
    image_size: int  # 1 + highest address used

    def capabilities(self) -> Capabilities:
        """What the board reports: the quantities this map says where to find."""
        q = {"cell_voltages"} if self.cell_v.addresses else set()
        q |= {"temperatures"} if self.temps else set()
        q |= {"balancing"} if self.balancing is not None else set()
        q |= {k for k, v in self.flags.items() if v is not None}
        q |= {f"{k}_fet" for k, v in self.fets.items() if v is not None}
        q |= {k for k, v in (("pack_v", self.pack_v), ("pack_a", self.pack_a), ("state", self.state)) if v is not None}
        n_t = sum(len(f.addresses) for f in self.temps)
        return Capabilities(frozenset(q), n_t, frozenset(k for k, v in self.identity.items() if v),
                            "register map", self.path.name)

    # ------------------------------------------------------------- decode
    def _values(self, regs: dict[int, int], f: Field_) -> np.ndarray:
        t = f.type
        if t in ("uint16", "int16"):
            w = np.fromiter((regs[a] for a in f.addresses), np.uint16, len(f.addresses))
            raw = w.view(np.int16).astype(float) if t == "int16" else w.astype(float)
        else:
            hi_first = self.word_order == "big"
            vals = []
            for a in f.addresses:
                w0, w1 = regs[a], regs[a + 1]
                v = (w0 << 16 | w1) if hi_first else (w1 << 16 | w0)
                if t == "int32" and v >= 1 << 31:
                    v -= 1 << 32
                vals.append(v)
            raw = np.asarray(vals, float)
        return raw * f.a + f.b

    def decode_sample(self, regs: dict[int, int]):
        """(cell_v, temps_c, balancing, flags dict, fets dict, pack_v, pack_a, state) from registers."""
        n = self.n_cells
        cell_v = self._values(regs, self.cell_v)
        temps = np.concatenate([self._values(regs, f) for f in self.temps]) if self.temps else np.zeros(0)
        if self.balancing is not None:
            addr, order, active = self.balancing
            nreg = (n + 15) // 16
            words = np.array([regs[addr + k] for k in range(nreg)], np.uint16)
            bits = np.unpackbits(words.astype("<u2").view(np.uint8), bitorder="little")
            bits = bits.reshape(nreg, 16)
            if order == "msb_first":
                bits = bits[:, ::-1]
            bal = bits.reshape(-1)[:n].astype(bool)
            if not active:
                bal = ~bal
        else:
            bal = np.zeros(n, bool)

        def bit(b: BitField_ | None) -> bool:
            if b is None:
                return False
            return ((regs[b.address] >> b.bit) & 1) == b.level

        flags = {k: bit(v) for k, v in self.flags.items()}
        fets = {k: bit(v) for k, v in self.fets.items()}
        pack_v = float(self._values(regs, self.pack_v)[0]) if self.pack_v else None
        pack_a = float(self._values(regs, self.pack_a)[0]) if self.pack_a else None
        state = None
        if self.state is not None:
            code = regs[self.state[0]]
            state = self.state[1].get(code, str(code))
        return cell_v, temps, bal, flags, fets, pack_v, pack_a, state

    def decode_identity(self, regs: dict[int, int]) -> dict[str, str]:
        out = {}
        for k, spec in self.identity.items():
            if spec is None:
                out[k] = "unknown"
                continue
            fields, fmt = spec
            vals = {}
            for name, f in fields:
                if f.type == "ascii":
                    b = b"".join(regs[f.addresses[0] + j].to_bytes(2, "big") for j in range(f.count))
                    vals[name] = b.replace(b"\x00", b"").decode("ascii", errors="replace").strip()
                else:
                    v = float(self._values(regs, f)[0])
                    vals[name] = int(v) if v.is_integer() else v
            out[k] = fmt.format(**vals) if fmt else str(vals["value"])
        return out

    # ------------------------------------------------------------- encode (the simulated board)
    def _encode(self, f: Field_, si: np.ndarray, image: np.ndarray) -> None:
        raw = np.rint((np.asarray(si, float) - f.b) / f.a)
        t = f.type
        lo, hi = {"uint16": (0, 65535), "int16": (-32768, 32767),
                  "uint32": (0, 2**32 - 1), "int32": (-2**31, 2**31 - 1)}[t]
        raw = np.clip(np.nan_to_num(raw), lo, hi).astype(np.int64)
        addrs = np.asarray(f.addresses)
        if t in ("uint16", "int16"):
            image[addrs] = (raw & 0xFFFF).astype(np.uint16)
        else:
            u = raw & 0xFFFFFFFF
            hi_w, lo_w = (u >> 16).astype(np.uint16), (u & 0xFFFF).astype(np.uint16)
            if self.word_order == "big":
                image[addrs], image[addrs + 1] = hi_w, lo_w
            else:
                image[addrs], image[addrs + 1] = lo_w, hi_w

    def encode_telemetry(self, tel, image: np.ndarray) -> None:
        """Write a Telemetry (duck-typed, SI) into a register image (uint16 array)."""
        n = self.n_cells
        self._encode(self.cell_v, np.asarray(tel.cell_v, float)[:n], image)
        temps = np.asarray(tel.temps_c, float)
        k = 0
        for f in self.temps:
            m = len(f.addresses)
            vals = temps[k:k + m]
            if len(vals) < m:  # fewer readings than registers: repeat the last
                vals = np.resize(vals if len(vals) else np.array([25.0]), m)
            self._encode(f, vals, image)
            k += m
        if self.balancing is not None:
            addr, order, active = self.balancing
            nreg = (n + 15) // 16
            bits = np.zeros(nreg * 16, bool)
            bits[:n] = np.asarray(tel.balancing, bool)[:n]
            if not active:
                bits[:n] = ~bits[:n]
            bits = bits.reshape(nreg, 16)
            if order == "msb_first":
                bits = bits[:, ::-1]
            words = np.packbits(bits.reshape(-1), bitorder="little").view("<u2")
            image[addr:addr + nreg] = words
        for name, b in list(self.flags.items()) + list(self.fets.items()):
            if b is None:
                continue
            attr = name if name in ("hvc", "lvc", "ot", "ut") else f"{name}_fet"
            level = b.level if bool(getattr(tel, attr)) else 1 - b.level
            w = int(image[b.address]) & ~(1 << b.bit)
            image[b.address] = w | (level << b.bit)
        if self.pack_v:
            self._encode(self.pack_v, [tel.pack_v], image)
        if self.pack_a:
            self._encode(self.pack_a, [tel.pack_a], image)
        if self.state is not None:
            rev = {v: c for c, v in self.state[1].items()}
            image[self.state[0]] = rev.get(str(tel.state), 0xFFFF)
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
                    image[a0:a0 + f.count] = np.frombuffer(b, ">u2")
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


def load_register_map(path: str | Path, n_cells: int | None = None):
    """Read and schema-validate a register map; with ``n_cells`` also check the layout for
    that many cells and return the compiled :class:`RegisterPlan` (``bmsrig check``)."""
    p = Path(path)
    if n_cells is not None:
        return compile_register_map(p, int(n_cells))
    return validate_model(RegisterMap, load_yaml_mapping(p, "register map"), p)


def compile_register_map(path: str | Path, n_cells: int) -> RegisterPlan:
    """Validate the map for ``n_cells`` (overlaps, room for the cells) and plan the reads."""
    P = Path(path)
    rmap = load_register_map(P)
    if n_cells < 1:
        raise ConfigError(P, "cells", f"the profile's cell count must be >= 1, got {n_cells}")
    claims: dict[int, str] = {}    # register -> key of the numeric field using it
    bit_claims: dict[tuple[int, int], str] = {}
    bit_regs: dict[int, str] = {}

    def claim(addr: int, nwords: int, key: str) -> None:
        for a in range(addr, addr + nwords):
            if a > 65535:
                raise ConfigError(P, key, f"runs past the last Modbus address (65535) at register {a}")
            other = claims.get(a) or bit_regs.get(a)
            if other and other != key:
                raise ConfigError(P, key, f"register {a} is also used by {other}"
                                  + (f" (with {n_cells} cells)" if "cells" in key or "cells" in other else ""))
            claims[a] = key

    def conv(r: Reg, quantity: str | None, key: str) -> tuple[float, float]:
        f, o = unit_factor(quantity, r.unit, P, key + ".unit") if quantity else (1.0, 0.0)
        return r.scale * f, r.offset * f + o

    def series(s: RegSeries, key: str, quantity: str) -> Field_:
        if s.type == "ascii":
            raise ConfigError(P, key + ".type", "per-cell values must be numeric, not ascii")
        if s.max_cells is not None and n_cells > s.max_cells:
            raise ConfigError(P, key, f"the profile has {n_cells} cells but this register map has room for "
                              f"{s.max_cells} (max_cells)")
        w = WORDS[s.type]
        stride = s.stride or w
        if stride < w:
            raise ConfigError(P, key + ".stride", f"stride {stride} is smaller than a {s.type} ({w} registers)")
        addrs = [s.address + i * stride for i in range(n_cells)]
        for a in addrs:
            claim(a, w, key)
        a, b = conv(s, quantity, key)
        return Field_(key, addrs, s.type, a, b)

    def single(r: Reg, key: str, quantity: str | None) -> Field_:
        claim(r.address, _words(r.type, r.count), key)
        a, b = conv(r, quantity, key)
        return Field_(key, [r.address], r.type, a, b, r.count or 1)

    def bit(b: Bit | None, key: str, which: str) -> BitField_ | None:
        if b is None:
            return None
        if b.address in claims:
            raise ConfigError(P, key, f"register {b.address} is also used by {claims[b.address]}")
        if (b.address, b.bit) in bit_claims:
            raise ConfigError(P, key, f"bit {b.bit} of register {b.address} is also used by {bit_claims[(b.address, b.bit)]}")
        bit_claims[(b.address, b.bit)] = key
        bit_regs.setdefault(b.address, key)
        return BitField_(key, b.address, b.bit, b.level(which))

    cell_v = series(rmap.cells.voltage, "cells.voltage", "voltage")
    temps = []
    if rmap.temperatures.cells is not None:
        temps.append(series(rmap.temperatures.cells, "temperatures.cells", "temperature"))
    if rmap.temperatures.bleed_resistor is not None:
        temps.append(single(rmap.temperatures.bleed_resistor, "temperatures.bleed_resistor", "temperature"))
    balancing = None
    if rmap.cells.balancing is not None:
        bf = rmap.cells.balancing
        claim(bf.address, (n_cells + 15) // 16, "cells.balancing")
        balancing = (bf.address, bf.bit_order, bf.active_value)
    flags = {k: bit(getattr(rmap.flags, k), f"flags.{k}", "active") for k in ("hvc", "lvc", "ot", "ut")}
    fets = {k: bit(getattr(rmap.fets, k), f"fets.{k}", "closed") for k in ("charge", "discharge")}
    pack_v = single(rmap.pack.voltage, "pack.voltage", "voltage") if rmap.pack.voltage else None
    pack_a = single(rmap.pack.current, "pack.current", "current") if rmap.pack.current else None
    state = None
    if rmap.state is not None:
        claim(rmap.state.address, 1, "state")
        state = (rmap.state.address, dict(rmap.state.choices))
    sample_addrs = set(claims) | set(bit_regs)

    identity: dict = {}
    for k in ("serial", "hw_revision", "fw_version"):
        f: IdentityField | None = getattr(rmap.identity, k)
        key = f"identity.{k}"
        if f is None:
            identity[k] = None
            continue
        if f.fields is not None:
            used = format_fields(f.format, P, key + ".format")
            unknown = [u for u in used if u not in f.fields]
            if unknown:
                raise ConfigError(P, key + ".format", f"format {f.format!r} uses {{{unknown[0]}}} but the fields "
                                  f"are {', '.join(f.fields)}")
            fields = [(name, single(r, f"{key}.fields.{name}", None)) for name, r in f.fields.items()]
        else:
            r = Reg(address=f.address, type=f.type, count=f.count)
            fields = [("value", single(r, key, None))]
            if f.format:
                used = format_fields(f.format, P, key + ".format")
                if any(u != "value" for u in used):
                    raise ConfigError(P, key + ".format", "with a single 'address' the format can only use {value}")
        identity[k] = (fields, f.format)
    identity_addrs = set(claims) - sample_addrs

    return RegisterPlan(
        path=P, n_cells=n_cells, table=rmap.table, word_order=rmap.word_order,
        sample_reads=blocks(sample_addrs, rmap.max_block), identity_reads=blocks(identity_addrs, rmap.max_block),
        cell_v=cell_v, temps=temps, balancing=balancing, flags=flags, fets=fets, pack_v=pack_v, pack_a=pack_a,
        state=state, identity=identity, image_size=max(claims.keys() | bit_regs.keys()) + 1,
    )
