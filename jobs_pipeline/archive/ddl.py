"""The SQL of each schema migration, FROZEN once released.

Never edit a released step: an archive that already ran it would silently differ from a fresh one.
Change the schema by adding a new step here and registering it in `migrations.py`.
Every table and column carries a COMMENT ON: analysts read them with
`SELECT table_name, column_name, comment FROM duckdb_columns()`.
"""

from __future__ import annotations

# Version 1: the initial archive (no rejected records, no rate-limit/reject counts per sync).
V1_INITIAL = r"""
CREATE TABLE schema_version (
    tenant      VARCHAR NOT NULL DEFAULT '*',
    version     INTEGER NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL,
    description VARCHAR NOT NULL,
    PRIMARY KEY (version)
);
COMMENT ON TABLE schema_version IS 'Migrations applied to this archive file, one row per schema version (bookkeeping of jobs_pipeline.archive.migrations).';
COMMENT ON COLUMN schema_version.tenant IS 'Always ''*'': a schema version applies to the whole store, every tenant. Present only so that every archive table starts with tenant.';
COMMENT ON COLUMN schema_version.version IS 'Schema version reached by this migration (1, 2, ...); the archive''s version is max(version).';
COMMENT ON COLUMN schema_version.applied_at IS 'When the migration ran (writer''s local clock, UTC).';
COMMENT ON COLUMN schema_version.description IS 'What the migration changed.';

CREATE TABLE sync_runs (
    tenant            VARCHAR NOT NULL,
    sync_id           VARCHAR NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ NOT NULL,
    observed_at       TIMESTAMPTZ NOT NULL,
    requests          INTEGER NOT NULL,
    pages             INTEGER NOT NULL,
    jobs_seen         INTEGER NOT NULL,
    jobs_new          INTEGER NOT NULL,
    jobs_changed      INTEGER NOT NULL,
    jobs_vanished     INTEGER NOT NULL,
    coverage_complete BOOLEAN NOT NULL,
    gaps              JSON NOT NULL,
    status            VARCHAR NOT NULL,
    error             VARCHAR,
    PRIMARY KEY (tenant, sync_id)
);
COMMENT ON TABLE sync_runs IS 'One row per sync applied to the archive (one CaptureResult), with what it saw and what it could not see.';
COMMENT ON COLUMN sync_runs.tenant IS 'Which API key''s data (several tenants may share one archive without mixing).';
COMMENT ON COLUMN sync_runs.sync_id IS 'Identifier of the sync, unique per tenant; referenced by every row the sync wrote.';
COMMENT ON COLUMN sync_runs.started_at IS 'When the sync started (local clock, UTC).';
COMMENT ON COLUMN sync_runs.finished_at IS 'When the sync finished fetching (local clock, UTC).';
COMMENT ON COLUMN sync_runs.observed_at IS 'Server clock (HTTP Date header) at the start of the sync: the instant the API''s 24 h window is measured from.';
COMMENT ON COLUMN sync_runs.requests IS 'HTTP requests sent to GET /v1/jobs, retries included.';
COMMENT ON COLUMN sync_runs.pages IS 'Responses successfully read.';
COMMENT ON COLUMN sync_runs.jobs_seen IS 'Distinct job ids observed by the sync.';
COMMENT ON COLUMN sync_runs.jobs_new IS 'Observed jobs the archive did not know before this sync.';
COMMENT ON COLUMN sync_runs.jobs_changed IS 'Already-known jobs for which this sync appended a snapshot (status, progress, updated_at, error or metadata changed).';
COMMENT ON COLUMN sync_runs.jobs_vanished IS 'Known jobs this sync found gone: inferred KILLED plus aged out of the 24 h window (EXPIRED).';
COMMENT ON COLUMN sync_runs.coverage_complete IS 'True when the sync saw every slice it needed (no gaps); false means some jobs may be missing, see gaps.';
COMMENT ON COLUMN sync_runs.gaps IS 'JSON list of the parts the sync could not see: {slice, reason (cap|budget|error), created_from, created_to}.';
COMMENT ON COLUMN sync_runs.status IS 'Outcome of the sync: ''ok'' (only applied syncs are recorded).';
COMMENT ON COLUMN sync_runs.error IS 'NULL, or a warning about the sync (e.g. rejected records, stale observations ignored).';

CREATE TABLE job_snapshots (
    tenant      VARCHAR NOT NULL,
    sync_id     VARCHAR NOT NULL,
    job_id      VARCHAR NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    status      VARCHAR NOT NULL,
    progress    INTEGER,
    updated_at  TIMESTAMPTZ NOT NULL,
    error       VARCHAR,
    metadata    JSON,
    payload     JSON NOT NULL
);
COMMENT ON TABLE job_snapshots IS 'Append-only history: one row each time a sync observed a job new or changed (status, progress, updated_at, error or metadata). Never updated or deleted.';
COMMENT ON COLUMN job_snapshots.tenant IS 'Which API key''s data.';
COMMENT ON COLUMN job_snapshots.sync_id IS 'The sync that made the observation (sync_runs.sync_id).';
COMMENT ON COLUMN job_snapshots.job_id IS 'The job''s id (API field id).';
COMMENT ON COLUMN job_snapshots.observed_at IS 'Server clock (Date header) of the response that contained the job.';
COMMENT ON COLUMN job_snapshots.status IS 'The job''s status as returned: PENDING, IN_PROGRESS, DONE, ERROR (or any new value the API introduces).';
COMMENT ON COLUMN job_snapshots.progress IS 'Progress 0-100 as returned; NULL when the API omitted it.';
COMMENT ON COLUMN job_snapshots.updated_at IS 'The API''s updatedAt (UTC, millisecond exact).';
COMMENT ON COLUMN job_snapshots.error IS 'The API''s error message (set on ERROR), else NULL.';
COMMENT ON COLUMN job_snapshots.metadata IS 'The API''s metadata object (JSON, keys sorted), NULL when absent.';
COMMENT ON COLUMN job_snapshots.payload IS 'The job exactly as the API returned it (JSON), unknown fields included.';

CREATE TABLE jobs (
    tenant          VARCHAR NOT NULL,
    job_id          VARCHAR NOT NULL,
    user_id         VARCHAR,
    target_id       VARCHAR,
    job_type        VARCHAR NOT NULL,
    status          VARCHAR NOT NULL,
    status_inferred BOOLEAN NOT NULL,
    progress        INTEGER,
    error           VARCHAR,
    metadata        JSON,
    created_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    completed_at    TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    last_seen_at    TIMESTAMPTZ NOT NULL,
    vanished_at     TIMESTAMPTZ,
    last_sync_id    VARCHAR NOT NULL,
    PRIMARY KEY (tenant, job_id)
);
COMMENT ON TABLE jobs IS 'The latest known state of every job ever seen: one row per (tenant, job_id).';
COMMENT ON COLUMN jobs.tenant IS 'Which API key''s data.';
COMMENT ON COLUMN jobs.job_id IS 'The job''s id (API field id).';
COMMENT ON COLUMN jobs.user_id IS 'The API''s userId.';
COMMENT ON COLUMN jobs.target_id IS 'The API''s targetId: the resource (document, folder, ...) the job works on.';
COMMENT ON COLUMN jobs.job_type IS 'The API''s type: EXTRACTION, EMBEDDING, SYNC, IMPORT, TRANSCRIPTION, GENERATION (or a new value).';
COMMENT ON COLUMN jobs.status IS 'Latest status: the API''s value, or KILLED when inferred (the API hides KILLED jobs).';
COMMENT ON COLUMN jobs.status_inferred IS 'True when status is KILLED by inference (the job vanished while active and younger than 24 h), false when observed.';
COMMENT ON COLUMN jobs.progress IS 'Latest observed progress 0-100; NULL when the API omitted it.';
COMMENT ON COLUMN jobs.error IS 'Latest observed error message, else NULL.';
COMMENT ON COLUMN jobs.metadata IS 'Latest observed metadata object (JSON, keys sorted), NULL when absent.';
COMMENT ON COLUMN jobs.created_at IS 'The API''s createdAt (UTC, millisecond exact).';
COMMENT ON COLUMN jobs.started_at IS 'The API''s startedAt, NULL when not (yet) given.';
COMMENT ON COLUMN jobs.completed_at IS 'The API''s completedAt, NULL when not (yet) given.';
COMMENT ON COLUMN jobs.updated_at IS 'The API''s updatedAt of the latest observation.';
COMMENT ON COLUMN jobs.first_seen_at IS 'Server clock of the first observation of the job.';
COMMENT ON COLUMN jobs.last_seen_at IS 'Server clock of the latest observation of the job.';
COMMENT ON COLUMN jobs.vanished_at IS 'Server clock at which the job was found gone from the API (KILLED inferred or aged out of the 24 h window); NULL while visible.';
COMMENT ON COLUMN jobs.last_sync_id IS 'The last sync that observed this job or recorded its vanishing (sync_runs.sync_id).';

CREATE TABLE job_status_changes (
    tenant         VARCHAR NOT NULL,
    job_id         VARCHAR NOT NULL,
    from_status    VARCHAR,
    to_status      VARCHAR NOT NULL,
    changed_at     TIMESTAMPTZ,
    changed_after  TIMESTAMPTZ NOT NULL,
    changed_before TIMESTAMPTZ NOT NULL,
    source         VARCHAR NOT NULL,
    sync_id        VARCHAR NOT NULL,
    step           SMALLINT NOT NULL
);
COMMENT ON TABLE job_status_changes IS 'Every status transition of every job, lifecycle steps skipped between polls filled in (PENDING -> IN_PROGRESS -> DONE|ERROR). For one job the rows form a chain: each to_status is the next row''s from_status (order by the sync''s observed_at, then step).';
COMMENT ON COLUMN job_status_changes.tenant IS 'Which API key''s data.';
COMMENT ON COLUMN job_status_changes.job_id IS 'The job (jobs.job_id).';
COMMENT ON COLUMN job_status_changes.from_status IS 'Status before the change; NULL for the job''s creation.';
COMMENT ON COLUMN job_status_changes.to_status IS 'Status after the change (KILLED when inferred).';
COMMENT ON COLUMN job_status_changes.changed_at IS 'Exact instant of the change from the API''s own timestamps (createdAt for creation, startedAt for -> IN_PROGRESS, completedAt for -> DONE/ERROR); NULL when no exact timestamp exists.';
COMMENT ON COLUMN job_status_changes.changed_after IS 'The change happened at or after this instant (previous observation, or createdAt); equals changed_at when exact.';
COMMENT ON COLUMN job_status_changes.changed_before IS 'The change happened at or before this instant (the observation that revealed it); equals changed_at when exact.';
COMMENT ON COLUMN job_status_changes.source IS 'How the change is known: api_timestamp (exact), poll_interval (between two observations), inferred (KILLED: vanished while active), correction (an inferred KILLED proved wrong).';
COMMENT ON COLUMN job_status_changes.sync_id IS 'The sync that recorded the change (sync_runs.sync_id).';
COMMENT ON COLUMN job_status_changes.step IS 'Order of this change among those the same sync recorded for the same job (1 = earliest).';
"""

