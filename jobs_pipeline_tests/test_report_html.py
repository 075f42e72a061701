"""The HTML report: built from a small real archive (twin over HTTP + run_sync), checked as HTML.

`shared_demo_archive` (one archive per test session, whatever the xdist worker) is also used by
the browser, notebook and watch tests.
"""

from __future__ import annotations

import fcntl
import os
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.archive import open_for_analysis
from jobs_pipeline.cli.main import app
from jobs_pipeline.report import FIGURE_IDS, build_report
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin import SteppedClock, Twin, TwinConfig

DEMO_START = datetime(2026, 11, 1, 12, tzinfo=UTC)
DEMO_KEY = "report-key"


def build_demo_archive(db: Path, *, syncs: int = 4, every_minutes: int = 20, jobs_per_day: int = 900) -> Twin:
    """A twin with ~a day of history, synced `syncs` times `every_minutes` apart into `db`.

    Two scripted jobs make the tables deterministic: one ERROR (with a known message) and one run
    far over its type's vendor maximum. Returns the twin (its clock at the last sync).
    """
    clock = SteppedClock(start=DEMO_START)
    twin = Twin(
        TwinConfig(jobs_per_day=jobs_per_day, seed=11, rate_limit=None, api_keys=(DEMO_KEY,)), clock=clock
    )
    twin.add_job(
        "GENERATION",
        target_id="doc-report-fail",
        created_at=DEMO_START - timedelta(minutes=10),
        run_seconds=20,
        outcome="ERROR",
        error="<script>alert('x')</script> LLM provider <overloaded>",
    )
    twin.add_job(
        "EXTRACTION",
        target_id="doc-report-slow",
        created_at=DEMO_START - timedelta(hours=3),
        run_seconds=3 * 3600,
    )
    with twin.serve() as url:
        client = JobsClient(url, DEMO_KEY, rate_limit=100_000, backoff_base=0.01, backoff_max=0.05)
        config = SyncConfig(
            base_url=url, max_clock_skew_seconds=None, api_key=DEMO_KEY, db_path=db, budget=400
        )
        with client:
            for index in range(syncs):
                if index:
                    clock.advance(timedelta(minutes=every_minutes))
                run_sync(config, source=client)
    return twin


