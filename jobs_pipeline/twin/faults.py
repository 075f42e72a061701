"""Injected faults: which request fails, and how a page is damaged.

A fault is chosen per API request (after auth and the real rate limit): first from the
scripted queue (`fail_next`, `storm_429`), else at random with probability `rate`, the draw
being a pure function of (seed, request index). Faults damage what one response carries, never
the simulation: ground truth is the same with or without them.

Kinds, by where they act:
- status  "500", "503" (JSON error envelope), "502" (an HTML page from a "proxy"),
          "429" (with Retry-After in the configured format)
- delivery "timeout" (stall `timeout_seconds` before answering), "reset" (close the socket,
          TCP RST, no response), "truncated" (headers promise more bytes than are sent)
- body    "invalid_json" (200 whose body is cut mid-document)
- page    "bad_record" (one row with wrong types or missing required fields),
          "duplicate_ids" (a row repeated in place of its neighbour),
          "huge_metadata" (one row's metadata carries a ~1 MB string),
          "odd_unicode" (RTL marks, emoji, combining marks, NUL in metadata/error strings)
"""

from __future__ import annotations

import copy
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from jobs_pipeline.twin.config import FAULT_KINDS, FaultConfig

STATUS_FAULTS = frozenset({"500", "502", "503", "429"})
DELIVERY_FAULTS = frozenset({"timeout", "reset", "truncated"})
PAGE_FAULTS = frozenset({"bad_record", "duplicate_ids", "huge_metadata", "odd_unicode"})

ODD_UNICODE = (
    "rapport\u200f\u202eannuel\u202c 🚀📄 cafe\u0301 \u0000nul \ufeffbom zero\u200bwidth "
    "👩\u200d💻 עברית العربية \U0001f3f3\ufe0f\u200d\U0001f308"
)

Row = dict[str, Any]


class FaultController:
    """`twin.faults`: the twin's fault plan, adjustable while it serves."""

    def __init__(self, config: FaultConfig, twin_seed: int) -> None:
        self._config = config
        self._seed = config.seed if config.seed is not None else twin_seed
        self._scripted: deque[str] = deque()
        self._lock = threading.Lock()

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, **changes: Any) -> FaultConfig:
        """Change the random plan mid-run, e.g. `configure(rate=0.1, kinds=("500",))`."""
        with self._lock:
            self._config = replace(self._config, **changes)
            if "seed" in changes and changes["seed"] is not None:
                self._seed = changes["seed"]
            return self._config

    def fail_next(self, n: int, kind: str) -> None:
        """Make the next `n` API requests (that pass auth and the rate limit) fail with `kind`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {FAULT_KINDS}")
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._scripted.extend([kind] * n)

    def storm_429(self, n: int) -> None:
        """A burst of `n` consecutive 429s, as a throttling upstream would send."""
        self.fail_next(n, "429")

    def clear(self) -> None:
        with self._lock:
            self._scripted.clear()

    @property
    def scripted(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._scripted)

    def draw(self, request_index: int) -> str | None:
        with self._lock:
            if self._scripted:
                return self._scripted.popleft()
            config = self._config
        if config.rate <= 0 or not config.kinds:
            return None
        rng = self.rng(request_index)
        if rng.random() >= config.rate:
            return None
        return rng.choice(config.kinds)

    def rng(self, request_index: int) -> random.Random:
        """The RNG for everything random about request `request_index` (which row, which variant)."""
        return random.Random(self._seed * 2_654_435_761 + request_index)


# -- page damage ---------------------------------------------------------------------------------


def _drop(field: str) -> Callable[[Row], Any]:
    def damage(row: Row) -> Any:
        row.pop(field, None)
        return row

    return damage


def _set(field: str, value: Any) -> Callable[[Row], Any]:
    def damage(row: Row) -> Any:
        row[field] = value
        return row

    return damage


# Each variant breaks the contract a different way; some keep the id so a client can say which
# job it could not parse.
BAD_RECORD_VARIANTS: tuple[tuple[str, Callable[[Row], Any]], ...] = (
    ("missing_id", _drop("id")),
    ("missing_created_at", _drop("createdAt")),
    ("missing_status", _drop("status")),
    ("created_at_epoch_number", _set("createdAt", 1_730_111_400_000)),
    ("updated_at_not_iso", _set("updatedAt", "28/10/2024 10:30")),
    ("status_null", _set("status", None)),
    ("progress_string", _set("progress", "65%")),
    ("metadata_list", _set("metadata", ["not", "an", "object"])),
    ("not_an_object", lambda row: "<<corrupted row>>"),
    ("null_row", lambda row: None),
)


def _metadata_of(row: Row) -> dict[str, Any]:
    metadata = row.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def damage_page(kind: str, rows: list[Row], rng: random.Random, config: FaultConfig) -> list[Any]:
    """A copy of `rows` with one page fault applied (rows are never mutated in place)."""
    if not rows:
        return rows
    damaged: list[Any] = list(rows)
    index = rng.randrange(len(rows))
    if kind == "bad_record":
        _, variant = BAD_RECORD_VARIANTS[rng.randrange(len(BAD_RECORD_VARIANTS))]
        damaged[index] = variant(copy.deepcopy(rows[index]))
    elif kind == "duplicate_ids":
        if len(rows) >= 2:
            index = max(1, index)
            damaged[index] = copy.deepcopy(rows[index - 1])
    elif kind == "huge_metadata":
        row = copy.deepcopy(rows[index])
        metadata = _metadata_of(row)
        chunk = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
        metadata["extractedText"] = (chunk * (config.huge_metadata_bytes // len(chunk) + 1))[
            : config.huge_metadata_bytes
        ]
        row["metadata"] = metadata
        damaged[index] = row
    elif kind == "odd_unicode":
        row = copy.deepcopy(rows[index])
        metadata = _metadata_of(row)
        metadata["fileName"] = ODD_UNICODE
        metadata["note\u200f🚀"] = ODD_UNICODE
        row["metadata"] = metadata
        if "error" in row:
            row["error"] = f"{row['error']} {ODD_UNICODE}"
        damaged[index] = row
    else:
        raise ValueError(f"{kind!r} is not a page fault")
    return damaged
