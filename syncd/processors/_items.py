"""Records for files that are not CSV: the items a processor lists from an archive.

A course archive or a picture zip is applied item by item (the course, each section,
each document…, or each zip entry), with the same batches, checkpoints and reports as
CSV rows. :class:`ItemSource` turns a processor's item list into records with the
synthetic columns ``item``, ``key``, ``detail``: record *n* is item *n* (reports say
``line n``), and a failed item's tryback line is ``item,key,detail`` as CSV, so the
tryback file lists what did not import.

The list must be the same at every call for the same file (it is re-read on resume).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from syncd.csvfile import Header, Record, Schema
from syncd.domain import RejectFile

ITEM_COLUMNS = ("item", "key", "detail")
ITEM_SCHEMA = Schema(required=frozenset(ITEM_COLUMNS))


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to apply: its kind (``course``, ``document``, ``entry``…), key and detail."""

    item: str
    key: str
    detail: str = ""


def _csv_line(fields: Iterable[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(list(fields))
    return out.getvalue().encode("utf-8")


class ItemSource:
    """A :class:`~syncd.processors.base.RecordSource` over the items of a non-CSV file."""

    def __init__(self, path: Path, list_items: Callable[[], list[Item]]) -> None:
        self._path = path
        self._list = list_items
        self._items: list[Item] | None = None

    def check(self) -> str:
        """The file's sha256, after listing its items (RejectFile if it cannot be read)."""
        digest = hashlib.sha256()
        try:
            with self._path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        except OSError as exc:
            raise RejectFile(f"cannot read the file: {exc.strerror or exc}") from None
        self._items = self._list()
        return digest.hexdigest()

    def resolve_header(self, schema: Schema) -> Header:
        """The synthetic item header (checked against the processor's schema like any other)."""
        return Header(ITEM_COLUMNS, 0, _csv_line(ITEM_COLUMNS), ",")

    def records(self) -> Iterator[Record]:
        """Item n as record n (line n), its CSV line as the raw bytes."""
        if self._items is None:
            self._items = self._list()
        for index, item in enumerate(self._items):
            fields = [item.item, item.key, item.detail]
            yield Record(index=index, line=index + 1, fields=fields, raw=_csv_line(fields))
