"""The report's charts: report frames in, `Chart` (inline SVG + its accessible text) out.

Object-oriented matplotlib only (`Figure`, never pyplot): no global backend or figure registry is
touched, so building a report inside Dagster or a notebook changes nothing for the caller.
Each job type keeps one colour in every chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from jobs_pipeline.analytics.conventions import ALL_TYPES
from jobs_pipeline.api.models import JobType
from jobs_pipeline.report.data import ReportWindow
from jobs_pipeline.report.svg import figure_svg

KNOWN_TYPES: tuple[str, ...] = tuple(t.value for t in JobType)
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
ALL_TYPES_COLOUR = "#333333"
GRAIN_DAYS = {"hour": 1 / 24, "day": 1.0}
GRAIN_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
PANEL_COLUMNS = 3


@dataclass(frozen=True)
class Chart:
    figure_id: str
    title: str
    description: str  # what the chart shows, for screen readers and as the caption
    svg: str | None  # None: nothing to draw in the window; `empty` says so instead
    empty: str = ""


def ordered_types(types: Sequence[str]) -> list[str]:
    """Known types in the API's order, then any new type alphabetically; '*' excluded."""
    present = {t for t in types if t != ALL_TYPES}
    return [t for t in KNOWN_TYPES if t in present] + sorted(present - set(KNOWN_TYPES))


def type_colour(job_type: str) -> str:
    if job_type == ALL_TYPES:
        return ALL_TYPES_COLOUR
    if job_type in KNOWN_TYPES:
        return PALETTE[KNOWN_TYPES.index(job_type)]
    return PALETTE[len(KNOWN_TYPES) + sum(map(ord, job_type)) % (len(PALETTE) - len(KNOWN_TYPES))]


def type_label(job_type: str) -> str:
    return "All types" if job_type == ALL_TYPES else job_type


def _figure(width: float, height: float, *, rows: int = 1, top: float = 0.2) -> Figure:
    """A figure with fixed margins, in inches (room for tick labels, titles and axis labels).

    Fixed margins instead of matplotlib's constrained layout: the layout engine measures every
    text box in an extra drawing pass, which doubled the report's rendering time.
    """
    fig = Figure(figsize=(width, height))
    hspace_in = 0.55 if rows > 1 else 0.0
    axes_height = (height - top - 0.45 - hspace_in * (rows - 1)) / rows
    fig.subplots_adjust(
        left=0.6 / width,
        right=1 - 0.15 / width,
        top=1 - top / height,
        bottom=0.45 / height,
        wspace=0.28,
        hspace=hspace_in / axes_height if rows > 1 else 0.2,
    )
    return fig


