"""The webhook receiver: a Starlette app that spools job-status events durably.

Answers (in this order of checks):
* 404/405 off the configured path or for another method than POST;
* 401 when a secret is configured and the signature/token is missing or wrong (nothing stored:
  an unauthenticated sender must not be able to fill the disk);
* 413 when the body exceeds `max_body_bytes` (checked on Content-Length and while reading);
* 415 unless Content-Type is application/json;
* 400 for a body that is not a job-status event: the body and the reason are spooled as a reject
  (the next sync records it in `rejected_records`);
* 200 once the event is fsync'd in the spool. No DuckDB on the request path.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from jobs_pipeline.webhook.auth import Authenticator
from jobs_pipeline.webhook.events import EventError, parse_event
from jobs_pipeline.webhook.spool import KIND_EVENT, KIND_REJECT, SpoolWriter

DEFAULT_PATH = "/webhook/job-status"
DEFAULT_MAX_BODY_BYTES = 256 * 1024

log = logging.getLogger(__name__)


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class ReceiverSettings:
    spool_dir: Path
    path: str = DEFAULT_PATH
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    auth: Authenticator | None = None
    # False only for the benchmark's baseline: same app, no spool write.
    durable: bool = True


def build_app(settings: ReceiverSettings) -> Starlette:
    writer = SpoolWriter(settings.spool_dir) if settings.durable else None
    # The spool write runs on a worker thread (fsync blocks); the writer serialises appends.
    limiter = anyio.CapacityLimiter(8)

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            return PlainTextResponse("body too large", status_code=413)
        try:
            body = await _read_bounded(request, settings.max_body_bytes)
        except _TooLarge:
            return PlainTextResponse("body too large", status_code=413)
        if settings.auth is not None and not settings.auth.check(request.headers, body):
            return PlainTextResponse("missing or wrong signature", status_code=401)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return PlainTextResponse("Content-Type must be application/json", status_code=415)
        try:
            event = parse_event(body)
        except EventError as exc:
            if writer is not None:
                await anyio.to_thread.run_sync(_append, writer, KIND_REJECT, body, str(exc), limiter=limiter)
            return JSONResponse({"error": str(exc)}, status_code=400)
        if writer is not None:
            await anyio.to_thread.run_sync(_append, writer, KIND_EVENT, body, None, limiter=limiter)
        return JSONResponse({"ok": True, "jobId": event.job_id})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if writer is not None:
                writer.close()

    return Starlette(routes=[Route(settings.path, receive, methods=["POST"])], lifespan=lifespan)


def _append(writer: SpoolWriter, kind: str, body: bytes, reason: str | None) -> None:
    writer.append(kind, body, reason=reason)


async def _read_bounded(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
