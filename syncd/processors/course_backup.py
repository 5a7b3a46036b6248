"""course_backup: write a backup of each named course into ``<cache>/backups/`` (SPEC §4).

Each line is ``shortname[,format]``, the header line optional. ``format`` is ``syncd``
(the default: syncd's own zip, re-imported by course_import without loss, see
syncd/archives/native.py) or ``scorm12`` (a SCORM 1.2 package, see
syncd/archives/scorm_writer.py). The course, its sections, documents (their bytes from
the file store), learning path and activities are read through the platform port.

The backup is ``<cache>/backups/<shortname>_<YYYYmmdd-HHMMSS>.zip`` (``_scorm12.zip`` for
SCORM), the shortname made filename-safe, the time the run's clock (UTC); a name already
taken gets ``-2``, ``-3``… An existing file is never replaced, and a backup is written
whole or not at all (hidden temp file, then a link to its name), mode 0600. The cache
cleanup job removes backups after ``cache_days``.

Outcomes: ``created`` "backup <file> (N documents, M bytes)" (M: the size of the zip);
``error`` for an unknown course, an unknown format, a document whose content is missing
from the file store, or a course too big to be imported again (the import limits of
syncd/archives/safe). In a dry run nothing is written: the line says what would be.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from syncd.archives.native import BackupError, write_native
from syncd.archives.scorm_writer import write_scorm12
from syncd.csvfile import Schema
from syncd.domain import Outcome, RejectFile, RowError, RowResult
from syncd.platform.base import PlatformTx
from syncd.platform.model import (
    ActivityRecord,
    CategoryRecord,
    CourseRecord,
    DocumentRecord,
    PathItemRecord,
    SectionRecord,
)
from syncd.processors._lookup import courses_by, unknown
from syncd.processors.base import ProcessorSpec, Row, RunContext

log = structlog.get_logger(__name__)

NAME = "course_backup"
FORMATS = ("syncd", "scorm12")
SUFFIXES = {"syncd": ".zip", "scorm12": "_scorm12.zip"}
_UNSAFE = re.compile(r"[^\w.-]")


@dataclass(frozen=True, slots=True)
class CourseContent:
    """Everything a backup holds of one course, as the platform gives it."""

    course: CourseRecord
    category: tuple[str, ...]
    sections: list[SectionRecord]
    documents: list[DocumentRecord]
    path: list[PathItemRecord]
    activities: list[ActivityRecord]


def read_content(
    tx: PlatformTx, course: CourseRecord, categories: Mapping[int, CategoryRecord]
) -> CourseContent:
    """The course's content through the port (``categories`` by id, for the category path)."""
    assert course.id is not None
    names: list[str] = []
    at: int | None = course.category_id
    while at is not None and at in categories and len(names) < 64:
        names.insert(0, categories[at].name)
        at = categories[at].parent_id
    ids = [course.id]
    return CourseContent(course, tuple(names), tx.courses.sections(ids), tx.content.documents(ids),
                         tx.content.path(ids), tx.content.activities(ids))


def safe_name(shortname: str) -> str:
    """``shortname`` as a file name part: letters, digits, ``.``, ``-``, ``_`` (others ``_``)."""
    name = _UNSAFE.sub("_", shortname.strip())[:100]
    return "_" + name[1:] if name.startswith(".") else name or "course"


