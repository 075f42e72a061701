"""fsync helpers: what makes a written file, and its rename, survive a power cut."""

from __future__ import annotations

import contextlib
import os


def fsync_file(path: os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: os.PathLike[str]) -> None:
    # Makes a rename itself durable; not supported on every filesystem, hence best effort.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
