"""Strict YAML for every file a user writes: profiles, signal/register maps, rig descriptions.

PyYAML silently keeps the last of two equal keys in a mapping; a profile with ``threshold_v``
twice would then be tested against whichever came last. :func:`load_yaml` rejects a duplicate
key with a :class:`~rig.errors.ConfigError` naming the file, the dotted key and both lines.
It also remembers the line of every key, so a later schema error can point at the line
(:func:`key_line`).

Tags: only the YAML 1.1 safe set plus labgrid's ``!template`` (kept as its text), so a rig
description labgrid accepts is read here too.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError


class KeyedValueError(ValueError):
    """A model validator's error about a specific (dotted, relative) key."""

    def __init__(self, key: str, problem: str):
        self.key = key
        super().__init__(problem)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with labgrid's ``!template`` tag read as a plain string."""


StrictLoader.add_constructor("!template", lambda loader, node: loader.construct_scalar(node))


def _key_text(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{node.tag}>"


def _walk(node: yaml.Node, path: tuple[str, ...], file: object, lines: dict[str, int]) -> None:
    """Check every mapping for duplicate keys; record the 1-based line of each dotted key."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _walk(value_node, path, file, lines)
                continue
            key = _key_text(key_node)
            line = key_node.start_mark.line + 1
            dotted = ".".join((*path, key))
            if key in seen:
                raise ConfigError(file, dotted,
                                  f"duplicate key {key!r} on line {line}: already given on line {seen[key]}; "
                                  "YAML would silently keep only the last one")
            seen[key] = line
            lines.setdefault(dotted, line)
            _walk(value_node, (*path, key), file, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, str(i)), file, lines)


#: dotted key -> line, per file loaded (for error messages only)
_LINES: dict[str, dict[str, int]] = {}


def parse_yaml(text: str, file: object) -> Any:
    """Parse ``text`` strictly (duplicate keys are a ConfigError naming ``file``)."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        lines: dict[str, int] = {}
        _walk(node, (), file, lines)
        _LINES[str(file)] = lines
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise ConfigError(file, where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def load_yaml(path: str | Path, what: str) -> Any:
    """Read and strictly parse a YAML file. Unreadable file or bad YAML: ConfigError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(p, None, f"cannot read {what}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(p, None, f"{what} is not UTF-8 text (byte {exc.start})") from None
    return parse_yaml(text, p)


def load_yaml_mapping(path: str | Path, what: str) -> dict:
    """:func:`load_yaml` that must give a mapping."""
    raw = load_yaml(path, what)
    if not isinstance(raw, dict):
        raise ConfigError(path, None, f"a {what} must be a YAML mapping, got {type(raw).__name__}")
    return raw


def key_line(file: object, dotted: str | None) -> int | None:
    """Line of ``dotted`` (or of its nearest given parent) in a file :func:`parse_yaml` read."""
    lines = _LINES.get(str(file), {})
    while dotted:
        if dotted in lines:
            return lines[dotted]
        dotted = dotted.rpartition(".")[0]
    return None


def closest(name: str, candidates) -> str:
    """`` (did you mean X?)`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names (and aliases) of the sub-model ``loc`` points into, if it is a model."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            field = next((f for f in current.model_fields.values() if f.alias == str(part)), None)
        if field is None:
            return None
        current = field.annotation
        args = [a for a in getattr(current, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        if args:
            current = args[0]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items() if not f.exclude]
    return None


def validation_error(model: type[BaseModel], exc: ValidationError, file: object) -> ConfigError:
    """The first pydantic error as a ConfigError: file, dotted key (with line), problem.

    An unknown key names the closest known key of that mapping.
    """
    # a misspelt key gives "missing" for the real one and "extra" for the typo: the typo,
    # with the closest known key, is the useful message
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = tuple(x for x in err.get("loc", ()) if not str(x).startswith("function-"))
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, KeyedValueError):
        loc = (*loc, *cause.key.split("."))
    key = ".".join(str(x) for x in loc) or None
    msg = err["msg"].removeprefix("Value error, ")
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(model, loc[:-1]) or []
        msg = f"unknown key {str(loc[-1])!r}{closest(str(loc[-1]), known)}"
        if known:
            msg += f"; known keys here: {', '.join(known)}"
    elif kind == "finite_number":
        msg = f"must be a finite number, got {err.get('input')!r}"
    elif kind not in ("value_error", "missing"):
        msg = f"{msg} (got {err.get('input')!r})"
    line = key_line(file, key)
    if line is not None and key:
        msg += f" (line {line})"
    if len(errors) > 1:
        msg += f" [+{len(errors) - 1} more problem(s)]"
    return ConfigError(file, key, msg)


def _numeric(ann) -> bool:
    return ann in (int, float)


def _bools(ann, v, key: str):
    """Dotted keys under ``key`` where ``v`` holds a YAML boolean but ``ann`` declares a number."""
    import types
    import typing

    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        yield from _bools(args[0], v, key)
    elif origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if isinstance(v, bool) and bool not in members and all(_numeric(a) for a in members):
            yield key
        models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1 and isinstance(v, dict):
            yield from _bools(models[0], v, key)
        elif len(members) == 1:
            yield from _bools(members[0], v, key)
    elif _numeric(ann):
        if isinstance(v, bool):
            yield key
    elif origin in (list, tuple, set, frozenset) and isinstance(v, list):
        fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
        for i, item in enumerate(v):
            item_ann = (args[i] if i < len(args) else None) if fixed else (args[0] if args else None)
            yield from _bools(item_ann, item, f"{key}.{i}")
    elif origin is dict and isinstance(v, dict) and len(args) == 2:
        for k, item in v.items():
            yield from _bools(args[1], item, f"{key}.{k}")
    elif isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(v, dict):
        for name, f in ann.model_fields.items():
            for k in {name, f.alias or name}:
                if k in v:
                    yield from _bools(f.annotation, v[k], f"{key}.{k}" if key else k)


def bool_for_number(model: type[BaseModel], raw: Any) -> str | None:
    """The dotted key of the first YAML boolean (``true``, ``yes``, ``on``) given where ``model``
    declares a number, or None: pydantic would read it as 1 or 0 without a word."""
    return next(_bools(model, raw, ""), None)


def reject_bool_for_number(model: type[BaseModel], raw: Any, file: object) -> None:
    """ConfigError (file, key) for the first YAML boolean given where ``model`` declares a number."""
    key = bool_for_number(model, raw)
    if key is not None:
        line = key_line(file, key)
        raise ConfigError(file, key, "must be a number, got a YAML boolean (true/false, yes/no, on/off)"
                          + (f" (line {line})" if line is not None else ""))


def validate(model: type[BaseModel], raw: dict, file: object) -> Any:
    """``model.model_validate(raw)`` with the first error as a ConfigError; a YAML boolean
    where the model declares a number is one too."""
    reject_bool_for_number(model, raw, file)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(model, exc, file) from None
