"""The Moodle Web Services client: REST calls, draft-file uploads, retries, calls in parallel.

``call(function, params)`` POSTs ``wstoken``, ``wsfunction``, ``moodlewsrestformat=json``
and the parameters in PHP bracket form to ``<url>/webservice/rest/server.php`` and
returns the decoded JSON (list, dict or None); an error body raises (see ``errors``).

Retries: only a :class:`MoodleTransportError` that may heal (connection refused or
reset, timeout, HTTP 5xx/408/429, a body that is not JSON, maintenance mode) is retried,
``retries`` times, after ``backoff``, 2x, 4x... seconds. A call marked
``idempotent=False`` (a create) is never retried: its error says ``maybe_applied`` when
the request may have reached Moodle, so the caller re-reads the state first (recordings
README §5.1). A Moodle error reply is never retried.

The token is sent in the body only. It is kept out of logs, reprs and exceptions: error
texts built from a reply have the token (and any password the request carried) masked.
"""

from __future__ import annotations

import contextvars
import errno
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import structlog

from syncd.domain import ConfigError
from syncd.platform.moodle._http import Reply, Transport
from syncd.platform.moodle.encoding import encode_params, multipart
from syncd.platform.moodle.errors import (
    MoodleAuthError,
    MoodleError,
    MoodleTransportError,
    MoodleWsError,
    error_from_body,
    is_error,
    readable,
    redact,
)

log = structlog.get_logger(__name__)

REST_PATH = "/webservice/rest/server.php"
UPLOAD_PATH = "/webservice/upload.php"
#: the name uploads go by in logs and errors
UPLOAD = "webservice/upload.php"
FORM_TYPE = "application/x-www-form-urlencoded"
#: the longest wait between two attempts, whatever ``backoff`` and the attempt number say
MAX_DELAY = 60.0
#: statuses worth another attempt (the others will not change by themselves)
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_TOKEN_MAX = 4096


def _secret_values(fields: Iterable[tuple[str, str]]) -> list[str]:
    """Values of password fields in a request (``users[0][password]``...): masked in error texts."""
    return [value for name, value in fields if "password" in name.rpartition("[")[2].lower() and value]


