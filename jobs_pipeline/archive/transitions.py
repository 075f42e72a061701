"""Status moves -> job_status_changes rows, vectorised: the lifecycle rules run once per KIND of move.

A sync typically carries thousands of moves but only a handful of distinct
(from_status, to_status, has startedAt) combinations, so the Python rules in `lifecycle.py` are
evaluated per combination and joined back onto the moves.
"""

from __future__ import annotations

import polars as pl

from jobs_pipeline.archive.lifecycle import COMPLETED_AT, CREATED_AT, STARTED_AT, lifecycle_steps
from jobs_pipeline.archive.schema import SOURCE_API_TIMESTAMP, SOURCE_POLL_INTERVAL

UTC_MICROS = pl.Datetime("us", "UTC")

STATUS_CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "tenant": pl.String(),
    "job_id": pl.String(),
    "from_status": pl.String(),
    "to_status": pl.String(),
    "changed_at": UTC_MICROS,
    "changed_after": UTC_MICROS,
    "changed_before": UTC_MICROS,
    "source": pl.String(),
    "sync_id": pl.String(),
    "step": pl.Int16(),
}
_PATH_SCHEMA: dict[str, pl.DataType] = {
    "from_status": pl.String(),
    "to_status": pl.String(),
    "has_started": pl.Boolean(),
    "step": pl.Int16(),
    "step_from": pl.String(),
    "step_to": pl.String(),
    "timestamp_field": pl.String(),
}


def lifecycle_change_rows(moves: pl.DataFrame, *, tenant: str, sync_id: str) -> pl.DataFrame:
    """Expand observed status moves into change rows.

    `moves` columns: job_id, from_status (null = new job), to_status, created_at, started_at,
    completed_at, lower_bound (last observation before, or createdAt), observed_at.
    A step dated by an API timestamp is exact (changed_at = changed_after = changed_before);
    one whose timestamp is missing gets the poll interval (lower_bound, observed_at].
    """
    if moves.height == 0:
        return pl.DataFrame(schema=STATUS_CHANGE_SCHEMA)
    moves = moves.with_columns(has_started=pl.col("started_at").is_not_null())
    kinds = moves.select("from_status", "to_status", "has_started").unique()
    path_rows = [
        (from_status, to_status, has_started, number, step.from_status, step.to_status, step.timestamp_field)
        for from_status, to_status, has_started in kinds.iter_rows()
        for number, step in enumerate(lifecycle_steps(from_status, to_status, has_started=has_started), 1)
    ]
    paths = pl.DataFrame(path_rows, schema=_PATH_SCHEMA, orient="row")
    exact = (
        pl.when(pl.col("timestamp_field") == CREATED_AT)
        .then(pl.col("created_at"))
        .when(pl.col("timestamp_field") == STARTED_AT)
        .then(pl.col("started_at"))
        .when(pl.col("timestamp_field") == COMPLETED_AT)
        .then(pl.col("completed_at"))
        .otherwise(None)
    )
    return (
        moves.join(paths, on=["from_status", "to_status", "has_started"], how="inner", nulls_equal=True)
        .with_columns(changed_at=exact)
        .select(
            tenant=pl.lit(tenant, pl.String()),
            job_id="job_id",
            from_status="step_from",
            to_status="step_to",
            changed_at="changed_at",
            changed_after=pl.coalesce("changed_at", "lower_bound"),
            changed_before=pl.coalesce("changed_at", "observed_at"),
            source=pl.when(pl.col("changed_at").is_not_null())
            .then(pl.lit(SOURCE_API_TIMESTAMP))
            .otherwise(pl.lit(SOURCE_POLL_INTERVAL)),
            sync_id=pl.lit(sync_id, pl.String()),
            step="step",
        )
        .cast(STATUS_CHANGE_SCHEMA)  # type: ignore[arg-type]
    )