def _panels(count: int, height_per_row: float = 2.2) -> tuple[Figure, list[Axes]]:
    """Small multiples sharing their x axis (tick labels on the bottom panels only: cheaper and clearer)."""
    columns = min(PANEL_COLUMNS, count)
    rows = -(-count // columns)
    fig = _figure(3.6 * columns, height_per_row * rows + 0.5, rows=rows, top=0.55)
    grid = fig.subplots(rows, columns, squeeze=False, sharex=True)
    axes = [ax for row in grid for ax in row]
    for index, ax in enumerate(axes):
        if index >= count:
            ax.set_visible(False)
        else:
            # Labels under the lowest visible panel of each column (sharex hid all but the last row's).
            ax.tick_params(labelbottom=index + columns >= count)
    return fig, axes[:count]


def _time_axis(ax: Axes, window: ReportWindow) -> None:
    """The window's span on x (every time chart aligned), with few, concise date ticks."""
    ax.set_xlim(float(date2num(window.axis_start)), float(date2num(window.end)))
    locator = AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


# Buckets whose figures are not to be read as the others: hatched grey over the whole panel.
def _hatch(ax: Axes, start: datetime, end: datetime) -> None:
    ax.axvspan(
        float(date2num(start)),
        float(date2num(end)),
        facecolor="#999999",
        alpha=0.18,
        hatch="///",
        edgecolor="#777777",
        linewidth=0,
    )


def selective_buckets(frame: pl.DataFrame) -> list[datetime]:
    """Bucket starts whose coverage is status-selective (figures biased by what was not seen)."""
    if frame.is_empty() or "coverage" not in frame.columns:
        return []
    return sorted(set(frame.filter(pl.col("coverage") == "status_selective")["bucket_start"].to_list()))


def _shade_partial(ax: Axes, starts: list[datetime], window: ReportWindow) -> None:
    """Hatch the status-selective buckets, and a first or last bucket the data covers only in part
    (it starts before the first job or sync, or ends after as_of), so it never reads as a dip."""
    step = GRAIN_LENGTH[window.grain]
    for start in starts:
        _hatch(ax, start, start + step)
    first, last = _bucket_floor(window.axis_start, window.grain), _bucket_floor(window.end, window.grain)
    if first < window.axis_start:
        _hatch(ax, window.axis_start, min(first + step, window.end))
    if last < window.end and last + step > window.end and last >= window.axis_start:
        _hatch(ax, last, window.end)


def _bucket_floor(instant: datetime, grain: str) -> datetime:
    floor = instant.replace(minute=0, second=0, microsecond=0)
    return floor.replace(hour=0) if grain == "day" else floor


def partial_note(starts: list[datetime], window: ReportWindow) -> str:
    if not starts:
        return ""
    fmt = "%Y-%m-%d %H:00" if window.grain == "hour" else "%Y-%m-%d"
    listed = ", ".join(f"{s:{fmt}}" for s in starts[:6]) + (" ..." if len(starts) > 6 else "")
    return (
        f" Hatched: {len(starts)} {window.grain}(s) ({listed}) where a sync could not see part of one "
        "status slice (sync_runs.gaps; stats_coverage): their rates are biased, not drawn, and left "
        "out of the totals and the spike checks."
    )


DURATION_FLOOR_S = 0.1


def _log_position(seconds: float) -> float:
    return math.log10(max(seconds, DURATION_FLOOR_S))


# Tick positions of the log-duration axes, in log10 seconds, with human labels.
DURATION_TICKS: tuple[tuple[float, str], ...] = (
    (-1.0, "0.1s"),
    (0.0, "1s"),
    (1.0, "10s"),
    (math.log10(60), "1m"),
    (math.log10(600), "10m"),
    (math.log10(3600), "1h"),
    (math.log10(36000), "10h"),
)


def human_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# -- distributions -----------------------------------------------------------------------------


def duration_chart(
    figure_id: str, what: str, values: pl.DataFrame, summary: pl.DataFrame, window: ReportWindow
) -> Chart:
    """Histogram per job type (log-spaced bins) with the type's p50 and p95 as vertical lines.

    `values`: job_type, seconds; `summary`: analytics duration_summary rows (job_type, p50_s, p95_s, count).
    """
    title = f"{what} by job type"
    types = ordered_types(values["job_type"].unique().to_list())
    if not types:
        return Chart(figure_id, title, f"{what} distributions.", None, f"No {what.lower()} in the window.")
    quantiles = {row["job_type"]: row for row in summary.iter_rows(named=True)}
    # Histograms of log10(seconds) on a linear axis with a few fixed ticks: the same picture as a
    # log axis, without matplotlib's costly minor log ticks on a dozen panels.
    # Durations under DURATION_FLOOR_S (a job started the instant it was created) sit in the first bin.
    logs = values.with_columns(log_s=pl.col("seconds").clip(lower_bound=DURATION_FLOOR_S).log10())
    low = float(logs["log_s"].min())  # type: ignore[arg-type]
    high = float(logs["log_s"].max())  # type: ignore[arg-type]
    bins = np.linspace(low - 0.05, max(high, low + 0.5) + 0.05, 31)
    ticks = [(x, label) for x, label in DURATION_TICKS if bins[0] <= x <= bins[-1]]
    under_floor = values.filter(pl.col("seconds") < DURATION_FLOOR_S)
    if not under_floor.is_empty():
        # Zero waits (started the instant they were created) are drawn in the first bin: its tick
        # says so instead of claiming they took 0.1 s.
        ticks = [(x, "≤0.1s" if label == "0.1s" else label) for x, label in ticks]
    fig, axes = _panels(len(types))
    parts = []
    for ax, job_type in zip(axes, types, strict=True):
        seconds = logs.filter(pl.col("job_type") == job_type)["log_s"].to_numpy()
        # One filled outline per panel, not 30 bar patches: the same picture at a fraction of the cost.
        ax.hist(seconds, bins=bins.tolist(), color=type_colour(job_type), alpha=0.75, histtype="stepfilled")
        stats = quantiles.get(job_type)
        panel_title = f"{job_type} (n={len(seconds)})"
        floor_count = under_floor.filter(pl.col("job_type") == job_type).height
        if stats is not None:
            ax.axvline(_log_position(stats["p50_s"]), color="black", linewidth=1.2)
            ax.axvline(_log_position(stats["p95_s"]), color="black", linestyle="--", linewidth=1.2)
            # The quantiles go in the panel title: one legend for the figure, not one per panel.
            panel_title += f"\np50 {human_seconds(stats['p50_s'])} · p95 {human_seconds(stats['p95_s'])}"
            parts.append(
                f"{job_type}: {stats['count']} jobs, median {human_seconds(stats['p50_s'])}, "
                f"p95 {human_seconds(stats['p95_s'])}"
                + (f", {floor_count} under 0.1 s (drawn in the first bin, ≤0.1s)" if floor_count else "")
            )
        ax.set_title(panel_title, fontsize=8)
        ax.set_xticks([x for x, _ in ticks], [label for _, label in ticks])
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("jobs", fontsize=8)
    fig.legend(
        handles=[Line2D([], [], color="black", linewidth=1.2), Line2D([], [], color="black", linestyle="--")],
        labels=["p50", "p95"],
        loc="outside upper right",
        ncols=2,
        fontsize=7,
        frameon=False,
    )
    description = (
        f"Histograms of {what.lower()} per job type, with p50 (solid) and p95 (dashed) lines. "
        + "; ".join(parts)
    )
    return Chart(figure_id, title, description, figure_svg(fig, figure_id, title, description))


# -- rates over time ---------------------------------------------------------------------------


def failure_rate_chart(figure_id: str, rates: pl.DataFrame, window: ReportWindow) -> Chart:
    """Failure rate per bucket with its Wilson 95 % band: one panel for all types, one per type."""
    title = f"Failure rate per {window.grain} with Wilson 95 % interval"
    shaded = selective_buckets(rates)
    finished = rates.filter(pl.col("failure_rate").is_not_null())
    if finished.is_empty():
        return Chart(figure_id, title, "Failure rates.", None, "No job finished in the window.")
    # A status-selective bucket's rate is what the archive happened to see, not the vendor's: not drawn.
    finished = finished.filter(~pl.col("bucket_start").is_in(shaded)) if shaded else finished
    types = [ALL_TYPES, *ordered_types(finished["job_type"].unique().to_list())]
    fig, axes = _panels(len(types))
    for ax, job_type in zip(axes, types, strict=True):
        rows = finished.filter(pl.col("job_type") == job_type).sort("bucket_start")
        # Each value holds for its whole bucket: stairs over the window's bucket grid, where a
        # bucket in which no job finished is NaN (a gap), never a carried-over value.
        grid = pl.DataFrame({"bucket_start": _grid(window)}, schema={"bucket_start": pl.Datetime("us")})
        series = grid.join(rows, on="bucket_start", how="left").sort("bucket_start")
        edges = _bucket_edges(series["bucket_start"].to_list(), window)
        colour = type_colour(job_type)
        ax.stairs(
            _percent(series["failure_rate_upper"]),
            edges,
            baseline=_percent(series["failure_rate_lower"]),
            fill=True,
            color=colour,
            alpha=0.2,
            linewidth=0,
        )
        ax.stairs(_percent(series["failure_rate"]), edges, baseline=None, color=colour, linewidth=1.3)
        ax.set_ylim(0, max(5.0, _largest(rows["failure_rate_upper"]) * 100 * 1.05))
        _shade_partial(ax, shaded, window)
        ax.set_title(
            f"{type_label(job_type)} ({int(rows['error'].sum())}/{int((rows['done'] + rows['error']).sum())})",
            fontsize=9,
        )
        ax.tick_params(labelsize=7)
        _time_axis(ax, window)
    axes[0].set_ylabel("% of finished jobs", fontsize=8)
    overall = finished.filter(pl.col("job_type") == ALL_TYPES)
    errors = int(overall["error"].sum())
    total = int((overall["done"] + overall["error"]).sum())
    description = (
        f"Failure rate (ERROR / (DONE + ERROR)) per {window.grain}, a line with a shaded Wilson 95 % band, "
        f"for all types and per type. Over the window {errors} of {total} finished jobs failed."
        + partial_note(shaded, window)
    )
    return Chart(figure_id, title, description, figure_svg(fig, figure_id, title, description))


# -- mix and concurrency -----------------------------------------------------------------------


def _bucket_edges(starts: list[datetime], window: ReportWindow) -> np.ndarray:
    """Matplotlib date numbers of consecutive buckets' edges: their starts plus the last one's end."""
    numbers = date2num(starts)
    return np.append(numbers, numbers[-1] + GRAIN_DAYS[window.grain])


def _largest(series: pl.Series) -> float:
    """The series' maximum as a float, 0 when it is empty or all null."""
    values = series.drop_nulls().cast(pl.Float64)
    return float(values.max()) if values.len() else 0.0  # type: ignore[arg-type]


def _held(series: pl.Series) -> np.ndarray:
    values = series.cast(pl.Float64).to_numpy()
    return np.append(values, values[-1])


def _percent(series: pl.Series) -> np.ndarray:
    return (series.cast(pl.Float64) * 100).fill_null(float("nan")).to_numpy()


def _grid(window: ReportWindow) -> list[datetime]:
    step = timedelta(hours=1) if window.grain == "hour" else timedelta(days=1)
    first = window.axis_start.replace(minute=0, second=0, microsecond=0)
    if window.grain == "day":
        first = first.replace(hour=0)
    points = []
    while first <= window.end:
        points.append(first)
        first += step
    return points


def _wide(frame: pl.DataFrame, value: str, types: list[str], window: ReportWindow) -> pl.DataFrame:
    """bucket_start plus one column per type, every bucket of the window present (absent = 0)."""
    grid = pl.DataFrame({"bucket_start": _grid(window)}, schema={"bucket_start": pl.Datetime("us")})
    wide = frame.filter(pl.col("job_type").is_in(types)).pivot(
        on="job_type", index="bucket_start", values=value
    )
    joined = grid.join(wide, on="bucket_start", how="left")
    for job_type in types:
        if job_type not in joined.columns:
            joined = joined.with_columns(pl.lit(0.0).alias(job_type))
    return joined.fill_null(0).sort("bucket_start")


def type_mix_chart(figure_id: str, mix: pl.DataFrame, window: ReportWindow) -> Chart:
    """Stacked bars: jobs created per bucket, by type."""
    title = f"Jobs created per {window.grain}, by type"
    types = ordered_types(mix["job_type"].unique().to_list()) if not mix.is_empty() else []
    if not types:
        return Chart(figure_id, title, "Type mix.", None, "No job was created in the window.")
    wide = _wide(mix, "jobs", types, window)
    fig = _figure(10, 3.4)
    ax = fig.subplots()
    edges = _bucket_edges(wide["bucket_start"].to_list(), window)
    bottom = np.zeros(wide.height)
    for job_type in types:
        # One stepped patch per type (stacked on the previous ones) rather than one bar per bucket.
        heights = wide[job_type].cast(pl.Float64).to_numpy()
        ax.stairs(
            bottom + heights, edges, baseline=bottom, fill=True, color=type_colour(job_type), label=job_type
        )
        bottom = bottom + heights
    ax.set_ylabel("jobs created", fontsize=8)
    shaded = (
        sorted(set(mix.filter(pl.col("coverage") != "complete")["bucket_start"].to_list()))
        if "coverage" in mix.columns
        else []
    )
    _shade_partial(ax, shaded, window)
    ax.legend(fontsize=7, ncols=min(len(types), 6), loc="upper left", frameon=False)
    ax.tick_params(labelsize=7)
    _time_axis(ax, window)
    totals = mix.filter(pl.col("job_type") != ALL_TYPES).group_by("job_type").agg(pl.col("jobs").sum())
    total = int(totals["jobs"].sum())
    shares = ", ".join(
        f"{row['job_type']} {row['jobs'] / total:.0%}"
        for row in totals.sort("jobs", descending=True).iter_rows(named=True)
    )
    description = (
        f"Stacked bars of the jobs created per {window.grain}, coloured by type. {total} jobs: {shares}."
        + (
            f" Hatched: {len(shaded)} {window.grain}(s) the archive saw only in part (sync_runs.gaps), "
            "and the parts of the first and last buckets outside the data."
            if shaded
            else " Hatched: the parts of the first and last buckets outside the data."
        )
    )
    return Chart(figure_id, title, description, figure_svg(fig, figure_id, title, description))


def in_flight_chart(figure_id: str, flight: pl.DataFrame, window: ReportWindow) -> Chart:
    """Stacked areas of the time-averaged running jobs per type, and the peak over all types."""
    title = f"Jobs in flight per {window.grain}: mean by type (stacked) and peak"
    types = ordered_types(flight["job_type"].unique().to_list()) if not flight.is_empty() else []
    if not types:
        return Chart(figure_id, title, "In-flight concurrency.", None, "No job ran in the window.")
    means = _wide(flight, "mean_in_flight", types, window)
    peaks = _wide(flight, "max_in_flight", [ALL_TYPES], window)
    fig = _figure(10, 3.4)
    ax = fig.subplots()
    # Step plots hold each value until the next point: repeat the last bucket at its end so that
    # it is drawn over its whole width too.
    x = [*means["bucket_start"].to_list(), means["bucket_start"][-1] + GRAIN_LENGTH[window.grain]]
    ax.stackplot(
        x,
        *[_held(means[t]) for t in types],
        labels=types,
        colors=[type_colour(t) for t in types],
        step="post",
        alpha=0.85,
    )
    peak_values = _held(peaks[ALL_TYPES])
    ax.step(x, peak_values, where="post", color="black", linewidth=1, label="peak (all types)")
    ax.set_ylim(0, max(1.0, float(peak_values.max())) * 1.3)  # headroom for the legend
    ax.set_ylabel("running jobs", fontsize=8)
    ax.legend(fontsize=7, ncols=min(len(types) + 1, 7), loc="upper left", frameon=False)
    ax.tick_params(labelsize=7)
    _time_axis(ax, window)
    overall = flight.filter(pl.col("job_type") == ALL_TYPES)
    peak = int(_largest(overall["max_in_flight"]))
    busy = float(overall["busy_s"].sum())
    observed = float(overall["observed_s"].sum())
    mean = busy / observed if observed else 0.0
    description = (
        f"Time-averaged number of running jobs per {window.grain}, stacked by type, with the peak concurrency "
        f"over all types as a black step line. Peak {peak} jobs at once; about {mean:.1f} on average while any ran."
    )
    return Chart(figure_id, title, description, figure_svg(fig, figure_id, title, description))


# -- capture coverage --------------------------------------------------------------------------


def coverage_chart(figure_id: str, syncs: pl.DataFrame, window: ReportWindow) -> Chart:
    """Requests and jobs seen per sync over time; incomplete syncs marked in red."""
    title = "Capture coverage: requests and jobs seen per sync"
    if syncs.is_empty():
        return Chart(figure_id, title, "Capture coverage.", None, "No sync ran in the window.")
    fig = _figure(10, 4.2, rows=2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = syncs["observed_at"].to_list()
    complete = syncs["coverage_complete"].to_numpy()
    requests = syncs["requests"].cast(pl.Float64).to_numpy()
    top.vlines(x, 0, requests, color="#1f77b4", linewidth=1.2)
    top.scatter(np.array(x)[complete], requests[complete], s=12, color="#1f77b4", label="complete", zorder=3)
    if (~complete).any():
        top.scatter(
            np.array(x)[~complete],
            requests[~complete],
            s=28,
            marker="X",
            color="#d62728",
            label="with gaps",
            zorder=4,
        )
    top.set_ylabel("requests", fontsize=8)
    top.legend(fontsize=7, loc="upper right", frameon=False)
    bottom.plot(x, syncs["jobs_seen"].to_numpy(), color="#2ca02c", marker=".", linewidth=1, label="jobs seen")
    bottom.plot(x, syncs["jobs_new"].to_numpy(), color="#ff7f0e", marker=".", linewidth=1, label="new jobs")
    bottom.set_ylabel("jobs", fontsize=8)
    bottom.legend(fontsize=7, loc="upper right", frameon=False)
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
    # The syncs' own span (padded), not the window's: syncs may cover only its last hours.
    first, last = min(x), max(x)
    pad = max((last - first) * 0.03, timedelta(minutes=30))
    _time_axis(bottom, replace(window, start=first - pad, plot_start=first - pad, end=last + pad))
    incomplete = int((~complete).sum())
    description = (
        f"{syncs.height} syncs: requests sent by each (top; red crosses mark the {incomplete} syncs with coverage "
        f"gaps) and the jobs each saw and found new (bottom), over the server clock."
    )
    return Chart(figure_id, title, description, figure_svg(fig, figure_id, title, description))
