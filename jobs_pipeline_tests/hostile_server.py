"""A small HTTP server on 127.0.0.1 that speaks the Jobs API's shape and misbehaves on demand.

Independent of the twin (and of the pipeline): a fixed list of jobs, filtered and paged like
`GET /v1/jobs`, with a `mode` the test sets between syncs to make the server lie in one way:

    good              honest pages, `Date` = the real clock
    date_future       `Date` in 2100 on every response
    date_past         `Date` in 1990 on every response
    immutable         three known jobs come back with another createdAt, type and targetId
    escape            job types carrying terminal escape sequences (clear screen, red)
    huge              a 200 with an endless body (cut off at 300 MB if the client never stops)
    dribble           headers, then the body one byte every 0.2 s
    retry_after_far   429 with a `Retry-After` date in 2100
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MODES = ("good", "date_future", "date_past", "immutable", "escape", "huge", "dribble", "retry_after_far")
ESCAPES = "\x1b[2J\x1b[31m"


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def make_jobs(now: datetime, count: int) -> list[dict[str, Any]]:
    """`count` jobs created over the last two hours, newest first: a third each pending, running, done."""
    jobs = []
    for i in range(count):
        created = now - timedelta(minutes=2) - timedelta(seconds=40 * i)
        status = ("PENDING", "IN_PROGRESS", "DONE")[i % 3]
        row: dict[str, Any] = {
            "id": f"job-{i:04d}",
            "userId": "user-1",
            "targetId": f"doc-{i % 7}",
            "type": "EXTRACTION",
            "status": status,
            "createdAt": iso(created),
            "updatedAt": iso(created + timedelta(seconds=30 if status != "PENDING" else 0)),
        }
        if status != "PENDING":
            row["startedAt"] = iso(created + timedelta(seconds=5))
            row["progress"] = 100 if status == "DONE" else 40
        if status == "DONE":
            row["completedAt"] = iso(created + timedelta(seconds=30))
        jobs.append(row)
    return jobs


class HostileApi:
    def __init__(self, jobs: int = 150) -> None:
        self.mode = "good"
        self.jobs = make_jobs(datetime.now(UTC), jobs)
        self.requests: list[str] = []
        self.authorizations: list[str] = []
        self.bytes_sent = 0
        self.url = ""

    def add_jobs(self, count: int) -> None:
        """`count` new jobs, newer than every job so far."""
        newest = datetime.fromisoformat(self.jobs[0]["createdAt"])
        fresh = make_jobs(newest + timedelta(seconds=40 * count + 121), count)
        for row in fresh:
            row["id"] = row["id"].replace("job-", f"job-{len(self.jobs)}-")
        self.jobs = fresh + self.jobs

    def listed(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        rows = [dict(row) for row in self.jobs]
        if self.mode == "immutable":
            rows[0]["createdAt"] = iso(datetime.fromisoformat(rows[0]["createdAt"]) - timedelta(hours=1))
            rows[1]["type"] = "SUMMARY"
            rows[2]["targetId"] = "doc-elsewhere"
        if self.mode == "escape":
            # New jobs (the type of a known one cannot change: that would be rejected), running for
            # longer than any other so that `watch` lists them first.
            oldest = datetime.fromisoformat(rows[-1]["createdAt"])
            for i in range(5):
                created = iso(oldest - timedelta(minutes=i + 1))
                row = {
                    **rows[-1],
                    "id": f"job-esc-{i}",
                    "type": f"EXTRACTION{ESCAPES}",
                    "status": "IN_PROGRESS",
                }
                row.update(createdAt=created, updatedAt=created, startedAt=created, progress=10)
                row.pop("completedAt", None)
                rows.append(row)
        status = query.get("type", [None])[0]
        target = query.get("targetId", [None])[0]
        rows = [
            r
            for r in rows
            if (status is None or r["status"] == status) and (target is None or r["targetId"] == target)
        ]
        offset = int(query.get("offset", ["0"])[0])
        limit = int(query.get("limit", ["100"])[0])
        return rows[offset : offset + limit]

    def date_header(self) -> str:
        if self.mode == "date_future":
            return format_datetime(datetime(2100, 1, 1, tzinfo=UTC), usegmt=True)
        if self.mode == "date_past":
            return format_datetime(datetime(1990, 1, 1, tzinfo=UTC), usegmt=True)
        return format_datetime(datetime.now(UTC), usegmt=True)


def _handler(api: HostileApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            api.requests.append(self.path)
            api.authorizations.append(self.headers.get("Authorization", ""))
            parts = urlsplit(self.path)
            if parts.path != "/v1/jobs":
                self._send(404, b'{"success":false,"error":"not found"}')
                return
            mode = api.mode
            if mode == "retry_after_far":
                self._send(
                    429,
                    b'{"success":false,"error":"slow down"}',
                    {"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"},
                )
                return
            if mode == "huge":
                self._endless()
                return
            body = json.dumps({"success": True, "data": api.listed(parse_qs(parts.query))}).encode()
            if mode == "dribble":
                self._dribble(body)
                return
            self._send(200, body)

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response_only(status)
            self.send_header("Date", api.date_header())
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            api.bytes_sent += len(body)

        def _endless(self) -> None:
            self.send_response_only(200)
            self.send_header("Date", api.date_header())
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b'{"success":true,"data":[' + b" " * (1 << 16)
            try:
                for _ in range(300 * 16):  # 300 MB at most
                    self.wfile.write(chunk)
                    api.bytes_sent += len(chunk)
            except OSError:
                pass  # the client hung up: what a capped client does
            self.close_connection = True

        def _dribble(self, body: bytes) -> None:
            self.send_response_only(200)
            self.send_header("Date", api.date_header())
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    api.bytes_sent += 1
                    time.sleep(0.2)
            except OSError:
                pass
            self.close_connection = True

    return Handler


@contextmanager
def serve_hostile(api: HostileApi) -> Iterator[HostileApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
