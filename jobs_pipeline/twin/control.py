"""The twin's own endpoints under /_twin/, for driving a twin that runs in another process.

Not part of the vendor API: no auth (loopback only), no rate limit, no faults, not logged.
  GET  /_twin/truth                  ground truth (the same list as `twin.ground_truth()`)
  GET  /_twin/requests               the request log (`twin.requests` as JSON objects)
  GET  /_twin/status                 clock, worker pool and store sizes
  POST /_twin/advance?seconds=N      move a stepped clock forward (409 on other clocks)
  POST /_twin/faults?kind=K&n=N      script the next N API requests to fail with K
"""

from __future__ import annotations

import math
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from jobs_pipeline.twin.clock import SteppedClock
from jobs_pipeline.twin.config import FAULT_KINDS
from jobs_pipeline.twin.responses import Response, error_response, json_response
from jobs_pipeline.twin.timefmt import iso_ms, to_ms
from jobs_pipeline.twin.twin import Twin


def _number(params: dict[str, list[str]], name: str) -> float:
    raw = params.get(name, [""])[0]
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"'{name}' must be a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"'{name}' must be a finite number >= 0")
    return value


def handle_control(twin: Twin, method: str, target: str) -> Response:
    split = urlsplit(target)
    params = parse_qs(split.query, keep_blank_values=True)
    route = (method, split.path)
    try:
        if route == ("GET", "/_twin/truth"):
            return json_response(200, twin.ground_truth())
        if route == ("GET", "/_twin/requests"):
            return json_response(200, [record.as_json() for record in twin.requests])
        if route == ("GET", "/_twin/status"):
            return json_response(200, twin.stats())
        if route == ("POST", "/_twin/advance"):
            if not isinstance(twin.clock, SteppedClock):
                return error_response(409, "the twin's clock is not stepped: it cannot be advanced")
            now = twin.clock.advance(timedelta(seconds=_number(params, "seconds")))
            twin.tick()
            return json_response(200, {"success": True, "now": iso_ms(to_ms(now))})
        if route == ("POST", "/_twin/faults"):
            kind = params.get("kind", [""])[0]
            if kind not in FAULT_KINDS:
                return error_response(400, f"'kind' must be one of {', '.join(FAULT_KINDS)}")
            count = _number(params, "n") if "n" in params else 1.0
            twin.faults.fail_next(int(count), kind)
            return json_response(200, {"success": True, "scripted": list(twin.faults.scripted)})
    except ValueError as exc:
        return error_response(400, str(exc))
    return error_response(404, f"Cannot {method} {split.path}")
