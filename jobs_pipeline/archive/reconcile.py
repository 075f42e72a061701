"""Decide, in Polars, what one sync changes: compare its observations with the archived `jobs` rows.

Pure function of four frames: the result's latest observation per job and its vanished jobs, each
with the archived row of every one of its jobs, row for row (`merge.py` reads them with one LEFT
JOIN, so no join is needed here) and writes the outputs in one transaction.

Rules (see also the table comments in ddl.py):
* An observation is STALE when the archive already holds a later state of the job, ordered by
  (updatedAt, lifecycle rank, observed_at); for an inferred-KILLED row, when it is not newer than
  the job's last sighting. Stale observations change nothing: this is what makes re-applying an
  old result harmless.
* A snapshot is appended when the job is new or status, progress, updated_at, error or metadata
  differ from the archived row (or the row was an inferred KILLED: a correction).
* Status moves become lifecycle change rows (transitions.py); a correction is one KILLED -> status row.
* Vanished jobs: KILLED is inferred only for a job still active in the archive, not already gone,
  and last seen before the absence was established; a terminal job reported KILLED is only marked
  gone, like an EXPIRED one. An observed job is never also vanished: the observation wins.

`jobs` rows are maintained column-group by column-group, because DuckDB's cost of an UPDATE grows
with the columns it rewrites: every observed job gets its narrow state columns refreshed, while
metadata and the identity columns (user, target, type, createdAt) are rewritten only where they
changed, which is almost never.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from jobs_pipeline.api.models import TERMINAL_STATUSES
from jobs_pipeline.archive.immutable import immutable_conflict
from jobs_pipeline.archive.lifecycle import KILLED, LIFECYCLE_RANK, UNKNOWN_RANK
from jobs_pipeline.archive.schema import JOB_COLUMNS, SOURCE_CORRECTION, SOURCE_INFERRED
from jobs_pipeline.archive.transitions import STATUS_CHANGE_SCHEMA, UTC_MICROS, lifecycle_change_rows

# The archived row of each job the result mentions, as merge.py reads it (`row_id` = DuckDB rowid;
# all columns but job_id null for a job the archive does not know).
ARCHIVED_SCHEMA: dict[str, pl.DataType] = {
    "job_id": pl.String(),
    "row_id": pl.Int64(),
    "prev_exists": pl.Boolean(),
    "prev_user_id": pl.String(),
    "prev_target_id": pl.String(),
    "prev_job_type": pl.String(),
    "prev_status": pl.String(),
    "prev_inferred": pl.Boolean(),
    "prev_progress": pl.Int32(),
    "prev_error": pl.String(),
    "prev_metadata": pl.String(),
    "prev_created_at": UTC_MICROS,
    "prev_started_at": UTC_MICROS,
    "prev_completed_at": UTC_MICROS,
    "prev_updated_at": UTC_MICROS,
    "prev_first_seen_at": UTC_MICROS,
    "prev_last_seen_at": UTC_MICROS,
    "prev_vanished_at": UTC_MICROS,
    "prev_polled": pl.Boolean(),  # a poll has seen the job (its identity fields are the API's)
}

# Fields whose change makes a new snapshot.
TRACKED_FIELDS = ("status", "progress", "updated_at", "error", "metadata")
# jobs columns refreshed for every observed job (narrow: cheap to rewrite).
STATE_COLUMNS = (
    "status",
    "status_inferred",
    "progress",
    "error",
    "started_at",
    "completed_at",
    "updated_at",
    "last_seen_at",
    "vanished_at",
    "last_sync_id",
)
METADATA_COLUMNS = ("metadata",)
IDENTITY_COLUMNS = ("user_id", "target_id", "job_type", "created_at")
GONE_COLUMNS = ("vanished_at", "last_sync_id")


@dataclass(frozen=True, slots=True)
class Reconciliation:
    # Which observations (row for row) become job_snapshots rows. A mask, not the rows: merge.py
    # writes them straight from the result's Arrow table, so the payloads (most of the bytes) are
    # neither copied through Polars nor split into several chunks (see merge.py).
    snapshot_rows: pl.Series
    new_jobs: pl.DataFrame  # jobs rows to insert (JOB_COLUMNS)
    state_updates: pl.DataFrame  # row_id + STATE_COLUMNS, for every observed, known, non-stale job
    metadata_updates: pl.DataFrame  # row_id + metadata, where it changed
    identity_updates: pl.DataFrame  # row_id + IDENTITY_COLUMNS, where any changed
    killed: pl.DataFrame  # row_id + GONE_COLUMNS: mark KILLED (inferred)
    expired: pl.DataFrame  # row_id + GONE_COLUMNS: mark gone, status kept
    changes: pl.DataFrame  # job_status_changes rows to append
    # Observations (row for row, like snapshot_rows) that contradict an immutable field of the
    # archived job: they change nothing and become rejected_records rows with these reasons.
    conflict_rows: pl.Series
    conflict_reasons: pl.Series  # one per conflicting row, in order
    jobs_seen: int
    jobs_new: int
    jobs_changed: int
    corrections: int
    stale_ignored: int
    unknown_vanished: int


def reconcile(
    observations: pl.DataFrame,
    observed_archived: pl.DataFrame,
    vanished: pl.DataFrame,
    vanished_archived: pl.DataFrame,
    *,
    tenant: str,
    sync_id: str,
) -> Reconciliation:
    """`*_archived[i]` is the archived row (ARCHIVED_SCHEMA) of the job in row i of the frame before it."""
    observed = _classify_observations(_beside(observations, observed_archived).lazy(), sync_id).cache()
    known = pl.col("prev_exists") & ~pl.col("stale")
    tenant_lit, sync_lit = pl.lit(tenant, pl.String()), pl.lit(sync_id, pl.String())
    (
        snapshot,
        conflicts,
        new_jobs,
        state_updates,
        metadata_updates,
        identity_updates,
        moves,
        corrections,
        counts,
    ) = pl.collect_all(
        [
            observed.select("snapshot"),
            observed.select("conflict", "conflict_reason"),
            observed.filter(~pl.col("prev_exists")).select(
                tenant=tenant_lit, **{c: pl.col(c) for c in JOB_COLUMNS if c != "tenant"}
            ),
            observed.filter(known).select("row_id", *STATE_COLUMNS),
            observed.filter(known & _changed(METADATA_COLUMNS)).select("row_id", *METADATA_COLUMNS),
            observed.filter(known & _changed(IDENTITY_COLUMNS)).select("row_id", *IDENTITY_COLUMNS),
            observed.filter("moved").select(
                "job_id",
                from_status="prev_status",
                to_status="status",
                created_at="created_at",
                started_at="started_at",
                completed_at="completed_at",
                lower_bound=pl.coalesce("prev_last_seen_at", "created_at"),
                observed_at="observed_at",
            ),
            observed.filter("correction").select(
                **_single_change(
                    tenant,
                    sync_id,
                    from_status=pl.col("prev_status"),
                    to_status=pl.col("status"),
                    after=pl.col("prev_last_seen_at"),
                    before=pl.col("observed_at"),
                    source=SOURCE_CORRECTION,
                )
            ),
            observed.select(
                seen=pl.len(),
                new=(~pl.col("prev_exists")).sum(),
                changed=(pl.col("prev_exists") & pl.col("snapshot")).sum(),
                corrections=pl.col("correction").sum(),
                stale=(pl.col("stale") & ~pl.col("conflict")).sum(),
            ),
        ]
    )

    gone = _classify_vanished(_beside(vanished, vanished_archived), observations)
    killed = gone.filter("killed")
    killed_changes = killed.select(
        **_single_change(
            tenant,
            sync_id,
            from_status=pl.col("prev_status"),
            to_status=pl.lit(KILLED),
            after=pl.col("prev_last_seen_at"),
            before=pl.col("missing_at"),
            source=SOURCE_INFERRED,
        )
    )
    changes = pl.concat(
        [
            lifecycle_change_rows(moves, tenant=tenant, sync_id=sync_id),
            corrections.cast(STATUS_CHANGE_SCHEMA),  # type: ignore[arg-type]
            killed_changes.cast(STATUS_CHANGE_SCHEMA),  # type: ignore[arg-type]
        ],
        how="vertical",
    )
    gone_columns = {"row_id": pl.col("row_id"), "vanished_at": pl.col("missing_at"), "last_sync_id": sync_lit}
    return Reconciliation(
        snapshot_rows=snapshot.to_series(),
        new_jobs=new_jobs,
        state_updates=state_updates,
        metadata_updates=metadata_updates,
        identity_updates=identity_updates,
        killed=killed.select(**gone_columns),
        expired=gone.filter("expired").select(**gone_columns),
        changes=changes,
        conflict_rows=conflicts["conflict"],
        conflict_reasons=conflicts.filter("conflict")["conflict_reason"],
        jobs_seen=int(counts["seen"][0]),
        jobs_new=int(counts["new"][0]),
        jobs_changed=int(counts["changed"][0]),
        corrections=int(counts["corrections"][0]),
        stale_ignored=int(counts["stale"][0]),
        unknown_vanished=int((~gone["prev_exists"]).sum()),
    )


def _changed(columns: tuple[str, ...]) -> pl.Expr:
    return pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"prev_{c}")) for c in columns)


def _beside(frame: pl.DataFrame, archived: pl.DataFrame) -> pl.DataFrame:
    """The frame with the archived columns of each of its rows alongside (same order, same height)."""
    if not archived["job_id"].equals(frame["job_id"]):
        raise ValueError("archived rows are not aligned with the frame they describe")
    return pl.concat([frame, _normalise_archived(archived).drop("job_id")], how="horizontal")


def _classify_observations(observed: pl.LazyFrame, sync_id: str) -> pl.LazyFrame:
    rank = pl.col("status").replace_strict(LIFECYCLE_RANK, default=UNKNOWN_RANK, return_dtype=pl.Int8)
    prev_rank = pl.col("prev_status").replace_strict(
        LIFECYCLE_RANK, default=UNKNOWN_RANK, return_dtype=pl.Int8
    )
    updated, prev_updated = pl.col("updated_at"), pl.col("prev_updated_at")
    seen, prev_seen = pl.col("observed_at"), pl.col("prev_last_seen_at")
    newer_or_same = (updated > prev_updated) | (
        (updated == prev_updated) & ((rank > prev_rank) | ((rank == prev_rank) & (seen >= prev_seen)))
    )
    exists, inferred = pl.col("prev_exists"), pl.col("prev_inferred")
    stale = exists & pl.when(inferred).then(seen <= prev_seen).otherwise(~newer_or_same).fill_null(False)
    not_stale = ~pl.col("stale")
    return (
        observed.with_columns(prev_exists=exists.fill_null(False), prev_inferred=inferred.fill_null(False))
        .with_columns(conflict_reason=immutable_conflict())
        .with_columns(conflict=pl.col("conflict_reason").is_not_null())
        # A contradicting observation changes nothing, like a stale one (it is rejected instead).
        .with_columns(stale=stale | pl.col("conflict"))
        .with_columns(correction=exists & inferred & not_stale)
        .with_columns(
            snapshot=not_stale & (~exists | pl.col("correction") | _changed(TRACKED_FIELDS)),
            moved=not_stale
            & ~pl.col("correction")
            & (~exists | pl.col("status").ne_missing(pl.col("prev_status"))),
            # The jobs row as it must read after this sync (used for inserts and state updates).
            status_inferred=pl.lit(False),
            first_seen_at=pl.coalesce("prev_first_seen_at", "observed_at"),
            last_seen_at=pl.max_horizontal("prev_last_seen_at", "observed_at"),
            vanished_at=pl.lit(None, UTC_MICROS),
            last_sync_id=pl.lit(sync_id, pl.String()),
        )
    )


def _classify_vanished(vanished: pl.DataFrame, observations: pl.DataFrame) -> pl.DataFrame:
    still_active = ~pl.col("prev_status").is_in(sorted(TERMINAL_STATUSES))
    eligible = (
        pl.col("prev_exists")
        & pl.col("prev_vanished_at").is_null()
        & (pl.col("missing_at") > pl.col("prev_last_seen_at"))
    ).fill_null(False)
    if vanished.height:
        # Only when there is something to filter: building the set of every observed id costs
        # ~0.1 s per 250k observations, and most syncs report no vanished job.
        vanished = vanished.filter(~pl.col("job_id").is_in(observations["job_id"].implode()))
    return (
        vanished.unique(subset="job_id", keep="first", maintain_order=True)
        .with_columns(prev_exists=pl.col("prev_exists").fill_null(False))
        .with_columns(killed=eligible & (pl.col("kind") == KILLED) & still_active.fill_null(False))
        .with_columns(expired=eligible & ~pl.col("killed"))
    )


def _single_change(
    tenant: str,
    sync_id: str,
    *,
    from_status: pl.Expr,
    to_status: pl.Expr,
    after: pl.Expr,
    before: pl.Expr,
    source: str,
) -> dict[str, pl.Expr]:
    """A change known only by the interval between two instants (no API timestamp dates it)."""
    return {
        "tenant": pl.lit(tenant, pl.String()),
        "job_id": pl.col("job_id"),
        "from_status": from_status,
        "to_status": to_status,
        "changed_at": pl.lit(None, UTC_MICROS),
        "changed_after": after,
        "changed_before": before,
        "source": pl.lit(source, pl.String()),
        "sync_id": pl.lit(sync_id, pl.String()),
        "step": pl.lit(1, pl.Int16()),
    }


def _normalise_archived(archived: pl.DataFrame) -> pl.DataFrame:
    # DuckDB hands TIMESTAMPTZ over in the session's time zone: compare instants in UTC.
    converted = [
        pl.col(name).dt.convert_time_zone("UTC")
        if isinstance(archived.schema[name], pl.Datetime)
        else pl.col(name)
        for name in archived.columns
    ]
    return archived.select(converted).cast(ARCHIVED_SCHEMA)  # type: ignore[arg-type]
