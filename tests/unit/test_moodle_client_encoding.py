"""Request encoding: PHP bracket form fields, checked against every recorded Moodle exchange."""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest

from syncd.platform.moodle.encoding import encode_params, multipart

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "moodle-ws"
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_INT = re.compile(r"-?[1-9][0-9]*|0")


def recorded_exchanges() -> list[tuple[str, dict[str, Any]]]:
    """Every exchange of every recording file (debuginfo/ included), as (id, exchange)."""
    if not RECORDINGS.is_dir():
        return []
    found = []
    for path in sorted(RECORDINGS.glob("*.json")) + sorted(RECORDINGS.glob("debuginfo/*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(content, list):
            name = str(path.relative_to(RECORDINGS))
            found.extend((f"{name}#{index}", exchange) for index, exchange in enumerate(content))
    return found


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {key: _listify(value) for key, value in node.items()}
    if items and list(items) == [str(i) for i in range(len(items))]:
        return list(items.values())
    return items


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The nested structure a PHP bracket form stands for; canonical decimal strings become ints."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.fullmatch(key)
        assert match, key
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = int(value) if _INT.fullmatch(value) else value
    result: dict[str, Any] = _listify(root)
    return result


EXCHANGES = recorded_exchanges()
HEAD = ("wsfunction", "moodlewsrestformat")


def test_recordings_are_present() -> None:
    """The recordings the contract tests iterate exist (36 function files, ~500 exchanges with debuginfo/)."""
    if not RECORDINGS.is_dir():
        pytest.skip(reason=f"no Moodle recordings at {RECORDINGS}")
    assert len(EXCHANGES) >= 500


@pytest.mark.parametrize(("ident", "exchange"), EXCHANGES, ids=[ident for ident, _ in EXCHANGES])
def test_recorded_request_is_reencoded_exactly(ident: str, exchange: dict[str, Any]) -> None:
    """Decoding a recorded request and encoding it again gives the same fields in the same order."""
    recorded = [(k, v) for k, v in exchange["request"].items() if k != "wstoken"]
    head = [pair for pair in recorded if pair[0] in HEAD]
    assert recorded[: len(head)] == head, "wsfunction/moodlewsrestformat come first"
    params = decode_form(recorded[len(head):])
    assert head + encode_params(params) == recorded


def test_booleans_ints_and_strings() -> None:
    """Booleans are 1/0, ints decimal (IntEnum by value), strings as they are (empty kept)."""

    class Role(IntEnum):
        STUDENT = 5

    fields = encode_params({"a": True, "b": False, "c": 42, "d": Role.STUDENT, "e": "", "f": "é & ="})
    assert fields == [("a", "1"), ("b", "0"), ("c", "42"), ("d", "5"), ("e", ""), ("f", "é & =")]


def test_none_and_empty_collections_are_left_out() -> None:
    """None values, empty lists and empty dicts produce no field at all."""
    fields = encode_params({"a": None, "b": [], "c": {}, "users": [{"id": 3, "email": None, "prefs": []}]})
    assert fields == [("users[0][id]", "3")]


def test_nested_structures_in_insertion_order() -> None:
    """Lists and dicts nest as brackets, in the order of the Python structures (tuples too)."""
    params = {
        "users": [{"username": "zoe", "customfields": ({"type": "x", "value": "1"},)}, {"username": "léa"}],
        "members": [{"cohorttype": {"type": "idnumber", "value": "P1"}}],
        "field": "id",
    }
    assert encode_params(params) == [
        ("users[0][username]", "zoe"),
        ("users[0][customfields][0][type]", "x"),
        ("users[0][customfields][0][value]", "1"),
        ("users[1][username]", "léa"),
        ("members[0][cohorttype][type]", "idnumber"),
        ("members[0][cohorttype][value]", "P1"),
        ("field", "id"),
    ]


def test_floats_are_sent_as_numbers() -> None:
    """A finite float is sent as its shortest decimal form."""
    assert encode_params({"grade": 12.5}) == [("grade", "12.5")]


@pytest.mark.parametrize("params", [
    {"values": [1, None, 3]},
    {"bad[key]": 1},
    {"": 1},
    {"data": b"bytes"},
    {"when": object()},
    {"x": float("nan")},
    {"nested": {True: 1}},
])
def test_what_moodle_cannot_take_is_refused(params: dict[str, Any]) -> None:
    """Holes in lists, bracketed or empty names, bytes, objects, NaN and bool keys raise before sending."""
    with pytest.raises((TypeError, ValueError)):
        encode_params(params)


def test_multipart_body_parses_back() -> None:
    """The upload body is valid multipart/form-data: fields, then the file with its name and type."""
    body, content_type = multipart([("token", "t0k"), ("filearea", "draft"), ("itemid", "0")],
                                   [("file_1", 'portrait "zoé".png', b"\x89PNG\r\n\x00data", "image/png")])
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts = list(message.iter_parts())
    assert [p.get_param("name", header="content-disposition") for p in parts] == [
        "token", "filearea", "itemid", "file_1"]
    assert [p.get_content() for p in parts[:3]] == ["t0k", "draft", "0"]
    assert parts[3].get_filename() == "portrait %22zoé%22.png"
    assert parts[3].get_content_type() == "image/png"
    assert parts[3].get_payload(decode=True) == b"\x89PNG\r\n\x00data"
