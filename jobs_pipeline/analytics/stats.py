"""Small statistical building blocks as Polars expressions (no scipy in the lock)."""

from __future__ import annotations

import math

import polars as pl

from jobs_pipeline.analytics.conventions import DURATION_QUANTILES, QUANTILE_INTERPOLATION, WILSON_Z


def quantile(column: str, probability: float) -> pl.Expr:
    """The project's quantile (linear interpolation, == DuckDB quantile_cont)."""
    return pl.col(column).quantile(probability, interpolation=QUANTILE_INTERPOLATION)


def duration_summary(column: str) -> list[pl.Expr]:
    """count, mean_s, p50_s .. p99_s, max_s of a seconds column, nulls ignored."""
    return [
        pl.col(column).count().alias("count"),
        pl.col(column).mean().alias("mean_s"),
        *(quantile(column, q).alias(f"{name}_s") for name, q in DURATION_QUANTILES),
        pl.col(column).max().alias("max_s"),
    ]


def wilson_bounds(successes: pl.Expr, trials: pl.Expr, z: float = WILSON_Z) -> tuple[pl.Expr, pl.Expr]:
    """Wilson score interval of successes / trials: (lower, upper), null when trials == 0.

    centre = (p + z^2/2n) / (1 + z^2/n);  half = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)
    """
    n = trials.cast(pl.Float64)
    p = successes.cast(pl.Float64) / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half = (z / denominator) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt()
    has_trials = trials > 0
    lower = pl.when(has_trials).then((centre - half).clip(0.0, 1.0))
    upper = pl.when(has_trials).then((centre + half).clip(0.0, 1.0))
    return lower, upper


def ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator as float, null when the denominator is 0 or null."""
    return pl.when(denominator > 0).then(numerator.cast(pl.Float64) / denominator.cast(pl.Float64))


def normal_upper_tail(z: pl.Expr) -> pl.Expr:
    """P(Z >= z) for a standard normal Z (Abramowitz & Stegun 26.2.17, |error| < 7.5e-8)."""
    b1, b2, b3, b4, b5 = 0.319381530, -0.356563782, 1.781477937, -1.821255978, 1.330274429
    x = z.abs()
    t = 1.0 / (1.0 + 0.2316419 * x)
    density = (-(x * x) / 2.0).exp() / math.sqrt(2.0 * math.pi)
    tail = density * t * (b1 + t * (b2 + t * (b3 + t * (b4 + t * b5))))
    return pl.when(z >= 0).then(tail).otherwise(1.0 - tail)
