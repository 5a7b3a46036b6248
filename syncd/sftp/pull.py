"""Pull files from a remote SFTP outbox into ``sync/<target>`` on a schedule (SPEC §8).

Each run connects (host key checked against the configured ``known_hosts`` only, the
configured key only), lists ``remote_dir`` and takes, oldest first, every regular file
whose name matches ``glob`` (case-insensitive, like routes), that intake would not
ignore (hidden names, partial-upload suffixes; done markers *are* pulled), that was last
modified at least ``min_age`` seconds ago (by the remote's mtime: a remote clock far
ahead delays files, one behind lets them in early) and is at most ``max_file_size``.
``remote_dir`` and ``archive_dir`` are paths as the server shows them (relative ones
start at the login folder); missing archive folders are made 0700, and a name already
in the archive gets ``-YYYYmmdd-HHMMSS`` (then ``-N``) before its extension.

Crash order, per file (decided for "nothing lost, nothing twice"):

1. download to ``.syncd-pull-<name>/incoming/<file>.part``, fsync, check the byte count
   against the size listed, rename to the *verified* copy ``.syncd-pull-<name>/<file>``;
2. re-stat the remote file: size or mtime changed = still being written, copy dropped;
3. delete the remote file, or rename it into ``archive_dir``;
4. link the verified copy to ``sync/<target>/<file>`` and remove the work name.

The remote file is deleted only once a durable, verified local copy exists. A crash (or
a failed remote action whose reply was lost) between 3 and 4 leaves the verified copy;
the next run, once it has listed the outbox, delivers it if the remote file is gone and
drops it if the remote file is still there unchanged (same size and mtime; it is then
fetched again). Partial downloads are removed when a run starts. The other order
(local name first, remote delete after) was rejected: a lost delete means the file is
fetched and processed twice. The windows left: a remote file replaced, between the two
runs, by one of the same name, size and mtime second makes the next run drop the
earlier copy (that file is lost); a crash between the link and the unlink of step 4 is
recognised by the link count, unless intake has meanwhile *copied* the file to a store
on another file system (then it is delivered twice).

Failures: connecting, listing or a connection lost mid-run is retried ``retries`` times
after ``retry_delay``, 2x, 4x... (waiting on ``stop``); a refused host key or login is not
retried (it will not change by itself). A failure on one file is logged and the others
go on. Nothing raises out of :meth:`Puller.run`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import paramiko
import structlog
from structlog.contextvars import bind_contextvars

from syncd.domain import ConfigError
from syncd.schedule import Job
from syncd.sftp._landing import FileChanged, Landing, PullStopped
from syncd.sftp._remote import (
    HostKeyRefused,
    RemoteFile,
    RemoteFolder,
    load_client_key,
    read_known_hosts,
    require_host,
)
from syncd.sftp.settings import SftpPullSettings

log = structlog.get_logger(__name__)

#: intake ignore reasons that do not stop a pull: a done marker must travel with its file
PULLED_ANYWAY = frozenset({"done marker"})
#: skip reasons that need someone's attention (logged as warnings)
_NOTABLE = ("too big", "not a regular file", "the server sent", "changed while downloading")
#: errors that retrying will not cure
_FINAL = (HostKeyRefused, paramiko.AuthenticationException, ConfigError)

#: intake's ignore rule: why a path relative to sync/ is ignored, or None
Ignore = Callable[[PurePosixPath], str | None]


@dataclass(slots=True)
class PullResult:
    """What one run did: files fetched, files left remote (with why), and the error that ended it."""

    fetched: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> str:
        """One line for the scheduler's log and the run log."""
        text = f"fetched {len(self.fetched)} file(s), left {len(self.skipped)} remote"
        return f"{text}; failed: {self.error}" if self.error else text


