"""The API key never leaves the process's memory: not into the DuckDB files (raw bytes, every text
column), the logs (every logger at DEBUG), exception text (chained causes included), CLI output,
or the HTML report. Dagster metadata: test_security_dagster.py.

The key is a distinctive string, so a leak anywhere is found by a plain search; each search is
first shown to find the key where it was planted on purpose.
"""

from __future__ import annotations

import json
import logging
import shutil
import traceback
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from benchmarks.soak import soak_twin
from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.errors import ApiError
from jobs_pipeline.archive import ArchivePaths, open_for_analysis
from jobs_pipeline.cli.main import app
from jobs_pipeline.report import build_report
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin import FaultConfig

SECRET = "sk-devana-7c1e5b9a3f2d4e6b8a0c"
OTHER_SECRET = "sk-devana-wrong-55aa77bb99cc"  # a wrong key is just as secret


def files_holding(directory: Path, needle: str) -> list[str]:
    """Files under `directory` whose raw bytes contain `needle` (UTF-8 or UTF-16)."""
    patterns = [needle.encode("utf-8"), needle.encode("utf-16-le")]
    return sorted(
        str(p) for p in directory.rglob("*") if p.is_file() and any(x in p.read_bytes() for x in patterns)
    )


def text_columns_holding(conn: duckdb.DuckDBPyConnection, needle: str) -> list[str]:
    """table.column of every text column (VARCHAR, JSON) with a value containing `needle`: hot tables
    and the analyst views, which also read the sealed Parquet (compressed: a byte search misses it)."""
    columns = conn.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = current_database() AND NOT internal AND data_type IN ('VARCHAR', 'JSON')"
    ).fetchall()
    return [
        f"{schema}.{table}.{column}" if schema != "main" else f"{table}.{column}"
        for schema, table, column in columns
        if conn.execute(
            f'SELECT count(*) FROM "{schema}"."{table}" WHERE contains(CAST("{column}" AS VARCHAR), ?)',
            [needle],
        ).fetchall()[0][0]
    ]


def archive_leaks(db: Path, needle: str) -> list[str]:
    paths = ArchivePaths.for_db(db)
    leaks = files_holding(paths.directory, needle)
    with closing(open_for_analysis(db)) as conn:
        leaks += [f"published {c}" for c in text_columns_holding(conn, needle)]
    conn = duckdb.connect(str(paths.store), read_only=True)
    try:
        leaks += [f"store {c}" for c in text_columns_holding(conn, needle)]
    finally:
        conn.close()
    return leaks


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), record.exc_text or "", str(record.__dict__)]
    return "\n".join(parts)


def exception_text(exc: BaseException) -> str:
    return repr(exc) + "\n" + "".join(traceback.format_exception(exc))


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's debug output too
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    logging.getLogger("httpcore").setLevel(logging.DEBUG)
    yield caplog


