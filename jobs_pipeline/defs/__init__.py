"""Dagster definitions, autoloaded by `jobs_pipeline.definitions` (docs/dagster.md).

A thin shell: every asset and check calls jobs_pipeline.sync / archive / stats_store / analytics,
which never import dagster themselves.
"""
