"""The processor contract: one module per file kind, one line each in the registry.

A processor declares the columns it accepts (:class:`~syncd.csvfile.Schema`) and applies
a batch of rows inside one platform transaction, returning one result per row in order.
Row-level problems are results (``Outcome.ERROR`` with a reason naming the column and the
value), never exceptions: one bad row never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol

from syncd.csvfile import Header, Record, Schema
from syncd.domain import RowResult
from syncd.platform.base import PlatformTx


@dataclass(frozen=True, slots=True)
class Row:
    """One data record: its starting line and its values by (normalised) column name."""

    line: int
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a processor may know of the run besides its options."""

    timezone: tzinfo
    now: Callable[[], datetime]
    #: scrypt cost as log2(N); see settings ``[users] password_cost``
    password_cost: int = 14
    dry_run: bool = False
    #: <data>/store: where a courses row's ``template`` archive path is looked up
    store_dir: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: ``<data>/cache`` (FileStore.cache_dir): where generated artefacts (course backups) go
    cache_dir: Path | None = None


class Processor(Protocol):
    """Applies rows of one file kind to the platform."""

    @property
    def schema(self) -> Schema:
        """The columns this processor accepts, given its options."""
        ...

    def describe(self) -> str:
        """The effective options, one line, for the report (``identity=idnumber mode=...``)."""
        ...

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply ``rows`` in order inside ``tx``; return exactly one result per row."""
        ...


#: Builds a processor from its route/config options; raises ConfigError on a bad option.
ProcessorFactory = Callable[[Mapping[str, Any], RunContext], Processor]


class RecordSource(Protocol):
    """Where a file's records come from: :class:`~syncd.csvfile.CsvFile`, or an archive reader.

    Every call reads the file afresh and gives the same records in the same order, so a
    run resumed at its checkpoint skips exactly the records already applied.
    """

    def check(self) -> str:
        """Validate the whole file and return its sha256; RejectFile names what is wrong."""
        ...

    def resolve_header(self, schema: Schema) -> Header:
        """The header the processor's schema is checked against."""
        ...

    def records(self) -> Iterator[Record]:
        """The data records, in order (``raw`` is what a tryback file repeats)."""
        ...


#: Opens a non-CSV file for a processor (course archives, picture zips): path, processor.
SourceFactory = Callable[[Path, Processor], RecordSource]


@dataclass(frozen=True, slots=True)
class ProcessorSpec:
    """A registry entry: name, batch priority (lower runs first), factory, sniffing columns."""

    name: str
    priority: int
    factory: ProcessorFactory
    #: a header containing all these columns identifies this processor when no glob matches
    sniff: frozenset[str] = frozenset()
    #: option names the factory accepts (for check-config)
    options: frozenset[str] = frozenset()
    #: None: the file is CSV (syncd.csvfile); else how to read this processor's files
    source: SourceFactory | None = None