class _ConnectionLost(Exception):
    """A file failed and the connection is gone: the session is retried."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def select(
    files: Iterable[RemoteFile], spec: SftpPullSettings, now: float, ignore: Ignore
) -> tuple[list[RemoteFile], list[tuple[str, str]]]:
    """The files to fetch (oldest first, then by name) and the (name, reason) of those left remote.

    Names that do not match the glob, and folders, are not ours and not reported.
    ``ignore`` gets the path the file would have relative to sync/ (``target/name``).
    """
    target = PurePosixPath(spec.target.strip("/")) if spec.target.strip("/") else PurePosixPath()
    chosen: list[RemoteFile] = []
    skipped: list[tuple[str, str]] = []
    for f in sorted(files, key=lambda f: (f.mtime or 0, f.name)):
        if f.is_dir or not fnmatchcase(f.name.lower(), spec.glob.lower()):
            continue
        reason = ignore(target / f.name)
        if not f.is_file:
            skipped.append((f.name, "not a regular file"))
        elif reason is not None and reason not in PULLED_ANYWAY:
            skipped.append((f.name, f"ignored: {reason}"))
        elif f.size is None or f.mtime is None:
            skipped.append((f.name, "the server sent no size or mtime"))
        elif now - f.mtime < spec.min_age:
            skipped.append((f.name, f"too young: modified less than {spec.min_age:g} s ago"))
        elif f.size > spec.max_file_size:
            skipped.append((f.name, f"too big: {f.size} bytes > max_file_size {spec.max_file_size}"))
        else:
            chosen.append(f)
    return chosen, skipped


def open_pull(
    spec: SftpPullSettings,
    sync_dir: Path,
    ignore: Ignore,
    *,
    clock: Callable[[], float] = time.time,
) -> Puller:
    """A Puller for ``spec`` once its key and ``known_hosts`` check out (nothing connects here).

    ConfigError names ``sftp.pull[<name>].key_file`` or ``.known_hosts``.
    """
    where = f"sftp.pull[{spec.name}]"
    load_client_key(Path(spec.key_file).expanduser(), f"{where}.key_file")
    known = Path(spec.known_hosts).expanduser()
    entries = read_known_hosts(known, f"{where}.known_hosts")
    require_host(entries, spec.host, spec.port, known, f"{where}.known_hosts")
    return Puller(spec, sync_dir, ignore, clock=clock)


class Puller:
    """Runs one pull of one ``[[sftp.pull]]`` entry at a time (see the module docstring)."""

    def __init__(
        self, spec: SftpPullSettings, sync_dir: Path, ignore: Ignore, *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec, self._ignore, self._clock = spec, ignore, clock
        self._landing = Landing(sync_dir, spec.target, spec.name)
        self._where = f"sftp.pull[{spec.name}]"

    @property
    def name(self) -> str:
        """The configured name of this pull."""
        return self.spec.name

    def run(self, stop: threading.Event) -> PullResult:
        """One scheduled run: fetch what is ready, retrying a failing connection; never raises."""
        spec, result = self.spec, PullResult()
        log.info("sftp_pull_started", host=spec.host, port=spec.port, remote_dir=spec.remote_dir)
        try:
            removed = self._landing.prepare()
            if removed:
                log.info("sftp_pull_partials_removed", names=removed)
        except Exception as exc:  # a local folder we cannot write: logged, run ends
            result.error = _describe(exc)
            log.error("sftp_pull_failed", attempt=0, error=result.error, folder=str(self._landing.folder))
            return self._finish(result)
        for attempt in range(1, spec.retries + 2):
            if stop.is_set():
                break
            try:
                self._session(stop, result, attempt)
                result.error = None
                break
            except Exception as exc:  # nothing raises out of run: logged and in the result
                result.error = _describe(exc)
                last = attempt > spec.retries or isinstance(exc, _FINAL) or stop.is_set()
                delay = None if last else spec.retry_delay * 2 ** (attempt - 1)
                log.error("sftp_pull_failed", attempt=attempt, error=result.error, retry_in=delay)
                if delay is None or stop.wait(delay):
                    break
        return self._finish(result)

    def _finish(self, result: PullResult) -> PullResult:
        log.info("sftp_pull_finished", fetched=len(result.fetched), skipped=len(result.skipped),
                 error=result.error)
        return result

    def _session(self, stop: threading.Event, result: PullResult, attempt: int) -> None:
        key = load_client_key(Path(self.spec.key_file).expanduser(), f"{self._where}.key_file")
        known = read_known_hosts(Path(self.spec.known_hosts).expanduser(), f"{self._where}.known_hosts")
        with RemoteFolder.connect(self.spec, key, known) as remote:
            listing = remote.listing()
            self._recover(listing, result)
            chosen, skipped = select(listing.values(), self.spec, self._clock(), self._ignore)
            result.skipped = []  # a retried session lists again
            for name, reason in skipped:
                self._skip(result, name, reason)
            for f in chosen:
                if stop.is_set():
                    log.info("sftp_pull_stopped", reason="daemon stopping")
                    return
                self._fetch_one(remote, f, stop, result, attempt)

    def _recover(self, listing: dict[str, RemoteFile], result: PullResult) -> None:
        """Settle verified copies an earlier run left (see the module docstring)."""
        for copy in self._landing.verified():
            st = copy.stat()
            remote = listing.get(copy.name)
            if st.st_nlink > 1:  # linked to its final name before a crash: delivered already
                self._landing.discard(copy)
            elif remote is not None and (remote.size, remote.mtime) == (st.st_size, int(st.st_mtime)):
                self._landing.discard(copy)  # the remote action never happened: fetched again below
                log.info("sftp_pull_copy_dropped", name=copy.name, reason="remote file still there")
            else:
                final = self._landing.deliver(copy)
                result.fetched.append(final.name)
                log.warning("sftp_file_pulled", name=copy.name, bytes=st.st_size, path=str(final),
                            remote_action="done by an earlier run", recovered=True)

    def _fetch_one(
        self, remote: RemoteFolder, f: RemoteFile, stop: threading.Event, result: PullResult, attempt: int
    ) -> None:
        try:
            self._fetch(remote, f, stop, result)
        except PullStopped:
            self._skip(result, f.name, "stopping: download abandoned")
        except FileChanged as exc:
            self._skip(result, f.name, f"changed while downloading: {exc}")
        except Exception as exc:
            if not remote.alive():
                raise _ConnectionLost(f"connection lost at {f.name!r}: {_describe(exc)}") from exc
            result.skipped.append((f.name, f"failed: {_describe(exc)}"))
            log.error("sftp_pull_failed", attempt=attempt, name=f.name, error=_describe(exc))

    def _fetch(self, remote: RemoteFolder, f: RemoteFile, stop: threading.Event, result: PullResult) -> None:
        assert f.size is not None and f.mtime is not None  # select() made sure
        if self._landing.taken(f.name):
            self._skip(result, f.name, "local name taken: an earlier copy still waits in sync/")
            return
        with remote.open(f.name, f.size) as source:
            copy = self._landing.receive(f.name, source, f.size, f.mtime, stop)
        try:
            now = remote.lstat(f.name)
            if (now.size, now.mtime) != (f.size, f.mtime):
                raise FileChanged(f"size/mtime went from {f.size}/{f.mtime} to {now.size}/{now.mtime}")
        except BaseException:
            self._landing.discard(copy)  # the remote is untouched: nothing is lost
            raise
        if self.spec.after == "move":  # on failure the verified copy stays: the next run settles it
            action = remote.move(f.name, self.spec.archive_dir, datetime.fromtimestamp(self._clock(), UTC))
        else:
            action = remote.remove(f.name)
        final = self._landing.deliver(copy)
        result.fetched.append(final.name)
        log.info("sftp_file_pulled", name=f.name, bytes=f.size, remote_action=action, path=str(final))

    def _skip(self, result: PullResult, name: str, reason: str) -> None:
        result.skipped.append((name, reason))
        notable = reason.startswith(_NOTABLE)  # the others are the normal state of a busy outbox
        (log.warning if notable else log.info)("sftp_pull_skipped_file", name=name, reason=reason)


class PullAction:
    """The scheduler's job action for a pull: starts the run on its own thread, never blocks."""

    def __init__(self, puller: Puller, stop: threading.Event) -> None:
        self._puller, self._stop = puller, stop
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: the result of the last run that finished
        self.last_result: PullResult | None = None

    def __call__(self, job: Job, fired_at: datetime) -> str:
        """Start a run unless the previous one is still going."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                log.warning("sftp_pull_overlapped", pull=self._puller.name, job=job.name)
                return "skipped: previous pull still running"
            self._thread = threading.Thread(
                target=self._run, args=(job.name, fired_at.isoformat()),
                name=f"sftp-pull-{self._puller.name}", daemon=True,
            )
            self._thread.start()
        return "started"

    def _run(self, job: str, fired_at: str) -> None:
        bind_contextvars(pull=self._puller.name, job=job, fired_at=fired_at)  # contextvars do not flow here
        self.last_result = self._puller.run(self._stop)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a running pull (at shutdown, after setting ``stop``); True if none is left."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()
