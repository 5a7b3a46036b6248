"""The embedded SFTP server (paramiko), run by ``syncd run`` when ``[sftp.server] enabled``.

One listener thread accepts connections; each gets a paramiko Transport (its own
thread) whose only service is the ``sftp`` subsystem — no shell, exec or forwarding.
A connection from a banned address, or beyond ``max_connections``, is closed at once; a
connection that has not logged in within ``login_timeout`` is closed.

The host key (Ed25519) is made on first start with mode 0600 and never replaced: a key
file that is unreadable, malformed or readable by others stops the server with an error
rather than being silently regenerated (clients would see a changed host key).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import paramiko
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)
from structlog.contextvars import bind_contextvars

from syncd.domain import ConfigError
from syncd.sftp.accounts import Account, AuthThrottle
from syncd.sftp.handlers import AuditedSftpServer, JailedSftp
from syncd.sftp.session import ResultsLookup, Session
from syncd.sftp.settings import SftpServerSettings

log = structlog.get_logger(__name__)

#: flow-control window and packet size per channel: bigger than paramiko's defaults so a
#: client with many requests in flight is not throttled by window updates (see bench/)
WINDOW_SIZE = 16 * 1024 * 1024
MAX_PACKET = 256 * 1024


def load_host_key(path: Path) -> paramiko.PKey:
    """The server's host key at ``path``, made (Ed25519, 0600) if the file does not exist."""
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        log.info("sftp_host_key_created", path=str(path))
    st = path.lstat()
    if not path.is_file() or path.is_symlink():
        raise ConfigError(f"sftp.server.host_key: {path} is not a regular file")
    if st.st_mode & 0o077:
        raise ConfigError(
            f"sftp.server.host_key: {path} is readable by others (mode {st.st_mode & 0o777:o}); chmod 600 it"
        )
    try:
        return paramiko.PKey.from_path(path)
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise ConfigError(
            f"sftp.server.host_key: {path} cannot be read as a private key ({exc}); "
            "it is never replaced automatically: restore it, or remove it to make a new one"
        ) from None