# Version 2: keep what a sync could not parse, and count rate limiting and rejects per sync.
V2_REJECTS_AND_RATE_LIMITS = r"""
ALTER TABLE sync_runs ADD COLUMN rate_limited INTEGER;
ALTER TABLE sync_runs ADD COLUMN rejects INTEGER;
COMMENT ON COLUMN sync_runs.rate_limited IS 'HTTP 429 responses received during the sync; NULL for syncs archived before schema version 2 (not recorded).';
COMMENT ON COLUMN sync_runs.rejects IS 'Records the sync could not parse (see rejected_records); NULL for syncs archived before schema version 2 (not recorded).';

CREATE TABLE rejected_records (
    tenant      VARCHAR NOT NULL,
    sync_id     VARCHAR NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    job_id      VARCHAR,
    reason      VARCHAR NOT NULL,
    payload     VARCHAR NOT NULL
);
COMMENT ON TABLE rejected_records IS 'Records of API responses that could not be parsed into a job: kept with the reason, never silently dropped.';
COMMENT ON COLUMN rejected_records.tenant IS 'Which API key''s data.';
COMMENT ON COLUMN rejected_records.sync_id IS 'The sync that received the record (sync_runs.sync_id).';
COMMENT ON COLUMN rejected_records.observed_at IS 'Server clock (Date header) at the start of the sync that received the record.';
COMMENT ON COLUMN rejected_records.job_id IS 'The record''s id when one could be read, else NULL.';
COMMENT ON COLUMN rejected_records.reason IS 'Why the record was rejected.';
COMMENT ON COLUMN rejected_records.payload IS 'The record as received: JSON text when it was JSON-serialisable, else its raw text.';
"""

