"""Write files into the drop folder the way SFTP clients and ERPs do, and build users CSVs.

Every writer opens its file once and closes it at the end, with flush + fsync, so the
daemon sees real close-after-write and rename events. ``slow_write`` pauses between
chunks like a stalled upload; ``write_then_rename`` uploads under a temporary name
(``_name``, ``.name.tmp``, ``name.filepart``) and renames into place, as atomic-upload
servers and WinSCP-style clients do. ``write_config`` writes the test's syncd.toml.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

Sections = Mapping[str, Mapping[str, object]]

#: the test configuration: short settle times, cheap password hashing, small batches
BASE_CONFIG: dict[str, dict[str, object]] = {
    "intake": {"settle": 0.5, "scan_settle": 3.0, "rescan_interval": 5.0},
    "passwords": {"cost": 10},
    "processing": {"batch_size": 200},
}

USERS_HEADER = ("username", "firstname", "lastname", "email", "idnumber")

#: temporary upload names, by style: the file is written there, then renamed to its name
TEMP_STYLES = {
    "_name": "_{}",
    ".name.tmp": ".{}.tmp",
    "name.filepart": "{}.filepart",
}


def user_rows(count: int, prefix: str = "u", start: int = 0) -> list[list[str]]:
    """``count`` valid users rows for :data:`USERS_HEADER`, unique by ``prefix`` and number."""
    return [
        [f"{prefix}{i:06d}", f"First{i}", f"Last{i}", f"{prefix}{i}@example.org", f"{prefix}-id-{i}"]
        for i in range(start, start + count)
    ]


def csv_bytes(
    rows: Iterable[Sequence[str]],
    header: Sequence[str] = USERS_HEADER,
    *,
    bom: bool = False,
    newline: str = "\n",
) -> bytes:
    """A CSV file (header first) as UTF-8 bytes, quoting only where needed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def users_csv(count: int, prefix: str = "u", *, bom: bool = False) -> bytes:
    """A valid users CSV of ``count`` rows."""
    return csv_bytes(user_rows(count, prefix), bom=bom)


def record_count(data: bytes) -> int:
    """The data records of a CSV file (header, blank and ``#`` lines not counted)."""
    text = data.decode("utf-8-sig")
    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r and not _comment(r)]
    return max(len(records) - 1, 0)


def _comment(record: list[str]) -> bool:
    first = record[0].lstrip()
    return first.startswith("#") or (len(record) == 1 and not first)


def _write_all(path: Path, data: bytes) -> None:
    """Create (or truncate) ``path``, write ``data``, flush, fsync and close."""
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_file(path: Path, data: bytes) -> Path:
    """Write ``path`` in one go (open, write, fsync, close): one close-after-write event."""
    _write_all(path, data)
    return path


def slow_write(
    path: Path,
    data: bytes,
    chunk: int,
    pause: float,
    on_pause: Callable[[int], None] | None = None,
) -> None:
    """Write ``data`` in ``chunk``-byte pieces with ``pause`` seconds between them.

    The file is opened once and closed at the end; each chunk is flushed and fsynced, so
    the reader sees the file grow, then stall. ``on_pause(written)`` runs after each
    pause, just before the next chunk (a test checks there that nothing was taken yet).
    The pauses imitate a stalled upload: they are the writer's behaviour, not a wait.
    """
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, got {chunk}")
    with path.open("wb") as f:
        written = 0
        while written < len(data):
            if written:
                time.sleep(pause)
                if on_pause is not None:
                    on_pause(written)
            piece = data[written : written + chunk]
            f.write(piece)
            f.flush()
            os.fsync(f.fileno())
            written += len(piece)


def temp_name(name: str, style: str) -> str:
    """The temporary upload name of ``name`` for a style of :data:`TEMP_STYLES`."""
    try:
        return TEMP_STYLES[style].format(name)
    except KeyError:
        raise ValueError(f"unknown temp style {style!r} (known: {', '.join(TEMP_STYLES)})") from None


def write_then_rename(directory: Path, name: str, data: bytes, temp: str = "_name") -> Path:
    """Upload ``data`` as ``directory/<temp name>`` then rename it to ``directory/name``."""
    staging = directory / temp_name(name, temp)
    _write_all(staging, data)
    final = directory / name
    os.rename(staging, final)
    return final


def write_with_done_marker(
    directory: Path, name: str, data: bytes, suffix: str = ".done"
) -> tuple[Path, Path]:
    """Write ``directory/name``, then its empty done marker ``name + suffix``."""
    path = write_file(directory / name, data)
    marker = write_file(directory / (name + suffix), b"")
    return path, marker


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def write_config(path: Path, overrides: Sections | None = None) -> Path:
    """Write a TOML config: :data:`BASE_CONFIG` with ``overrides`` merged per section."""
    sections = {name: dict(values) for name, values in BASE_CONFIG.items()}
    for name, values in (overrides or {}).items():
        sections.setdefault(name, {}).update(values)
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {_toml_value(v)}\n" for key, v in values.items()) + "\n"
        for name, values in sections.items()
    )
    path.write_text(text, encoding="utf-8")
    return path
