"""Size-normalised speed: seconds per page (EXTRACTION) and per chunk (EMBEDDING).

The size comes from the job's metadata (EXTRACTION `pageCount`, EMBEDDING `totalChunks`; keys
come and go, so a job without a positive size is left out, never guessed). DONE jobs only,
bucketed by completed_at, per type only: seconds per page and per chunk do not add up.
`s_per_unit` is the pooled rate (total run time / total units); p50/p90 are of the per-job rates.
"""

from __future__ import annotations

import polars as pl

from jobs_pipeline.analytics.buckets import BUCKET_KEYS, Scope, aggregate_by_bucket
from jobs_pipeline.analytics.conventions import DONE, QUANTILE_INTERPOLATION, SIZE_UNITS
from jobs_pipeline.analytics.prepare import pick
from jobs_pipeline.analytics.stats import ratio


def size_units(job_type: pl.Expr, metadata: pl.Expr) -> pl.Expr:
    """The job's size in its type's unit from the metadata JSON text, null when absent or not positive."""
    value: pl.Expr = pl.lit(None, dtype=pl.Float64)
    for type_name, (key, _unit) in SIZE_UNITS.items():
        extracted = metadata.str.json_path_match(f"$.{key}").cast(pl.Float64, strict=False)
        value = pl.when(job_type == type_name).then(extracted).otherwise(value)
    return pl.when(value > 0).then(value)


def size_speed(jobs: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """stats_speed rows: per (bucket, tenant, job_type) with at least one sized DONE run."""
    unit_names = {type_name: unit for type_name, (_key, unit) in SIZE_UNITS.items()}
    sized = (
        pick(
            jobs,
            (pl.col("status") == DONE)
            & pl.col("job_type").is_in(list(SIZE_UNITS))
            & pl.col("run_time_s").is_not_null(),
            "tenant",
            "job_type",
            "completed_at",
            "run_time_s",
            "metadata",
        )
        .with_columns(units=size_units(pl.col("job_type"), pl.col("metadata")))
        .filter(pl.col("units").is_not_null())
        .select(
            "tenant",
            "job_type",
            "completed_at",
            "run_time_s",
            "units",
            s_per_unit=pl.col("run_time_s") / pl.col("units"),
        )
    )
    stats = aggregate_by_bucket(
        sized,
        "completed_at",
        scope,
        [
            pl.len().cast(pl.Int64).alias("jobs"),
            pl.col("units").sum().alias("units"),
            pl.col("run_time_s").sum().alias("run_time_s"),
            pl.col("s_per_unit").quantile(0.5, interpolation=QUANTILE_INTERPOLATION).alias("p50_s_per_unit"),
            pl.col("s_per_unit").quantile(0.9, interpolation=QUANTILE_INTERPOLATION).alias("p90_s_per_unit"),
        ],
        all_types=False,
    )
    return stats.with_columns(
        unit=pl.col("job_type").replace_strict(unit_names, return_dtype=pl.String),
        s_per_unit=ratio(pl.col("run_time_s"), pl.col("units")),
    ).select(
        *BUCKET_KEYS, "unit", "jobs", "units", "run_time_s", "s_per_unit", "p50_s_per_unit", "p90_s_per_unit"
    )