# Version 3: the comment on sync_runs.gaps lists every gap reason (v1 named only cap|budget|error;
# "error" was never produced). A comment only: no table or row changes.
V3_GAP_REASONS = r"""
COMMENT ON COLUMN sync_runs.gaps IS 'JSON list of the parts the sync could not see: {slice, reason, created_from, created_to}, the createdAt range not seen (inclusive; null = open). slice: ALL, PENDING, IN_PROGRESS, DONE, ERROR, target:<id> (a list walked), * (the whole sync) or known-active (jobs the archive knew as queued or running). reason: cap = the slice reached the API''s offset cap before that range; budget = the request budget ran out (anything may be missing); drift = rows moved between two pages and the walk could not re-join them; rejected = a page kept unreadable records, the jobs behind them were not seen; behind-cap = queued jobs hidden past the PENDING cap behind the queue front, left unprobed on purpose; unresolved = known queued or running jobs the sync could neither find nor prove gone.';
"""

# Version 5: webhook events (applied after version 4 moved the archive tables into schema hot; the
# views are regenerated by the step, see migrations.py).
V5_WEBHOOK_EVENTS = r"""
ALTER TABLE hot.job_snapshots ADD COLUMN source VARCHAR DEFAULT 'poll';
COMMENT ON COLUMN hot.job_snapshots.source IS 'Where the observation came from: poll (a GET /v1/jobs response) or webhook (a job-status event; observed_at is then the event''s own time, or its receipt when it carried none). NULL only in rows archived before schema version 5 (all polls).';
COMMENT ON COLUMN hot.job_status_changes.source IS 'How the change is known: api_timestamp (exact), poll_interval (between two observations), inferred (KILLED: vanished while active), correction (an inferred KILLED proved wrong), webhook (exact, from a job-status event; also a poll_interval or inferred row an event later dated exactly).';

CREATE TABLE hot.webhook_events (
    tenant      VARCHAR NOT NULL,
    event_key   VARCHAR NOT NULL,
    sync_id     VARCHAR NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    job_id      VARCHAR,
    status      VARCHAR,
    occurred_at TIMESTAMPTZ,
    outcome     VARCHAR NOT NULL,
    payload     VARCHAR NOT NULL
);
COMMENT ON TABLE hot.webhook_events IS 'Every webhook job-status event a sync drained from the spool, once (what makes draining idempotent), with what it did to the archive.';
COMMENT ON COLUMN hot.webhook_events.tenant IS 'Which API key''s data (the tenant of the sync that drained the event).';
COMMENT ON COLUMN hot.webhook_events.event_key IS 'SHA-256 of the request body as received: a duplicate delivery has the same key and is applied once.';
COMMENT ON COLUMN hot.webhook_events.sync_id IS 'The sync that applied the event (sync_runs.sync_id).';
COMMENT ON COLUMN hot.webhook_events.observed_at IS 'Server clock at the start of the sync that applied the event (sync_runs.observed_at).';
COMMENT ON COLUMN hot.webhook_events.received_at IS 'When the receiver stored the event (receiver''s clock, UTC).';
COMMENT ON COLUMN hot.webhook_events.job_id IS 'The event''s jobId, NULL when it could not be read.';
COMMENT ON COLUMN hot.webhook_events.status IS 'The event''s status, NULL when it could not be read.';
COMMENT ON COLUMN hot.webhook_events.occurred_at IS 'The event''s own time (occurredAt, else updatedAt), NULL when it carried none.';
COMMENT ON COLUMN hot.webhook_events.outcome IS 'What the event did: applied (new state), created (a job the archive did not know, partially known until a poll sees it), refined (dated an inexact change exactly), stale (the archive already knew as much), rejected (see rejected_records).';
COMMENT ON COLUMN hot.webhook_events.payload IS 'The request body as received.';
"""

# Version 6: what the capture planner decided and spent per sync (sync_runs.plan_notes).
V6_PLAN_NOTES = r"""
ALTER TABLE hot.sync_runs ADD COLUMN plan_notes JSON;
COMMENT ON COLUMN hot.sync_runs.plan_notes IS 'JSON object of what the capture planner decided and spent in this sync, request counts by purpose (head_pages, position_pages, target_probes, active_slice_checks, gap_revisits, discovery_probes, ...) and flags (head_over_cap, budget_exhausted, ...): why a sync cost what it cost. NULL for syncs archived before schema version 6 (not recorded).';
"""
