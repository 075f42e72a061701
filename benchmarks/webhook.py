"""Webhook receiver benchmark: events per second and acknowledgement latency, durable vs not.

    .venv/bin/python -m benchmarks.webhook [--events 3000] [--concurrency 16] [--runs 3]

Each run starts the receiver (`build_app` on uvicorn, the same code `webhook serve` runs) in its
own process and POSTs `events` job-status events over HTTP/1.1 keep-alive from `concurrency`
concurrent clients (asyncio + httpx), timing each request until its answer. Two variants per run,
alternated, on the same machine:
* durable: every 200 comes after the event is appended and fsync'd in the spool (what ships);
* baseline: the same app and checks, the spool write skipped.
Reports medians over runs of events/s and p50/p99 acknowledgement latency, and the ratio
durable / baseline. The fsync cost depends on the disk (this machine's is what is measured).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from jobs_pipeline.webhook.receiver import ReceiverSettings, build_app

PATH = "/webhook/job-status"


def _serve(port: int, spool: Path, durable: bool) -> None:
    import uvicorn

    app = build_app(ReceiverSettings(spool_dir=spool, durable=durable))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bodies(n: int) -> list[bytes]:
    statuses = ("PENDING", "IN_PROGRESS", "DONE")
    return [
        orjson.dumps(
            {
                "jobId": f"cm{i // 3:08d}",
                "status": statuses[i % 3],
                "type": "IMPORT",
                "targetId": f"fld-{i % 50}",
                "metadata": {"fileCount": i % 17, "source": "batch"},
                "updatedAt": "2026-12-04T12:00:00.000Z",
            }
        )
        for i in range(n)
    ]


async def _fire(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                start = time.perf_counter()
                answer = await client.post(url, content=body, headers={"content-type": "application/json"})
                latencies.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    raise RuntimeError(f"receiver answered {answer.status_code}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began, latencies


def _run(durable: bool, events: int, concurrency: int) -> tuple[float, float, float]:
    port = _free_port()
    with tempfile.TemporaryDirectory(dir=".") as spool:
        cmd = [sys.executable, "-m", "benchmarks.webhook", "--serve", str(port), "--spool", spool]
        if not durable:
            cmd.append("--no-durable")
        server = subprocess.Popen(cmd)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("receiver did not start") from None
                    time.sleep(0.05)
            url = f"http://127.0.0.1:{port}{PATH}"
            asyncio.run(_fire(url, _bodies(200), concurrency))  # warm-up
            elapsed, latencies = asyncio.run(_fire(url, _bodies(events), concurrency))
        finally:
            server.terminate()
            server.wait()
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return events / elapsed, p50 * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spool", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-durable", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.spool, not args.no_durable)
        return
    results: dict[str, list[tuple[float, float, float]]] = {"durable": [], "baseline": []}
    for _ in range(args.runs):
        results["durable"].append(_run(True, args.events, args.concurrency))
        results["baseline"].append(_run(False, args.events, args.concurrency))
    med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in results.items()}
    load = os.getloadavg()
    print(f"events={args.events} concurrency={args.concurrency} runs={args.runs} load={load[0]:.2f}")
    for name, (rate, p50, p99) in med.items():
        print(f"{name:9s} {rate:8.0f} events/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
    d, b = med["durable"], med["baseline"]
    print(f"ratio durable/baseline: throughput {d[0] / b[0]:.2f}x, p99 latency {d[2] / b[2]:.2f}x")


if __name__ == "__main__":
    main()
