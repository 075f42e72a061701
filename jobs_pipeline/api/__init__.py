"""HTTP client for the Devana Jobs API. Knows nothing of DuckDB, Dagster or capture planning."""
