"""`build_report`: the whole HTML report of an archive connection, as one string."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import duckdb
import polars as pl

from jobs_pipeline.analytics.conventions import ALL_TYPES, DONE, ERROR, KILLED
from jobs_pipeline.report import charts
from jobs_pipeline.report.data import TenantReport, duration_values, load_tenant_report, tenants
from jobs_pipeline.report.html import (
    Col,
    esc,
    figure,
    fmt_flag,
    fmt_int,
    fmt_ratio,
    fmt_seconds,
    fmt_time,
    page,
    summary_list,
    table,
)

DEFAULT_TITLE = "Devana jobs report"
DEFAULT_DAYS = 7
DEFAULT_TOP_N = 15
# The figure ids of one tenant's section, in page order (suffixed per tenant when there are several).
FIGURE_IDS: tuple[str, ...] = (
    "fig-run-time",
    "fig-queue-wait",
    "fig-failure-rate",
    "fig-type-mix",
    "fig-in-flight",
    "fig-coverage",
)
FOOTER = (
    "Times are UTC; the window ends at the archive's latest observation (server clock). Durations: run time = "
    "completed - started of DONE jobs, queue wait = started - created; quantiles use linear interpolation. "
    "Failure rate = ERROR / (DONE + ERROR) with Wilson 95 % score intervals; KILLED jobs are inferred by the archive "
    "(the API hides them). Figures computed by jobs_pipeline.analytics from the archive rows."
)


def build_report(
    conn: duckdb.DuckDBPyConnection,
    *,
    tenant: str | None = None,
    days: int = DEFAULT_DAYS,
    as_of: datetime | None = None,
    title: str = DEFAULT_TITLE,
    top_n: int = DEFAULT_TOP_N,
    generated_at: datetime | None = None,
) -> str:
    """The self-contained HTML report (inline CSS and SVG, no script, no network) of an archive.

    See the package docstring for the arguments. Raises ValueError for days < 1, top_n < 1, or a
    tenant the archive does not hold.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    known = tenants(conn)
    if tenant is not None and tenant not in known:
        listed = ", ".join(known) if known else "none yet"
        raise ValueError(f"tenant {tenant!r} is not in the archive (tenants: {listed})")
    names = [tenant] if tenant is not None else known
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC)
    sections = []
    spans: list[tuple[datetime, datetime]] = []
    for index, name in enumerate(names):
        suffix = "" if len(names) == 1 else f"-{index + 1}-{_slug(name)}"
        report = load_tenant_report(conn, name, days=days, as_of=as_of, top_n=top_n)
        if report is None:
            sections.append(
                f'<section class="tenant" id="tenant{suffix or "-" + _slug(name)}"><h2>Tenant {esc(name)}</h2>'
                '<p class="empty">The archive has no observation of this tenant yet: run a sync first.</p></section>'
            )
            continue
        spans.append((report.window.axis_start, report.window.end))
        sections.append(_tenant_section(report, suffix, show_tenant=len(names) > 1 or tenant is not None))
    if not sections:
        sections.append('<p class="empty">The archive is empty: no sync has been recorded yet.</p>')
    window = f"last {days} day{'s' if days != 1 else ''}"
    if spans:
        # The span the data really covers: a 7-day window over a 4.5-day-old archive says so.
        first, last = min(a for a, _ in spans), max(b for _, b in spans)
        window = f"data from {fmt_time(first)} to {fmt_time(last)} ({window} requested)"
    subtitle = (
        f"{window} of archived job history, per tenant. Generated {fmt_time(generated.replace(tzinfo=None))}."
    )
    return page(title, subtitle, "\n".join(sections), FOOTER)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "tenant"


def _tenant_section(report: TenantReport, suffix: str, *, show_tenant: bool) -> str:
    window = report.window
    ids = {name: name + suffix for name in FIGURE_IDS}
    heading = f"Tenant {window.tenant}" if show_tenant else "Overview"
    finished = report.ended(DONE) + report.ended(ERROR)
    failed = report.ended(ERROR)
    summary = summary_list(
        [
            ("Data from", fmt_time(window.axis_start)),
            ("As of (server clock)", fmt_time(window.end)),
            ("Jobs created", f"{report.created:,}"),
            ("Jobs finished", f"{finished:,}"),
            ("Failed", f"{failed:,} ({failed / finished:.1%})" if finished else "0"),
            ("Killed (inferred)", f"{report.ended(KILLED):,}"),
            ("Running now", f"{report.jobs.filter(pl.col('is_running')).height:,}"),
            ("Syncs", f"{report.syncs.height:,}"),
        ]
    )
    blocks = [
        f'<section class="tenant" id="tenant{suffix or ""}" aria-labelledby="heading{suffix}">',
        f'<h2 id="heading{suffix}">{esc(heading)}</h2>',
        summary,
        _durations_block(report, ids),
        _block(
            "Failures over time",
            figure(charts.failure_rate_chart(ids["fig-failure-rate"], report.failure_rates, window)),
        ),
        _block(
            "Type mix over time", figure(charts.type_mix_chart(ids["fig-type-mix"], report.type_mix, window))
        ),
        _block(
            "In-flight concurrency",
            figure(charts.in_flight_chart(ids["fig-in-flight"], report.in_flight, window)),
        ),
        _block("Slowest jobs", _slowest_table(report, suffix)),
        _block("Failing jobs", _failing_table(report, suffix)),
        _coverage_block(report, ids, suffix),
        "</section>",
    ]
    return "\n".join(blocks)


