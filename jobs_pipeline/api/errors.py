"""Typed failures of the Jobs API, with messages a person can act on.

Every message names what was asked (method, path and query), what came back (status) and what the
server said, so a log line alone is enough to diagnose. The API key never appears: the client only
passes text through `scrub` before it reaches an exception, and the key travels in a header that no
message or log line ever prints.
"""

from __future__ import annotations

SCRUBBED = "***"
# Server bodies can be whole HTML error pages; a message needs the gist, not the page.
MAX_SERVER_MESSAGE_CHARS = 300


def scrub(text: str, secret: str) -> str:
    """Remove `secret` from `text` (servers sometimes echo the Authorization header back)."""
    if not secret:
        return text
    return text.replace(secret, SCRUBBED)


def shorten(text: str, limit: int = MAX_SERVER_MESSAGE_CHARS) -> str:
    """Collapse whitespace and cut long server text so a message stays one readable line."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


class ApiError(Exception):
    """Base of every Jobs API failure.

    `retryable` says whether the client's retry loop may try again (transient faults); the client
    sets `attempts` on the error it finally raises so the message says how hard it tried.
    """

    retryable: bool = False

    def __init__(
        self,
        summary: str,
        *,
        method: str = "GET",
        target: str = "",
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        self.summary = summary
        self.method = method
        self.target = target  # path + query, e.g. "/v1/jobs?type=DONE&limit=100&offset=0"
        self.status = status
        self.server_message = server_message
        self.attempts = 1
        super().__init__(summary)

    def __str__(self) -> str:
        where = f"{self.method} {self.target}".strip()
        if self.status is not None:
            where += f" -> {self.status}"
        parts = [self.summary]
        if where:
            parts.append(f"[{where}]")
        if self.server_message:
            parts.append(f"server said: {self.server_message!r}")
        if self.attempts > 1:
            parts.append(f"(gave up after {self.attempts} attempts)")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class AuthError(ApiError):
    """401/403: the key is missing, wrong, revoked or not allowed. Retrying cannot help."""


class BadRequestError(ApiError):
    """400: the server refused the query; `server_message` says why."""


class NotFoundError(ApiError):
    """404: almost always a wrong base URL (the endpoint itself does not exist there)."""


class RateLimitedError(ApiError):
    """429: over the API's request budget. `retry_after` is the wait the server asked for, in seconds."""

    retryable = True

    def __init__(
        self,
        summary: str,
        *,
        retry_after: float | None = None,
        method: str = "GET",
        target: str = "",
        status: int | None = 429,
        server_message: str | None = None,
    ) -> None:
        super().__init__(summary, method=method, target=target, status=status, server_message=server_message)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the API failed. 500/502/503/504 are retried; others (501, 505, ...) are not transient."""

    def __init__(
        self,
        summary: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        method: str = "GET",
        target: str = "",
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(summary, method=method, target=target, status=status, server_message=server_message)
        self.retryable = retryable
        self.retry_after = retry_after


class NetworkError(ApiError):
    """No usable HTTP response: timeout, refused or reset connection, body cut short."""

    retryable = True


class MalformedResponseError(ApiError):
    """A 2xx whose body is not JSON, is truncated, or lacks the `{"success": true, "data": [...]}` envelope.

    Retried a few times (a proxy hiccup or a half-written body are transient), then raised.
    """

    retryable = True


class ClockSkewError(ApiError):
    """The server's `Date` is too far from this machine's clock or from the archive's last server
    time. Retrying cannot help, and archiving with it would date every row wrongly (and could mark
    listed jobs as expired), so the sync fails and writes nothing."""


class ResponseTooLargeError(ApiError):
    """A body larger than the client's cap: it was cut off while streaming, never held whole."""


class DeadlineExceededError(ApiError):
    """A request (all its bytes) or the whole sync took longer than its deadline."""


def describe_wait(seconds: float) -> str:
    """A wait a person can read: "45 s", "600 s (10 min)", "90000 s (25.0 h)", "more than a year"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds >= 365 * 86400:
        # A Retry-After decades ahead is a broken server, not advice: a count of seconds says nothing.
        return "more than a year"
    if seconds < 7200:
        human = f"{seconds / 60:.0f} min"
    elif seconds < 2 * 86400:
        human = f"{seconds / 3600:.1f} h"
    else:
        human = f"{seconds / 86400:.0f} days"
    return f"{seconds:.0f} s ({human})"
