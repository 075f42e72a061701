"""Webhook job-status events: the receiver (`receiver.py`), its durable spool (`spool.py`), the
event format (`events.py`) and optional authentication (`auth.py`). The archive side lives in
`archive/webhook_merge.py`. Imports nothing of the archive: the receiver never touches DuckDB."""