def _block(heading: str, body: str) -> str:
    return f'<section class="block"><h3>{esc(heading)}</h3>\n{body}\n</section>'


def _durations_block(report: TenantReport, ids: dict[str, str]) -> str:
    window = report.window
    parts = []
    for metric, figure_id, what in (
        ("run_time", ids["fig-run-time"], "Run time (DONE jobs)"),
        ("queue_wait", ids["fig-queue-wait"], "Queue wait"),
    ):
        values = duration_values(report.jobs, window, metric)
        summary = (
            report.durations.filter(pl.col("metric") == metric)
            if not report.durations.is_empty()
            else report.durations
        )
        parts.append(figure(charts.duration_chart(figure_id, what, values, summary, window)))
    order = {name: i for i, name in enumerate([ALL_TYPES, *charts.KNOWN_TYPES])}
    quantiles = (
        report.durations.with_columns(
            pl.col("job_type")
            .replace_strict(order, default=len(order), return_dtype=pl.Int64)
            .alias("_order"),
            pl.col("job_type").replace({ALL_TYPES: "All types"}),
            pl.col("metric").replace({"run_time": "run time", "queue_wait": "queue wait"}),
        ).sort("metric", "_order", "job_type")
        if not report.durations.is_empty()
        else report.durations
    )
    parts.append(
        table(
            quantiles,
            [
                Col("metric", "Metric"),
                Col("job_type", "Type"),
                Col("count", "Jobs", fmt_int, "num"),
                Col("p50_s", "p50", fmt_seconds, "num"),
                Col("p90_s", "p90", fmt_seconds, "num"),
                Col("p95_s", "p95", fmt_seconds, "num"),
                Col("p99_s", "p99", fmt_seconds, "num"),
                Col("max_s", "max", fmt_seconds, "num"),
            ],
            "Duration quantiles over the window (linear interpolation).",
            "table-durations" + ids["fig-run-time"].removeprefix("fig-run-time"),
            "No durations in the window.",
        )
    )
    return _block("Durations by job type", "\n".join(parts))


def _slowest_table(report: TenantReport, suffix: str) -> str:
    return table(
        report.slowest,
        [
            Col("job_id", "Job", css="mono"),
            Col("job_type", "Type"),
            Col("status", "Status"),
            Col("target_id", "Target", css="mono"),
            Col("started_at", "Started", fmt_time, "time"),
            Col("run_time_s", "Run time", fmt_seconds, "num"),
            Col("queue_wait_s", "Queue wait", fmt_seconds, "num"),
            Col("times_vendor_max", "× vendor max", fmt_ratio, "num"),
            Col("trailing_p99_s", "Trailing p99", fmt_seconds, "num"),
            Col("over_trailing_p99", "Over p99", fmt_flag),
        ],
        f"The {report.slowest.height} longest runs that ended in the window. Vendor max: the API doc's typical "
        "maximum for the type; trailing p99: the type's p99 over the 7 days before the run's day.",
        f"table-slowest{suffix}",
        "No run ended in the window.",
    )


def _failing_table(report: TenantReport, suffix: str) -> str:
    return table(
        report.failing,
        [
            Col("job_id", "Job", css="mono"),
            Col("job_type", "Type"),
            Col("status", "Status", css="bad"),
            Col("target_id", "Target", css="mono"),
            Col("finished_at", "Ended", fmt_time, "time"),
            Col("run_time_s", "Run time", fmt_seconds, "num"),
            Col("error", "Error"),
            Col("retry_candidate", "Retry candidate", fmt_flag),
        ],
        f"The {report.failing.height} most recent ERROR and (inferred) KILLED jobs of the window. Retry candidate: "
        "no DONE job of the same target and type was created after it.",
        f"table-failing{suffix}",
        "No job failed or was killed in the window.",
    )


def _coverage_block(report: TenantReport, ids: dict[str, str], suffix: str) -> str:
    syncs = report.syncs
    if syncs.is_empty():
        summary = ""
    else:
        complete = int(syncs["coverage_complete"].sum())
        requests = syncs["requests"]
        summary = summary_list(
            [
                ("Syncs", f"{syncs.height:,}"),
                ("Complete coverage", f"{complete / syncs.height:.0%}"),
                ("Requests", f"{int(requests.sum()):,}"),
                ("Requests per sync", f"{float(requests.mean()):.1f} (max {int(requests.max())})"),  # type: ignore[arg-type]
                ("Rate-limited answers", f"{int(syncs['rate_limited'].sum()):,}"),
                ("Rejected records", f"{int(syncs['rejects'].sum()):,}"),
                ("Gaps", f"{report.gaps.height:,}"),
            ]
        )
    gaps = table(
        report.gaps.sort("observed_at", descending=True).head(50),
        [
            Col("observed_at", "Sync at", fmt_time, "time"),
            Col("slice", "Slice"),
            Col("reason", "Reason"),
            Col("created_from", "Jobs created from"),
            Col("created_to", "to"),
        ],
        "Parts of the API's 24 h view the syncs could not read, newest first (e.g. cap: more rows than the API's "
        "offset cap lets a slice reach; budget: out of requests; error: the API failed). Later syncs retry them "
        "while they stay visible.",
        f"table-gaps{suffix}",
        "Every sync in the window saw everything it needed: no gaps.",
    )
    chart = figure(charts.coverage_chart(ids["fig-coverage"], syncs, report.window))
    return _block("Capture coverage", "\n".join(part for part in (summary, chart, gaps) if part))
