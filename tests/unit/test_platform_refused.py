"""A platform that refuses one row of a batch (PlatformRefused): the batch is split in halves
down to that row, whose report line is the platform's message; every other row is applied."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from syncd.csvfile import Schema
from syncd.domain import FileState, Outcome, PlatformRefused, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.processors.base import Row
from tests.unit.test_runner import EchoProcessor, Harness


class RefusingProcessor(EchoProcessor):
    """Like a platform without rollback refusing a whole call: 'taken' anywhere in the batch raises."""

    schema = Schema(required=frozenset({"name"}))

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        self.batches.append(len(rows))
        if any(row.values["name"] == "taken" for row in rows):
            raise PlatformRefused("moodle: Username already exists: taken (core_user_create_users)")
        tx.users.add([UserRecord(username=row.values["name"]) for row in rows])
        return [RowResult(Outcome.CREATED, f"user '{row.values['name']}'") for row in rows]


def test_refused_row_gets_the_platform_message_and_the_rest_is_applied(tmp_path: Path) -> None:
    """16 rows, one refused: 15 users created, the 16th row's error is Moodle's text, in 9 attempts."""
    processor = RefusingProcessor()
    h = Harness(tmp_path, processor, batch_size=16)
    names = [f"u{i:02d}" for i in range(16)]
    names[11] = "taken"
    file_id = h.arrive("users.csv", ("name\n" + "\n".join(names) + "\n").encode())
    assert h.run(file_id).state is FileState.DONE
    assert sorted(u.username for u in h.platform.users()) == sorted(n for n in names if n != "taken")
    txt = (h.store.reports_dir / "20261122-101500_users.csv.report.txt").read_text()
    assert "line 13: error: moodle: Username already exists: taken (core_user_create_users)" in txt
    assert "internal error" not in txt
    # depth first: 16 -> [0-7 ok] [8-15] -> [8-11] -> [8,9 ok] [10,11] -> 10, 11 -> [12-15 ok]
    assert processor.batches == [16, 8, 8, 4, 2, 2, 1, 1, 4]
    counts = h.ledger.get(file_id).counts
    assert (counts["created"], counts["error"], counts["unchanged"]) == (15, 1, 0)
