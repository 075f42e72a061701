"""Text spliced into SQL where DuckDB takes no parameter (COPY targets, DDL, COMMENT ON, view bodies)."""

from __future__ import annotations


def sql_literal(text: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A double-quoted SQL identifier (a column named like a keyword, e.g. "error")."""
    return '"' + name.replace('"', '""') + '"'
