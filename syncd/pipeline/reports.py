"""Reports (text + JSON twin) and tryback files, written streaming and atomically.

A report is built from the row results saved with the checkpoints, so a file that was
resumed after a crash still gets one complete report. Memory stays flat: row lines go to
a temporary body file and are copied behind the header once the counts are known.
"""

from __future__ import annotations

import json
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from syncd.csvfile import Header
from syncd.domain import Outcome
from syncd.platform.base import SavedResult
from syncd.processors.base import RecordSource

WritePrivate = Callable[[Path, Iterable[bytes]], None]
_CHUNK = 1 << 20
#: one JSON string literal (the row objects are formatted by hand: the hot path of a report)
_json_str = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class ReportInfo:
    """What a report says about the run besides its rows."""

    file: str
    sha256: str | None
    processor: str | None
    options: str
    run_id: str | None
    started: datetime
    finished: datetime
    dry_run: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """Counts per outcome and the data records that failed (for the tryback)."""

    counts: dict[str, int]
    failed: array[int]

    @property
    def total(self) -> int:
        """Rows reported."""
        return sum(self.counts.values())


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _copy(body: IO[bytes]) -> Iterator[bytes]:
    body.seek(0)
    while chunk := body.read(_CHUNK):
        yield chunk


def write_report(
    info: ReportInfo,
    results: Iterable[SavedResult],
    txt_path: Path,
    json_path: Path,
    write_private: WritePrivate,
) -> ReportSummary:
    """Write ``txt_path`` and ``json_path`` (0600, atomic) and return the summary."""
    counts = {o.value: 0 for o in Outcome}
    failed: array[int] = array("q")
    mark = "SIMULATION " if info.dry_run else ""
    with _body(txt_path) as txt_body, _body(json_path) as json_body:
        sep = b""
        for saved in results:
            outcome = saved.result.outcome.value
            counts[outcome] += 1
            if saved.result.outcome is Outcome.ERROR:
                failed.append(saved.record)
            reason = saved.result.reason.replace("\n", " ")
            txt_body.write(f"{mark}line {saved.line}: {outcome}: {reason}\n".encode())
            row = (f'{{"line": {saved.line}, "record": {saved.record}, '
                   f'"result": "{outcome}", "reason": {_json_str(reason)}}}')
            json_body.write(sep + row.encode())
            sep = b",\n"
        head = _text_head(info, counts, mark)
        write_private(txt_path, _chain(head.encode(), _copy(txt_body)))
        meta = {
            "file": info.file, "sha256": info.sha256, "processor": info.processor,
            "options": info.options, "run_id": info.run_id, "started": _iso(info.started),
            "finished": _iso(info.finished), "simulation": info.dry_run,
            "status": "failed" if info.error else "done", "error": info.error,
            "counts": counts, "total": sum(counts.values()),
        }
        opening = json.dumps(meta, ensure_ascii=False, indent=1)[:-2] + ',\n "rows": [\n'
        write_private(json_path, _chain(opening.encode(), _copy(json_body), b"\n ]\n}\n"))
    return ReportSummary(counts, failed)


def _text_head(info: ReportInfo, counts: dict[str, int], mark: str) -> str:
    total = sum(counts.values())
    status = f"failed: {info.error}" if info.error else "done"
    lines = [
        "syncd report" + (" (SIMULATION: nothing was changed)" if mark else ""),
        f"file:      {info.file}",
        f"sha256:    {info.sha256 or '-'}",
        f"processor: {info.processor or '-'}" + (f" ({info.options})" if info.options else ""),
        f"run:       {info.run_id or '-'}",
        f"started:   {_iso(info.started)}",
        f"finished:  {_iso(info.finished)}",
        f"status:    {status}",
        "counts:    " + " ".join(f"{k}={v}" for k, v in counts.items()) + f" (rows {total})",
    ]
    return "".join(f"{mark}{line}\n" for line in lines) + f"{mark}\n"


def _chain(*parts: bytes | Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        if isinstance(part, bytes):
            yield part
        else:
            yield from part


class _body:
    """A private temporary file beside ``dest`` (same filesystem), removed on exit."""

    def __init__(self, dest: Path) -> None:
        self._dest = dest

    def __enter__(self) -> IO[bytes]:
        self._dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".body-", dir=self._dest.parent)
        os.unlink(name)  # anonymous: nothing to clean up after a crash
        self._file = os.fdopen(fd, "w+b")
        return self._file

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def write_tryback(
    source: RecordSource, header: Header, failed: array[int], dest: Path, write_private: WritePrivate
) -> None:
    """Write the header and every failed record, byte for byte as received."""

    def chunks() -> Iterator[bytes]:
        last = header.raw
        yield last
        wanted = iter(failed)
        target = next(wanted, None)
        for record in source.records():
            if target is None:
                return
            if record.index == target:
                if not last.endswith(b"\n"):
                    yield b"\n"  # a cut record (over max_record_bytes) must not run into the next
                last = record.raw
                yield last
                target = next(wanted, None)

    write_private(dest, chunks())


def tryback_name(name: str, when: datetime) -> str:
    """``<stem>_tryback_YYYYmmdd-HHMMSS.<ext>`` (SPEC §1)."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    return f"{stem}_tryback_{when:%Y%m%d-%H%M%S}" + (f".{ext}" if ext else "")
