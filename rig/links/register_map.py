"""The Modbus register map: which register or bit holds what (the UART counterpart of a signal map).

YAML, validated with pydantic (:mod:`rig.links.register_map_schema`), then compiled for a
cell count into a :class:`~rig.links.register_plan.RegisterPlan`: the reads to make and how
to turn register words and bits into a sample. The simulated board's Modbus slave uses the
same plan backwards. Example::

    table: input                    # default table of a value: holding (03) or input (04)
    word_order: big                 # 32-bit values: high word first (a value may override)
    blocks:                         # optional: the ranges the board answers (reads never cross a gap)
      - {function: 4, start: 0, count: 32, name: cells, read: whole}   # read whole, not just the used span
      - {function: 3, start: 100, count: 8, name: temperatures}
      - {function: 1, start: 0, count: 16, name: balance coils}
      - {function: 2, start: 0, count: 8, name: alarms and FETs}
    cells:
      voltage: {address: 0, function: 4, unit: mV, max_cells: 32}     # cell i at 0 + (i-1)
      balancing: {address: 0, function: 1}       # coils: cell i = coil (i-1); registers: a bit mask
    temperatures:
      sensors:                                   # reporting order; roles are the profile's
        - {address: 100, function: 3, type: int8, halves: high_first, sensors: 4, unit: degC}
        - {address: 102, function: 3, type: int8, byte: low, unit: degC}
    flags:
      hvc: {address: 0, function: 2}                                  # a discrete input
      ot: {any: [{address: 105, function: 3, bit: 0}, {address: 105, function: 3, bit: 4}]}
    fets:
      charge: {address: 106, function: 3, bits: [0, 1], choices: {0: open, 1: closed, 3: welded},
               values: [closed, welded]}
    pack:
      voltage: {address: 40, function: 4, type: uint32, word_order: little, unit: mV}
    state: {address: 110, choices: {0: rest, 1: charge, 2: discharge}}   # a code; or one flag per state:
    # state: {function: 1, bits: {discharge: {address: 64}, charge: {address: 65}, rest: {address: 68}}}
    identity:
      serial: {address: 200, type: ascii, count: 8}

A value is ``(raw * scale + offset)`` in ``unit`` (converted to SI); ``byte: high|low`` and
``bits: [lo, hi]`` read part of one register, signed when ``type`` is ``int8``/``int16``.
A value without ``function`` takes the one block that holds its address (with ``blocks``),
else the map's ``table``. Addresses are 0-based protocol addresses (register 40001 is
address 0). Errors are :class:`~rig.errors.ConfigError` naming the file, the key and the problem.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import format_fields, load_yaml_mapping, unit_factor, validate_model
from .modbus_commands import compile_modbus_commands
from .register_map_schema import (  # noqa: F401  (re-exported)
    MAX_READ,
    MAX_READ_BITS,
    TABLE_NAMES,
    WORDS,
    Bit,
    Bitfield,
    Block,
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
from .register_plan import (  # noqa: F401  (re-exported)
    BIT_FUNCTIONS,
    Balancing,
    Cond,
    Field_,
    Indicator,
    Read,
    RegisterPlan,
)

_ONE = {1: "coil", 2: "discrete input", 3: "register", 4: "input register"}


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


def load_register_map(path: str | Path, n_cells: int | None = None):
    """Read and schema-validate a register map; with ``n_cells`` also check the layout for
    that many cells and return the compiled :class:`RegisterPlan` (``bmsrig check``)."""
    p = Path(path)
    if n_cells is not None:
        return compile_register_map(p, int(n_cells))
    return validate_model(RegisterMap, load_yaml_mapping(p, "register map"), p)


class _Layout:
    """Where values live: the declared blocks, the claimed bits of every register, the reads."""

    def __init__(self, P: Path, rmap: RegisterMap, n_cells: int):
        self.P, self.n_cells = P, n_cells
        self.default_fc = 3 if rmap.table == "holding" else 4
        self.word_order = rmap.word_order
        self.max_block = rmap.max_block
        self.blocks = list(rmap.blocks or [])
        self.declared = rmap.blocks is not None
        self.claims: dict[tuple[int, int], list[tuple[int, str]]] = {}
        self.used: dict[str, dict[int, set[int]]] = {"sample": {}, "identity": {}}
        self.phase = "sample"
        self._check_blocks()

    def _check_blocks(self) -> None:
        for j, b in enumerate(self.blocks):
            for i, o in enumerate(self.blocks[:j]):
                if o.function == b.function and b.start < o.start + o.count and o.start < b.start + b.count:
                    raise ConfigError(self.P, f"blocks.{j}", f"{TABLE_NAMES[b.function]} {b.start}.."
                                      f"{b.start + b.count - 1} overlap blocks.{i} ({o.start}..{o.start + o.count - 1}); "
                                      f"each address belongs to one block")
            limit = self.max_block if b.function not in BIT_FUNCTIONS else MAX_READ_BITS
            if b.read == "whole" and b.count > limit:
                unit = "coils/inputs" if b.function in BIT_FUNCTIONS else "registers"
                raise ConfigError(self.P, f"blocks.{j}.read", f"'read: whole' reads the block in one transaction, "
                                  f"but its {b.count} {unit} exceed the {limit} one read can carry"
                                  + ("" if b.function in BIT_FUNCTIONS else " (max_block)")
                                  + "; split the block as the board's documentation does")

    def function(self, fc: int | None, address: int, nwords: int, key: str) -> int:
        """The function code of a value at ``address``: its own, else its block's, else the table's."""
        if fc is not None:
            return fc
        if not self.declared:
            return self.default_fc
        holding = sorted({b.function for b in self.blocks if b.start <= address < b.start + b.count})
        if len(holding) == 1:
            return holding[0]
        if not holding:
            raise ConfigError(self.P, key, f"address {address} lies outside every declared block "
                              f"({self._describe_blocks()}); give its 'function' and a block that holds it")
        raise ConfigError(self.P, key, f"address {address} is in blocks of function "
                          f"{' and '.join(map(str, holding))}: say which with 'function'")

    def _describe_blocks(self, fc: int | None = None) -> str:
        bs = [b for b in self.blocks if fc is None or b.function == fc]
        if not bs:
            return f"no block reads function {fc} ({TABLE_NAMES[fc]})"
        return ", ".join(f"function {b.function}: {b.start}..{b.start + b.count - 1}" for b in bs)

    def claim(self, fc: int, address: int, nwords: int, key: str, mask: int = 0xFFFF) -> None:
        """Reserve ``mask`` bits of ``nwords`` registers (or coils) from ``address`` for ``key``."""
        last = address + nwords - 1
        if last > 65535:
            raise ConfigError(self.P, key, f"runs past the last Modbus address (65535) at {_ONE[fc]} {last}")
        if self.declared and not any(b.function == fc and b.start <= address and last < b.start + b.count
                                     for b in self.blocks):
            span = f"{_ONE[fc]} {address} lies" if nwords == 1 else f"{TABLE_NAMES[fc]} {address}..{last} lie"
            raise ConfigError(self.P, key, f"{span} outside every declared block "
                              f"({self._describe_blocks(fc)})")
        for a in range(address, last + 1):
            held = self.claims.setdefault((fc, a), [])
            for m, other in held:
                if m & mask and other != key:
                    cells = " (with %d cells)" % self.n_cells if "cells" in key or "cells" in other else ""
                    if m == 0xFFFF or mask == 0xFFFF or fc in BIT_FUNCTIONS:
                        where = f"{_ONE[fc]} {a}"
                    else:
                        where = f"bit {_low_bit(m & mask)} of {_ONE[fc]} {a}"
                    raise ConfigError(self.P, key, f"{where} is also used by {other}{cells}")
            held.append((mask, key))
            self.used[self.phase].setdefault(fc, set()).add(a)

    def reads(self, phase: str) -> list[Read]:
        out: list[Read] = []
        for fc, addrs in sorted(self.used[phase].items()):
            limit = self.max_block if fc not in BIT_FUNCTIONS else MAX_READ_BITS
            if not self.declared:
                out += [Read(s, c, fc) for s, c in blocks(addrs, limit)]
                continue
            for b in sorted((b for b in self.blocks if b.function == fc), key=lambda b: b.start):
                inside = {a for a in addrs if b.start <= a < b.start + b.count}
                if b.read == "whole" and inside:
                    out.append(Read(b.start, b.count, fc))  # the board answers only the whole block
                else:
                    out += [Read(s, c, fc) for s, c in blocks(inside, limit)]
        return out

    def served(self) -> tuple[dict[int, int], dict[int, list[tuple[int, int]]]]:
        """(image size per function, the ranges the simulated board answers per function)."""
        sizes: dict[int, int] = {}
        for fc, a in self.claims:
            sizes[fc] = max(sizes.get(fc, 0), a + 1)
        if self.declared:
            ranges: dict[int, list[tuple[int, int]]] = {}
            for b in self.blocks:
                sizes[b.function] = max(sizes.get(b.function, 0), b.start + b.count)
                ranges.setdefault(b.function, []).append((b.start, b.count))
            return sizes, ranges
        sizes.setdefault(self.default_fc, 1)
        return sizes, {fc: [(0, n)] for fc, n in sizes.items()}


def _low_bit(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def _part(spec) -> tuple[int, int] | None:
    """(shift, width) of a byte half / bit range, or None for a whole value."""
    if getattr(spec, "byte", None) is not None:
        return (8 if spec.byte == "high" else 0), 8
    if getattr(spec, "bits", None) is not None:
        return spec.bits[0], spec.bits[1] - spec.bits[0] + 1
    return None


def compile_register_map(path: str | Path, n_cells: int) -> RegisterPlan:
    """Validate the map for ``n_cells`` (blocks, overlaps, room for the cells) and plan the reads."""
    P = Path(path)
    rmap = load_register_map(P)
    if n_cells < 1:
        raise ConfigError(P, "cells", f"the profile's cell count must be >= 1, got {n_cells}")
    L = _Layout(P, rmap, n_cells)

    def conv(r: Reg, quantity: str | None, key: str) -> tuple[float, float]:
        f, o = unit_factor(quantity, r.unit, P, key + ".unit") if quantity else (1.0, 0.0)
        return r.scale * f, r.offset * f + o

    def numeric(r: Reg, key: str, quantity: str | None, n: int | None = None) -> Field_:
        """A numeric value (``n`` None) or a run of ``n`` values (a RegSeries)."""
        series = n is not None
        if series and r.type == "ascii":
            raise ConfigError(P, key + ".type", "per-cell values must be numeric, not ascii")
        if key in ("cells.voltage", "temperatures.cells") and r.max_cells is not None and n > r.max_cells:
            raise ConfigError(P, key, f"the profile has {n} cells but this register map has room for "
                              f"{r.max_cells} (max_cells)")
        nw = r.count if r.type == "ascii" else WORDS[r.type]
        fc = L.function(r.function, r.address, nw, key)
        if fc in BIT_FUNCTIONS:
            raise ConfigError(P, key + ".function", f"{TABLE_NAMES[fc]} are single bits; a {r.type} value needs "
                              f"holding (3) or input (4) registers (a coil or discrete input can be a flag, "
                              f"a FET or a balancing bit)")
        part = _part(r)
        halves = getattr(r, "halves", None)
        if halves is not None:
            part = (0, 8)
        if r.type in ("uint8", "int8") and part is None:
            raise ConfigError(P, key + ".type", f"type {r.type} needs 'byte' (high or low) or 'halves'")
        count = 1 if n is None else n
        stride = getattr(r, "stride", None) or nw
        if stride < nw:
            raise ConfigError(P, key + ".stride", f"stride {stride} is smaller than a {r.type} ({nw} registers)")
        if halves is not None:
            first = 8 if halves == "high_first" else 0
            addrs = [r.address + k // 2 for k in range(count)]
            shifts = [first if k % 2 == 0 else 8 - first for k in range(count)]
        else:
            addrs = [r.address + k * stride for k in range(count)]
            shifts = [part[0]] * count if part else None
        width = part[1] if part else 16
        for k, a in enumerate(addrs):
            mask = (((1 << width) - 1) << shifts[k]) if shifts else 0xFFFF
            L.claim(fc, a, nw, key, mask)
        a, b = conv(r, quantity, key)
        typ = r.type if part is None else "uint16"
        return Field_(key, addrs, typ, a, b, r.count or 1, fc, shifts, width,
                      signed=r.type.startswith("int"), word_order=r.word_order or L.word_order)

    def cond(b: Bit, key: str, level: int) -> Cond:
        fc = L.function(b.function, b.address, 1, key)
        part = _part(b)
        if fc in BIT_FUNCTIONS:
            if part is not None or (b.bit or 0) != 0:
                what = "bits" if b.bits is not None else ("byte" if b.byte else "bit")
                raise ConfigError(P, f"{key}.{what}", f"{_ONE[fc]} {b.address} is one bit by itself; "
                                  f"'bit'/'bits'/'byte' pick bits of a 16-bit register (function 3 or 4)")
            part = (0, 1)
        elif part is None:
            part = (b.bit or 0, 1) if (b.bit is not None or b.values is None) else (0, 16)
        shift, width = part
        values = None
        spare = 0
        if b.values is not None:
            codes = b.codes()
            too_big = [c for c in codes if not 0 <= c < 1 << width]
            if too_big:
                raise ConfigError(P, f"{key}.values", f"value {too_big[0]} does not fit {width} bit(s)")
            values = frozenset(codes)
            if len(values) == 1 << width:
                raise ConfigError(P, f"{key}.values", f"every value of {width} bit(s) is listed: it could never be clear")
            others = [c for c in sorted(b.choices or {}) if c not in values and 0 <= c < 1 << width]
            spare = others[0] if others else next(v for v in range(1 << width) if v not in values)
        L.claim(fc, b.address, 1, key, ((1 << width) - 1) << shift if fc not in BIT_FUNCTIONS else 0xFFFF)
        return Cond(fc, b.address, shift, width, values, level, spare)

    def indicator(b: Bit | None, key: str, which: str) -> Indicator | None:
        if b is None:
            return None
        members = b.any if b.any is not None else [b]
        conds = []
        for i, m in enumerate(members):
            if m.any is not None:
                raise ConfigError(P, f"{key}.any.{i}", "an 'any' entry is one bit or value set, not another 'any'")
            if b.any is not None and m.function is None and b.function is not None:
                m = m.model_copy(update={"function": b.function})  # the 'any' entry's function is its bits' default
            conds.append(cond(m, key if b.any is None else f"{key}.any.{i}", m.level(which)))
        return Indicator(key, conds)

    # ---------------------------------------------------------------- the sample
    cell_v = numeric(rmap.cells.voltage, "cells.voltage", "voltage", n_cells)
    temps: list[Field_] = []
    t = rmap.temperatures
    if t.cells is not None:
        temps.append(numeric(t.cells, "temperatures.cells", "temperature", n_cells))
    if t.bleed_resistor is not None:
        temps.append(numeric(t.bleed_resistor, "temperatures.bleed_resistor", "temperature"))
    for i, s in enumerate(t.sensors or []):
        temps.append(numeric(s, f"temperatures.sensors.{i}", "temperature", s.sensors))
    balancing = None
    if rmap.cells.balancing is not None:
        bf = rmap.cells.balancing
        fc = L.function(bf.function, bf.address, 1, "cells.balancing")
        if fc in BIT_FUNCTIONS:
            if bf.registers is not None or bf.word_order != "low_first":
                raise ConfigError(P, "cells.balancing", f"{TABLE_NAMES[fc]} are one bit per cell: "
                                  f"'registers'/'word_order' apply to a mask in registers (function 3 or 4)")
            bits = [(bf.address + i, 0) for i in range(n_cells)]
            for a, _ in bits:
                L.claim(fc, a, 1, "cells.balancing")
        else:
            nreg = bf.registers or (n_cells + 15) // 16
            if n_cells > 16 * nreg:
                raise ConfigError(P, "cells.balancing.registers", f"the profile has {n_cells} cells but a mask of "
                                  f"{nreg} register(s) has room for {16 * nreg}")
            word = (lambda i: nreg - 1 - i // 16) if bf.word_order == "high_first" else (lambda i: i // 16)
            bits = [(bf.address + word(i), (15 - i % 16) if bf.bit_order == "msb_first" else i % 16)
                    for i in range(n_cells)]
            for a, k in bits:
                L.claim(fc, a, 1, "cells.balancing", 1 << k)
        balancing = Balancing(fc, bits, bf.active_value)
    flags = {k: indicator(getattr(rmap.flags, k), f"flags.{k}", "active") for k in ("hvc", "lvc", "ot", "ut")}
    fets = {k: indicator(getattr(rmap.fets, k), f"fets.{k}", "closed") for k in ("charge", "discharge")}
    pack_v = numeric(rmap.pack.voltage, "pack.voltage", "voltage") if rmap.pack.voltage else None
    pack_a = numeric(rmap.pack.current, "pack.current", "current") if rmap.pack.current else None
    state = None
    state_bits = None
    if rmap.state is not None and rmap.state.bits is not None:
        st = rmap.state
        state_bits = [(name, indicator(b if b.function is not None or st.function is None
                                       else b.model_copy(update={"function": st.function}),
                                       f"state.bits.{name}", "active")) for name, b in st.bits.items()]
    elif rmap.state is not None:
        fc = L.function(rmap.state.function, rmap.state.address, 1, "state")
        if fc in BIT_FUNCTIONS:
            raise ConfigError(P, "state.function", f"the state is a code in a 16-bit register, not in {TABLE_NAMES[fc]}")
        L.claim(fc, rmap.state.address, 1, "state")
        state = (rmap.state.address, dict(rmap.state.choices), fc)

    # ---------------------------------------------------------------- identity (read once)
    L.phase = "identity"
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
            if unknown or not used:
                raise ConfigError(P, key + ".format", f"format {f.format!r} uses "
                                  f"{'{' + unknown[0] + '}' if unknown else 'none of the fields'}: the fields "
                                  f"are {', '.join(f.fields)}")
            fields = [(name, numeric(r, f"{key}.fields.{name}", None)) for name, r in f.fields.items()]
        else:
            r = Reg(address=f.address, function=f.function, type=f.type, count=f.count)
            fields = [("value", numeric(r, key, None))]
            if f.format:
                used = format_fields(f.format, P, key + ".format")
                if any(u != "value" for u in used) or not used:
                    raise ConfigError(P, key + ".format", "with a single 'address' the format must use {value} and only it")
        identity[k] = (fields, f.format)

    sizes, served = L.served()
    return RegisterPlan(
        path=P, n_cells=n_cells, table=rmap.table, word_order=rmap.word_order,
        sample_reads=L.reads("sample"), identity_reads=L.reads("identity"),
        cell_v=cell_v, temps=temps, balancing=balancing, flags=flags, fets=fets, pack_v=pack_v, pack_a=pack_a,
        state=state, state_bits=state_bits, identity=identity, image_sizes=sizes, served=served, blocks_declared=L.declared,
        whole_blocks=frozenset((b.function, b.start, b.count) for b in L.blocks if b.read == "whole"),
        commands=compile_modbus_commands(rmap.commands, P),
    )
