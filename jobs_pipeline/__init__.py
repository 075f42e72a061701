"""jobs_pipeline: a complete archiver and statistics for the Devana.ai Jobs API.

Layers (imports point one way): api (HTTP only) -> capture (what to fetch) -> archive (DuckDB)
-> analytics (pure Polars); sync orchestrates api+capture+archive; defs (Dagster) and cli are thin
shells over them. The twin (jobs_pipeline.twin) is a stand-alone API simulator importing nothing else.
"""

__version__ = "0.1.0"
