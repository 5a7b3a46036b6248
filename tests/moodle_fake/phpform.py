"""PHP's form decoding (``users[0][username]=x`` → nested arrays), its inverse, and multipart bodies.

PHP keeps a parsed form as ordered arrays keyed by strings or integers. Here an array is a ``dict``
with string keys in arrival order, exactly as PHP sees it; :func:`to_plain` turns the arrays whose
keys are ``0..n-1`` into lists, which is the shape a Python client starts from. The decoder follows
``php_register_variable_ex``: leading spaces dropped, ``.`` and space in the base name become ``_``,
an unmatched ``[`` becomes ``_``, ``[]`` appends, text after a closing bracket that does not open a
new one is ignored, a later value replaces an earlier one in place.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PhpArray = dict[str, Any]
_INT_KEY = re.compile(r"(?:0|-?[1-9][0-9]*)\Z")
MAX_DEPTH = 64


def split_key(name: str) -> list[str | None] | None:
    """The path of one form name: base name then bracket indexes (``None`` = append); None = dropped."""
    name = name.lstrip(" ")
    open_at = name.find("[")
    if open_at != -1 and "]" not in name[open_at:]:
        name, open_at = name[:open_at] + "_" + name[open_at + 1:], -1
    base = name if open_at == -1 else name[:open_at]
    base = base.replace(" ", "_").replace(".", "_")
    if not base:
        return None
    path: list[str | None] = [base]
    pos = open_at
    while pos != -1 and pos < len(name) and name[pos] == "[":
        close = name.find("]", pos)
        if close == -1:
            break
        path.append(name[pos + 1:close] or None)
        pos = close + 1
    return path[: MAX_DEPTH + 1]


def _next_index(array: PhpArray) -> str:
    ints = [int(key) for key in array if _INT_KEY.match(key)]
    return str(max(ints) + 1 if ints else 0)


def decode_form(pairs: Iterable[tuple[str, str]]) -> PhpArray:
    """PHP's ``$_POST`` for these name/value pairs, as nested dicts in arrival order."""
    root: PhpArray = {}
    for name, value in pairs:
        path = split_key(name)
        if path is None:
            continue
        current = root
        for depth, segment in enumerate(path):
            key = _next_index(current) if segment is None else segment
            if depth == len(path) - 1:
                current[key] = value
                break
            child = current.get(key)
            if not isinstance(child, dict):
                child = {}
                current[key] = child
            current = child
    return root


def to_plain(value: Any) -> Any:
    """Arrays keyed ``0..n-1`` (in that order) become lists, recursively; other arrays stay dicts."""
    if not isinstance(value, dict):
        return value
    keys = list(value)
    if keys and keys == [str(i) for i in range(len(keys))]:
        return [to_plain(item) for item in value.values()]
    return {key: to_plain(item) for key, item in value.items()}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def encode_form(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """PHP bracket syntax for nested params: None and empty lists left out, booleans as 1/0."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            pairs.append((prefix, _scalar(value)))

    for key, value in params.items():
        walk(key, value)
    return pairs


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart body."""

    field: str
    filename: str
    content_type: str
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> tuple[list[tuple[str, str]], list[UploadedFile]]:
    """The text fields (in order) and the file parts of a ``multipart/form-data`` body."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: list[tuple[str, str]] = []
    files: list[UploadedFile] = []
    if not message.is_multipart():
        return fields, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields.append((name, data.decode("utf-8", "replace")))
        else:
            files.append(UploadedFile(name, filename, part.get_content_type(), data))
    return fields, files
