"""The HTML report of the archive: one self-contained file (inline CSS and SVG charts, no script, no network).

    from jobs_pipeline.archive import open_for_analysis
    from jobs_pipeline.report import build_report

    with open_for_analysis("archive.duckdb") as conn:
        html = build_report(conn, days=7)

build_report(
    conn: duckdb.DuckDBPyConnection,   # any connection whose default schema has the archive tables
                                       # (open_for_analysis, or the writer's); only read, never written
    *,
    tenant: str | None = None,         # one tenant; None = every tenant of the archive, one section each
    days: int = 7,                     # window: the `days` before as_of (hourly series up to 3 days, daily beyond)
    as_of: datetime | None = None,     # end of the window; None = each tenant's latest observation (server clock)
    title: str = "Devana jobs report",
    top_n: int = 15,                   # rows of the slowest-jobs and failing-jobs tables
    generated_at: datetime | None = None,  # stamp shown in the subtitle; None = now
) -> str                               # the HTML document
# ValueError: days < 1, top_n < 1, or a tenant the archive does not hold.

Sections per tenant: summary counts; run-time and queue-wait histograms by type with p50/p95 lines
(+ quantile table); failure rate over time with Wilson 95 % bands (all types and per type); type mix
over time; in-flight concurrency over time; slowest jobs; failing jobs; capture coverage (syncs,
requests per sync, gaps). Each chart is a `<figure id="fig-...">` (ids in `build.FIGURE_IDS`,
suffixed `-<n>-<tenant>` when the report holds several tenants) whose `<svg role="img">` carries a
<title> and <desc>, and whose <figcaption> repeats the description.

Figures come from jobs_pipeline.analytics (see `data.py`); matplotlib is used without pyplot.
"""

from jobs_pipeline.report.build import DEFAULT_DAYS, FIGURE_IDS, build_report

__all__ = ["DEFAULT_DAYS", "FIGURE_IDS", "build_report"]
