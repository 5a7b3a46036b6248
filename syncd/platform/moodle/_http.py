"""POST requests to one Moodle site over keep-alive connections, one connection per thread.

Failures become :class:`MoodleTransportError` with ``maybe_applied`` set as precisely as
the socket allows: false when no connection could be made (nothing was sent), true once
any of the request may have left. A kept-alive connection the server has closed is
noticed before use (readable while idle = end of stream) and replaced; one idle for
longer than :data:`MAX_IDLE` is replaced too (servers close idle connections after a few
seconds, and a request racing that close is lost). When a reused connection still fails
before any reply, the request is re-sent once at once on a new connection, but only when
the caller says re-sending is harmless.
"""

from __future__ import annotations

import http.client
import ipaddress
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog

import syncd
from syncd.domain import ConfigError
from syncd.platform.moodle.errors import MoodleTransportError

log = structlog.get_logger(__name__)

#: seconds a kept-alive connection may sit idle before it is replaced rather than reused
MAX_IDLE = 4.0
USER_AGENT = f"syncd/{syncd.__version__}"
#: errors of a kept-alive connection the server closed while it was idle
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.RemoteDisconnected)


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP reply: status, body and the redirect target if any."""

    status: int
    reason: str
    body: bytes
    location: str | None


@dataclass(slots=True)
class _Conn:
    http: http.client.HTTPConnection
    last_used: float = 0.0


def _site(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"platform.url: must be http(s)://host[:port][/path] (got {url!r})")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("platform.url: must not hold a user name or password (the token authenticates)")
    if parts.query or parts.fragment:
        raise ConfigError(f"platform.url: must not have a query or fragment (got {url!r})")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"platform.url: invalid port (got {url!r})") from None
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _dropped(sock: socket.socket) -> bool:
    """True when an idle kept-alive socket is readable: the server closed it (or sent garbage)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no reply within {timeout:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate refused: {exc.verify_message or exc.reason}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Transport:
    """Keep-alive HTTP(S) POSTs to the site at ``url`` (TLS verified unless told otherwise)."""

    def __init__(self, url: str, timeout: float, verify_tls: bool, clock: Callable[[], float]) -> None:
        self.scheme, self.host, self.port, self.base_path = _site(url)
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port is None else f":{self.port}"
        self.url = f"{self.scheme}://{netloc}{port}{self.base_path}"
        self.timeout = timeout
        self._clock = clock
        self._tls: ssl.SSLContext | None = None
        if self.scheme == "https":
            self._tls = ssl.create_default_context()
            if not verify_tls:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
                log.warning("moodle_tls_unverified", url=self.url)
        elif not _loopback(self.host):
            log.warning("moodle_plain_http", url=self.url, hint="the token travels unencrypted; use https")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[_Conn] = []

    def _new_connection(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _connection(self) -> _Conn:
        conn: _Conn | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _Conn(self._new_connection())
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _ready(self, conn: _Conn, function: str) -> bool:
        """Connect ``conn`` if needed; True when an open connection is being reused."""
        sock = conn.http.sock
        if sock is not None and (self._clock() - conn.last_used > MAX_IDLE or _dropped(sock)):
            conn.http.close()
        if conn.http.sock is not None:
            return True
        try:
            conn.http.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.http.close()
            retryable = not isinstance(exc, ssl.SSLCertVerificationError)
            reason = f"cannot connect to {self.url}: {_reason(exc, self.timeout)}"
            raise MoodleTransportError(function, reason, retryable=retryable) from None
        return False

    def post(self, function: str, path: str, body: bytes, content_type: str, *, may_resend: bool) -> Reply:
        """POST ``body`` to ``base path + path``; the reply whatever its status."""
        conn = self._connection()
        headers = {"Content-Type": content_type, "Accept": "application/json", "User-Agent": USER_AGENT}
        for first in (True, False):
            reused = self._ready(conn, function)
            try:
                conn.http.request("POST", self.base_path + path, body, headers)
                response = conn.http.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.http.close()
                if first and reused and may_resend and isinstance(exc, _STALE):
                    log.debug("moodle_connection_reopened", function=function, error=type(exc).__name__)
                    continue
                raise MoodleTransportError(function, _reason(exc, self.timeout), maybe_applied=True) from None
            conn.last_used = self._clock()
            return Reply(response.status, response.reason, data, response.getheader("Location"))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every connection (threads reconnect if they are used again)."""
        with self._lock:
            for conn in self._all:
                conn.http.close()
