"""The table contract: names, order, types, tenant first, and a COMMENT ON every table and column.

What analysts see is schema `main`: `schema_version` and, since schema version 4, a view per archive
table over its hot table and its sealed day files. The storage itself (the base tables, `main` and
`hot`) keeps the constraints: tenant first and NOT NULL everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

import jobs_pipeline.archive as archive
import jobs_pipeline.capture
from jobs_pipeline.archive import merge
from jobs_pipeline.archive.reconcile import ARCHIVED_SCHEMA
from jobs_pipeline.archive.schema import STATUS_CHANGE_COLUMNS, TABLES
from jobs_pipeline.archive.transitions import STATUS_CHANGE_SCHEMA
from jobs_pipeline_tests.test_archive_builders import memory_archive, rows


def columns() -> list[dict[str, object]]:
    """The analyst-facing columns: every table and view of schema main."""
    return rows(
        memory_archive(),
        """
        SELECT table_name, column_name, data_type, is_nullable, comment, column_index
        FROM duckdb_columns() WHERE NOT internal AND schema_name = 'main' ORDER BY table_name, column_index
        """,
    )


def base_table_columns() -> list[dict[str, object]]:
    return rows(
        memory_archive(),
        """
        SELECT schema_name || '.' || table_name AS table_name, column_name, data_type, is_nullable, c.comment,
               column_index
        FROM duckdb_columns() c JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
        WHERE NOT c.internal ORDER BY 1, column_index
        """,
    )


def test_tables_and_columns_match_the_contract() -> None:
    found: dict[str, list[str]] = {}
    for column in columns():
        found.setdefault(str(column["table_name"]), []).append(str(column["column_name"]))
    assert found == {table: list(names) for table, names in TABLES.items()}


def test_every_table_starts_with_a_non_null_tenant() -> None:
    for column in [*columns(), *base_table_columns()]:
        if column["column_index"] == 1 and "." not in str(column["table_name"]):
            assert (column["column_name"], column["data_type"]) == ("tenant", "VARCHAR")
        elif column["column_index"] == 1:
            assert (column["column_name"], column["data_type"], column["is_nullable"]) == (
                "tenant",
                "VARCHAR",
                False,
            )


def test_every_table_and_column_is_documented() -> None:
    undocumented = [
        f"{c['table_name']}.{c['column_name']}"
        for c in [*columns(), *base_table_columns()]
        if not str(c["comment"] or "").strip()
    ]
    assert undocumented == []
    tables = rows(
        memory_archive(),
        "SELECT table_name, comment FROM duckdb_tables() WHERE NOT internal AND schema_name = 'main' "
        "UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'",
    )
    assert {t["table_name"] for t in tables} == set(TABLES)
    assert all(len(str(t["comment"] or "")) > 20 for t in tables)
    hot_tables = rows(
        memory_archive(), "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'hot'"
    )
    assert all(len(str(t["comment"] or "")) > 20 for t in hot_tables)


def test_timestamps_are_timestamptz_and_json_columns_are_json() -> None:
    for column in columns():
        name, data_type = str(column["column_name"]), column["data_type"]
        if name.endswith("_at") or name in ("changed_after", "changed_before"):
            assert data_type == "TIMESTAMP WITH TIME ZONE", name
    json_columns = {(c["table_name"], c["column_name"]) for c in columns() if c["data_type"] == "JSON"}
    assert json_columns == {
        ("sync_runs", "gaps"),
        ("sync_runs", "plan_notes"),
        ("job_snapshots", "metadata"),
        ("job_snapshots", "payload"),
        ("jobs", "metadata"),
    }


def test_frames_agree_with_the_tables() -> None:
    assert tuple(STATUS_CHANGE_SCHEMA) == STATUS_CHANGE_COLUMNS
    conn = memory_archive()
    conn.register("keys", pl.DataFrame({"position": [0], "job_id": ["x"]}))
    relation = conn.sql(merge._ARCHIVED_SQL.format(keys="keys"), params={"tenant": "acme"})
    assert relation is not None
    assert relation.columns == [*ARCHIVED_SCHEMA, "position"]


def test_package_exports_resolve() -> None:
    for name in archive.__all__:
        assert getattr(archive, name) is not None


def recorded_gap_reasons() -> set[str]:
    """Every reason the capture code gives a Gap (the second argument of each `Gap(` call)."""
    package = Path(jobs_pipeline.capture.__file__).parent
    found: set[str] = set()
    for source in package.glob("*.py"):
        found.update(re.findall(r'\bGap\(\s*[^,()]+,\s*"([a-z-]+)"', source.read_text(encoding="utf-8")))
    return found - {"revisit"}  # planner-internal: the range handed to _revisit, never recorded


def test_every_gap_reason_is_documented_in_the_archive_and_the_readme() -> None:
    reasons = recorded_gap_reasons()
    assert {"cap", "budget", "drift", "rejected", "behind-cap", "unresolved"} <= reasons
    (gaps,) = [c for c in columns() if (c["table_name"], c["column_name"]) == ("sync_runs", "gaps")]
    comment = str(gaps["comment"])
    assert [r for r in sorted(reasons) if f"{r} = " not in comment] == []
    assert "error" not in comment  # named by the v1 comment, never produced
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert [r for r in sorted(reasons) if f"| `{r}` |" not in readme] == []
