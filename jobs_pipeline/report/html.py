"""HTML pieces of the report: page shell with inline CSS, figure wrappers, tables, formatting.

Every value that comes from the archive is escaped here (job errors are free text from the API).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from jobs_pipeline.report.charts import Chart, human_seconds
from jobs_pipeline.safe_text import safe_text

CSS = """
:root { --ink: #1d2430; --muted: #5b6575; --rule: #d9dee7; --bad: #b3261e; --ok: #1b7f3b; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); margin: 0; background: #f6f7f9; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 28px 0 8px; border-bottom: 2px solid var(--rule); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 24px 0 8px; }
.muted, figcaption { color: var(--muted); }
section.block { background: #fff; border: 1px solid var(--rule); border-radius: 6px; padding: 8px 16px 16px;
                margin: 16px 0; }
dl.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; margin: 8px 0; }
dl.summary div { background: #fff; border: 1px solid var(--rule); border-radius: 6px; padding: 8px 10px; }
dl.summary dt { color: var(--muted); font-size: 12px; }
dl.summary dd { margin: 0; font-size: 20px; font-weight: 600; }
figure.chart { margin: 8px 0 16px; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 13px; margin-top: 4px; }
p.empty { padding: 16px; border: 1px dashed var(--rule); color: var(--muted); margin: 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
caption { text-align: left; color: var(--muted); padding: 4px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.time { white-space: nowrap; }
td.mono, td code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.bad { color: var(--bad); font-weight: 600; }
.ok { color: var(--ok); }
footer { padding: 16px 20px 32px; color: var(--muted); font-size: 12px; }
"""


def esc(value: object) -> str:
    # Escaped for HTML and stripped of control characters (ESC would survive html.escape).
    return html.escape(safe_text(value))


def fmt_time(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return "" if value is None else str(value)


def fmt_seconds(value: object) -> str:
    if isinstance(value, int | float) and not math.isnan(value):
        return human_seconds(float(value))
    return ""


def fmt_ratio(value: object) -> str:
    if isinstance(value, int | float) and not math.isnan(value):
        return f"{value:.1f}×"
    return ""


def fmt_int(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else ""


def fmt_flag(value: object) -> str:
    return "yes" if value is True else ""


def figure(chart: Chart) -> str:
    """A chart in a <figure> with an id and a caption; the SVG carries role=img and its own title."""
    caption_id = f"{chart.figure_id}-caption"
    body = chart.svg if chart.svg is not None else f'<p class="empty">{esc(chart.empty)}</p>'
    kind = "chart" if chart.svg is not None else "chart no-data"
    return (
        f'<figure id="{esc(chart.figure_id)}" class="{kind}" aria-labelledby="{caption_id}">\n{body}\n'
        f'<figcaption id="{caption_id}"><strong>{esc(chart.title)}.</strong> {esc(chart.description)}</figcaption>\n'
        "</figure>"
    )


@dataclass(frozen=True)
class Col:
    name: str
    header: str
    fmt: Callable[[Any], str] = str
    css: str = ""
    escape: bool = True


def table(frame: pl.DataFrame, columns: Sequence[Col], caption: str, table_id: str, empty: str) -> str:
    if frame.is_empty():
        return f'<p class="empty" id="{esc(table_id)}">{esc(empty)}</p>'
    head = "".join(f'<th scope="col">{esc(c.header)}</th>' for c in columns)
    rows = []
    for record in frame.iter_rows(named=True):
        cells = []
        for c in columns:
            text = c.fmt(record.get(c.name))
            cells.append(f'<td class="{c.css}">{esc(text) if c.escape else text}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="table-wrap"><table id="{esc(table_id)}"><caption>{esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def summary_list(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<div><dt>{esc(label)}</dt><dd>{esc(value)}</dd></div>" for label, value in items)
    return f'<dl class="summary">{cells}</dl>'


def page(title: str, subtitle: str, body: str, footer: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>{esc(title)}</h1><p class="muted">{esc(subtitle)}</p></header>\n'
        f"<main>\n{body}\n</main>\n<footer>{esc(footer)}</footer>\n</body>\n</html>\n"
    )
