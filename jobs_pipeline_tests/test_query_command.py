"""`jobs-pipeline query`: table (rounded, never cut off a terminal), csv and json (full precision)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from jobs_pipeline.archive.paths import ArchivePaths
from jobs_pipeline.cli.main import app

LONG = "x" * 150  # wider than the 80 columns rich assumes off a terminal


def _archive(tmp_path: Path) -> Path:
    db = tmp_path / "archive.duckdb"
    published = ArchivePaths.for_db(db).published
    published.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(published)) as conn:
        conn.execute(
            "CREATE TABLE t AS SELECT 678.7761999999998 AS p95_s, ? AS note, TIMESTAMPTZ '2026-12-01 10:00:00+00' AS at",
            [LONG],
        )
    return db


def _run(db: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["query", "--db", str(db), *args, "SELECT * FROM t"])
    assert result.exit_code == 0, result.output
    return result.output


def test_table_rounds_floats_and_keeps_whole_cells_on_a_pipe(tmp_path: Path) -> None:
    out = _run(_archive(tmp_path))
    assert "678.776" in out and "678.7761999" not in out
    assert LONG in out  # one line, not cut to 80 columns
    assert "678.8" in _run(_archive(tmp_path / "b"), "--digits", "1")


def test_csv_and_json_keep_full_precision(tmp_path: Path) -> None:
    db = _archive(tmp_path)
    rows = list(csv.reader(io.StringIO(_run(db, "--format", "csv"))))
    assert rows[0] == ["p95_s", "note", "at"]
    assert (
        rows[1][0] == "678.7761999999998" and rows[1][1] == LONG and rows[1][2].startswith("2026-12-01T10:00")
    )
    data = json.loads(_run(db, "-f", "json"))
    assert data[0]["p95_s"] == 678.7761999999998 and data[0]["at"].startswith("2026-12-01T10:00")


def test_unknown_format_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["query", "--db", str(_archive(tmp_path)), "--format", "xml", "SELECT 1"]
    )
    assert result.exit_code == 2
