"""Fields the API never changes for a job: a conflicting value is bad input, not a change.

`id` is the key itself; `createdAt`, `type` and `targetId` are fixed when a job is created. A
server (or a proxy, or a bug) that reports a known job with another value for one of them is not
describing the same job: archiving it as a change would rewrite history (and, for createdAt, move
the job to another day). Such observations are rejected into `rejected_records` with a reason that
names the field and both values, and the stored job keeps its own.
"""

from __future__ import annotations

import polars as pl

# (column in the observation frame, the API's name for it) for every immutable field but the id.
IMMUTABLE_FIELDS = (("created_at", "createdAt"), ("job_type", "type"), ("target_id", "targetId"))


def immutable_conflict() -> pl.Expr:
    """The reason a row (an observation beside its archived `prev_*` columns) contradicts the
    archived job, null where it does not (a new job never does)."""
    reasons = [
        pl.when(
            pl.col("prev_exists").fill_null(False)
            # A job known only from webhook events has provisional values: the first poll fixes them.
            & pl.col("prev_polled").fill_null(False)
            & pl.col(column).ne_missing(pl.col(f"prev_{column}"))
        ).then(
            pl.format(
                "{} of known job conflicts with the archive (archived {}, got {}): the API never changes it",
                pl.lit(api_name),
                pl.col(f"prev_{column}").cast(pl.String).fill_null("null"),
                pl.col(column).cast(pl.String).fill_null("null"),
            )
        )
        for column, api_name in IMMUTABLE_FIELDS
    ]
    joined = pl.concat_str(reasons, separator="; ", ignore_nulls=True)
    return pl.when(joined != "").then(joined)
