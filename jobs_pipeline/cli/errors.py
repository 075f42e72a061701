"""Turn the errors a person can act on into one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

# Exit codes: 1 = the API or the network failed, 2 = configuration, 3 = the archive.
EXIT_API = 1
EXIT_CONFIG = 2
EXIT_ARCHIVE = 3


@contextmanager
def exit_on_error() -> Iterator[None]:
    from jobs_pipeline.api.errors import ApiError
    from jobs_pipeline.archive import ArchiveError
    from jobs_pipeline.sync import ConfigError

    try:
        yield
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    except ArchiveError as exc:
        _fail(str(exc), EXIT_ARCHIVE)
    except ApiError as exc:
        _fail(str(exc), EXIT_API)
    except ValueError as exc:
        _fail(str(exc), EXIT_CONFIG)


def _fail(message: str, code: int) -> None:
    from jobs_pipeline.safe_text import safe_text

    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    # Messages quote the server (and archived values): never let them drive the terminal.
    sys.stderr.write(f"error: {safe_text(first_line)}\n")
    raise typer.Exit(code)
