"""HTTP responses as plain values, built by the twin and written by the server.

Keeping them socket-free means every API rule can be decided (and unit-tested) without I/O;
the server only adds the wire-level faults (stall, reset, truncation) a response asks for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from jobs_pipeline.twin.timefmt import MS_PER_SECOND, http_date

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Wire fault for the server to apply: None, "timeout", "reset" or "truncated".
    delivery: str | None = None
    stall_seconds: float = 0.0

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def dumps(payload: Any) -> bytes:
    # UTF-8 on the wire like the real API; control characters are still \u-escaped by json.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(
        status,
        dumps(payload),
        [("Content-Type", JSON_CONTENT_TYPE), *(headers or [])],
    )


def error_response(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(status, {"success": False, "error": message}, headers)


def page_response(rows: list[Any]) -> Response:
    return json_response(200, {"success": True, "data": rows})


def proxy_502() -> Response:
    """What a load balancer in front of the API sends: HTML, not the JSON envelope."""
    body = (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(502, body, [("Content-Type", "text/html")])


def retry_after(fmt: str, wait_seconds: int, now_ms: int) -> list[tuple[str, str]]:
    """The Retry-After header in one format: delta-seconds, an HTTP-date, or nothing.

    The HTTP-date is on the twin clock (like the Date header), so `Retry-After - Date` is the
    wait; a client that subtracts its own clock instead gets it wrong, as it would in real life.
    """
    if fmt == "seconds":
        return [("Retry-After", str(wait_seconds))]
    if fmt == "http-date":
        second = now_ms // MS_PER_SECOND * MS_PER_SECOND
        return [("Retry-After", http_date(second + wait_seconds * MS_PER_SECOND))]
    return []
