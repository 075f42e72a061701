"""The webhook spool on its own: durability bookkeeping, torn writes, and the Dagster pile-up check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobs_pipeline.defs.webhooks import spool_result
from jobs_pipeline.webhook.spool import KIND_EVENT, SpoolWriter, read_spool, spool_depth, spool_dir_for


def test_a_torn_last_line_is_skipped_and_a_damaged_one_kept_as_reject(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path)
    writer.append(KIND_EVENT, b'{"jobId": "a", "status": "DONE"}')
    writer.close()
    (segment,) = tmp_path.glob("segment-*.jsonl")
    with segment.open("ab") as handle:
        handle.write(b"garbage\n")
        handle.write(b'{"key": "half-writ')  # a crash mid-write: never acknowledged
    drain = read_spool(tmp_path)
    assert [(r.kind, r.reason) for r in drain.records] == [("event", None), ("reject", "damaged spool line")]
    drain.release()


def test_the_active_segment_is_read_from_where_the_last_drain_stopped(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path)
    writer.append(KIND_EVENT, b'{"n": 1}')
    first = read_spool(tmp_path)
    assert len(first.records) == 1 and not first.idle_segments  # the writer still holds it
    first.discard_applied()
    assert spool_depth(tmp_path)[0] == 0
    writer.append(KIND_EVENT, b'{"n": 2}')
    second = read_spool(tmp_path)
    assert [r.body for r in second.records] == ['{"n": 2}']
    second.discard_applied()
    writer.close()
    # Its writer gone, the segment is applied whole and removed with its marker.
    last = read_spool(tmp_path)
    assert last.records == [] and len(last.idle_segments) == 1
    last.discard_applied()
    assert list(tmp_path.iterdir()) == []


def test_spool_check_fails_only_when_events_wait_too_long(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    now = datetime.now(UTC)
    assert spool_result(str(db), ["default"], 300, now).passed  # no receiver, nothing waits
    writer = SpoolWriter(spool_dir_for(db, "default"))
    writer.append(KIND_EVENT, b"{}")
    assert spool_result(str(db), ["default"], 300, now).passed
    late = spool_result(str(db), ["default"], 300, now + timedelta(minutes=11))
    assert not late.passed and late.metadata["spool_depth"].data == {"default": 1}
    writer.close()
