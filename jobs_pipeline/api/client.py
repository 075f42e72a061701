"""`JobsClient`: the typed, read-only HTTP client of GET /v1/jobs.

What it guarantees:
- It only ever sends `GET {base}/v1/jobs`, with validated, never over-cap query values.
- Every request first takes a slot from the process-wide limiter for (base URL, key), so all
  clients of one key stay under the API's budget together.
- Transient faults (429, 500/502/503/504, timeouts, connection errors, malformed bodies) are retried
  with capped exponential backoff and full jitter, and never sooner than a `Retry-After` says.
  Malformed bodies get fewer attempts (3): a server that keeps sending garbage will not heal.
  400/401/403/404 fail fast. A `Retry-After` above 120 s is not honoured by sleeping less: the
  client gives up and says so.
- Failures are typed (`errors.py`) and their messages never contain the key.
- Pages are stamped with the server's `Date` (the 24 h window is the server's) when present; with
  `max_clock_skew_seconds`, a `Date` that far from the local clock fails the request (ClockSkewError).
- Bodies are streamed and capped (`max_body_bytes`); every attempt must finish within
  `request_deadline_seconds`, and with `total_deadline_seconds` the client's whole life (one sync),
  retries and their sleeps included, within that.
- Plain http is refused off loopback (the key would travel in clear) unless `allow_insecure_http`.

Why tenacity: it is in the lock and gives the retry loop (stop, wait, predicate, before-sleep
hook, injectable sleep) as composable parts; the client only supplies the policy: which errors are
transient, how long to wait (jittered backoff floored by Retry-After), and when to stop.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception

from jobs_pipeline import __version__
from jobs_pipeline.api.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ClockSkewError,
    DeadlineExceededError,
    MalformedResponseError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    describe_wait,
    scrub,
    shorten,
)
from jobs_pipeline.api.headers import parse_http_date, parse_retry_after
from jobs_pipeline.api.limiter import RateLimiter, key_fingerprint
from jobs_pipeline.api.models import DEFAULT_RATE_LIMIT_PER_MINUTE, MAX_LIMIT, Page
from jobs_pipeline.api.pagination import SliceWalk
from jobs_pipeline.api.parse import EnvelopeError, extract_records, parse_records
from jobs_pipeline.api.query import jobs_query
from jobs_pipeline.api.shared_budget import key_rate_limiter, state_dir_from_env

logger = logging.getLogger("jobs_pipeline.api")

DEFAULT_BASE_URL = "https://api.devana.ai"
JOBS_PATH = "/v1/jobs"
DEFAULT_USER_AGENT = f"jobs-pipeline/{__version__} (read-only archiver)"
RETRYABLE_SERVER_STATUSES = frozenset({500, 502, 503, 504})
# Longest Retry-After the client will honour; beyond it, giving up beats a silent 10-minute stall.
RETRY_AFTER_CAP_SECONDS = 120.0
# Garbage bodies are retried a little (a proxy hiccup), not for the full budget.
MALFORMED_MAX_ATTEMPTS = 3
# A full page (100 rows) is a few hundred KB at most; 32 MiB is far above any honest answer and far
# below what would hurt the machine. Bodies are streamed and cut off at the cap, never held whole.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
# How far the server's `Date` may stray from this machine's clock before nothing it says is archived
# (the archiver's default; the client alone checks nothing unless told, since a twin on simulated
# time is a legitimate server for reading).
DEFAULT_MAX_CLOCK_SKEW_SECONDS = 300.0
# Every byte of one attempt must arrive within this: the read timeout alone never trips on a server
# that dribbles one byte per second.
DEFAULT_REQUEST_DEADLINE_SECONDS = 60.0


class JobsClient:
    """Read-only client of the Devana Jobs API. Use as a context manager, or call `close()`.

    Counters (for sync summaries and benchmarks), cumulative over the client's life:
    `requests_sent` (HTTP attempts, including failed ones), `responses_429`, `retries` (sleeps
    between attempts), `pages` (pages returned to the caller), `rate_limit_wait_seconds` (time
    spent waiting for the shared limiter).

    `limiter` and `rng` are for tests: a limiter on a fake clock, a seeded jitter source.
    The underlying httpx.Client is thread-safe, but the counters are plain ints: give each
    thread its own client (they still share one limiter) if exact counts matter.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        rate_limit: int = DEFAULT_RATE_LIMIT_PER_MINUTE,
        rate_window_seconds: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = DEFAULT_USER_AGENT,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
        rate_state_dir: Path | Literal["env"] | None = "env",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_clock_skew_seconds: float | None = None,
        request_deadline_seconds: float = DEFAULT_REQUEST_DEADLINE_SECONDS,
        total_deadline_seconds: float | None = None,
        allow_insecure_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = checked_base_url(base_url, allow_insecure_http=allow_insecure_http)
        _check_api_key(api_key)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if backoff_base < 0 or backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must not be negative")
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
        if max_clock_skew_seconds is not None and not max_clock_skew_seconds > 0:
            raise ValueError(f"max_clock_skew_seconds must be positive, got {max_clock_skew_seconds}")
        if not request_deadline_seconds > 0:
            raise ValueError(f"request_deadline_seconds must be positive, got {request_deadline_seconds}")
        if total_deadline_seconds is not None and not total_deadline_seconds > 0:
            raise ValueError(f"total_deadline_seconds must be positive, got {total_deadline_seconds}")
        self.max_body_bytes = max_body_bytes
        self.max_clock_skew_seconds = max_clock_skew_seconds
        self.request_deadline_seconds = request_deadline_seconds
        self.total_deadline_seconds = total_deadline_seconds
        self._clock = clock
        # The client's whole life (one sync) counts against the total deadline, retries included.
        self._total_deadline = None if total_deadline_seconds is None else clock() + total_deadline_seconds
        self._api_key = api_key
        self.key_fingerprint = key_fingerprint(api_key)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._rng = rng or random.Random()
        # One budget per key across processes (sync, watch, wait, Dagster runs): see shared_budget.
        state_dir = state_dir_from_env() if rate_state_dir == "env" else rate_state_dir
        self.limiter: RateLimiter = limiter or key_rate_limiter(
            self.base_url, api_key, rate_limit, rate_window_seconds, state_dir
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            timeout=httpx.Timeout(timeout),
            transport=transport,
            # A redirect means a wrong base URL; report it rather than follow it with the key.
            follow_redirects=False,
        )
        self.requests_sent = 0
        self.responses_429 = 0
        self.retries = 0
        self.pages = 0
        self.rate_limit_wait_seconds = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JobsClient(base_url={self.base_url!r}, key_fingerprint={self.key_fingerprint!r})"

    # -- public API --------------------------------------------------------------------------

    def list_jobs(
        self,
        *,
        status: str | None = None,
        target_id: str | None = None,
        limit: int = MAX_LIMIT,
        offset: int = 0,
    ) -> Page:
        """One page of GET /v1/jobs (newest first), retried on transient faults.

        `status` is sent as the API's (misnamed) `type` parameter and must be PENDING, IN_PROGRESS,
        DONE or ERROR. Raises ValueError before sending anything for over-cap or invalid values,
        and an `ApiError` subclass when the API cannot answer.
        """
        params = jobs_query(status=status, target_id=target_id, limit=limit, offset=offset)
        page = self._with_retries(lambda: self._fetch_once(params, status, target_id, limit, offset))
        self.pages += 1
        return page

    def iter_slice(
        self,
        *,
        status: str | None = None,
        target_id: str | None = None,
        page_size: int = MAX_LIMIT,
        start_offset: int = 0,
    ) -> SliceWalk:
        """Pages of one slice until a short page or the offset cap; see `pagination.SliceWalk`."""
        return SliceWalk(
            self, status=status, target_id=target_id, page_size=page_size, start_offset=start_offset
        )

    # -- retry policy ------------------------------------------------------------------------

    def _with_retries(self, fetch: Callable[[], Page]) -> Page:
        attempts = 0
        malformed = 0

        def attempt() -> Page:
            nonlocal attempts, malformed
            attempts += 1
            try:
                return fetch()
            except MalformedResponseError:
                malformed += 1
                raise

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.max_attempts:
                return True
            # Retries count against the sync's deadline: never sleep past it (tenacity computes
            # the wait before asking whether to stop).
            deadline = self._total_deadline
            if deadline is not None and self._clock() + state.upcoming_sleep >= deadline:
                return True
            failure = state.outcome.exception() if state.outcome else None
            return isinstance(failure, MalformedResponseError) and malformed >= MALFORMED_MAX_ATTEMPTS

        retrying = Retrying(
            stop=stop,
            wait=self._backoff,
            retry=retry_if_exception(lambda exc: isinstance(exc, ApiError) and exc.retryable),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except ApiError as exc:
            exc.attempts = attempts
            raise

    def _backoff(self, state: RetryCallState) -> float:
        """Full jitter over a capped exponential, floored by the server's Retry-After."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
        wait = self._rng.uniform(0.0, ceiling)
        failure = state.outcome.exception() if state.outcome else None
        retry_after = getattr(failure, "retry_after", None)
        if isinstance(retry_after, float | int):
            wait = max(wait, float(retry_after))
        return wait

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        failure = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.info(
            "retrying in %.2f s (attempt %d/%d failed): %s",
            wait,
            state.attempt_number,
            self.max_attempts,
            failure,
        )

    # -- one HTTP exchange -------------------------------------------------------------------

    def _fetch_once(
        self, params: dict[str, str], status: str | None, target_id: str | None, limit: int, offset: int
    ) -> Page:
        grant = self.limiter.acquire()
        self.rate_limit_wait_seconds += grant.waited
        try:
            request = self._http.build_request("GET", JOBS_PATH, params=params)
            target = request.url.raw_path.decode("ascii", errors="replace")
            started = time.perf_counter()
            deadline = self._attempt_deadline()
            self.requests_sent += 1
            try:
                response = self._http.send(request, stream=True)
                try:
                    body = self._read_body(response, target, deadline)
                finally:
                    response.close()
            except httpx.TimeoutException as exc:
                self._log_exchange(target, type(exc).__name__, started)
                raise NetworkError(
                    f"no response from the API within {self.timeout:g} s ({type(exc).__name__})",
                    target=target,
                ) from None  # the httpx cause holds the request, Authorization header included
            except httpx.RequestError as exc:
                self._log_exchange(target, type(exc).__name__, started)
                detail = scrub(shorten(str(exc) or type(exc).__name__), self._api_key)
                raise NetworkError(
                    f"could not talk to the API ({type(exc).__name__}: {detail})", target=target
                ) from None  # the httpx cause holds the request, Authorization header included
            self._log_exchange(target, str(response.status_code), started)
            if response.is_success:
                return self._page(response, body, target, status, target_id, limit, offset)
            raise self._failure(response, body, target)
        finally:
            self.limiter.settle(grant)

    def _attempt_deadline(self) -> float:
        """The monotonic instant by which this attempt's last byte must have arrived."""
        deadline = self._clock() + self.request_deadline_seconds
        if self._total_deadline is None:
            return deadline
        if self._clock() >= self._total_deadline:
            raise DeadlineExceededError(
                f"the sync's deadline of {self.total_deadline_seconds:g} s has passed: "
                "the API is too slow to finish within one poll interval"
            )
        return min(deadline, self._total_deadline)

    def _read_body(self, response: httpx.Response, target: str, deadline: float) -> bytes:
        """The body, streamed: cut off past `max_body_bytes` or past the deadline."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large(target, response.status_code, f"it declares {int(declared):,} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large(target, response.status_code, f"more than {size:,} bytes so far")
            chunks.append(chunk)
            if self._clock() > deadline:
                raise self._too_slow(target, response.status_code, size, deadline)
        return b"".join(chunks)

    def _too_large(self, target: str, status: int, seen: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the API's response is larger than the {self.max_body_bytes:,}-byte cap ({seen}): "
            "not a page of jobs; nothing archived",
            target=target,
            status=status,
        )

    def _too_slow(self, target: str, status: int, size: int, deadline: float) -> DeadlineExceededError:
        if self._total_deadline is not None and deadline >= self._total_deadline:
            what = f"the sync's deadline of {self.total_deadline_seconds:g} s"
        else:
            what = f"the {self.request_deadline_seconds:g} s deadline of one request"
        error = DeadlineExceededError(
            f"the API's response did not finish within {what} ({size:,} bytes received): "
            "a stalled or dribbling server",
            target=target,
            status=status,
        )
        # One slow answer may be a hiccup: retried, within the sync's deadline, like a timeout.
        error.retryable = self._total_deadline is None or deadline < self._total_deadline
        return error

    def _page(
        self,
        response: httpx.Response,
        body: bytes,
        target: str,
        status: str | None,
        target_id: str | None,
        limit: int,
        offset: int,
    ) -> Page:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise MalformedResponseError(
                f"the API's response body is not valid JSON (truncated? {len(body)} bytes)",
                target=target,
                status=response.status_code,
            ) from None  # the decoder's cause keeps the whole body, which a server may fill with the key
        try:
            records = extract_records(payload)
        except EnvelopeError as exc:
            # `from None`: the cause holds the server's words unscrubbed (a server may echo the key);
            # the message below carries them, scrubbed.
            raise MalformedResponseError(
                f"the API's response lacks the expected envelope: {scrub(shorten(str(exc)), self._api_key)}",
                target=target,
                status=response.status_code,
            ) from None
        jobs, rejects = parse_records(records)
        if rejects:
            logger.info("%s: %d of %d records rejected", target, len(rejects), len(records))
        observed_at, clock_source = self._observation_time(response, target)
        return Page(
            jobs=jobs,
            rejects=rejects,
            observed_at=observed_at,
            clock_source=clock_source,
            status=status,
            target_id=target_id,
            offset=offset,
            limit=limit,
            row_count=len(records),
        )

    def _failure(self, response: httpx.Response, body: bytes, target: str) -> ApiError:
        code = response.status_code
        said = self._server_message(body)
        if code == 429:
            self.responses_429 += 1
            return self._rate_limited(response, target, said)
        if code in (401, 403):
            return AuthError(
                f"the API rejected the key ({code}): check DEVANA_API_KEY",
                target=target,
                status=code,
                server_message=said,
            )
        if code == 400:
            return BadRequestError(
                "the API refused the query (400)", target=target, status=code, server_message=said
            )
        if code == 404:
            return NotFoundError(
                f"the API has no {JOBS_PATH} at {self.base_url} (404): check the base URL",
                target=target,
                status=code,
                server_message=said,
            )
        if code >= 500:
            retryable = code in RETRYABLE_SERVER_STATUSES
            retry_after = self._retry_after(response) if retryable else None
            summary = f"the API failed ({code})"
            if retry_after is not None and retry_after > RETRY_AFTER_CAP_SECONDS:
                retryable = False  # never sleep less than the server asked; give up instead
                summary += (
                    f"; it asks to wait {describe_wait(retry_after)}, more than the "
                    f"{RETRY_AFTER_CAP_SECONDS:.0f} s this client will wait: try again later"
                )
            return ServerError(
                summary,
                retryable=retryable,
                retry_after=retry_after,
                target=target,
                status=code,
                server_message=said,
            )
        if response.is_redirect:
            location = scrub(response.headers.get("location", "?"), self._api_key)
            summary = f"the API redirected to {location!r} ({code}): check the base URL (http vs https?)"
        else:
            summary = f"unexpected answer from the API ({code})"
        return ApiError(summary, target=target, status=code, server_message=said)

    def _rate_limited(self, response: httpx.Response, target: str, said: str | None) -> RateLimitedError:
        retry_after = self._retry_after(response)
        if retry_after is not None and retry_after > RETRY_AFTER_CAP_SECONDS:
            # Never sleep less than the server asked: when it asks too much, give up and say so.
            limited = RateLimitedError(
                f"rate limited by the API; it asks to wait {describe_wait(retry_after)}, more than the "
                f"{RETRY_AFTER_CAP_SECONDS:.0f} s this client will wait: try again later",
                retry_after=retry_after,
                target=target,
                server_message=said,
            )
            limited.retryable = False
            return limited
        if retry_after is not None:
            # One 429 slows every process using this key, not just this request's retry.
            self.limiter.pause(retry_after)
        advice = f"Retry-After {retry_after:g} s" if retry_after is not None else "no Retry-After"
        return RateLimitedError(
            f"rate limited by the API ({advice})",
            retry_after=retry_after,
            target=target,
            server_message=said,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _server_message(self, body: bytes) -> str | None:
        """The server's own words: `error`/`message` of a JSON body, else the start of the text."""
        text = body.decode("utf-8", errors="replace")
        message: str = text
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            pass
        else:
            if isinstance(payload, dict):
                for field in ("error", "message"):
                    candidate = payload.get(field)
                    if isinstance(candidate, str) and candidate:
                        message = candidate
                        break
        message = scrub(shorten(message), self._api_key)
        return message or None

    def _retry_after(self, response: httpx.Response) -> float | None:
        server_now = parse_http_date(response.headers.get("date")) or datetime.now(UTC)
        return parse_retry_after(response.headers.get("retry-after"), server_now)

    def _observation_time(self, response: httpx.Response, target: str) -> tuple[datetime, str]:
        local_now = datetime.now(UTC)
        server_now = parse_http_date(response.headers.get("date"))
        if server_now is None:
            return local_now, "local"
        skew = (server_now - local_now).total_seconds()
        if self.max_clock_skew_seconds is not None and abs(skew) > self.max_clock_skew_seconds:
            # Every row of the sync would be dated by this clock (and the 24 h window measured on
            # it): a clock that jumped would mark listed jobs as expired. Refuse, write nothing.
            direction = "ahead of" if skew > 0 else "behind"
            raise ClockSkewError(
                f"the API's clock (Date: {server_now:%Y-%m-%d %H:%M:%S} UTC) is {describe_wait(abs(skew))} "
                f"{direction} this machine's, beyond the {self.max_clock_skew_seconds:g} s allowed: "
                "nothing archived (fix either clock, or raise the allowed skew)",
                target=target,
                status=response.status_code,
            )
        return server_now, "server"

    @staticmethod
    def _log_exchange(target: str, outcome: str, started: float) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug("GET %s -> %s in %.1f ms", target, outcome, elapsed_ms)


def checked_base_url(base_url: str, *, allow_insecure_http: bool = False) -> str:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:  # not a ValueError: callers expect one for a bad setting
        raise ValueError(f"base_url is not a valid URL ({exc}), got {base_url!r}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL like {DEFAULT_BASE_URL!r}, got {base_url!r}")
    if url.query or url.fragment:
        raise ValueError(f"base_url must not carry a query or fragment, got {base_url!r}")
    if url.scheme == "http" and not allow_insecure_http and not is_loopback_host(url.host):
        raise ValueError(
            f"refusing to send the API key in clear text to {base_url!r}: use https, "
            "or pass --allow-insecure-http (JOBS_PIPELINE_ALLOW_INSECURE_HTTP=1) if you must"
        )
    return base_url.rstrip("/")


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback address: plain http never leaves the machine."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check_api_key(api_key: str) -> None:
    # Never echo the key in these messages: it may be a real one pasted with a typo.
    if not isinstance(api_key, str) or not api_key:
        raise ValueError("the API key is empty: set DEVANA_API_KEY")
    if api_key != api_key.strip() or any(not char.isprintable() or char.isspace() for char in api_key):
        raise ValueError("the API key contains whitespace or control characters: check DEVANA_API_KEY")
