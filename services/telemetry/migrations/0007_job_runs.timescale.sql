-- Runs of the policy jobs in the foreground (`homecare telemetry run-jobs`): TimescaleDB's job
-- statistics count its background runs only, and where those cannot run (a server whose
-- background workers fail) these are the jobs' only runs. Kept 30 days (services/telemetry/jobs.py).
CREATE TABLE IF NOT EXISTS telemetry.job_runs (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       int         NOT NULL,
    proc_name    text        NOT NULL,
    target       text        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    error        text
);
CREATE INDEX IF NOT EXISTS job_runs_by_job ON telemetry.job_runs (job_id, started_at DESC);
