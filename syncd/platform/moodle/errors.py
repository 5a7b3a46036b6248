"""How a Moodle Web Services reply fails, as exceptions the adapter can act on.

Moodle answers every call with HTTP 200, errors included (recordings README §2): an error
is a JSON object with an ``exception`` key, normally with ``errorcode`` and ``message``,
``debuginfo`` only when the site's debugging is on. The classes:

- :class:`MoodleWsError`: Moodle refused *this* call (unknown id, duplicate, bad value):
  a row error. ``maybe_applied`` is true for the replies that come *after* the change was
  committed (``invalidresponse``, the welcome message that could not be sent; README §5).
- :class:`MoodleAuthError`: the token cannot call this function at all (bad token,
  function not in the token's service or not on the site, web-service user refused).
  Retrying does not help and every row would fail the same way: the file waits
  (it is a :class:`~syncd.domain.RetryLater`) until the configuration is fixed.
- :class:`MoodleTransportError`: the call did not complete (connection refused or reset,
  timeout, HTTP 5xx, a body that is not JSON, site in maintenance). ``retryable`` says
  whether trying again may help; ``maybe_applied`` whether the request may have reached
  Moodle (then a create must not be re-sent before the state is re-read). Also a
  :class:`~syncd.domain.RetryLater`, so a file whose calls keep failing is retried later.

Messages keep Moodle's text, HTML stripped and unescaped, shortened; the client redacts
the token (and any password it sent) from them before they are built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from syncd.domain import RetryLater, SyncdError

#: errorcodes meaning "this token may not call this" (``accessexception``, ``invalidtoken``
#: are in the recordings; the others are the names Moodle's web-service login raises)
AUTH_CODES = frozenset({
    "invalidtoken", "accessexception", "servicenotavailable", "enablewsdescription",
    "wsaccessuserdeleted", "wsaccessuserunconfirmed", "wsaccessusersuspended",
    "wsaccessusernologin", "wsaccessuserexpired",
})
#: errorcodes that mean "later": the site is in maintenance mode
TRANSIENT_CODES = frozenset({"sitemaintenance"})
#: errorcodes sent after the change was committed (recordings README §5.1, §5.5, §5.6)
APPLIED_CODES = frozenset({"invalidresponse", "Message was not sent."})

MESSAGE_LIMIT = 300
DEBUGINFO_LIMIT = 500
_CODE = re.compile(r"[A-Za-z0-9_]+")
_BLOCKS = frozenset({"div", "p", "br", "li", "ul", "ol", "tr", "h1", "h2", "h3", "h4", "pre"})


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment, one chunk per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = [""]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.chunks.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.chunks.append("")

    def handle_data(self, data: str) -> None:
        self.chunks[-1] += data


def readable(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` (maybe HTML) as one short line: tags dropped, entities unescaped, spaces collapsed."""
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    out = ""
    for chunk in (" ".join(c.split()) for c in parser.chunks):
        if not chunk:
            continue
        if out:
            out += " " if out[-1] in ".!?:;," else "; "
        out += chunk
    return out if len(out) <= limit else out[: limit - 1].rstrip() + "…"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class MoodleError(SyncdError):
    """Base of every error the Moodle client raises."""


class MoodleWsError(MoodleError):
    """Moodle refused one call: ``{"exception": ..., "errorcode": ..., "message": ...}``.

    ``errorcode`` is Moodle's value as sent (None when absent; it may be HTML or a
    sentence), ``message`` and ``debuginfo`` are readable text.
    """

    def __init__(self, function: str, exception: str, errorcode: str | None, message: str,
                 debuginfo: str | None = None) -> None:
        self.function = function
        self.exception = exception
        self.errorcode = errorcode
        self.message = message
        self.debuginfo = debuginfo
        super().__init__(self._describe())

    @property
    def code(self) -> str | None:
        """``errorcode`` when it is an identifier (not HTML, not a sentence), else None."""
        code = self.errorcode
        return code if code is not None and _CODE.fullmatch(code) else None

    @property
    def maybe_applied(self) -> bool:
        """True when Moodle reports this error *after* committing the change: re-read the state."""
        return self.errorcode in APPLIED_CODES

    def _describe(self) -> str:
        text = f"{self.function}: {self.message}"
        extra = [part for part in (self.code, self.debuginfo) if part and part != self.message]
        return f"{text} ({'; '.join(extra)})" if extra else text


