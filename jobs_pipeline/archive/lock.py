"""One writer at a time: an exclusive `flock` on `<dir>/.<name>.writer/lock`, with a bounded wait.

Why flock and not DuckDB's own file lock: DuckDB fails immediately when another process holds the
file, with an error that names neither the holder nor what to do. The flock lets a scheduled sync
wait politely for a manual one (bounded by `timeout`), then fail with a message that says who holds
the archive and since when (the holder writes its pid and start time into the lock file).
The kernel drops a flock when its holder dies, so a crashed sync never leaves a stale lock behind;
the pid text left in the file is then merely overwritten by the next holder.

A flock belongs to an inode, not to a path. A failed first sync removes the whole writer directory,
lock file included, while it still holds the lock (`open_writer`): a sync that was waiting on that
file then gets a lock on a file nobody else can find any more, and a third sync would create a new
lock file and write beside it. So a waiter, once it has the flock, checks that the file it locked
is still the one at the path, and starts again on the new one (recreating the directory) if not.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from jobs_pipeline.archive.errors import ArchiveBusyError

DEFAULT_LOCK_TIMEOUT = 120.0
# Poll the lock with a growing pause: quick to notice a short sync ending, cheap over two minutes.
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 1.0


@contextmanager
def writer_lock(lock_file: Path, *, timeout: float, archive_label: str) -> Iterator[None]:
    """Hold the exclusive writer lock for the duration of the block.

    Waits up to `timeout` seconds (0 = a single try), then raises ArchiveBusyError naming the holder.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    fd = _lock_current_file(lock_file, deadline=deadline, archive_label=archive_label)
    try:
        try:
            _write_holder(fd)
            yield
        finally:
            # Clear our identity before unlocking so that a later reader never blames a gone process.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock_current_file(lock_file: Path, *, deadline: float, archive_label: str) -> int:
    """Open and flock the lock file found at `lock_file`; return its descriptor, locked.

    While we waited, the holder may have removed the file (a failed first sync removes the writer
    directory): the lock we then get guards nothing. Start again on whatever is at the path now.
    """
    while True:
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            # The writer directory itself is gone (removed after `check_writable` made it).
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            _acquire(fd, deadline=deadline, lock_file=lock_file, archive_label=archive_label)
            if _is_at_path(fd, lock_file):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # releases the lock on the removed file


def _is_at_path(fd: int, lock_file: Path) -> bool:
    """Is the open file `fd` the very file now at `lock_file` (not one unlinked or replaced)?"""
    try:
        on_disk = os.stat(lock_file)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _acquire(fd: int, *, deadline: float, lock_file: Path, archive_label: str) -> None:
    pause = _FIRST_PAUSE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ArchiveBusyError(
                f"another sync ({describe_holder(lock_file)}) is writing {archive_label}; try again later"
            )
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _MAX_PAUSE)


def _write_holder(fd: int) -> None:
    started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid={os.getpid()}\nstarted_at={started}\n".encode(), 0)


def describe_holder(lock_file: Path) -> str:
    """'pid N, since T' from the lock file, tolerant of a holder that has not written it yet."""
    try:
        text = lock_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    pid = fields.get("pid", "unknown")
    since = fields.get("started_at", "an unknown time")
    return f"pid {pid}, since {since}"
