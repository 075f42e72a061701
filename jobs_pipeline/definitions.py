"""The Dagster code location: every definition under jobs_pipeline/defs/, autoloaded (docs/dagster.md)."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
