"""The twin as a webhook sender: POST every job transition it lives, like the vendor's example.

Body: the vendor's fields `{jobId, status, targetId, type, metadata}` plus the job as the API
renders it at that instant (`userId`, `createdAt`, `startedAt`, `completedAt`, `updatedAt`,
`progress`, `error`) and `occurredAt`, the exact instant of the transition (KILLED included,
which the API itself never shows).

Delivery is best-effort, as webhooks are, and can be made worse on purpose (seeded, so a test
replays the same damage): `loss` drops an event, `duplicate` sends it twice, `reorder` holds it
back behind the next one, `max_delay_seconds` waits a random time before sending. Sending runs on
its own thread, never on the simulation's; a receiver that is down gets a few retries, then the
event is counted as failed.

Only the standard library: the twin imports nothing of the pipeline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from jobs_pipeline.twin.job import SimJob
from jobs_pipeline.twin.timefmt import iso_ms


@dataclass(frozen=True)
class WebhookDeliveryConfig:
    url: str
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    max_delay_seconds: float = 0.0
    seed: int = 1
    secret: str | None = field(default=None, repr=False)  # HMAC-SHA256 signature when set
    timeout: float = 5.0
    attempts: int = 5

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"webhook {name} must be a probability in [0, 1], got {value}")
        if self.max_delay_seconds < 0:
            raise ValueError("webhook delay must be 0 or more seconds")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s)://..., got {self.url!r}")


@dataclass
class DeliveryStats:
    transitions: int = 0
    sent: int = 0  # POSTs answered 2xx (duplicates counted)
    lost: int = 0  # dropped on purpose
    duplicated: int = 0
    failed: int = 0  # the receiver never answered 2xx
    rejected: int = 0  # answered 4xx
    delivered_ids: list[tuple[str, str]] = field(default_factory=list)  # (jobId, status) delivered


_STOP = object()


class WebhookSender:
    def __init__(self, config: WebhookDeliveryConfig) -> None:
        self.config = config
        self.stats = DeliveryStats()
        self._rng = random.Random(config.seed)
        self._queue: queue.Queue[object] = queue.Queue()
        self._held: bytes | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="twin-webhooks", daemon=True)
        self._thread.start()

    # Called by the simulation (under the twin's lock): decide the damage now, send later.
    def transition(self, job: SimJob, at_ms: int) -> None:
        body = _body(job, at_ms)
        with self._lock:
            self.stats.transitions += 1
            if self._rng.random() < self.config.loss:
                self.stats.lost += 1
                return
            copies = 2 if self._rng.random() < self.config.duplicate else 1
            if copies == 2:
                self.stats.duplicated += 1
            delay = (
                self._rng.uniform(0, self.config.max_delay_seconds) if self.config.max_delay_seconds else 0.0
            )
            if self._held is None and self._rng.random() < self.config.reorder:
                self._held = body  # goes out after the next event
                return
            for _ in range(copies):
                self._queue.put((delay, body))
            if self._held is not None:
                self._queue.put((delay, self._held))
                self._held = None

    def flush(self, timeout: float = 30.0) -> bool:
        """Release any held event and wait until everything queued was sent (or failed)."""
        with self._lock:
            if self._held is not None:
                self._queue.put((0.0, self._held))
                self._held = None
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, tuple)
                delay: float = item[0]
                body: bytes = item[1]
                if delay:
                    time.sleep(delay)
                self._post(body)
            finally:
                self._queue.task_done()

    def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/json"}
        if self.config.secret:
            digest = hmac.new(self.config.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Webhook-Signature"] = f"sha256={digest}"
        for attempt in range(self.config.attempts):
            request = urllib.request.Request(self.config.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                if 400 <= exc.code < 500:
                    with self._lock:
                        self.stats.rejected += 1
                    return
            except (urllib.error.URLError, OSError):
                pass
            else:
                raw = json.loads(body)
                with self._lock:
                    self.stats.sent += 1
                    self.stats.delivered_ids.append((raw["jobId"], raw["status"]))
                return
            time.sleep(min(2.0, 0.05 * 2**attempt))
        with self._lock:
            self.stats.failed += 1


def _body(job: SimJob, at_ms: int) -> bytes:
    row: dict[str, Any] = dict(job.render(at_ms, extra_fields=False))
    event = {
        "jobId": row.pop("id"),
        "status": job.status,
        "targetId": row.get("targetId"),
        "type": row.get("type"),
        "metadata": row.get("metadata") or {},
        **{k: v for k, v in row.items() if k not in ("status", "metadata")},
        "updatedAt": iso_ms(at_ms),
        "occurredAt": iso_ms(at_ms),
    }
    return json.dumps(event, separators=(",", ":")).encode()
