"""When spontaneous jobs are created: a daily-cycle Poisson process plus scripted bursts.

Each stream is generated lazily and in order with its own seeded RNG, so the arrivals are the
same however the clock is stepped (one day at once or a second at a time), and the twin can
run for days without generating ahead more than one arrival per stream.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from jobs_pipeline.twin.config import Burst
from jobs_pipeline.twin.timefmt import MS_PER_DAY, MS_PER_HOUR, seconds_to_ms, to_ms

POISSON_STREAM = 0


@dataclass(frozen=True, slots=True)
class Arrival:
    """A spontaneous job creation. `kind`: "root" (regular load), "burst" or "burst_import"."""

    at_ms: int
    stream: int
    index: int
    kind: str
    job_type: str | None = None

    @property
    def key(self) -> tuple[int, int, int, int]:
        # Arrivals sort after every other event of the same millisecond (priority 9).
        return (self.at_ms, 9, self.stream, self.index)


class DailyCycle:
    """rate(t) = mean * (1 + amplitude * cos(2π (hour_utc - peak_hour) / 24)), jobs per ms."""

    def __init__(self, jobs_per_day: float, amplitude: float, peak_hour_utc: float) -> None:
        self.mean_per_ms = jobs_per_day / MS_PER_DAY
        self.amplitude = amplitude
        self.peak_ms = peak_hour_utc * MS_PER_HOUR

    def rate(self, at_ms: float) -> float:
        phase = 2 * math.pi * ((at_ms - self.peak_ms) % MS_PER_DAY) / MS_PER_DAY
        return self.mean_per_ms * (1 + self.amplitude * math.cos(phase))

    @property
    def peak_rate(self) -> float:
        return self.mean_per_ms * (1 + self.amplitude)


def poisson_arrivals(cycle: DailyCycle, start_ms: int, seed: int) -> Iterator[Arrival]:
    """Non-homogeneous Poisson arrivals by thinning a homogeneous process at the peak rate."""
    rng = random.Random(seed * 7_919 + 1)
    peak = cycle.peak_rate
    at = float(start_ms)
    index = 0
    while True:
        at += rng.expovariate(peak)
        if rng.random() * peak <= cycle.rate(at):
            yield Arrival(int(at), POISSON_STREAM, index, "root")
            index += 1


def burst_arrivals(burst: Burst, stream: int, seed: int) -> Iterator[Arrival]:
    """One IMPORT on a folder at the burst's start, then `count` jobs spread over the window."""
    rng = random.Random(seed * 104_729 + stream)
    start = to_ms(burst.at)
    width = max(1, seconds_to_ms(burst.within_seconds))
    yield Arrival(start, stream, 0, "burst_import", "IMPORT")
    offsets = sorted(rng.randrange(width) for _ in range(burst.count))
    for index, offset in enumerate(offsets, start=1):
        yield Arrival(start + offset, stream, index, "burst", burst.job_type)


class ArrivalQueue:
    """Merges the streams in (time, stream, index) order with a one-item lookahead per stream."""

    def __init__(self, streams: list[Iterator[Arrival]], not_before_ms: int) -> None:
        self._heads: list[tuple[tuple[int, int, int, int], Arrival, Iterator[Arrival]]] = []
        for stream in streams:
            # Bursts scheduled before the simulation starts are skipped (they predate the twin).
            for arrival in stream:
                if arrival.at_ms >= not_before_ms:
                    self._heads.append((arrival.key, arrival, stream))
                    break
        heapq.heapify(self._heads)

    def peek_key(self) -> tuple[int, int, int, int] | None:
        return self._heads[0][0] if self._heads else None

    def pop(self) -> Arrival:
        _, arrival, stream = self._heads[0]
        following = next(stream, None)
        if following is None:
            heapq.heappop(self._heads)
        else:
            heapq.heapreplace(self._heads, (following.key, following, stream))
        return arrival