def shared_demo_archive(
    tmp_path_factory: pytest.TempPathFactory, name: str = "demo", **settings: int
) -> Path:
    """The archive `build_demo_archive(**settings)` makes, built once per session and `name`.

    Under xdist every worker has its own base temp dir inside the session's: the archive goes in
    the session's, and the first worker to ask builds it while the others wait on a lock. Readers
    only ever open it with open_for_analysis (read-only), so sharing it is safe.
    """
    base = tmp_path_factory.getbasetemp()
    session_dir = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = session_dir / f"shared-{name}"
    with open(session_dir / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        ready = folder / "ready"
        if not ready.exists():
            folder.mkdir(exist_ok=True)
            build_demo_archive(folder / "archive.duckdb", **settings)
            ready.touch()
    return folder / "archive.duckdb"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_demo_archive(tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the two scripted jobs (both ended by the second sync): cheap to report on."""
    return shared_demo_archive(tmp_path_factory, "tiny", syncs=2, jobs_per_day=0)


@pytest.fixture(scope="module")
def report_html(demo_db: Path) -> str:
    with open_for_analysis(demo_db) as conn:
        return build_report(conn, days=2, generated_at=DEMO_START)


class Outline(HTMLParser):
    """Collects what the tests look at: figures (id, svg count, paths), tables, external references."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, dict[str, int]] = {}
        self.ids: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.external: list[str] = []
        self.scripts = 0
        self._figure: str | None = None
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._svg_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(attributes["id"] or "")
        for name in ("src", "href", "xlink:href"):
            value = attributes.get(name) or ""
            if value and not value.startswith("#"):
                self.external.append(value)
        if tag == "script":
            self.scripts += 1
        if tag == "figure":
            self._figure = attributes.get("id")
            self.figures[self._figure or ""] = {"svg": 0, "path": 0, "img_role": 0}
        elif self._figure is not None and tag in ("svg", "path"):
            self.figures[self._figure][tag] += 1
            if tag == "svg" and attributes.get("role") == "img" and attributes.get("aria-labelledby"):
                self.figures[self._figure]["img_role"] += 1
        if tag == "table":
            self._table = attributes.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        elif tag == "table":
            self._table = None
        elif tag == "td" and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


def test_every_chart_is_an_accessible_inline_svg_figure(report_html: str) -> None:
    parsed = outline(report_html)
    assert list(parsed.figures) == list(FIGURE_IDS)
    for figure_id, counts in parsed.figures.items():
        assert counts["svg"] == 1, figure_id
        assert counts["img_role"] == 1, f"{figure_id}: <svg role=img aria-labelledby> missing"
        assert counts["path"] >= 10, f"{figure_id} draws almost nothing"
        assert f'<figcaption id="{figure_id}-caption">' in report_html


def test_the_page_is_self_contained_and_its_ids_are_unique(report_html: str) -> None:
    parsed = outline(report_html)
    assert parsed.external == []  # no src/href leaving the page: it opens offline
    assert parsed.scripts == 0
    assert not re.search(r"url\((?!#)", report_html), "CSS/SVG url() pointing outside the page"
    assert "@import" not in report_html
    duplicates = {i for i in parsed.ids if parsed.ids.count(i) > 1}
    assert not duplicates, f"duplicated ids (several inline SVGs must not clash): {sorted(duplicates)[:5]}"


def test_tables_show_the_scripted_failure_escaped_and_the_slow_run_first(report_html: str) -> None:
    parsed = outline(report_html)
    failing = parsed.tables["table-failing"][1:]
    failure = next(row for row in failing if row[3] == "doc-report-fail")
    assert failure[1:3] == ["GENERATION", "ERROR"]
    assert failure[6] == "<script>alert('x')</script> LLM provider <overloaded>"  # shown as text...
    assert "<script>alert" not in report_html  # ...never as markup
    slowest = parsed.tables["table-slowest"][1:]
    assert slowest[0][3] == "doc-report-slow"
    assert slowest[0][5] == "3.0 h"
    assert slowest[0][7] == "36.0×"  # 3 h over EXTRACTION's 5-minute vendor maximum
    run_times = [row[5] for row in slowest]
    assert len(run_times) == 15


def test_duration_quantiles_match_the_archive(report_html: str, demo_db: Path) -> None:
    # The report's p50 of DONE run times over the window equals DuckDB's quantile_cont on the archive.
    with open_for_analysis(demo_db) as conn:
        as_of = conn.sql("SELECT max(observed_at) FROM sync_runs").fetchall()[0][0]
        p50 = conn.sql(
            """SELECT quantile_cont(epoch(completed_at) - epoch(started_at), 0.5) FROM jobs
               WHERE status = 'DONE' AND job_type = 'GENERATION'
                 AND completed_at >= $as_of - INTERVAL 2 DAY AND completed_at <= $as_of""",
            params={"as_of": as_of},
        ).fetchall()[0][0]
    rows = outline(report_html).tables["table-durations"][1:]
    generation = next(row for row in rows if row[0] == "run time" and row[1] == "GENERATION")
    shown = float(generation[3].split()[0])
    assert shown == pytest.approx(p50, abs=0.5), (generation, p50)


def test_coverage_counts_every_sync(report_html: str) -> None:
    assert re.search(r"<dt>Syncs</dt><dd>4</dd>", report_html)
    assert "capture coverage" in report_html.lower()


def test_an_unknown_tenant_or_a_bad_window_is_refused(demo_db: Path) -> None:
    with open_for_analysis(demo_db) as conn:
        with pytest.raises(ValueError, match="'nobody' is not in the archive"):
            build_report(conn, tenant="nobody")
        with pytest.raises(ValueError, match="days must be at least 1"):
            build_report(conn, days=0)


def test_an_almost_empty_archive_still_renders(tiny_db: Path) -> None:
    with open_for_analysis(tiny_db) as conn:
        html = build_report(conn, days=1)
    parsed = outline(html)
    assert list(parsed.figures) == list(FIGURE_IDS)
    # One job finished DONE, one failed, none still queued: charts with data draw, the rest say why not.
    assert parsed.figures["fig-run-time"]["svg"] == 1 and parsed.figures["fig-failure-rate"]["svg"] == 1
    assert "No job was created in the window." not in html  # both were created within the day
    assert [row[3] for row in parsed.tables["table-failing"][1:]] == ["doc-report-fail"]


def test_the_cli_writes_the_report_atomically(tiny_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "report.html"
    result = CliRunner().invoke(
        app, ["report", "--db", str(tiny_db), "--out", str(out), "--days", "1", "--tenant", "default"]
    )
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert list(outline(html).figures) == list(FIGURE_IDS)
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left behind


def test_several_tenants_get_one_section_each_with_their_own_ids(tmp_path: Path) -> None:
    clock = SteppedClock(start=DEMO_START)
    twin = Twin(TwinConfig(jobs_per_day=0, seed=3, rate_limit=None, api_keys=(DEMO_KEY,)), clock=clock)
    twin.add_job(
        "IMPORT", target_id="folder-1", created_at=DEMO_START - timedelta(minutes=30), run_seconds=60
    )
    db = tmp_path / "archive.duckdb"
    with twin.serve() as url, JobsClient(url, DEMO_KEY, rate_limit=100_000) as client:
        for tenant in ("beta", "alpha"):  # the same key archived under two names
            run_sync(
                SyncConfig(
                    base_url=url,
                    max_clock_skew_seconds=None,
                    api_key=DEMO_KEY,
                    db_path=db,
                    tenant=tenant,
                    budget=50,
                ),
                source=client,
            )
    with open_for_analysis(db) as conn:
        html = build_report(conn, days=1)
    parsed = outline(html)
    assert list(parsed.figures) == [
        f"{f}-{n}-{t}" for n, t in ((1, "alpha"), (2, "beta")) for f in FIGURE_IDS
    ]
    assert html.index("Tenant alpha") < html.index("Tenant beta")
    assert len(parsed.ids) == len(set(parsed.ids))  # two sections, no clashing figure, table or SVG ids


def test_the_cli_fails_cleanly_without_an_archive(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["report", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 3
    assert "no published archive" in result.output
    assert not (tmp_path / "r.html").exists()
