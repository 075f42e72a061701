"""The report in a real headless Chromium (Debian's /usr/bin/chromium): are the charts drawn?

Nothing is installed here: without /usr/bin/chromium the test is skipped (CI runs
.ci/install-browser first). Chromium loads the file offline (no network needed: the report is
self-contained), dumps its DOM and takes a screenshot.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from jobs_pipeline.archive import open_for_analysis
from jobs_pipeline.report import FIGURE_IDS, build_report
from jobs_pipeline_tests.test_report_html import DEMO_START, outline, shared_demo_archive

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1280, 5200)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (run .ci/install-browser)"
    ),
]


def chromium(profile: Path, *action: str, page: Path) -> subprocess.CompletedProcess[bytes]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        # Belt and braces: any attempt to reach a host fails, so a chart that needed the network shows blank.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        *action,
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    with open_for_analysis(shared_demo_archive(tmp_path_factory)) as conn:
        html = build_report(conn, days=2, generated_at=DEMO_START)
    page = folder / "report.html"
    page.write_text(html, encoding="utf-8")
    return page


def test_chromium_renders_every_chart_as_svg_paths(report_file: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path / "profile", "--dump-dom", page=report_file).stdout.decode("utf-8")
    parsed = outline(dom)  # the DOM after Chromium parsed and laid out the page
    assert list(parsed.figures) == list(FIGURE_IDS)
    for figure_id, counts in parsed.figures.items():
        assert counts["svg"] == 1 and counts["img_role"] == 1, figure_id
        assert counts["path"] >= 10, f"{figure_id}: only {counts['path']} paths in the rendered DOM"
    print(
        f"chromium DOM: {len(parsed.figures)} SVG charts, {sum(c['path'] for c in parsed.figures.values())} paths"
    )


def test_chromium_screenshot_shows_the_charts(report_file: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    chromium(
        tmp_path / "profile",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={shot}",
        page=report_file,
    )
    with Image.open(shot) as image:
        assert image.size == WINDOW
        rgb = np.asarray(image.convert("RGB"), dtype=np.int32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours = len(np.unique(packed))
    # The page itself is grey and near-black text on near-white: saturated pixels come from the
    # charts' coloured bars, areas and lines.
    saturated = float(((rgb.max(axis=2) - rgb.min(axis=2)) > 60).mean())
    print(
        f"screenshot {WINDOW[0]}x{WINDOW[1]}, {shot.stat().st_size} bytes, {colours} colours, {saturated:.1%} saturated"
    )
    assert colours > 200
    assert saturated > 0.02
