"""Settings every archive connection gets, whoever opens it."""

from __future__ import annotations

import duckdb
import polars as pl


def configure_session(conn: duckdb.DuckDBPyConnection) -> None:
    # TIMESTAMPTZ values are instants; rendering them in UTC keeps every tool's output identical
    # to the API's own 'Z' timestamps, whatever the machine's local zone.
    conn.execute("SET TimeZone = 'UTC'")


def query_frame(conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pl.DataFrame:
    """Run a read-only query and return its rows as a Polars frame (through Arrow, no Python rows)."""
    relation = conn.sql(sql, params=params)
    if relation is None:  # pragma: no cover - only statements that return nothing give None
        raise ValueError("query_frame needs a query that returns rows")
    return relation.pl()
