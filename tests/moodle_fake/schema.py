"""Parameter descriptions and ``external_api::validate_parameters`` (the source of most invalidparameter).

A description is a tree of :class:`Value`, :class:`Single` (a structure with named keys) and
:class:`Multiple` (a list). Validation follows Moodle: missing required key, unexpected keys, arrays
where scalars are expected and values that a ``clean_param`` would change are all rejected with the
generic invalid_parameter_exception; the precise reason goes to debuginfo, prefixed ``key => ...``.
Accepted values come back cleaned: ints as ``int``, booleans as ``bool``, everything else ``str``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.moodle_fake.errors import WsError, invalid_parameter

REQUIRED, OPTIONAL, DEFAULT = "required", "optional", "default"
INSTALLED_LANGS = frozenset({"en"})
AUTH_PLUGINS = frozenset({
    "cas", "db", "email", "ldap", "lti", "manual", "mnet", "nologin", "none", "oauth2", "shibboleth",
    "webservice",
})
_TAG = re.compile(r"<[A-Za-z/!?][^>]*>?")
_PLUGIN = re.compile(r"[a-z](?:[a-z0-9_](?!__))*[a-z0-9]+\Z")


def strip_tags(text: str) -> str:
    """PHP's strip_tags, close enough: tags (``<x ...>``, ``</x>``, comments) removed."""
    return _TAG.sub("", text)


def _clean_int(raw: str) -> Any:
    return int(raw) if re.fullmatch(r"-?(?:0|[1-9][0-9]*)", raw) and raw != "-0" else None


def _clean_bool(raw: str) -> Any:
    return {"0": False, "1": True}.get(raw)


def _keep_if(pattern: str) -> Callable[[str], Any]:
    compiled = re.compile(pattern)
    return lambda raw: raw if compiled.fullmatch(raw) else None


def _clean_username(raw: str) -> Any:
    return raw if re.fullmatch(r"[-.@_a-z0-9]*", raw) else None


def _clean_plugin(raw: str) -> Any:
    return raw if raw == "" or _PLUGIN.match(raw) else None


def _clean_float(raw: str) -> Any:
    return float(raw) if re.fullmatch(r"[+-]?[0-9]*\.?[0-9]*(?:[eE][-+]?[0-9]+)?", raw) and raw else None


# PARAM_* type → cleaner: the cleaned value, or None when clean_param would change the value.
CLEANERS: dict[str, Callable[[str], Any]] = {
    "int": _clean_int,
    "bool": _clean_bool,
    "float": _clean_float,
    "raw": lambda raw: raw,
    "raw_trimmed": lambda raw: raw if raw == raw.strip() else None,
    "text": lambda raw: raw if strip_tags(raw) == raw else None,
    "notags": lambda raw: raw if strip_tags(raw) == raw else None,
    "alpha": _keep_if(r"[A-Za-z]*"),
    "alphanum": _keep_if(r"[A-Za-z0-9]*"),
    "alphanumext": _keep_if(r"[A-Za-z0-9_-]*"),
    "alphaext": _keep_if(r"[A-Za-z_-]*"),
    "sequence": _keep_if(r"[0-9,]*"),
    "safedir": _keep_if(r"[A-Za-z0-9_-]*"),
    "username": _clean_username,
    "lang": lambda raw: raw if raw == "" or raw in INSTALLED_LANGS else None,
    "auth": lambda raw: raw if raw == "" or raw in AUTH_PLUGINS else None,
    "plugin": _clean_plugin,
    "timezone": _keep_if(r"[A-Za-z0-9_+\-/.]+"),
    "capability": _keep_if(r"[a-z0-9_/:]*"),
}


@dataclass(frozen=True)
class Value:
    """A scalar of a PARAM_* type."""

    type: str
    mode: str = REQUIRED
    default: Any = None


@dataclass(frozen=True)
class Single:
    """A structure: named keys, each with its own description."""

    keys: dict[str, Any] = field(default_factory=dict)
    mode: str = REQUIRED
    default: Any = None


@dataclass(frozen=True)
class Multiple:
    """A list of one kind of content."""

    content: Any
    mode: str = REQUIRED
    default: Any = None


Spec = Value | Single | Multiple


def req(type_: str) -> Value:
    """A required scalar."""
    return Value(type_)


def opt(type_: str) -> Value:
    """An optional scalar (left out of the cleaned params when absent)."""
    return Value(type_, OPTIONAL)


def dflt(type_: str, default: Any) -> Value:
    """A scalar with a default used when it is absent."""
    return Value(type_, DEFAULT, default)


def many(content: Spec, mode: str = REQUIRED, default: Any = None) -> Multiple:
    """A list of ``content``."""
    return Multiple(content, mode, default)


def struct(mode: str = REQUIRED, **keys: Spec) -> Single:
    """A structure with these keys."""
    return Single(keys, mode)


def _fail(reason: str) -> WsError:
    return invalid_parameter(reason)


def _nested(key: str, err: WsError) -> WsError:
    return _fail(f"{key} => Invalid parameter value detected: {err.debuginfo}")


def validate(spec: Spec, value: Any) -> Any:
    """The cleaned value, or WsError(invalidparameter) with Moodle's debuginfo."""
    if isinstance(spec, Value):
        if isinstance(value, dict):
            raise _fail("Scalar type expected, array or object received.")
        cleaned = CLEANERS[spec.type](value)
        if cleaned is None:
            raise _fail(
                f'Invalid external api parameter: the value is "{value}", '
                f'the server was expecting "{spec.type}" type'
            )
        return cleaned
    if not isinstance(value, dict):
        raise _fail(f"Only arrays accepted. The bad value is: '{value}'")
    if isinstance(spec, Multiple):
        return [validate(spec.content, item) for item in value.values()]
    return _validate_single(spec, value)


def _validate_single(spec: Single, value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rest = dict(value)
    for key, sub in spec.keys.items():
        if key not in rest:
            if sub.mode == REQUIRED:
                raise _fail(f"Missing required key in single structure: {key}")
            if sub.mode == DEFAULT:
                out[key] = sub.default
            continue
        try:
            out[key] = validate(sub, rest.pop(key))
        except WsError as err:
            raise _nested(key, err) from None
    if rest:
        raise _fail(f"Unexpected keys ({', '.join(rest)}) detected in parameter array.")
    return out


def validate_params(spec: Single, params: dict[str, Any]) -> dict[str, Any]:
    """Top-level validation of a function's parameters (no ``key =>`` prefix at this level)."""
    return _validate_single(spec, params)
