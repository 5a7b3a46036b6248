"""Typed values from TOML or the environment: the converters the settings share.

A value from the environment arrives as :class:`EnvValue` (a string) and is converted to
the field's type; lists are comma-separated. Every error is one line naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syncd.domain import ConfigError


class EnvValue(str):
    """A string from the environment: converted to the field's type, lists comma-separated."""

    __slots__ = ()


def section(name: str, cls: type[Any], values: Mapping[str, Any]) -> Any:
    """An instance of the dataclass ``cls`` from ``values``, every key checked and converted."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{name}.{key}: unknown key (allowed: {names(fields)})")
        f = fields[key]
        kwargs[key] = check(f"{name}.{key}", convert(f"{name}.{key}", value, f.type), f.metadata)
    return cls(**kwargs)


_TYPES: dict[Any, type[Any]] = {"float": float, "int": int, "bool": bool, "str": str, "Path": Path}


def convert(key: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` to the type named by ``annotation`` (a string under PEP 563)."""
    kind = _TYPES.get(annotation, annotation)
    if annotation == "tuple[str, ...]":
        if isinstance(value, EnvValue):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: must be a list of strings (got {value!r})")
        return tuple(value)
    if kind is bool:
        words = {"1": True, "true": True, "yes": True, "on": True,
                 "0": False, "false": False, "no": False, "off": False}
        if isinstance(value, EnvValue) and value.lower() in words:
            return words[value.lower()]
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false (got {value!r})")
        return value
    if kind in (int, float):
        try:
            number = kind(value) if isinstance(value, EnvValue) else value
        except ValueError:
            number = None
        ok = isinstance(number, (int, float)) and not isinstance(number, bool)
        if not ok or (kind is int and not isinstance(number, int)):
            what = "an integer" if kind is int else "a number"
            raise ConfigError(f"{key}: must be {what} (got {value!r})")
        return number
    if not isinstance(value, str):
        raise ConfigError(f"{key}: must be a string (got {value!r})")
    return Path(value) if kind is Path else str(value)


def check(key: str, value: Any, meta: Mapping[str, Any]) -> Any:
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: must be one of {names(meta['choices'])} (got {value!r})")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{key}: must be >= {meta['min']} (got {value!r})")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{key}: must be <= {meta['max']} (got {value!r})")
    return value


def names(values: Any) -> str:
    return ", ".join(repr(v) if v in ("\t",) else str(v) for v in sorted(values))
