"""Moodle's REST request encoding: nested parameters as PHP bracket form fields.

``{"users": [{"username": "zoe", "customfields": [{"type": "x", "value": "1"}]}]}``
becomes ``users[0][username]=zoe``, ``users[0][customfields][0][type]=x``,
``users[0][customfields][0][value]=1`` (recordings README §1). Fields come out in the
order of the Python structures; booleans are ``1``/``0``; ints are decimal; ``None`` (an
optional parameter not given), empty lists and empty dicts are left out. The multipart
body of ``/webservice/upload.php`` is built here too.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The form fields for ``params``, in order. Raises TypeError/ValueError for what Moodle cannot take."""
    fields: list[tuple[str, str]] = []
    for key, value in params.items():
        _flatten(_checked_key(key, ""), value, fields)
    return fields


def _checked_key(key: object, parent: str) -> str:
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise TypeError(f"Moodle parameter names are str or int, got {type(key).__name__} under '{parent}'")
    text = str(key)
    if not text or any(c in text for c in "[]=&\r\n"):
        raise ValueError(f"invalid Moodle parameter name {text!r} under '{parent}'")
    return text


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))  # int(): an IntEnum's str() would be its name
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Moodle parameter {name}: {value} is not a number Moodle accepts")
        return repr(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"Moodle parameter {name}: cannot send a {type(value).__name__}")


def _flatten(name: str, value: Any, fields: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{name}[{_checked_key(key, name)}]", item, fields)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        for index, item in enumerate(value):
            if item is None:  # a hole would renumber the PHP array: refuse rather than guess
                raise ValueError(f"Moodle parameter {name}[{index}] is None")
            _flatten(f"{name}[{index}]", item, fields)
    else:
        fields.append((name, _scalar(name, value)))


def _quoted(value: str) -> str:
    return value.replace('"', "%22").replace("\r", "").replace("\n", "")


def multipart(fields: Sequence[tuple[str, str]], files: Sequence[tuple[str, str, bytes, str]],
              boundary: str | None = None) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its content type.

    ``fields`` are ``(name, value)``; ``files`` are ``(field name, filename, data, mimetype)``.
    """
    mark = boundary or f"syncd-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields:
        head = f'--{mark}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    for name, filename, data, mimetype in files:
        head = (f'--{mark}\r\nContent-Disposition: form-data; name="{_quoted(name)}"; '
                f'filename="{_quoted(filename)}"\r\nContent-Type: {_quoted(mimetype)}\r\n\r\n')
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{mark}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={mark}"
