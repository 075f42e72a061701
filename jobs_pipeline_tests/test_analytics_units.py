"""Hand-computed cases and properties of the analytics building blocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jobs_pipeline.analytics.buckets import Scope
from jobs_pipeline.analytics.compute import compute_running_eta, read_window
from jobs_pipeline.analytics.conventions import ALL_TYPES, WILSON_Z
from jobs_pipeline.analytics.durations import duration_stats
from jobs_pipeline.analytics.eta import blend, eta_backtest, history_remaining
from jobs_pipeline.analytics.in_flight import in_flight
from jobs_pipeline.analytics.prepare import prepare_jobs
from jobs_pipeline.analytics.stats import wilson_bounds
from jobs_pipeline.analytics.survival import km_curve, km_quantile, survival_stats
from jobs_pipeline.analytics.throughput import throughput
from jobs_pipeline.stats_store import read_jobs
from jobs_pipeline_tests.test_analytics_fixtures import (
    BASE,
    JobDraw,
    assert_frames_close,
    build_archive,
    fresh_connection,
    job_draws,
)

T0 = datetime(2024, 10, 8, 9)


def _samples(durations: list[float], events: list[bool], group: str = "g") -> pl.DataFrame:
    return pl.DataFrame({"k": [group] * len(durations), "duration_s": durations, "event": events})


# ------------------------------------------------------------------------------------------------
# Kaplan-Meier


def test_km_hand_computed_case() -> None:
    # t=1: 6 at risk, 1 event -> 5/6; t=2: 5 at risk (one censored at 2 still counts), 1 event -> 4/6;
    # t=3: 3 at risk -> 4/6 * 2/3 = 4/9; t=4 censored; t=5: 1 at risk -> 0.
    curve = km_curve(_samples([1, 2, 2, 3, 4, 5], [True, True, False, True, False, True]), ["k"])
    assert curve["time_s"].to_list() == [1, 2, 3, 5]
    assert curve["at_risk"].to_list() == [6, 5, 3, 1]
    assert curve["survival"].to_list() == pytest.approx([5 / 6, 4 / 6, 4 / 9, 0.0])
    assert km_quantile(curve, ["k"], 0.5, "m")["m"].item() == 3
    assert km_quantile(curve, ["k"], 0.9, "m")["m"].item() == 5


def test_km_median_is_null_when_survival_stays_above_half() -> None:
    curve = km_curve(_samples([1, 2, 3, 4], [True, False, False, False]), ["k"])
    assert curve["survival"].to_list() == pytest.approx([0.75])
    assert km_quantile(curve, ["k"], 0.5, "m")["m"].item() is None


def test_km_exact_half_is_the_median() -> None:
    # S(2) = 0.5 exactly: the median is 2 (smallest t with S(t) <= 0.5), not the next event.
    curve = km_curve(_samples([1, 2, 3, 4], [True, True, True, True]), ["k"])
    assert km_quantile(curve, ["k"], 0.5, "m")["m"].item() == 2


def test_km_against_sql_product_limit() -> None:
    durations = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0]
    events = [True, False, True, True, False, True, True, False, True, True, True]
    curve = km_curve(_samples(durations, events), ["k"]).select("time_s", "survival")
    conn = duckdb.connect()
    samples = pl.DataFrame({"d": durations, "ev": events})
    conn.register("samples", samples)
    expected = conn.sql(
        """
        WITH t AS (SELECT DISTINCT d FROM samples WHERE ev)
        SELECT t.d AS time_s,
               (SELECT product(1 - (SELECT count(*) FROM samples s WHERE s.ev AND s.d = u.d)::DOUBLE
                                   / (SELECT count(*) FROM samples s WHERE s.d >= u.d))
                FROM t u WHERE u.d <= t.d) AS survival
        FROM t
        """
    ).pl()
    assert_frames_close(curve, expected, ["time_s"])


@settings(max_examples=60, deadline=None)
@given(
    runs=st.lists(st.tuples(st.integers(0, 50), st.booleans()), min_size=1, max_size=30),
    extra=st.lists(st.integers(0, 60), min_size=1, max_size=10),
)
def test_censoring_never_makes_durations_look_better(runs: list[tuple[int, bool]], extra: list[int]) -> None:
    """Adding censored runs (killed, failed, still running) never lowers a KM quantile."""
    base = _samples([float(d) for d, _ in runs], [e for _, e in runs])
    more = pl.concat([base, _samples([float(d) for d in extra], [False] * len(extra))])
    for probability in (0.5, 0.9):
        before = km_quantile(km_curve(base, ["k"]), ["k"], probability, "q")
        after = km_quantile(km_curve(more, ["k"]), ["k"], probability, "q")
        q_before = before["q"].item() if before.height else None
        q_after = after["q"].item() if after.height else None
        if q_before is None:
            continue  # never reached before: nothing can look better
        assert q_after is None or q_after >= q_before


@settings(max_examples=40, deadline=None)
@given(durations=st.lists(st.integers(0, 40), min_size=1, max_size=40))
def test_km_without_censoring_is_the_empirical_survival(durations: list[int]) -> None:
    curve = km_curve(_samples([float(d) for d in durations], [True] * len(durations)), ["k"])
    n = len(durations)
    for t, s in zip(curve["time_s"], curve["survival"], strict=True):
        assert s == pytest.approx(sum(d > t for d in durations) / n, abs=1e-12)


def test_an_incident_pushes_the_km_median_up_not_down() -> None:
    """Long runs killed during an incident: dropped they would shorten the median, censored they do not."""
    normal = [(T0 + timedelta(minutes=i), 60.0 + i, "DONE") for i in range(10)]
    killed = [(T0 + timedelta(minutes=20 + i), 500.0, "KILLED") for i in range(10)]
    rows = [
        {"tenant": "x", "job_type": "SYNC", "started_at": s, "elapsed_s": d, "end_kind": k.lower()}
        for s, d, k in normal + killed
    ]
    frame = pl.DataFrame(rows)
    scope = Scope.for_days([T0.date()])
    day = pl.col("bucket_grain") == "day"
    with_incident = survival_stats(frame, scope).filter(day & (pl.col("job_type") == "SYNC"))
    naive = frame.filter(pl.col("end_kind") == "done")["elapsed_s"].median()
    km_median = with_incident["km_median_s"].item()
    assert with_incident["censored_killed"].item() == 10
    assert km_median is None or km_median > naive


# ------------------------------------------------------------------------------------------------
# Wilson, durations


def test_wilson_published_values() -> None:
    frame = pl.DataFrame({"k": [0, 5, 10, 0, 1], "n": [10, 10, 10, 0, 100]})
    lower, upper = wilson_bounds(pl.col("k"), pl.col("n"))
    got = frame.select(lower.alias("lo"), upper.alias("hi"))
    assert got["lo"].to_list()[:3] == pytest.approx([0.0, 0.236593, 0.722467], abs=1e-6)
    assert got["hi"].to_list()[:3] == pytest.approx([0.277533, 0.763407, 1.0], abs=1e-6)
    assert got.row(3) == (None, None)
    assert got["lo"][4] == pytest.approx(0.0017674, abs=1e-6) and got["hi"][4] == pytest.approx(
        0.0544861, abs=1e-6
    )
    assert pytest.approx(1.959964, abs=1e-6) == WILSON_Z


def test_duration_quantiles_use_linear_interpolation() -> None:
    started = [T0 + timedelta(minutes=i) for i in range(4)]
    frame = pl.DataFrame(
        {
            "tenant": ["x"] * 4,
            "job_type": ["EXTRACTION"] * 4,
            "status": ["DONE"] * 4,
            "created_at": started,
            "started_at": started,
            "completed_at": [s + timedelta(seconds=r) for s, r in zip(started, [1, 2, 3, 4], strict=True)],
            "run_time_s": [1.0, 2.0, 3.0, 4.0],
            "queue_wait_s": [0.0] * 4,
            "end_to_end_s": [1.0, 2.0, 3.0, 4.0],
        }
    )
    stats = duration_stats(frame, Scope.for_days([T0.date()]))
    row = stats.filter(
        (pl.col("bucket_grain") == "day")
        & (pl.col("metric") == "run_time")
        & (pl.col("job_type") == ALL_TYPES)
    )
    assert row.select("count", "mean_s", "p50_s", "p90_s", "p95_s", "p99_s", "max_s").row(0) == pytest.approx(
        (4, 2.5, 2.5, 3.7, 3.85, 3.97, 4.0)
    )


# ------------------------------------------------------------------------------------------------
# ETA


def test_blend_weights() -> None:
    frame = pl.DataFrame(
        {
            "elapsed": [100.0, 100.0, 100.0, 100.0, 100.0],
            "progress": [None, 2.0, 27.5, 80.0, 50.0],
            "history": [40.0, 40.0, 40.0, 40.0, None],
        }
    )
    parts = blend(pl.col("elapsed"), pl.col("progress"), pl.col("history"))
    got = frame.select(**parts)
    # below 5 %: history only; 27.5 %: halfway between 5 and 50 -> weight 0.5; >= 50 %: progress only.
    assert got["progress_weight"].to_list() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    progress_27 = 100.0 * 72.5 / 27.5
    assert got["remaining_s"].to_list() == pytest.approx([40.0, 40.0, 0.5 * progress_27 + 20.0, 25.0, 100.0])


def test_history_remaining_reads_the_conditional_median() -> None:
    curves = pl.DataFrame(
        {"job_type": ["A"] * 4, "time_s": [10.0, 20.0, 30.0, 40.0], "survival": [0.75, 0.5, 0.25, 0.0]}
    )
    queries = pl.DataFrame({"job_type": ["A", "A", "A", "A", "B"], "elapsed_s": [0.0, 15.0, 45.0, 10.0, 5.0]})
    result = history_remaining(queries, curves, ["job_type"])
    # elapsed 0: S=1 -> first S <= 0.5 at 20; 15: S=0.75 -> S <= 0.375 at 30; 10: S=0.75 (right-continuous);
    # 45: outlived every run -> unknown; type B has no curve.
    assert result["history_remaining_s"].to_list() == [20.0, 15.0, None, 20.0, None]
    assert result["elapsed_s"].to_list() == queries["elapsed_s"].to_list()  # order kept


# ------------------------------------------------------------------------------------------------
# In-flight vs brute force, Little's law


def _brute_force_in_flight(conn: duckdb.DuckDBPyConnection, as_of: datetime, scope: Scope) -> pl.DataFrame:
    """Overlap sums and instant counts over every hour bucket the scope owns: O(n^2), independent of
    any sweep. Hours past the owned days (up to as_of) belong to a later refresh, so they are cut."""
    return (
        conn.sql(
            """
        WITH iv AS (
            SELECT tenant, job_type, timezone('UTC', started_at) AS s,
                   least(timezone('UTC', $as_of), CASE
                        WHEN status IN ('DONE', 'ERROR') THEN timezone('UTC', coalesce(completed_at, updated_at))
                        WHEN status = 'KILLED' THEN timezone('UTC', coalesce(vanished_at, last_seen_at))
                        WHEN vanished_at IS NULL AND created_at >= $as_of - INTERVAL 24 HOUR THEN timezone('UTC', $as_of)
                        ELSE timezone('UTC', last_seen_at) END) AS e
            FROM jobs WHERE started_at IS NOT NULL
        ),
        ivk AS (SELECT * FROM iv WHERE e > s UNION ALL SELECT tenant, '*', s, e FROM iv WHERE e > s),
        hours AS (
            SELECT unnest(generate_series(timezone('UTC', $start), timezone('UTC', $horizon) - INTERVAL 1 HOUR,
                                          INTERVAL 1 HOUR)) AS h
        ),
        keys AS (SELECT DISTINCT tenant, job_type FROM ivk),
        cells AS (SELECT k.tenant, k.job_type, h.h FROM keys k CROSS JOIN hours h),
        instants AS (
            SELECT c.tenant, c.job_type, c.h, c.h AS t FROM cells c
            UNION
            SELECT c.tenant, c.job_type, c.h, i.s FROM cells c JOIN ivk i
              ON i.tenant = c.tenant AND i.job_type = c.job_type AND i.s >= c.h AND i.s < c.h + INTERVAL 1 HOUR
        ),
        levels AS (
            SELECT n.tenant, n.job_type, n.h, n.t,
                   (SELECT count(*) FROM ivk i WHERE i.tenant = n.tenant AND i.job_type = n.job_type
                      AND i.s <= n.t AND i.e > n.t) AS level
            FROM instants n
        )
        SELECT 'hour' AS bucket_grain, c.h AS bucket_start, c.tenant, c.job_type,
               (SELECT sum((epoch_us(least(i.e, c.h + INTERVAL 1 HOUR, timezone('UTC', $horizon)))
                            - epoch_us(greatest(i.s, c.h))) / 1e6)
                FROM ivk i WHERE i.tenant = c.tenant AND i.job_type = c.job_type
                  AND i.s < c.h + INTERVAL 1 HOUR AND i.e > c.h) AS busy_s,
               (SELECT max(level) FROM levels l WHERE l.tenant = c.tenant AND l.job_type = c.job_type AND l.h = c.h)
                   AS max_in_flight,
               (SELECT level FROM levels l WHERE l.tenant = c.tenant AND l.job_type = c.job_type AND l.h = c.h
                  AND l.t = c.h) AS in_flight_at_start
        FROM cells c
        """,
            params={
                "as_of": as_of,
                "start": scope.start,
                "horizon": min(scope.end, as_of.replace(tzinfo=None)),
            },
        )
        .pl()
        .filter(pl.col("busy_s") > 0)
        .filter(pl.col("bucket_start").dt.replace_time_zone(None).is_in(scope.starts("hour").implode()))
    )


_H = 3_600_000


def _zero_length_and_running(job_type: str) -> list[JobDraw]:
    """A job created, started and completed at the same instant (t=0), and one still running from 25 h."""
    return [
        JobDraw(0, 0, 0, "DONE", job_type, None, None, 0, "acme"),
        JobDraw(25 * _H, 0, 0, "RUN", job_type, None, None, 0, "acme"),
    ]


@settings(max_examples=15, deadline=None)
@given(draws=job_draws(max_jobs=25, span_ms=2 * 86_400_000), as_of_hours=st.integers(30, 50))
# Once failed on main: with as_of past the owned days, the brute force also counted the hour
# 2024-10-09 00:00 (a later refresh's bucket). The zero-length job is in flight nowhere.
@example(draws=_zero_length_and_running("EXTRACTION"), as_of_hours=49)
def test_in_flight_matches_brute_force(draws: list[JobDraw], as_of_hours: int) -> None:
    as_of = BASE + timedelta(hours=as_of_hours)
    conn = fresh_connection(build_archive(draws, as_of))
    scope = Scope.for_days([BASE.date(), (BASE + timedelta(days=1)).date()])
    start, end = read_window(scope)
    prepared = prepare_jobs(read_jobs(conn, "acme", start, end, as_of), as_of)
    actual = in_flight(prepared, scope, as_of).filter(pl.col("bucket_grain") == "hour")
    expected = _brute_force_in_flight(conn, as_of, scope)
    assert_frames_close(
        actual.select(
            "bucket_grain",
            "bucket_start",
            "tenant",
            "job_type",
            "busy_s",
            "max_in_flight",
            "in_flight_at_start",
        ),
        expected,
        ["bucket_grain", "bucket_start", "tenant", "job_type"],
    )


def test_littles_law_holds_exactly_when_no_run_crosses_the_bucket() -> None:
    """All runs start and end inside one week, as_of after it: L = lambda * W for that week."""
    rows = []
    starts = [BASE + timedelta(days=1, hours=h, minutes=7 * h) for h in range(40)]
    for i, s in enumerate(starts):
        rows.append(
            {
                "tenant": "x",
                "job_type": "SYNC" if i % 2 else "IMPORT",
                "status": "DONE",
                "created_at": s - timedelta(seconds=30),
                "started_at": s,
                "completed_at": s + timedelta(seconds=300 + 97 * i),
                "updated_at": s + timedelta(seconds=300 + 97 * i),
                "last_seen_at": s + timedelta(seconds=300 + 97 * i),
                "vanished_at": None,
                "job_id": f"j{i}",
                "target_id": None,
                "progress": None,
            }
        )
    as_of = BASE + timedelta(days=9)
    jobs = prepare_jobs(pl.DataFrame(rows), as_of)
    scope = Scope.for_days([(BASE + timedelta(days=d)).date() for d in range(7)])
    flight = in_flight(jobs, scope, as_of)
    result = throughput(jobs, flight, scope, as_of).filter(pl.col("bucket_grain") == "week")
    assert result.height == 3  # IMPORT, SYNC, '*'
    assert result["little_ratio"].to_list() == pytest.approx([1.0, 1.0, 1.0], rel=1e-12)
    assert result.filter(pl.col("job_type") == "*")["completions"].item() == 40


@settings(max_examples=60, deadline=None)
@given(
    curves=st.dictionaries(
        st.sampled_from(["A", "B", "C"]),
        st.lists(st.tuples(st.integers(0, 100), st.integers(1, 5)), min_size=1, max_size=12),
        max_size=3,
    ),
    queries=st.lists(st.tuples(st.sampled_from(["A", "B", "C", "D"]), st.integers(0, 110)), max_size=30),
)
def test_history_remaining_matches_brute_force(
    curves: dict[str, list[tuple[int, int]]], queries: list[tuple[str, int]]
) -> None:
    """Interleaved groups: the asof joins must stay inside their group."""
    rows = []
    expected_curves: dict[str, list[tuple[float, float]]] = {}
    for group, points in curves.items():
        # Distinct increasing times, strictly decreasing survival (as a KM curve has).
        times = sorted({t for t, _ in points})
        survival, steps = 1.0, []
        for t, (_, weight) in zip(times, points, strict=False):
            survival *= 1.0 - weight / 6.0
            steps.append((float(t), survival))
        expected_curves[group] = steps
        rows.extend({"job_type": group, "time_s": t, "survival": s} for t, s in steps)
    frame = pl.DataFrame(rows, schema={"job_type": pl.String, "time_s": pl.Float64, "survival": pl.Float64})
    query_frame = pl.DataFrame(
        {"job_type": [g for g, _ in queries], "elapsed_s": [float(e) for _, e in queries]},
        schema={"job_type": pl.String, "elapsed_s": pl.Float64},
    )
    got = history_remaining(query_frame, frame, ["job_type"])["history_remaining_s"].to_list()
    for (group, elapsed), value in zip(queries, got, strict=True):
        steps = expected_curves.get(group)
        if not steps:
            assert value is None
            continue
        at = [s for t, s in steps if t <= elapsed]
        target = (at[-1] if at else 1.0) / 2.0
        reached = [t for t, s in steps if s <= target + 1e-9]
        want = reached[0] - elapsed if reached and reached[0] > elapsed else None
        assert value == (pytest.approx(want) if want is not None else None)


def _done_runs(count: int, run_s: float, start: datetime, job_type: str = "SYNC") -> list[dict[str, object]]:
    rows = []
    for i in range(count):
        started = start + timedelta(minutes=10 * i)
        completed = started + timedelta(seconds=run_s + i)
        rows.append(
            {
                "tenant": "x",
                "job_id": f"{job_type}{start:%d}-{i}",
                "target_id": None,
                "job_type": job_type,
                "status": "DONE",
                "progress": 100,
                "created_at": started,
                "started_at": started,
                "completed_at": completed,
                "updated_at": completed,
                "last_seen_at": completed,
                "vanished_at": None,
            }
        )
    return rows


def test_backtest_is_exact_for_linear_progress_and_uses_only_past_history() -> None:
    """Snapshots at 60 % of a linear run: the progress estimate is exact; history needs past days."""
    day1, day2 = datetime(2024, 10, 8), datetime(2024, 10, 9)
    jobs = prepare_jobs(
        pl.DataFrame(_done_runs(30, 100.0, day1) + _done_runs(30, 100.0, day2)), day2 + timedelta(days=1)
    )
    snapshots = jobs.select(
        "job_id",
        (pl.col("started_at") + (pl.col("completed_at") - pl.col("started_at")) * 0.6).alias("observed_at"),
        pl.lit(60).alias("progress"),
    )
    scope = Scope.for_days([day1.date(), day2.date()])
    result = eta_backtest(snapshots, jobs, scope).filter(
        (pl.col("bucket_grain") == "day") & (pl.col("job_type") == "SYNC")
    )
    first, second = result.sort("bucket_start").rows(named=True)
    assert first["observations"] == second["observations"] == 30
    assert first["mae_progress_only_s"] == pytest.approx(0.0, abs=1e-6)
    assert first["mae_s"] == pytest.approx(0.0, abs=1e-6)  # weight 1 at 60 %
    assert first["mae_history_only_s"] is None  # nothing ran before day 1
    # Day 2 reads day 1's runs (100-129 s): the median remaining life after ~60-78 s is a real number.
    assert second["mae_history_only_s"] is not None and second["mae_history_only_s"] < 60


def test_running_eta_blends_progress_with_history() -> None:
    as_of = datetime(2024, 10, 10, 12)
    history = _done_runs(20, 100.0, as_of - timedelta(days=2))
    running = [
        {
            "tenant": "x",
            "job_id": f"run{p}",
            "target_id": None,
            "job_type": "SYNC",
            "status": "IN_PROGRESS",
            "progress": p,
            "created_at": as_of - timedelta(seconds=60),
            "started_at": as_of - timedelta(seconds=50),
            "completed_at": None,
            "updated_at": as_of,
            "last_seen_at": as_of,
            "vanished_at": None,
        }
        for p in (None, 50)
    ] + [
        {
            "tenant": "x",
            "job_id": "long",
            "target_id": None,
            "job_type": "GENERATION",
            "status": "IN_PROGRESS",
            "progress": 10,
            "created_at": as_of - timedelta(seconds=400),
            "started_at": as_of - timedelta(seconds=300),
            "completed_at": None,
            "updated_at": as_of,
            "last_seen_at": as_of,
            "vanished_at": None,
        }
    ]
    eta = compute_running_eta(pl.DataFrame(history + running), as_of.replace(tzinfo=UTC))
    rows = {r["job_id"]: r for r in eta.rows(named=True)}
    assert set(rows) == {"run50", "runNone", "long"}
    # No progress: history alone. Runs of 100..119 s, 50 s elapsed: S(50) = 1 -> median 109.0 -> 59 s left.
    assert rows["runNone"]["progress_weight"] == 0.0
    assert rows["runNone"]["remaining_s"] == pytest.approx(59.0)
    # 50 %: progress alone (weight 1): 50 s more.
    assert rows["run50"]["remaining_s"] == pytest.approx(50.0)
    assert rows["run50"]["eta_at"] == as_of.replace(tzinfo=UTC) + timedelta(seconds=50)
    # No GENERATION history: progress only; 300 s is past the vendor's 2 min.
    assert rows["long"]["history_remaining_s"] is None and rows["long"]["over_vendor_max"] is True
    assert rows["long"]["remaining_s"] == pytest.approx(300 * 90 / 10)
