"""Every request the twin's API received, for tests that check what a client did (read-only
clients, request budgets, retries). Control endpoints (/_twin/...) are not logged."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    # None when no response was sent (a "reset" fault).
    status_code: int | None
    # Whether the Authorization header carried a configured key.
    key_ok: bool
    # Arrival order, the value `before_request` was called with.
    index: int = -1
    # The injected fault, if any ("429" here with status 429 is a fault, not the real limiter).
    fault: str | None = None
    # Twin clock when the request was served (API timestamp format).
    at: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self) -> None:
        self._slots: list[RequestRecord | None] = []
        self._lock = threading.Lock()

    def reserve(self) -> int:
        """Number an arriving request (its index is known before it is served)."""
        with self._lock:
            self._slots.append(None)
            return len(self._slots) - 1

    def fill(self, record: RequestRecord) -> None:
        with self._lock:
            self._slots[record.index] = record

    def records(self) -> list[RequestRecord]:
        """Completed requests in arrival order (those still being served are left out)."""
        with self._lock:
            return [record for record in self._slots if record is not None]
