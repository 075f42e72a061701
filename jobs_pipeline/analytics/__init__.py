"""Statistics over the archive, in pure Polars: frames in, frames out (no I/O, no DuckDB).

jobs_pipeline.stats_store reads the archive rows, calls `compute.compute_statistics` /
`compute.compute_running_eta`, and writes the stats_* tables. One concept per module:

- conventions  every rule that changes a figure (quantile method, '*' row, baselines, thresholds)
- prepare      archive rows -> naive-UTC frame with run_end, durations and end_kind
- buckets      hour/day/ISO-week buckets, the scope a refresh owns, bucketed aggregation
- stats        quantiles, Wilson intervals, normal tail
- durations    run time, queue wait, end to end
- failures     failure and kill rates (Wilson)
- mix          job-type mix and run-time cost
- in_flight    concurrency from an exact event sweep
- throughput   arrivals/starts/completions and Little's law
- survival     Kaplan-Meier with censored runs
- eta          running-job ETA and its backtest on snapshots
- anomalies    slow jobs (trailing p99, vendor max) and failure spikes (binomial score test)
- speed        seconds per page / per chunk
- retries      retry candidates
- schema       the stats tables' columns, types and comments
- compute      all tables of one scope
"""
