"""Text from the API made safe to show: no string a server sends may drive the operator's terminal.

A job `type`, an `error`, a server message or an id can carry ESC sequences (clear the screen,
recolour, retitle the window, hide text), other C0/C1 controls, or Unicode bidi overrides that
make a line read differently from what it holds. Everything shown by `watch`, `wait`, `query`,
CLI error lines and the HTML report goes through `safe_text` first: such characters become visible
escapes (`\\x1b`, `\\u202e`), so the operator sees that the server sent them. The archive keeps the
original bytes; only what is displayed is rewritten.
"""

from __future__ import annotations

import re

# C0 controls (newlines and tabs included: one value, one line), DEL, C1 controls, zero-width and
# directional formatting characters, and the line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object) -> str:
    """`str(value)` with every control or formatting character replaced by a visible escape."""
    return _UNSAFE.sub(_escape, "" if value is None else str(value))


UNSAFE_PATTERN = _UNSAFE.pattern
