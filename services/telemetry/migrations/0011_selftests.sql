-- Device self-tests (mqtt-v1.1): each device's latest one and when its next one is missed.
-- A device without a row never sent one (firmware older than v1.1): it is never counted as
-- missing one. `due_at` is the timer the analysis worker scans (FOR UPDATE SKIP LOCKED).
CREATE TABLE IF NOT EXISTS telemetry.device_selftests (
    device_id    text        PRIMARY KEY,
    resident_id  text        NOT NULL,
    kind         text        NOT NULL,
    last_at      timestamptz NOT NULL,
    result       text        NOT NULL CHECK (result IN ('pass', 'fail')),
    failed       text[]      NOT NULL DEFAULT '{}',
    trigger      text,
    misses       int         NOT NULL DEFAULT 0,
    due_at       timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS device_selftests_due ON telemetry.device_selftests (due_at) WHERE due_at IS NOT NULL;