class MoodleAuthError(MoodleError, RetryLater):
    """The token may not call ``function`` (bad token, function not in the service...). Not retried."""

    def __init__(self, function: str, errorcode: str | None, reason: str) -> None:
        self.function = function
        self.errorcode = errorcode
        self.reason = reason
        super().__init__(f"{function}: {reason}")


class MoodleTransportError(MoodleError, RetryLater):
    """The call did not complete: network, timeout, HTTP status, unreadable body."""

    def __init__(self, function: str, reason: str, *, retryable: bool = True, maybe_applied: bool = False,
                 status: int | None = None) -> None:
        self.function = function
        self.reason = reason
        self.retryable = retryable
        self.maybe_applied = maybe_applied
        self.status = status
        suffix = " (the request may have been applied: re-read before re-sending)" if maybe_applied else ""
        super().__init__(f"{function}: {reason}{suffix}")


def is_error(body: object) -> bool:
    """Whether a decoded reply is an error: an object with an ``exception`` key (README §2)."""
    return isinstance(body, dict) and "exception" in body


@dataclass(frozen=True, slots=True)
class MoodleWarning:
    """One entry of a success reply's ``warnings`` list (the item was not applied)."""

    warningcode: str | None
    message: str
    item: str | None = None
    itemid: int | None = None


def warnings_of(body: object) -> list[MoodleWarning]:
    """The ``warnings`` of a success reply (empty for replies without any)."""
    if not isinstance(body, dict) or not isinstance(body.get("warnings"), list):
        return []
    found = []
    for entry in body["warnings"]:
        if not isinstance(entry, dict):
            continue
        itemid = entry.get("itemid")
        code = entry.get("warningcode")
        found.append(MoodleWarning(
            warningcode=None if code is None else str(code),
            message=readable(str(entry.get("message", ""))),
            item=None if entry.get("item") is None else str(entry["item"]),
            itemid=itemid if isinstance(itemid, int) and not isinstance(itemid, bool) else None,
        ))
    return found


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _message(raw: str, errorcode: str | None) -> str:
    # a missing language string comes back as "<component>/<identifier>": "error/Message was not sent."
    if errorcode and raw.endswith("/" + errorcode) and "/" not in raw[: -len(errorcode) - 1]:
        raw = errorcode
    return readable(raw)


def error_from_body(function: str, body: Mapping[str, Any], secrets: Iterable[str] = ()) -> MoodleError:
    """The exception for an error reply ``body`` of ``function``, secrets redacted from its text."""
    hidden = tuple(secrets)
    exception = redact(str(body.get("exception", "")), hidden)
    errorcode = _text(body.get("errorcode"))
    if errorcode is not None:
        errorcode = redact(errorcode, hidden)
    message = _message(redact(str(body.get("message", "")), hidden), errorcode)
    raw_debug = _text(body.get("debuginfo"))
    debuginfo = readable(redact(raw_debug, hidden), DEBUGINFO_LIMIT) if raw_debug else None
    if errorcode == "accessexception":
        return MoodleAuthError(function, errorcode, (
            f"the token may not call {function}: add {function} to the token's external service "
            f"(or lift the service's user/IP/time restrictions) (Moodle: {message})"))
    if errorcode in AUTH_CODES:
        return MoodleAuthError(function, errorcode, f"Moodle refused the token ({errorcode}: {message}); "
                                                    "check platform.token_file and the web-service user")
    if errorcode == "invalidrecord" and "external_functions" in message:
        return MoodleAuthError(function, errorcode, f"the function {function} does not exist on this "
                                                    f"Moodle site (Moodle: {message})")
    if errorcode in TRANSIENT_CODES:
        return MoodleTransportError(function, f"Moodle is unavailable ({errorcode}: {message})")
    return MoodleWsError(function, exception, errorcode, message, debuginfo)
