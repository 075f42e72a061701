"""Every SQL sample of the README and the cookbook runs on a demo archive and returns rows.

The archive is a real (shortened) `jobs-pipeline demo` run: the twin over HTTP, the syncs, the
statistics. Samples read the analyst copy, as a reader pasting them would. A sample that matches
nothing on the demo (a made-up job id, last month's dates) is a broken sample.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from jobs_pipeline.archive import open_for_analysis
from jobs_pipeline.demo import DemoSettings, run_demo

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", ROOT / "docs" / "analytics-cookbook.md")


def sql_samples() -> list[tuple[str, str]]:
    """(where, statement) for every statement of every ```sql block of the docs."""
    samples = []
    for doc in DOCS:
        for block in re.findall(r"```sql\n(.*?)```", doc.read_text(), re.S):
            for statement in block.split(";"):
                body = "\n".join(
                    line for line in statement.splitlines() if not line.strip().startswith("--")
                ).strip()
                if body:
                    samples.append((f"{doc.name}: {' '.join(body.split())[:60]}", body))
    return samples


SAMPLES = sql_samples()


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    out = tmp_path_factory.mktemp("demo")
    # Shorter than `make demo` (1.5 days instead of 3) but the same shape: burst, gaps, kills, stats.
    result = run_demo(DemoSettings(out=out / "demo", days=1.5, jobs_per_day=1500))
    with open_for_analysis(result.db) as conn:
        yield conn


def test_the_docs_have_samples() -> None:
    assert len(SAMPLES) >= 15


@pytest.mark.parametrize("sample", [s for _, s in SAMPLES], ids=[where for where, _ in SAMPLES])
def test_sample_returns_rows_on_the_demo(demo_archive: duckdb.DuckDBPyConnection, sample: str) -> None:
    rows = demo_archive.execute(sample).fetchall()
    assert rows, f"no row on the demo archive:\n{sample}"
