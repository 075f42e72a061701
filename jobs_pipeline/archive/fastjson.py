"""Compact JSON text: the stdlib encoder's spelling, and how to get it from orjson, which is faster.

Why orjson: the archive writes a payload and a metadata text for every observation, and the
stdlib encoder made that most of the cost of turning a CaptureResult into Arrow. orjson writes the
same text several times faster, as UTF-8 bytes, which Arrow takes as they are (jsoncolumn.py).

Why byte for byte: `jobs.metadata` is compared as text with the next observation's metadata, so
a different spelling of the same value would look like a change (one spurious snapshot per job
after an upgrade); payloads already archived should read the same as new ones.

orjson and `json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))` write the same text for
every JSON value (objects with string keys, arrays, strings, integers within 64 bits, finite
floats, booleans, null), with two exceptions, both visible in orjson's output (MAY_DIFFER), where
the stdlib encoder's text is then used instead:
* floats below 1e-4 in magnitude: orjson writes 0.00001 and 1.5e-7, Python's repr 1e-05 and 1.5e-07
  (output containing "e-" or "0.0000");
* NaN and +-Infinity (not JSON, but json.loads accepts them): orjson writes null, the stdlib NaN
  and Infinity (output containing "null": the API leaves absent fields out rather than sending
  null, so this costs little).
What orjson refuses (integers over 64 bits, non-string keys, lone surrogates) or is told to refuse
(datetimes, dataclasses, subclasses of str/int/dict/list, anything else the stdlib hands to
`default=str`) raises, and goes to the stdlib encoder too. The one difference left: a plain
`enum.Enum` member, which decoding JSON never produces, is written as its value, not str(member).
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import orjson

# The stdlib encoders the text must match (built once: json.dumps(...) builds one per call).
_STDLIB = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_STDLIB_SORTED = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)

# Hand everything but plain JSON types to `refuse`, i.e. to the stdlib encoder. Indexed by sort_keys.
_PASSTHROUGH = (
    orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)
ORJSON_OPTIONS = (_PASSTHROUGH, _PASSTHROUGH | orjson.OPT_SORT_KEYS)

# Substrings of orjson's output that may mean a spelling the stdlib encoder does not share.
MAY_DIFFER = (b"null", b"e-", b"0.0000")


def stdlib_json(value: Any, *, sort_keys: bool = False) -> str:
    """The reference text: what the archive has always written, and what orjson's must equal."""
    return (_STDLIB_SORTED if sort_keys else _STDLIB).encode(value)


def refuse(value: Any) -> NoReturn:
    raise TypeError(f"left to the stdlib encoder: {type(value).__name__}")
