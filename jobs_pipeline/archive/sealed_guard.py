"""What a sync may not write once days are sealed: the two checks `apply_capture` runs first.

* A sync whose server clock falls on or before the last sealed log day is refused whole
  (`ArchiveError`, nothing written): its `sync_runs` row would belong to an immutable day, and a
  server clock that far behind the archive's own history is not to be trusted with anything.
* An observation of a job created on or before the last sealed job day is rejected (kept in
  `rejected_records` with the reason), never merged: the API cannot return such a job (it left the
  24 h window before the day was sealed), and merging it would write a second, hot row for a job
  whose history is already sealed.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from jobs_pipeline.archive.errors import ArchiveError
from jobs_pipeline.archive.frames import REJECT_SCHEMA, CaptureFrames
from jobs_pipeline.archive.layout import Family, day_start
from jobs_pipeline.archive.manifest import sealed_through


def screen_sealed(conn: duckdb.DuckDBPyConnection, frames: CaptureFrames) -> CaptureFrames:
    """Raise if the sync is dated in sealed history; move observations of sealed jobs to the rejects."""
    header = frames.header
    log_day = sealed_through(conn, header.tenant, Family.LOG)
    if log_day is not None and header.observed_at < day_start(log_day + timedelta(days=1)):
        raise ArchiveError(
            f"the server's clock says {header.observed_at.isoformat()} but tenant {header.tenant!r} is "
            f"sealed through {log_day.isoformat()}: a sync dated in sealed history is refused (nothing "
            "was written); check the server's and this machine's clocks"
        )
    job_day = sealed_through(conn, header.tenant, Family.JOB)
    if job_day is None or frames.observations.num_rows == 0:
        return frames
    boundary = pa.scalar(
        day_start(job_day + timedelta(days=1)), frames.observations.schema.field("created_at").type
    )
    sealed = pc.fill_null(pc.less(frames.observations["created_at"], boundary), False)
    if not pc.any(sealed).as_py():
        return frames
    stale = frames.observations.filter(sealed)
    reason = (
        f"job created on a sealed day (tenant sealed through {job_day.isoformat()}): the API cannot "
        "return it any more, so it was not merged"
    )
    extra = pa.table(
        {
            "job_id": stale["job_id"],
            "reason": pa.array([reason] * stale.num_rows, pa.string()),
            "payload": stale["payload"],
        },
        schema=REJECT_SCHEMA,
    )
    return dataclasses.replace(
        frames,
        observations=frames.observations.filter(pc.invert(sealed)),
        rejects=pa.concat_tables([frames.rejects, extra]),
    )
