"""notebooks/explore.ipynb: stored without outputs, and runs end to end on a small real archive.

The notebook runs in a real Jupyter kernel through nbclient. Kernel "python3" is the .venv's
kernelspec (`.venv/share/jupyter/kernels/python3`, argv `python -m ipykernel_launcher`), and
jupyter_client replaces a bare `python` with the interpreter running the test, so the kernel
imports this checkout's jobs_pipeline: checked below rather than assumed. JUPYTER_PATH is pinned
to this environment's share/jupyter so that a "python3" kernelspec in the user's own Jupyter
directory (which would otherwise win) cannot swap the interpreter.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from jobs_pipeline_tests.test_report_html import shared_demo_archive

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"
KERNEL = "python3"


@pytest.fixture(autouse=True)
def this_environments_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(Path(sys.prefix) / "share" / "jupyter"))


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "no code cells"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code), "run nbstripout on it"
    assert notebook.metadata.kernelspec.name == KERNEL
    assert "open_for_analysis" in code[0].source  # the read-only published copy, never the writer's


def test_the_kernel_is_this_interpreter() -> None:
    manager = KernelManager(kernel_name=KERNEL)
    assert manager.format_kernel_cmd()[0] == sys.executable


def test_the_notebook_runs_end_to_end_on_a_demo_archive(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = shared_demo_archive(tmp_path_factory)  # twin + a few run_sync calls
    monkeypatch.setenv("JOBS_PIPELINE_DB", str(db))  # the kernel inherits the environment
    monkeypatch.setenv("JOBS_PIPELINE_DAYS", "2")
    monkeypatch.delenv("JOBS_PIPELINE_TENANT", raising=False)
    monkeypatch.delenv("JOBS_PIPELINE_JOB", raising=False)

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, kernel_name=KERNEL, timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    assert f"archive: {db.resolve()}" in streams and "tenant:  default" in streams
    charts = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(charts) >= 5  # durations, failure rates, type mix, in flight, one job's timeline
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert len(tables) >= 6
    assert "'job_id': '" in streams and "'status': '" in streams  # the one job whose timeline is drawn
