"""The Moodle platform: the port of syncd/platform/base.py over Moodle's REST web services.

:class:`MoodlePlatform` implements :class:`~syncd.platform.base.Platform`. Each
repository lives in its own module (users, courses, enrolments, groups, cohorts,
content); they share :class:`~syncd.platform.moodle._ws.Ws` (batching, error mapping,
dry run) and a :class:`~syncd.platform.moodle._ws.SiteCache`.

What is *not* in Moodle stays local, in the embedded SQL store on the ledger's database:
the file checkpoints and saved row results (so a restart mid-file resumes where the last
committed batch ended: nothing in Moodle has to know about syncd), and the blob store.
A transaction is therefore two things: the web-service calls, each committed by Moodle
as it returns (there is no rollback across calls), and one local SQL transaction holding
the checkpoint, committed at the end. After a crash the uncommitted batch is applied
again; every processor looks before it writes, so what Moodle already has is reported
unchanged, never created twice.

``transaction(rollback=True)`` (dry run) sends reads only; see ``_ws``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from syncd.platform.base import Checkpoint, PlatformTx, SavedResult
from syncd.platform.content import FileRepository
from syncd.platform.moodle._ws import SiteCache, Ws, ws_transaction
from syncd.platform.moodle.client import MoodleClient, load_token
from syncd.platform.moodle.cohorts import MoodleCohorts
from syncd.platform.moodle.content import MoodleContent, MoodlePictures
from syncd.platform.moodle.courses import MoodleCategories, MoodleCourses
from syncd.platform.moodle.enrolments import MoodleEnrolments
from syncd.platform.moodle.groups import MoodleGroups
from syncd.platform.moodle.users import MoodleUsers
from syncd.platform.sqlstore import SqlPlatform


class MoodleRoles:
    """Roles by shortname: the configured role map (Moodle's web services list no roles)."""

    def __init__(self, role_map: Mapping[str, int]) -> None:
        self._roles = dict(role_map)

    def all(self) -> dict[str, int]:
        """Role shortname -> Moodle role id."""
        return dict(self._roles)


class MoodleTx:
    """One batch: repositories over the site, checkpoint in the local store (implements PlatformTx)."""

    def __init__(self, ws: Ws, local: PlatformTx, role_map: Mapping[str, int]) -> None:
        self.ws = ws
        self._local = local
        self.users = MoodleUsers(ws)
        self.categories = MoodleCategories(ws)
        self.courses = MoodleCourses(ws)
        self.roles = MoodleRoles(role_map)
        self.enrolments = MoodleEnrolments(ws)
        self.groups = MoodleGroups(ws)
        self.cohorts = MoodleCohorts(ws)
        self.content = MoodleContent(ws)
        self.pictures = MoodlePictures(ws, local.files)

    @property
    def files(self) -> FileRepository:
        """The local blob store (``<data>/files``)."""
        return self._local.files

    def copy_course(self, source_id: int, target_id: int) -> None:
        """A template through Moodle's own course import (see MoodleCourses.import_content)."""
        self.courses.import_content(source_id, target_id)

    def load_checkpoint(self, file_id: int) -> Checkpoint | None:
        """The file's checkpoint, from the local store."""
        return self._local.load_checkpoint(file_id)

    def save_checkpoint(self, file_id: int, checkpoint: Checkpoint, results: Sequence[SavedResult]) -> None:
        """Record progress locally (committed with this transaction's end)."""
        self._local.save_checkpoint(file_id, checkpoint, results)

    def saved_results(self, file_id: int) -> Iterator[SavedResult]:
        """The file's saved results, from the local store."""
        return self._local.saved_results(file_id)

    def clear_checkpoint(self, file_id: int) -> None:
        """Forget the file's checkpoint locally."""
        self._local.clear_checkpoint(file_id)


class MoodlePlatform:
    """A Moodle site as the platform (implements Platform); ``close()`` when done."""

    def __init__(self, client: MoodleClient, local: SqlPlatform, *, batch_size: int = 100,
                 role_map: Mapping[str, int]) -> None:
        self.client = client
        self._local = local
        self._batch_size = batch_size
        self._role_map = dict(role_map)
        self.cache = SiteCache()

    @contextmanager
    def transaction(self, *, rollback: bool = False) -> Iterator[PlatformTx]:
        """Web-service calls plus one local transaction for the checkpoint.

        ``rollback``: a dry run, nothing is sent to Moodle and nothing saved locally.
        An error deletes what the transaction created (``Ws.undo``) and drops the site
        cache (what Moodle holds after a failed call is re-read).
        """
        with (self._local.transaction(rollback=rollback) as local,
              ws_transaction(self.client, self._batch_size, self.cache, dry_run=rollback) as ws):
            yield MoodleTx(ws, local, self._role_map)

    def close(self) -> None:
        """Close the HTTP client and the local store."""
        self.client.close()
        self._local.close()


def connect(url: str, token_file: Path, local: SqlPlatform, *, timeout: float, verify_tls: bool,
            retries: int, max_in_flight: int, batch_size: int, role_map: Mapping[str, int]) -> MoodlePlatform:
    """A MoodlePlatform for ``url`` with the token read from ``token_file`` (0600, checked)."""
    client = MoodleClient(url, load_token(token_file), timeout=timeout, verify_tls=verify_tls,
                          retries=retries, max_in_flight=max_in_flight)
    return MoodlePlatform(client, local, batch_size=batch_size, role_map=role_map)