def test_the_searches_find_a_planted_key(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    with soak_twin(db, jobs_per_day=200) as soak:
        soak.sync()
    planted = tmp_path / "planted.duckdb"
    shutil.copyfile(ArchivePaths.for_db(db).store, planted)
    conn = duckdb.connect(str(planted))
    try:
        conn.execute(
            "UPDATE hot.job_snapshots SET payload = json_object('leak', ?) WHERE rowid = 0", [SECRET]
        )
        conn.execute("CHECKPOINT")
        assert text_columns_holding(conn, SECRET) == ["hot.job_snapshots.payload", "job_snapshots.payload"]
    finally:
        conn.close()
    assert files_holding(tmp_path, SECRET) == [str(planted)]


def test_the_key_stays_out_of_archive_logs_errors_and_output(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "archive.duckdb"
    faults = FaultConfig(timeout_seconds=0.6, retry_after_seconds=0)
    errors: list[BaseException] = []
    outputs: list[str] = []
    with soak_twin(db, jobs_per_day=300, faults=faults, client_timeout=0.3, api_keys=(SECRET,)) as soak:
        soak.client.close()
        soak.client = JobsClient(soak.url, SECRET, backoff_base=0.01, timeout=0.3, rate_limit=100_000)
        config = SyncConfig(
            base_url=soak.url, max_clock_skew_seconds=None, api_key=SECRET, db_path=db, budget=500
        )
        run_sync(config, source=soak.client)
        # Every kind of fault, ridden out (at most five in a row: the client makes six attempts),
        # then one that makes the sync fail.
        for kinds in (
            ("429", "500", "502"),
            ("503", "timeout", "reset"),
            ("truncated", "invalid_json", "bad_record"),
        ):
            soak.advance(minutes=5)
            for kind in kinds:
                soak.twin.faults.fail_next(1, kind)
            run_sync(config, source=soak.client)
        soak.twin.faults.fail_next(6, "502")
        with pytest.raises(ApiError) as failed:
            run_sync(config, source=soak.client)
        errors.append(failed.value)
        # The same through the CLI, with the key in the environment: success, then failures.
        runner = CliRunner()
        for key, url, limit in (
            (SECRET, soak.url, "100000"),
            (OTHER_SECRET, soak.url, "100000"),  # refused by the API
            (SECRET, soak.url + "/nowhere", "100000"),  # 404
            (SECRET, soak.url, "0"),  # a configuration error
            (f"{SECRET} trailing", soak.url, "100000"),  # a key with a space: refused locally
        ):
            monkeypatch.setenv("DEVANA_API_KEY", key)
            soak.advance(minutes=5)
            result = runner.invoke(
                app,
                ["sync", "--max-clock-skew", "0", "--base-url", url, "--db", str(db), "--rate-limit", limit],
            )
            outputs.append(result.output)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                errors.append(result.exception)
        assert (
            sum("jobs seen" in out for out in outputs) == 1 and sum("error:" in out for out in outputs) == 4
        )
        with pytest.raises(ApiError) as refused:
            run_sync(
                SyncConfig(base_url=soak.url, max_clock_skew_seconds=None, api_key=OTHER_SECRET, db_path=db),
                source=None,
            )
        errors.append(refused.value)
        with closing(open_for_analysis(db)) as conn:
            html = build_report(conn, days=2)
    for secret in (SECRET, OTHER_SECRET):
        assert archive_leaks(db, secret) == []
        assert secret not in log_text(debug_logs)
        assert all(secret not in exception_text(exc) for exc in errors)
        assert all(secret not in out for out in outputs)
        assert secret not in html
        assert secret not in repr(config) and secret not in repr(soak.client)
    assert "DEBUG" in {r.levelname for r in debug_logs.records}  # the logs were really captured


def echoing_server(request: httpx.Request) -> httpx.Response:
    """A misbehaving server that echoes the Authorization header back in every kind of answer."""
    echoed = request.headers["Authorization"]
    mode = request.url.params.get("targetId", "")
    if mode == "401":
        return httpx.Response(401, json={"success": False, "error": f"bad key {echoed}"})
    if mode == "500":
        return httpx.Response(500, text=f"<html>Internal error for {echoed}</html>")
    if mode == "redirect":
        return httpx.Response(302, headers={"Location": f"https://elsewhere.example/?auth={echoed}"})
    if mode == "envelope":
        return httpx.Response(200, json={"success": False, "error": f"denied {echoed}"})
    if mode == "record":
        return httpx.Response(200, json={"success": True, "data": [{"id": "x", "note": echoed}]})
    return httpx.Response(200, content=f"not json {echoed}".encode())


@pytest.mark.parametrize("mode", ["401", "500", "redirect", "envelope", "record", "garbage"])
def test_a_server_echoing_the_key_never_gets_it_into_errors_or_logs(
    debug_logs: pytest.LogCaptureFixture, mode: str
) -> None:
    client = JobsClient(
        "https://api.devana.example",
        SECRET,
        transport=httpx.MockTransport(echoing_server),
        sleep=lambda seconds: None,
        rate_limit=100_000,
    )
    with client:
        try:
            page = client.list_jobs(target_id=mode)
        except ApiError as exc:
            assert SECRET not in exception_text(exc)
        else:
            # The record is kept as received in rejected_records: that is the server's data, not
            # something the client leaked; the client itself must not log it.
            assert mode == "record" and page.rejects
    assert SECRET not in log_text(debug_logs)


def test_the_key_is_never_a_command_line_option() -> None:
    """A key on the command line would sit in shell history and `ps` output: only the environment."""
    result = CliRunner().invoke(app, ["sync", "--help"])
    assert result.exit_code == 0
    assert "--api-key" not in result.output and "--key" not in result.output
    assert "DEVANA_API_KEY" in json.dumps(result.output)
