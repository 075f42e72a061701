"""The webhook spool: an fsync'd, append-only queue of received events beside the archive.

Why a spool and not a DuckDB write: the archive has one writer (the sync, under its flock), and
the receiver must answer fast and keep answering during a sync. So the receiver only appends one
JSON line per request to a segment file and fsyncs it before answering 200: once acknowledged, an
event survives a crash (kill -9, power loss after the fsync). The next sync drains the spool into
the archive inside its own transaction (`archive/webhook_merge.py`).

Layout, for `--db demo-output/archive.duckdb`:

    demo-output/.archive.duckdb.webhook/<tenant>/segment-<start>-<pid>.jsonl

* A receiver holds an exclusive flock on the segment it appends to, for as long as it runs, and
  starts a new segment when the current one passes `SEGMENT_BYTES`.
* A drain reads every segment. A segment nobody holds (its receiver moved on, exited or was
  killed) is removed once the sync that applied it has COMMITTED (`Drain.discard_applied`); for
  the segment still being written, `segment-....applied` notes how many bytes were applied, and the
  next drain starts there. Should a line be read twice anyway, the archive remembers every
  record's key (`webhook_events`) and applies it once.
* A torn last line (a crash in the middle of a write, never acknowledged) is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

SEGMENT_BYTES = 64 * 1024 * 1024
KIND_EVENT = "event"
KIND_REJECT = "reject"


DEFAULT_TENANT = "default"


def spool_dir_for(db_path: str | os.PathLike[str], tenant: str = DEFAULT_TENANT) -> Path:
    """The spool directory of one tenant of the archive whose published path is `db_path`
    (the receiver cannot tell tenants apart: run one per tenant, each with its own URL)."""
    if not tenant or "/" in tenant or tenant.startswith(".") or "\0" in tenant:
        raise ValueError(f"a tenant name cannot be used as a directory name: {tenant!r}")
    published = Path(db_path).expanduser().absolute()
    return published.parent / f".{published.name}.webhook" / tenant


def record_key(body: bytes) -> str:
    """A record's identity: the hash of the body as received (a duplicate delivery has the same)."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    key: str
    kind: str  # KIND_EVENT or KIND_REJECT
    received_at: datetime
    body: str  # the request body as received (UTF-8, invalid bytes replaced)
    reason: str | None = None  # why it was rejected (KIND_REJECT only)
    segment: Path | None = field(default=None, compare=False)


class SpoolWriter:
    """Appends records durably; thread-safe (the receiver calls it from a worker thread)."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._size = 0
        directory.mkdir(parents=True, exist_ok=True)

    def append(self, kind: str, body: bytes, *, reason: str | None = None) -> SpoolRecord:
        """Write one record and fsync it; returns once the record is on disk."""
        received = datetime.now(UTC)
        record = SpoolRecord(
            key=record_key(body),
            kind=kind,
            received_at=received,
            body=body.decode("utf-8", errors="replace"),
            reason=reason,
        )
        line = orjson.dumps(
            {
                "key": record.key,
                "kind": kind,
                "received_at": received.isoformat(),
                "reason": reason,
                "body": record.body,
            }
        )
        with self._lock:
            handle = self._segment()
            handle.write(line + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
            self._size += len(line) + 1
        return record

    def _segment(self) -> IO[bytes]:
        if self._file is not None and self._size < self.segment_bytes:
            return self._file
        self.close_segment()
        name = f"segment-{time.time_ns():020d}-{os.getpid()}"
        # Locked under a name no drain looks at, then renamed: a drain can never find the new
        # segment unlocked, take it for an abandoned one and remove it under the receiver.
        making = self.directory / f".{name}.new"
        handle = open(making, "ab")  # noqa: SIM115 - held open for the segment's life
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        os.replace(making, self.directory / f"{name}.jsonl")
        # The new name must survive a crash too: fsync the directory entry once per segment.
        _fsync_dir(self.directory)
        self._file, self._size = handle, 0
        return handle

    def close_segment(self) -> None:
        if self._file is not None:
            self._file.close()  # releases the flock: the segment may now be discarded once applied
            self._file = None

    def close(self) -> None:
        with self._lock:
            self.close_segment()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Drain:
    """What one drain read: the records, and which segments are no longer being written."""

    records: list[SpoolRecord]
    idle_segments: list[Path]
    # Segments still being written: how far (bytes, whole lines) this drain read them.
    read_up_to: dict[Path, int] = field(default_factory=dict)
    _locks: list[IO[bytes]] = field(default_factory=list, repr=False)

    def discard_applied(self) -> None:
        """Remove the idle segments and note how far the others were applied (call only after
        the archive transaction has committed)."""
        for path in self.idle_segments:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(FileNotFoundError):
                _applied_marker(path).unlink()
        for path, offset in self.read_up_to.items():
            # Not fsync'd: losing it only means the next drain reads those lines again, and the
            # archive skips what it already holds (webhook_events).
            marker = _applied_marker(path)
            temp = marker.with_name(marker.name + ".tmp")
            temp.write_text(str(offset), encoding="ascii")
            os.replace(temp, marker)
        self.release()

    def release(self) -> None:
        for handle in self._locks:
            handle.close()
        self._locks.clear()


def read_spool(directory: Path) -> Drain:
    """Read every record of the spool. Idle segments stay locked by the Drain until released, so
    no receiver can reopen them (receivers only ever create new segments anyway)."""
    drain = Drain(records=[], idle_segments=[])
    if not directory.is_dir():
        return drain
    for path in sorted(directory.glob("segment-*.jsonl")):
        handle = open(path, "rb")  # noqa: SIM115 - kept while the drain holds its lock
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            idle = False
        else:
            idle = True
        start = _applied_offset(path)
        handle.seek(start)
        data = handle.read()
        drain.records.extend(_parse_segment(data, path))
        if idle:
            drain.idle_segments.append(path)
            drain._locks.append(handle)
        else:
            drain.read_up_to[path] = start + data.rfind(b"\n") + 1
            handle.close()
    return drain


def _applied_marker(segment: Path) -> Path:
    return segment.with_suffix(".applied")


def _applied_offset(segment: Path) -> int:
    try:
        return int(_applied_marker(segment).read_text(encoding="ascii"))
    except (FileNotFoundError, ValueError):
        return 0


def _parse_segment(data: bytes, path: Path) -> Iterator[SpoolRecord]:
    lines = data.split(b"\n")
    # Whatever follows the last newline was never acknowledged (the write did not finish).
    for line in lines[:-1]:
        if not line.strip():
            continue
        try:
            raw: Any = orjson.loads(line)
            yield SpoolRecord(
                key=str(raw["key"]),
                kind=str(raw["kind"]),
                received_at=datetime.fromisoformat(raw["received_at"]),
                body=str(raw["body"]),
                reason=raw.get("reason"),
                segment=path,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            # A damaged line (disk corruption): kept as a reject, never silently dropped.
            text = line.decode("utf-8", errors="replace")
            yield SpoolRecord(
                key=record_key(line),
                kind=KIND_REJECT,
                received_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
                body=text,
                reason="damaged spool line",
                segment=path,
            )


def spool_depth(directory: Path) -> tuple[int, datetime | None]:
    """(records not yet applied, receipt time of the oldest): for monitoring."""
    drain = read_spool(directory)
    try:
        if not drain.records:
            return 0, None
        return len(drain.records), min(r.received_at for r in drain.records)
    finally:
        drain.release()
