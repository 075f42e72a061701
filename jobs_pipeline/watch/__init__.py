"""Live terminal views of the Jobs API (read-only, within the key's rate budget).

- `dashboard`: `jobs-pipeline watch`, in the spirit of the vendor's JobDashboard: counts by status
  over the newest jobs, every running job with a progress bar and an ETA, status transitions as
  they happen. `board` holds the state (pure), `render` draws it with rich, `eta` estimates
  remaining times with jobs_pipeline.analytics' ETA (progress blended with the archive's history).
- `follow`: the progress display of `jobs-pipeline wait` (api.monitor.wait_for_job as a command).
- `connect`: the API client from DEVANA_API_KEY / DEVANA_API_URL.
"""
