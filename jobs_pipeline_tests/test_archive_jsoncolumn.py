"""The fast JSON columns (orjson) write exactly the stdlib encoder's text, whatever the values."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs_pipeline.archive import jsoncolumn
from jobs_pipeline.archive.fastjson import stdlib_json
from jobs_pipeline.archive.jsoncolumn import json_column

# Floats where orjson and repr() part ways (tiny ones, non-finite) weighted in on purpose.
floats = st.floats() | st.sampled_from(
    [1e-5, 2.5e-5, 1.5e-7, 1e-10, 1e16, -0.0, math.nan, math.inf, -math.inf]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)  # beyond 64 bits: orjson refuses
    | floats
    | st.text(st.characters(codec="utf-8"))  # any character but lone surrogates
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def reference(values: list[Any], sort_keys: bool) -> list[str | None]:
    return [None if v is None else stdlib_json(v, sort_keys=sort_keys) for v in values]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(json_values, max_size=8), sort_keys=st.booleans())
def test_column_text_is_the_stdlib_text(values: list[Any], sort_keys: bool) -> None:
    column = json_column(values, sort_keys=sort_keys)
    assert column.type == pa.string()
    assert column.to_pylist() == reference(values, sort_keys)


class Colour(enum.StrEnum):
    RED = "red"


@dataclass
class Point:
    x: int


def test_values_orjson_would_spell_differently_take_the_stdlib_text() -> None:
    values: list[Any] = [
        {"id": "a", "ratio": 1.5e-7, "small": 2.5e-5, "error": None},  # 1.5e-07, 2.5e-05, null
        {"nan": math.nan, "inf": [math.inf, -math.inf]},  # NaN, Infinity (orjson: null)
        {"big": 2**64},  # orjson refuses integers over 64 bits
        {1: "int key"},  # and keys that are not strings
        {"at": datetime(2025, 3, 1, tzinfo=UTC), "colour": Colour.RED, "point": Point(1)},  # default=str
        {"name": "note-de-frais.pdf", "text": 'é\u2028\x00\x1f"\\'},  # markers inside strings: same text
        None,
        {"b": 1, "a": {"d": 2, "c": 3}},
    ]
    for sort_keys in (False, True):
        assert json_column(values, sort_keys=sort_keys).to_pylist() == reference(values, sort_keys)


def test_none_is_a_sql_null_and_an_empty_column_is_empty() -> None:
    column = json_column([None, {"a": None}, None])
    assert column.to_pylist() == [None, '{"a":null}', None]
    assert column.null_count == 2
    assert json_column([]).to_pylist() == []


def test_a_column_over_the_array_limit_is_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsoncolumn, "_MAX_CHUNK_BYTES", 40)
    values = [{"i": i, "pad": "x" * (i % 7)} for i in range(50)] + [None, {"nan": math.nan}]
    column = json_column(values)
    assert isinstance(column, pa.ChunkedArray) and column.num_chunks > 1
    assert all(chunk.nbytes for chunk in column.chunks)
    assert column.to_pylist() == reference(values, False)
