"""Typed records read strictly from JSON: the mechanism under every results document.

A :class:`Record` is a frozen dataclass; ``to_dict`` gives plain JSON (tuples become lists)
and ``from_dict`` converts back from the field types, nested dataclasses included, refusing
with a one-line :class:`ResultsError` naming the field a missing field, a field it does not
know or a value of the wrong type. No dependency beyond the standard library, so that the
value types of ``bench`` (``bench.latency``, ``bench.stats``) can be records too.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar, get_args, get_origin

T = TypeVar("T")


class ResultsError(ValueError):
    """A results file cannot be read; the message is one line naming the file and the problem."""


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if hint is Any or hint is object:
        return value
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in get_args(hint) if arg is not type(None)]
        if value is None:
            if type(None) in get_args(hint):
                return None
            raise ResultsError(f"{where}: is null")
        if len(options) == 1:
            return _convert(options[0], value, where)
        for option in options:  # e.g. float | str: the first that fits
            try:
                return _convert(option, value, where)
            except ResultsError:
                continue
        raise ResultsError(f"{where}: {value!r} is none of {options}")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ResultsError(f"{where}: expected an object, got {type(value).__name__}")
        return build(hint, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ResultsError(f"{where}: expected a list, got {type(value).__name__}")
        args = get_args(hint)
        item = args[0] if args else Any
        items = [_convert(item, entry, f"{where}[{index}]") for index, entry in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ResultsError(f"{where}: expected an object, got {type(value).__name__}")
        args = get_args(hint)
        item = args[1] if len(args) == 2 else Any
        return {key: _convert(item, entry, f"{where}.{key}") for key, entry in value.items()}
    if hint is dict or hint is list:
        if not isinstance(value, hint):
            raise ResultsError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ResultsError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ResultsError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    return value


def build(cls: type[T], data: dict, where: str) -> T:
    """``cls`` (a dataclass) from ``data``, strictly: every field known, typed, present or defaulted."""
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields) - {"kind", "schema_version"})
    if unknown:
        raise ResultsError(f"{where}: unknown field {unknown[0]!r}")
    values = {}
    for name, field in fields.items():
        if name not in data:
            no_default = field.default is dataclasses.MISSING
            if no_default and field.default_factory is dataclasses.MISSING:
                raise ResultsError(f"{where}: missing field {name!r}")
            continue
        values[name] = _convert(hints[name], data[name], f"{where}.{name}")
    return cls(**values)


def plain(value: Any) -> Any:
    """A dataclass tree as JSON-ready dicts and lists (tuples become lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


class Record:
    """Mixin for the typed parts of a document: ``to_dict`` / ``from_dict`` by field types."""

    def to_dict(self) -> dict:
        return plain(self)

    @classmethod
    def from_dict(cls: type[T], data: dict, where: str | None = None) -> T:
        return build(cls, data, where or cls.__name__)
