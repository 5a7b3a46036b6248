"""The bodies of the fake Moodle's replies: JSON (``moodlewsrestformat=json``) and XML (anything else).

Moodle's REST server answers in XML unless ``moodlewsrestformat=json`` (``_errors.json``). The XML
writer follows ``webservice_rest_server::xmlize_result`` as the recorded reply shows it: ``<SINGLE>``
for structures, ``<MULTIPLE>`` for lists, ``<VALUE>`` for scalars (booleans as 1/0, null as
``<VALUE null="null"/>``), one newline after each element. :data:`XML_NULL` marks an optional key
that the JSON reply leaves out but the XML reply shows as null (``userhomepageurl`` of the site info).
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape


class _XmlNull:
    """An optional return key: absent from JSON, ``null`` in XML."""

    def __repr__(self) -> str:
        return "XML_NULL"


XML_NULL: Any = _XmlNull()


def _without_xml_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_xml_nulls(item) for key, item in value.items() if item is not XML_NULL}
    if isinstance(value, list):
        return [_without_xml_nulls(item) for item in value]
    return value


def json_body(value: Any) -> bytes:
    """The JSON body (PHP's json_encode escapes non-ASCII as ``\\uXXXX``; so does this)."""
    return json.dumps(_without_xml_nulls(value)).encode("ascii")


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def _xml_value(value: Any) -> str:
    if isinstance(value, dict):
        keys = "".join(f'<KEY name="{_attr(str(k))}">{_xml_value(v)}</KEY>\n' for k, v in value.items())
        return f"<SINGLE>\n{keys}</SINGLE>\n"
    if isinstance(value, list):
        return "<MULTIPLE>\n" + "".join(_xml_value(item) for item in value) + "</MULTIPLE>\n"
    if value is None or value is XML_NULL:
        return '<VALUE null="null"/>\n'
    if isinstance(value, bool):
        return f"<VALUE>{int(value)}</VALUE>\n"
    return f"<VALUE>{escape(str(value))}</VALUE>\n"


def xml_body(value: Any) -> bytes:
    """A success reply in XML (``null`` gives an empty RESPONSE)."""
    inner = "" if value is None else _xml_value(value)
    return f'<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n{inner}</RESPONSE>\n'.encode()


def xml_error(body: dict[str, Any]) -> bytes:
    """An error reply in XML (``webservice_rest_server::generate_error``, Moodle 4.5 source)."""
    text = ['<?xml version="1.0" encoding="UTF-8" ?>', f'<EXCEPTION class="{_attr(str(body["exception"]))}">']
    if body.get("errorcode") is not None:
        text.append(f"<ERRORCODE>{escape(str(body['errorcode']))}</ERRORCODE>")
    text.append(f"<MESSAGE>{escape(str(body.get('message', '')))}</MESSAGE>")
    if body.get("debuginfo"):
        text.append(f"<DEBUGINFO>{escape(str(body['debuginfo']))}</DEBUGINFO>")
    text.append("</EXCEPTION>")
    return ("\n".join(text) + "\n").encode()
