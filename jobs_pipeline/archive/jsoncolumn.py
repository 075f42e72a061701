"""A whole column of JSON texts (payloads, metadata) as one Arrow string array, built in bulk.

Why not a list of texts handed to `pa.array`: every text would be a separate Python object kept
alive until the array is built, hundreds of thousands per sync; allocating that memory (and the
page faults of touching it) cost as much as encoding itself. Here each value is encoded by orjson
and appended to one growing buffer at once, its text freed straight away; the buffer and the
lengths become the Arrow array's data and offsets without another copy.

The text is exactly the stdlib encoder's (see fastjson.py): the whole buffer is searched at once
(not text by text, which costs more than encoding) for the markers of a spelling the stdlib might
not share, and only the values they fall in are re-encoded with the stdlib encoder, their text
replaced where it differs. A marker is rare in the API's jobs; one inside a string only costs time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from jobs_pipeline.archive.fastjson import MAY_DIFFER, ORJSON_OPTIONS, refuse, stdlib_json

# One Arrow string array holds at most 2 GiB of text (32-bit offsets); a larger column is chunked.
_MAX_CHUNK_BYTES = 2**31 - 1


def json_column(values: Sequence[Any], *, sort_keys: bool = False) -> pa.Array | pa.ChunkedArray:
    """The compact JSON text of each value (None: a SQL NULL, not the JSON null) as a string array."""
    option, dumps = ORJSON_OPTIONS[sort_keys], orjson.dumps
    data = bytearray()
    lengths: list[int] = []
    length = lengths.append
    refused: list[int] = []
    nulls = 0
    for value in values:
        if value is None:
            nulls += 1
            length(0)
            continue
        try:
            text = dumps(value, default=refuse, option=option)
        except TypeError:  # orjson.JSONEncodeError: left to the stdlib encoder, below
            refused.append(len(lengths))
            text = b""
        data += text
        length(len(text))
    ends = list(accumulate(lengths))
    suspects = set(refused) | _rows_with_markers(data, ends)
    if suspects:
        data, ends = _with_stdlib_text(values, data, ends, suspects, sort_keys)
    valid = pa.array([v is not None for v in values], pa.bool_()) if nulls else None
    return _string_array(data, ends, valid)


def _rows_with_markers(data: bytearray, ends: list[int]) -> set[int]:
    rows: set[int] = set()
    for marker in MAY_DIFFER:
        at = data.find(marker)
        while at != -1:
            rows.add(bisect_right(ends, at))  # the row whose text holds byte `at`
            at = data.find(marker, at + 1)
    return rows


def _with_stdlib_text(
    values: Sequence[Any], data: bytearray, ends: list[int], rows: set[int], sort_keys: bool
) -> tuple[bytearray, list[int]]:
    """`data` with the text of each row in `rows` replaced by the stdlib encoder's (rarely different)."""
    exact: dict[int, bytes] = {}
    for row in rows:
        start = ends[row - 1] if row else 0
        text = stdlib_json(values[row], sort_keys=sort_keys).encode("utf-8")
        if text != data[start : ends[row]]:
            exact[row] = text
    if not exact:
        return data, ends
    rebuilt = bytearray()
    lengths = []
    start = 0
    for row, end in enumerate(ends):
        replacement = exact.get(row)
        rebuilt += data[start:end] if replacement is None else replacement
        lengths.append(end - start if replacement is None else len(replacement))
        start = end
    return rebuilt, list(accumulate(lengths))


def _string_array(data: bytearray, ends: list[int], valid: pa.Array | None) -> pa.Array | pa.ChunkedArray:
    validity = None if valid is None else valid.buffers()[1]  # a boolean array's bits: a validity bitmap
    if not ends or ends[-1] <= _MAX_CHUNK_BYTES:
        offsets = np.zeros(len(ends) + 1, dtype=np.int32)
        offsets[1:] = ends
        return pa.Array.from_buffers(
            pa.string(), len(ends), [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
    # Over 2 GiB (millions of jobs in one sync): 64-bit offsets, cut into chunks that fit 32 bits.
    offsets = np.zeros(len(ends) + 1, dtype=np.int64)
    offsets[1:] = ends
    large = pa.Array.from_buffers(
        pa.large_string(), len(ends), [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    chunks, low = [], 0
    while low < len(ends):
        high = max(low + 1, int(np.searchsorted(offsets, offsets[low] + _MAX_CHUNK_BYTES, "right")) - 1)
        chunks.append(large.slice(low, high - low).cast(pa.string()))
        low = high
    return pa.chunked_array(chunks, pa.string())