class CourseBackupProcessor:
    """Writes one backup per line (implements Processor)."""

    def __init__(self, *, cache_dir: Path | None, now: Callable[[], datetime], dry_run: bool) -> None:
        self.cache_dir = cache_dir
        self._now = now
        self.dry_run = dry_run

    @property
    def schema(self) -> Schema:
        """``shortname`` and an optional ``format``; the header line is optional."""
        return Schema(frozenset({"shortname"}), frozenset({"format"}), headerless=("shortname", "format"))

    def describe(self) -> str:
        """Where backups go."""
        return f"folder={self.folder}"

    @property
    def folder(self) -> Path | None:
        """``<cache>/backups``."""
        return None if self.cache_dir is None else self.cache_dir / "backups"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """One backup per row; one course look-up per batch."""
        if self.folder is None:
            raise RejectFile(f"{NAME}: no cache folder given to the processor (RunContext.cache_dir)")
        found = courses_by(tx, "shortname", [r.values.get("shortname", "").strip() for r in rows])
        categories: dict[int, CategoryRecord] | None = None
        results = []
        for row in rows:
            try:
                shortname, fmt = self._parse(row)
                course = found.get(shortname)
                if course is None:
                    raise unknown("course", shortname, "shortname")
                if categories is None:
                    categories = {c.id: c for c in tx.categories.all() if c.id is not None}
                results.append(self._backup(tx, read_content(tx, course, categories), fmt, self.folder))
            except RowError as exc:
                results.append(RowResult(Outcome.ERROR, str(exc)))
        return results

    def _parse(self, row: Row) -> tuple[str, str]:
        shortname = row.values.get("shortname", "").strip()
        if not shortname:
            raise RowError("empty shortname (shortname)")
        fmt = row.values.get("format", "").strip().lower() or FORMATS[0]
        if fmt not in FORMATS:
            raise RowError(f"unknown format {fmt!r} (format: {' | '.join(FORMATS)})")
        return shortname, fmt

    def _backup(self, tx: PlatformTx, content: CourseContent, fmt: str, folder: Path) -> RowResult:
        docs = len(content.documents)
        now = self._now()  # one reading: the name and the zip's member dates agree
        now = now.astimezone(UTC) if now.tzinfo else now  # names are in UTC
        stem = f"{safe_name(content.course.shortname)}_{now:%Y%m%d-%H%M%S}"
        if self.dry_run:
            size = sum(d.size for d in content.documents)
            return RowResult(Outcome.CREATED, f"backup {stem}{SUFFIXES[fmt]} would be written "
                                              f"({docs} documents, {size} bytes of content; dry run)")
        for n in range(1, 10_000):
            dest = folder / f"{stem}{'' if n == 1 else f'-{n}'}{SUFFIXES[fmt]}"
            if os.path.lexists(dest):
                continue
            try:
                _write(tx, content, fmt, dest, now)
            except FileExistsError:  # taken while we wrote: the next name
                continue
            size = dest.stat().st_size
            log.info("backup_written", course=content.course.shortname, path=str(dest), format=fmt,
                     documents=docs, bytes=size)
            return RowResult(Outcome.CREATED, f"backup {dest.name} ({docs} documents, {size} bytes)")
        raise RowError(f"no free file name for {stem}{SUFFIXES[fmt]} in {folder}")


def _write(tx: PlatformTx, content: CourseContent, fmt: str, dest: Path, when: datetime) -> None:
    """Write one backup file; RowError for what the operator can act on."""
    paths = {d.sha256: d.path for d in content.documents}

    def open_blob(sha256: str) -> BinaryIO:
        try:
            return tx.files.open(sha256)
        except FileNotFoundError:
            raise RowError(f"document {paths.get(sha256, sha256)!r}: its content {sha256} is missing "
                           "from the file store") from None

    c = content
    try:
        if fmt == "scorm12":
            write_scorm12(dest, c.course, c.sections, c.documents, c.path, c.activities, open_blob, when=when)
        else:
            write_native(dest, c.course, c.sections, c.documents, c.path, c.activities, open_blob,
                         category=c.category, when=when)
    except BackupError as exc:
        raise RowError(f"course {c.course.shortname!r}: {exc}") from None
    except FileExistsError:
        raise
    except OSError as exc:
        raise RowError(f"cannot write {dest.name}: {exc.strerror or exc}") from None


def build(options: Mapping[str, Any], ctx: RunContext) -> CourseBackupProcessor:
    """Build the processor (it has no options of its own)."""
    return CourseBackupProcessor(cache_dir=ctx.cache_dir, now=ctx.now, dry_run=ctx.dry_run)


SPEC = ProcessorSpec(
    name=NAME,
    priority=80,
    factory=build,
)