class MoodleClient:
    """A client for one Moodle site and token. Thread-safe; ``close()`` when done."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, verify_tls: bool = True,
                 retries: int = 3, backoff: float = 0.5, max_in_flight: int = 4,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not token or any(c.isspace() or not c.isprintable() for c in token):
            raise ConfigError("platform.token_file: the token must be one non-empty word")
        if timeout <= 0 or retries < 0 or backoff < 0 or max_in_flight < 1:
            raise ValueError("timeout > 0, retries >= 0, backoff >= 0 and max_in_flight >= 1 are required")
        self._token = token
        self._transport = Transport(url, timeout, verify_tls, clock)
        self.url = self._transport.url
        self.retries = retries
        self.backoff = backoff
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MoodleClient(url={self.url!r}, token='***', max_in_flight={self.max_in_flight})"

    def __enter__(self) -> MoodleClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker threads of :meth:`map` and close the connections."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._transport.close()

    # -- REST calls -------------------------------------------------------------------

    def _prepare(self, function: str, params: Mapping[str, Any] | None) -> tuple[bytes, tuple[str, ...]]:
        fields = encode_params(params or {})
        form = [("wstoken", self._token), ("wsfunction", function), ("moodlewsrestformat", "json"), *fields]
        return urlencode(form).encode("ascii"), (self._token, *_secret_values(fields))

    def call(self, function: str, params: Mapping[str, Any] | None = None, *, idempotent: bool = True) -> Any:
        """Call ``function`` with ``params``; its decoded reply. Raises :class:`MoodleError`."""
        body, secrets = self._prepare(function, params)
        return self._send(function, body, secrets, idempotent)

    def map(self, function: str, param_list: Iterable[Mapping[str, Any] | None], *,
            idempotent: bool = True) -> list[Any]:
        """Call ``function`` once per params, up to ``max_in_flight`` at once.

        One entry per call, in input order: the reply, or the :class:`MoodleError` it raised.
        Every params is encoded before the first call, so bad input raises before anything is sent.
        """
        prepared = [self._prepare(function, params) for params in param_list]
        if not prepared:
            return []
        pool = self._executor()
        futures = [
            pool.submit(contextvars.copy_context().run, self._send, function, body, secrets, idempotent)
            for body, secrets in prepared
        ]
        results: list[Any] = []
        for future in futures:
            try:
                results.append(future.result())
            except MoodleError as exc:
                results.append(exc)
        return results

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="moodle")
            return self._pool

    def _send(self, function: str, body: bytes, secrets: tuple[str, ...], idempotent: bool) -> Any:
        def attempt() -> Any:
            reply = self._json(function, REST_PATH, body, FORM_TYPE, secrets, idempotent)
            if is_error(reply):
                raise error_from_body(function, reply, secrets)
            return reply

        return self._with_retries(function, attempt, idempotent)

    # -- uploads ----------------------------------------------------------------------

    def upload(self, filename: str, data: bytes, mimetype: str = "application/octet-stream") -> int:
        """Put one file into a new draft area (``/webservice/upload.php``); the draft item id."""
        body, content_type = multipart(
            [("token", self._token), ("filearea", "draft"), ("itemid", "0")],
            [("file_1", filename, data, mimetype)],
        )
        secrets = (self._token,)

        def attempt() -> int:
            # a new draft area per attempt: re-sending leaves at most an unused draft behind
            return _draft_itemid(self._json(UPLOAD, UPLOAD_PATH, body, content_type, secrets, True), secrets)

        result: int = self._with_retries(UPLOAD, attempt, True)
        return result

    # -- one exchange, retries ----------------------------------------------------------

    def _json(self, function: str, path: str, body: bytes, content_type: str, secrets: tuple[str, ...],
              may_resend: bool) -> Any:
        with self._slots:
            reply = self._transport.post(function, path, body, content_type, may_resend=may_resend)
        return _decode(function, reply, secrets)

    def _with_retries(self, function: str, attempt: Callable[[], Any], idempotent: bool) -> Any:
        for number in range(1, self.retries + 2):
            started = self._clock()
            try:
                result = attempt()
            except MoodleTransportError as exc:
                log.warning("moodle_call_failed", function=function, attempt=number, error=str(exc))
                if not idempotent or not exc.retryable or number > self.retries:
                    raise
                delay = min(self.backoff * 2 ** (number - 1), MAX_DELAY)
                log.info("moodle_call_retried", function=function, attempt=number + 1, delay_s=delay)
                self._sleep(delay)
                continue
            except MoodleAuthError as exc:
                log.error("moodle_call_failed", function=function, attempt=number, error=str(exc))
                raise
            except MoodleWsError as exc:  # a row error for the caller to report, not an incident
                log.debug("moodle_call_failed", function=function, attempt=number, error=str(exc))
                raise
            log.debug("moodle_called", function=function, ms=round((self._clock() - started) * 1000, 1))
            return result
        raise AssertionError("unreachable")  # pragma: no cover


def _decode(function: str, reply: Reply, secrets: tuple[str, ...]) -> Any:
    """The JSON of a 2xx reply; a :class:`MoodleTransportError` for anything else."""
    status = reply.status
    if 300 <= status < 400:
        raise MoodleTransportError(
            function, f"HTTP {status}: redirected to {reply.location!r}; set platform.url to the address "
                      "Moodle answers on", retryable=False, status=status)
    if not 200 <= status < 300:
        retryable = status in _RETRY_STATUSES or status >= 500
        raise MoodleTransportError(function, f"HTTP {status} {reply.reason}".strip(), retryable=retryable,
                                   maybe_applied=status >= 500, status=status)
    try:
        return json.loads(reply.body)
    except ValueError:  # UnicodeDecodeError is one
        start = " ".join(redact(reply.body[:4096].decode("utf-8", "replace"), secrets).split())[:120]
        raise MoodleTransportError(
            function, f"the reply is not JSON ({len(reply.body)} bytes, starting {start!r})",
            maybe_applied=True, status=status) from None


def _draft_itemid(reply: Any, secrets: tuple[str, ...]) -> int:
    """The draft item id from an upload.php reply, or the error it holds."""
    if isinstance(reply, dict) and ("exception" in reply or "error" in reply):
        # upload.php reports exceptions the AJAX way: {"error": message, "errorcode": ...}
        body = {"exception": reply.get("exception", "moodle_exception"), "errorcode": reply.get("errorcode"),
                "message": reply.get("message", reply.get("error", "")), "debuginfo": reply.get("debuginfo")}
        raise error_from_body(UPLOAD, body, secrets)
    first = reply[0] if isinstance(reply, list) and reply else None
    if isinstance(first, dict) and "errortype" in first:
        raise MoodleWsError(UPLOAD, "upload", str(first["errortype"]),
                            readable(redact(str(first.get("error", "")), secrets)))
    itemid = first.get("itemid") if isinstance(first, dict) else None
    if not isinstance(itemid, int) or isinstance(itemid, bool):
        raise MoodleTransportError(UPLOAD, "the upload reply holds no draft item id", retryable=False,
                                   maybe_applied=True)
    return itemid


def load_token(path: Path) -> str:
    """The web-service token in ``path``: a regular file (no symlink), mode 0600 or stricter, one word."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"platform.token_file: {path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"platform.token_file: {path} is a symbolic link") from None
        raise ConfigError(f"platform.token_file: cannot read {path} ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"platform.token_file: {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise ConfigError(f"platform.token_file: {path} has mode {mode:04o}; it must be 0600 or "
                              f"stricter (chmod 600 {path})")
        raw = handle.read(_TOKEN_MAX + 1)
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"platform.token_file: {path} is not UTF-8 text") from None
    if not token:
        raise ConfigError(f"platform.token_file: {path} is empty")
    if len(raw) > _TOKEN_MAX or any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(f"platform.token_file: {path} must hold the token alone, on one line")
    return token