class Gate(paramiko.ServerInterface):
    """Authentication and channel policy of one connection."""

    def __init__(self, session: Session, accounts: dict[str, Account], throttle: AuthThrottle,
                 failure_delay: float) -> None:
        self.session = session
        self._accounts = accounts
        self._throttle = throttle
        self._delay = failure_delay

    def get_allowed_auths(self, username: str) -> str:
        """publickey, plus password for accounts that have one."""
        account = self._accounts.get(username)
        return "publickey,password" if account and account.password_hash else "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        """Accept one of the account's keys (paramiko checks the signature)."""
        account = self._accounts.get(username)
        if self._throttle.banned(self.session.address):
            return AUTH_FAILED
        if account is None or not account.key_allowed(key.asbytes()):
            self.session.key_refused = True
            log.info("sftp_key_refused", user=username, address=self.session.address,
                     key_type=key.get_name())
            return AUTH_FAILED
        return self._accept(account, "publickey", fingerprint=key.fingerprint)

    def check_auth_password(self, username: str, password: str) -> int:
        """Accept the account's password; every failure counts towards a ban."""
        account = self._accounts.get(username)
        if not self._throttle.banned(self.session.address) and account and account.password_ok(password):
            return self._accept(account, "password")
        self._failed(username, "password")
        time.sleep(self._delay)  # slows guessing on this connection; other connections go on
        return AUTH_FAILED

    def _accept(self, account: Account, method: str, **extra: str) -> int:
        # paramiko asks twice for a key (once to offer it, once signed): log the login once
        if (self.session.account, self.session.method) != (account, method):
            log.info("sftp_login_accepted", account=account.name, address=self.session.address,
                     method=method, **extra)
        self.session.account, self.session.method = account, method
        return AUTH_SUCCESSFUL

    def _failed(self, username: str, method: str) -> None:
        address = self.session.address
        log.warning("sftp_login_failed", user=username, address=address, method=method)
        if self._throttle.failed(address):
            log.warning("sftp_address_banned", address=address)

    def connection_ended(self, authenticated: bool) -> None:
        """Count a connection that leaves unauthenticated after a refused key as one failure."""
        if authenticated:
            self._throttle.succeeded(self.session.address)
        elif self.session.key_refused:
            self._failed("", "publickey")

    def check_channel_request(self, kind: str, chanid: int) -> int:
        """Only session channels (for the sftp subsystem)."""
        if kind == "session" and self.session.account is not None:
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class SftpServer:
    """Accepts SFTP connections on ``settings.address:port`` until stopped."""

    def __init__(
        self, settings: SftpServerSettings, accounts: dict[str, Account], host_key: paramiko.PKey,
        results: ResultsLookup, *, failure_delay: float = 1.0,
    ) -> None:
        self._settings = settings
        self._accounts = accounts
        self._host_key = host_key
        self._results = results
        self._delay = failure_delay
        self._throttle = AuthThrottle(settings.max_auth_failures, settings.failure_window, settings.ban_time)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._transports: set[paramiko.Transport] = set()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._sock is None:
            raise RuntimeError("server not started")
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        """Create the jails, bind the port and start accepting."""
        for account in self._accounts.values():
            account.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        family = socket.AF_INET6 if ":" in self._settings.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._settings.address, self._settings.port))
        sock.listen(64)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="syncd-sftp", daemon=True)
        self._thread.start()
        log.info("sftp_server_started", address=self._settings.address, port=self.port,
                 host_key=self._host_key.fingerprint, accounts=sorted(self._accounts))

    def alive(self) -> bool:
        """Whether the accept loop is running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop accepting and close every connection (uploads in progress are discarded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        with self._lock:
            transports = list(self._transports)
        for transport in transports:
            transport.close()
        if self._sock is not None:
            self._sock.close()
        log.info("sftp_server_stopped")

    def _accept_loop(self) -> None:
        bind_contextvars(component="sftp")
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                log.error("sftp_accept_failed", error=str(exc))
                self._stop.wait(1.0)
                continue
            address, port = str(peer[0]), int(peer[1])
            if self._throttle.banned(address):
                log.warning("sftp_connection_refused", address=address, reason="banned after failed logins")
                conn.close()
            elif len(self._transports) >= self._settings.max_connections:
                log.warning("sftp_connection_refused", address=address, reason="max_connections reached")
                conn.close()
            else:
                threading.Thread(
                    target=self._serve, args=(conn, Session(address, port, self._results)),
                    name=f"syncd-sftp-{address}:{port}", daemon=True,
                ).start()

    def _serve(self, conn: socket.socket, session: Session) -> None:
        bind_contextvars(component="sftp")
        conn.settimeout(None)
        # paramiko never sets it: without it Nagle holds back every small status reply and
        # window adjust until the client's delayed ACK, and uploads stall (bench/bench_sftp.py)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(
            conn, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET
        )
        transport.add_server_key(self._host_key)
        transport.set_subsystem_handler("sftp", AuditedSftpServer, JailedSftp)
        gate = Gate(session, self._accounts, self._throttle, self._delay)
        with self._lock:
            self._transports.add(transport)
        try:
            transport.start_server(server=gate)
            deadline = time.monotonic() + self._settings.login_timeout
            while transport.is_active() and not transport.is_authenticated():
                if time.monotonic() > deadline or self._stop.is_set():
                    log.info("sftp_login_timed_out", address=session.address)
                    break
                time.sleep(0.1)
            while transport.is_active() and not self._stop.is_set():
                transport.join(0.5)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.info("sftp_connection_failed", address=session.address, error=str(exc))
        finally:
            transport.close()
            handler = transport.auth_handler  # still knows after close (is_authenticated() does not)
            session.authenticated = handler is not None and handler.is_authenticated()
            gate.connection_ended(session.authenticated)
            session.ended()
            with self._lock:
                self._transports.discard(transport)
