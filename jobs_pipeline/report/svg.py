"""A matplotlib Figure as an inline, accessible, self-contained `<svg>` element.

Several charts share one HTML page, so every id in a chart's SVG (clip paths, glyphs, markers)
is prefixed with the figure's id: duplicated ids would be invalid HTML, and a `url(#id)` clip
reference could otherwise resolve to another chart's element. Text stays text
(`svg.fonttype: none`): smaller files, selectable labels, and readable by screen readers.
The output is deterministic (no date metadata, hash salt = figure id), so two renders of the
same data give the same bytes.
"""

from __future__ import annotations

import html
import io
import re

from matplotlib import rc_context
from matplotlib.figure import Figure

_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_URL_REF = re.compile(r"url\(#([^)]+)\)")
_HREF_REF = re.compile(r'((?:xlink:)?href)="#([^"]+)"')


def figure_svg(fig: Figure, figure_id: str, title: str, description: str) -> str:
    """The figure as an `<svg role="img">` with a <title> and <desc>, ids prefixed with figure_id."""
    buffer = io.StringIO()
    with rc_context({"svg.hashsalt": figure_id, "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    svg = _METADATA.sub("", svg)
    svg = _ID.sub(lambda m: f'id="{figure_id}-{m.group(1)}"', svg)
    svg = _URL_REF.sub(lambda m: f"url(#{figure_id}-{m.group(1)})", svg)
    svg = _HREF_REF.sub(lambda m: f'{m.group(1)}="#{figure_id}-{m.group(2)}"', svg)
    title_id = f"{figure_id}-title"
    desc_id = f"{figure_id}-desc"
    opening_end = svg.index(">") + 1
    opening = svg[:opening_end].replace(
        "<svg ", f'<svg role="img" aria-labelledby="{title_id} {desc_id}" ', 1
    )
    accessible = (
        f'<title id="{title_id}">{html.escape(title)}</title>'
        f'<desc id="{desc_id}">{html.escape(description)}</desc>'
    )
    return opening + accessible + svg[opening_end:].strip()
